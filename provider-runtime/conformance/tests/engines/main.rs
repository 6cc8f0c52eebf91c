//! Every built-in engine of every domain against its domain's suite: each (engine × check) is
//! a test of its own, named `<domain>/<engine>::<check>` (filter with e.g. `-- cache/redis::`),
//! run by libtest-mimic the way `cargo test` runs `#[test]`s.
//!
//! Enrolling an engine is one entry in its domain's fixture module here: how to build a fresh
//! subject (a factory over a store no other test uses) and, where the engine has one, how to
//! model a process restart over the same store. The checks, their levels and their gates are
//! the kit's (`switchyard_conformance::suite`), shared with `switchyard conformance`.

mod ai;
mod auth;
mod bus;
mod cache;
mod db;
mod integration;
mod private;
mod storage;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use switchyard_conformance::{Check, Level, Subject, suite};

/// A fresh subject for one test.
type MakeSubject = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Subject> + Send>> + Send + Sync>;

/// One built-in engine enrolled in its domain's suite.
pub struct Enrolled {
    /// `<domain>/<name>`, as the engine's descriptor names it.
    pub provider: &'static str,
    /// `None` when the engine's server cannot run here: its trials are listed, ignored.
    subject: Option<MakeSubject>,
    /// For the stable checks: a subject on a backing server of its own, which the check
    /// restarts (the shared test servers cannot be). Without one they are not run.
    stable: Option<MakeSubject>,
}

impl Enrolled {
    pub fn new<F>(provider: &'static str, subject: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Subject> + Send + 'static,
    {
        Enrolled {
            provider,
            subject: Some(Arc::new(move || Box::pin(subject()))),
            stable: None,
        }
    }

    /// An engine whose server is not available here, and why (said once on stderr).
    pub fn unavailable(provider: &'static str, why: &str) -> Self {
        eprintln!("{provider} not enrolled: {why}");
        Enrolled {
            provider,
            subject: None,
            stable: None,
        }
    }

    pub fn with_stable<F>(mut self, subject: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Subject> + Send + 'static,
    {
        self.stable = Some(Arc::new(move || Box::pin(subject())));
        self
    }

    /// The subject a check runs against.
    fn subject_for(&self, check: &Check) -> Option<&MakeSubject> {
        match check.level {
            Level::Stable => self.stable.as_ref(),
            _ => self.subject.as_ref(),
        }
    }
}

fn enrolled() -> Vec<Enrolled> {
    [
        ai::enrolled(),
        auth::enrolled(),
        bus::enrolled(),
        cache::enrolled(),
        db::enrolled(),
        integration::enrolled(),
        storage::enrolled(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A runtime like the product's (several workers), so concurrent calls in a check really run
/// at the same time; two is what the machines the suite runs on have.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Whether any of `names` survives the command line's filter and skips (libtest's rules:
/// a substring, or the whole name with `--exact`), so an engine none of whose trials will
/// run is not probed (a probe needs its server).
fn any_wanted(args: &Arguments, names: &[String]) -> bool {
    let matches = |name: &str, pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    names.iter().any(|name| {
        args.filter.as_deref().is_none_or(|f| matches(name, f))
            && !args.skip.iter().any(|s| matches(name, s))
    })
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let probe = runtime();
    for engine in enrolled() {
        let domain = engine.provider.split_once('/').map_or("", |(d, _)| d);
        let checks = suite(domain).unwrap_or_else(|| panic!("the {domain} domain has no suite"));
        // What the engine declares decides which checks apply; a fresh subject tells.
        let names: Vec<String> = checks
            .iter()
            .map(|check| format!("{}::{}", engine.provider, check.name))
            .collect();
        let wanted = any_wanted(&args, &names);
        let subject = engine.subject.as_ref().filter(|_| wanted).map(|make| {
            let subject = probe.block_on(make());
            assert_eq!(
                subject.name(),
                engine.provider,
                "enrolled under another name than its descriptor's"
            );
            subject
        });
        for (check, name) in checks.into_iter().zip(names) {
            let make = engine.subject_for(&check).cloned();
            let level = check.level.label();
            let can_run =
                make.is_some() && subject.as_ref().is_some_and(|s| s.declares_what(&check));
            let trial = Trial::test(name, move || {
                let make = make.expect("an ignored trial is not run");
                runtime().block_on(async {
                    // Tenant names as `switchyard conformance` gives them (prefixed), so
                    // a check that assumes a bare name fails here, not in the field.
                    let subject = make().await.with_tenant_prefix("kit");
                    assert!(subject.can_run(&check), "the subject cannot run this check");
                    (check.run)(Arc::new(subject)).await;
                });
                Ok::<(), Failed>(())
            });
            trials.push(trial.with_kind(level).with_ignored_flag(!can_run));
        }
        // Dropped where it was made: a subject's pools belong to that runtime.
        probe.block_on(async move { drop(subject) });
    }
    libtest_mimic::run(&args, trials).exit();
}
