//! The conformance kit: every domain's suite as a list of named checks, and the runner that
//! certifies a provider against it.
//!
//! One module per domain, one `pub async fn` per check, each at a [`Level`] and gated on what
//! the provider declares (a capability, or an optional action). The same checks run in two
//! places: the kit's own test target (`tests/engines/`), which enrols every built-in engine of
//! every domain with its test fixture and runs each (engine × check) as a named test, and
//! `switchyard conformance <domain>/<name>`, which runs them through [`run`] against any
//! registered provider — built-in, plugin or remote — so a certification and `cargo test` can
//! never disagree about what the suite checks.
//!
//! A check panics on failure (it is test code, written with `assert!`); [`run`] runs each one
//! on its own task, so a failing check becomes a line of the [`Report`], not a crash.

use std::any::Any;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use switchyard_spi::testkit::Harness;
use switchyard_spi::{ProviderDescriptor, ProviderFactory};

pub mod ai;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod db;
pub mod integration;
mod reconnect;
pub mod storage;

/// What a check proves. A provider is certified at `core` when every core check passes, and
/// gains each further level whose checks all pass too (modelled on Dapr's certification of
/// components: conformance first, then the properties a production user relies on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The domain's actions behave as the contract says.
    Core,
    /// Multi-step changes are all-or-nothing; concurrent read-modify-writes lose nothing.
    Transactions,
    /// One tenant never sees, counts or changes another's data.
    Isolation,
    /// State survives a restart of the tenant's instance (the runtime's hot swap) or of the
    /// provider's process (a new factory over the same backing store).
    Resilience,
    /// The provider reconnects by itself after its backing server restarts. Only a fixture
    /// that can restart the backing server runs these checks; without one the level is not
    /// assessed (and so not claimed).
    Stable,
}

impl Level {
    /// The label used in reports: `core`, `+transactions`, …
    pub fn label(self) -> &'static str {
        match self {
            Level::Core => "core",
            Level::Transactions => "+transactions",
            Level::Isolation => "+isolation",
            Level::Resilience => "+resilience",
            Level::Stable => "+stable",
        }
    }

    const ALL: [Level; 5] = [
        Level::Core,
        Level::Transactions,
        Level::Isolation,
        Level::Resilience,
        Level::Stable,
    ];
}

type CheckFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// One check of a suite, at its level.
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    /// What the check needs to apply: a capability the provider declares, `action:<name>` for
    /// an optional action it offers, `config:<property>` for an optional setting its tenant
    /// config schema accepts (e.g. a size cap), or `fixture:<name>` for something only a test
    /// fixture can give (e.g. the host folder behind a local engine). A check that does not
    /// apply is skipped.
    pub requires: &'static [&'static str],
    pub run: fn(Arc<Subject>) -> CheckFuture,
}

impl Check {
    /// Whether the provider `descriptor` describes, with a fixture providing `provided`,
    /// has all this check requires.
    pub fn applies_to(&self, descriptor: &ProviderDescriptor, provided: &[&str]) -> bool {
        self.requires.iter().all(|r| {
            if let Some(action) = r.strip_prefix("action:") {
                descriptor.action(action).is_some()
            } else if let Some(feature) = r.strip_prefix("fixture:") {
                provided.contains(&feature)
            } else if let Some(property) = r.strip_prefix("config:") {
                descriptor.config_schema["properties"]
                    .get(property)
                    .is_some()
            } else {
                descriptor.has_capability(r)
            }
        })
    }
}

/// Declares a [`Check`] from a `pub async fn name(&Subject)` (or `&Harness`) of a suite
/// module, optionally gated: `check!(Level::Core, name, requires = ["ttl", "action:presign"])`.
macro_rules! check {
    ($level:expr, $name:ident) => {
        $crate::check!($level, $name, requires = [])
    };
    ($level:expr, $name:ident, requires = [$($req:expr),* $(,)?]) => {
        $crate::Check {
            name: stringify!($name),
            level: $level,
            requires: &[$($req),*],
            run: |s| Box::pin(async move { $name(&s).await }),
        }
    };
}
pub(crate) use check;

/// The provider a check runs against: its [`Harness`] (which a check uses as `&Harness` by
/// deref), plus what a domain's checks may need beyond the contract — a way to model a process
/// restart, a domain fixture, the backing store to keep alive.
///
/// `switchyard conformance` builds a plain one ([`Subject::new`]): a restart is modelled by a
/// new instance from the same factory and every fixture is its domain's default. The kit's
/// tests enrol built-in engines with richer ones (a fresh database per check, a factory
/// re-created over the same files).
pub struct Subject {
    harness: Harness,
    reopen: Box<dyn Fn() -> Arc<dyn ProviderFactory> + Send + Sync>,
    fixture: Option<Arc<dyn Any + Send + Sync>>,
    restart_backing: Option<Box<dyn Fn() -> CheckFuture + Send + Sync>>,
    /// What the fixture gives beyond the defaults, for `fixture:<name>` requirements.
    provided: Vec<&'static str>,
    _backing: Box<dyn Any + Send + Sync>,
}

impl Subject {
    pub fn new(factory: Arc<dyn ProviderFactory>) -> Self {
        let same = factory.clone();
        Subject {
            harness: Harness::new(factory),
            reopen: Box::new(move || same.clone()),
            fixture: None,
            restart_backing: None,
            provided: Vec::new(),
            _backing: Box::new(()),
        }
    }

    /// How to build a new factory over the same backing store, as after a process restart.
    pub fn with_reopen(
        mut self,
        reopen: impl Fn() -> Arc<dyn ProviderFactory> + Send + Sync + 'static,
    ) -> Self {
        self.reopen = Box::new(reopen);
        self
    }

    /// The domain fixture the domain's checks read with [`Subject::fixture`].
    pub fn with_fixture<T: Any + Send + Sync>(mut self, fixture: T) -> Self {
        self.fixture = Some(Arc::new(fixture));
        self
    }

    /// How to restart the server behind the provider (stop it, start it again on the same
    /// address and data): the [`Level::Stable`] checks run only when there is one.
    pub fn with_backing_restart(
        mut self,
        restart: impl Fn() -> CheckFuture + Send + Sync + 'static,
    ) -> Self {
        self.restart_backing = Some(Box::new(restart));
        self
    }

    /// Restarts the backing server; panics (fails the check) when the subject has no way to.
    pub async fn restart_backing(&self) {
        let restart = self
            .restart_backing
            .as_ref()
            .expect("the subject has no backing server to restart");
        restart().await;
    }

    /// Whether `check` can run against this subject: what it requires is declared, and a
    /// stable check has a backing server to restart.
    pub fn can_run(&self, check: &Check) -> bool {
        self.declares_what(check)
            && (check.level != Level::Stable || self.restart_backing.is_some())
    }

    /// Whether the provider declares, and the fixture provides, what `check` requires.
    pub fn declares_what(&self, check: &Check) -> bool {
        check.applies_to(self.harness.factory.descriptor(), &self.provided)
    }

    /// Declares that the fixture gives `feature` (see [`Check::requires`]).
    pub fn providing(mut self, feature: &'static str) -> Self {
        self.provided.push(feature);
        self
    }

    /// Keeps `backing` (a temp dir, a test database) alive as long as the subject.
    pub fn keeping(mut self, backing: impl Any + Send + Sync) -> Self {
        self._backing = Box::new(backing);
        self
    }

    /// Tenants of this subject are `<prefix>-<name>`.
    pub fn with_tenant_prefix(mut self, prefix: &str) -> Self {
        self.harness = self.harness.with_tenant_prefix(prefix);
        self
    }

    /// The domain fixture of type `T`, or `T`'s default when the subject was given none (a
    /// provider certified from the command line).
    pub fn fixture<T: Any + Send + Sync + Default>(&self) -> Arc<T> {
        self.fixture
            .clone()
            .and_then(|f| f.downcast::<T>().ok())
            .unwrap_or_default()
    }

    /// A harness over a new factory on the same backing store, with the same tenant names.
    pub fn reopened(&self) -> Harness {
        self.harness.with_factory((self.reopen)())
    }

    /// `<domain>/<name>`, for failure messages.
    pub fn name(&self) -> String {
        let d = self.harness.factory.descriptor();
        format!("{}/{}", d.domain, d.name)
    }
}

impl Deref for Subject {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.harness
    }
}

/// The suite of a domain, or `None` when that domain has none yet.
pub fn suite(domain: &str) -> Option<Vec<Check>> {
    match domain {
        "ai" => Some(ai::checks()),
        "auth" => Some(auth::checks()),
        "bus" => Some(bus::checks()),
        "cache" => Some(cache::checks()),
        "db" => Some(db::checks()),
        "integration" => Some(integration::checks()),
        "storage" => Some(storage::checks()),
        _ => None,
    }
}

/// The domains that have a suite, for error messages.
pub const DOMAINS: [&str; 7] = ["ai", "auth", "bus", "cache", "db", "integration", "storage"];

#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub name: &'static str,
    pub level: Level,
    pub passed: bool,
    /// Not run: the provider does not declare what the check requires, or (stable checks)
    /// there is no backing server to restart.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Why it failed: the assertion's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub duration_ms: u128,
}

/// What `switchyard conformance` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub provider: String,
    pub version: String,
    pub passed: usize,
    pub failed: usize,
    /// Checks not run: the provider does not declare what they require.
    pub skipped: usize,
    /// The levels earned, e.g. `["core", "+isolation"]`; empty when a core check failed.
    pub levels: Vec<&'static str>,
    /// The levels joined, e.g. `core+isolation`, or `none`.
    pub certification: String,
    pub checks: Vec<CheckOutcome>,
}

/// Longest a single check may take before it counts as failed (the slowest cache check sleeps
/// under a second; a remote provider adds round trips).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `checks` one after another, each against a subject `subject` makes for it (on a task
/// of its own, so a panic is a failed check), and works out the certification. A check the
/// subject cannot run is reported skipped.
pub async fn run(subject: impl Fn() -> Subject, checks: Vec<Check>) -> Report {
    let (provider, version) = {
        let first = subject();
        (first.name(), first.factory.descriptor().version.clone())
    };
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut outcomes = Vec::new();
    for (i, check) in checks.into_iter().enumerate() {
        // Tenants of their own per check and per run: a long-lived provider keeps earlier
        // runs' keys, and no check may see another's.
        let subject = subject().with_tenant_prefix(&format!("cf{run_id}-{i}"));
        let started = Instant::now();
        let skipped = !subject.can_run(&check);
        let detail = if skipped {
            None
        } else {
            let task = tokio::spawn((check.run)(Arc::new(subject)));
            match tokio::time::timeout(CHECK_TIMEOUT, task).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) if e.is_panic() => Some(panic_message(e.into_panic())),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("did not finish within {CHECK_TIMEOUT:?}")),
            }
        };
        outcomes.push(CheckOutcome {
            name: check.name,
            level: check.level,
            passed: !skipped && detail.is_none(),
            skipped,
            detail,
            duration_ms: started.elapsed().as_millis(),
        });
    }
    let levels = certified(&outcomes);
    Report {
        provider,
        version,
        passed: outcomes.iter().filter(|o| o.passed).count(),
        failed: outcomes.iter().filter(|o| !o.passed && !o.skipped).count(),
        skipped: outcomes.iter().filter(|o| o.skipped).count(),
        certification: if levels.is_empty() {
            "none".into()
        } else {
            levels.concat()
        },
        levels,
        checks: outcomes,
    }
}

/// `core` when every core check passed, then each level all of whose checks passed. A level
/// none of whose checks ran is not claimed.
fn certified(outcomes: &[CheckOutcome]) -> Vec<&'static str> {
    let earned = |level: Level| {
        let mut at_level = outcomes
            .iter()
            .filter(|o| o.level == level && !o.skipped)
            .peekable();
        at_level.peek().is_some() && at_level.all(|o| o.passed)
    };
    if !earned(Level::Core) {
        return Vec::new();
    }
    Level::ALL
        .into_iter()
        .filter(|&level| earned(level))
        .map(Level::label)
        .collect()
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "the check panicked".into())
}

impl Report {
    /// The human-readable form: one line per check, then the certification.
    pub fn to_text(&self) -> String {
        let mut out = format!("conformance of {} {}\n", self.provider, self.version);
        for check in &self.checks {
            let mark = match (check.passed, check.skipped) {
                (true, _) => "pass",
                (false, true) => "skip",
                (false, false) => "FAIL",
            };
            out.push_str(&format!(
                "  {mark}  {:<14} {} ({} ms)\n",
                check.level.label(),
                check.name,
                check.duration_ms
            ));
            if let Some(detail) = &check.detail {
                for line in detail.lines() {
                    out.push_str(&format!("          {line}\n"));
                }
            }
        }
        out.push_str(&format!(
            "{} passed, {} failed, {} skipped; certification: {}\n",
            self.passed, self.failed, self.skipped, self.certification
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(level: Level, passed: bool) -> CheckOutcome {
        CheckOutcome {
            name: "x",
            level,
            passed,
            skipped: false,
            detail: None,
            duration_ms: 0,
        }
    }

    #[test]
    fn levels_need_core_and_every_check_of_the_level() {
        let all = vec![
            outcome(Level::Core, true),
            outcome(Level::Isolation, true),
            outcome(Level::Transactions, false),
            outcome(Level::Transactions, true),
        ];
        assert_eq!(certified(&all), vec!["core", "+isolation"]);
        let no_core = vec![outcome(Level::Core, false), outcome(Level::Isolation, true)];
        assert!(certified(&no_core).is_empty());
    }

    #[test]
    fn a_level_whose_checks_were_all_skipped_is_not_claimed() {
        let skipped = CheckOutcome {
            skipped: true,
            ..outcome(Level::Stable, false)
        };
        let outcomes = vec![
            outcome(Level::Core, true),
            skipped.clone(),
            outcome(Level::Resilience, true),
            CheckOutcome {
                skipped: true,
                ..outcome(Level::Resilience, false)
            },
        ];
        assert_eq!(certified(&outcomes), vec!["core", "+resilience"]);
    }
}
