//! The conformance suites as a library: one module per domain, one `pub async fn` per check.
//!
//! Each engine's own test target (`providers/<domain>/tests/conformance/`) calls these checks
//! for every engine it enrols, and `switchyard conformance <domain>/<name>` runs the same
//! checks through [`run`] against any registered provider — in-tree, plugin or remote — so a
//! certification and a `cargo test` can never disagree about what the suite checks.
//!
//! A check panics on failure (it is test code, written with `assert!`); [`run`] runs each one
//! on its own task, so a failing check becomes a line of the [`Report`], not a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use switchyard_spi::ProviderFactory;
use switchyard_spi::testkit::Harness;

pub mod cache;

/// What a check proves. A provider is certified at `core` when every core check passes, and
/// gains each further level whose checks all pass too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The domain's actions behave as the contract says.
    Core,
    /// Multi-step changes are all-or-nothing; concurrent read-modify-writes lose nothing.
    Transactions,
    /// One tenant never sees, counts or changes another's data.
    Isolation,
    /// State survives a restart of the tenant's instance (the runtime's hot swap).
    Resilience,
}

impl Level {
    /// The label used in reports: `core`, `+transactions`, …
    pub fn label(self) -> &'static str {
        match self {
            Level::Core => "core",
            Level::Transactions => "+transactions",
            Level::Isolation => "+isolation",
            Level::Resilience => "+resilience",
        }
    }

    const ALL: [Level; 4] = [
        Level::Core,
        Level::Transactions,
        Level::Isolation,
        Level::Resilience,
    ];
}

type CheckFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// One check of a suite, at its level.
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub run: fn(Arc<Harness>) -> CheckFuture,
}

/// Declares a [`Check`] from a `pub async fn name(&Harness)` of a suite module.
macro_rules! check {
    ($level:expr, $name:ident) => {
        $crate::Check {
            name: stringify!($name),
            level: $level,
            run: |h| Box::pin(async move { $name(&h).await }),
        }
    };
}
pub(crate) use check;

/// The suite of a domain, or `None` when that domain has none yet.
pub fn suite(domain: &str) -> Option<Vec<Check>> {
    match domain {
        "cache" => Some(cache::checks()),
        _ => None,
    }
}

/// The domains that have a suite, for error messages.
pub const DOMAINS: [&str; 1] = ["cache"];

#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub name: &'static str,
    pub level: Level,
    pub passed: bool,
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
    /// The levels earned, e.g. `["core", "+isolation"]`; empty when a core check failed.
    pub levels: Vec<&'static str>,
    /// The levels joined, e.g. `core+isolation`, or `none`.
    pub certification: String,
    pub checks: Vec<CheckOutcome>,
}

/// Longest a single check may take before it counts as failed (the slowest cache check sleeps
/// under a second; a remote provider adds round trips).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `checks` one after another against `factory` (each on a task of its own, so a panic
/// is a failed check) and works out the certification.
pub async fn run(factory: Arc<dyn ProviderFactory>, checks: Vec<Check>) -> Report {
    let d = factory.descriptor();
    let provider = format!("{}/{}", d.domain, d.name);
    let version = d.version.clone();
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut outcomes = Vec::new();
    for (i, check) in checks.into_iter().enumerate() {
        // Tenants of their own per check and per run: a long-lived provider keeps earlier
        // runs' keys, and no check may see another's.
        let harness = Harness::new(factory.clone()).with_tenant_prefix(&format!("cf{run_id}-{i}"));
        let started = Instant::now();
        let task = tokio::spawn((check.run)(Arc::new(harness)));
        let detail = match tokio::time::timeout(CHECK_TIMEOUT, task).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) if e.is_panic() => Some(panic_message(e.into_panic())),
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("did not finish within {CHECK_TIMEOUT:?}")),
        };
        outcomes.push(CheckOutcome {
            name: check.name,
            level: check.level,
            passed: detail.is_none(),
            detail,
            duration_ms: started.elapsed().as_millis(),
        });
    }
    let levels = certified(&outcomes);
    Report {
        provider,
        version,
        passed: outcomes.iter().filter(|o| o.passed).count(),
        failed: outcomes.iter().filter(|o| !o.passed).count(),
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
/// the suite has no check for is not claimed.
fn certified(outcomes: &[CheckOutcome]) -> Vec<&'static str> {
    let earned = |level: Level| {
        let mut at_level = outcomes.iter().filter(|o| o.level == level).peekable();
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
            let mark = if check.passed { "pass" } else { "FAIL" };
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
            "{} passed, {} failed; certification: {}\n",
            self.passed, self.failed, self.certification
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
}
