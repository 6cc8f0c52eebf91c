//! Routing helpers of an alias: which target to try first, in which order to fall back,
//! which targets are cooling down after repeated failures, and how long to wait before a
//! retry.
//!
//! Nothing here draws a random number or reads the clock: callers pass a `u64` from their
//! RNG and an [`Instant`], so every decision is reproducible in a test without sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The order in which to try an alias's targets: a weighted random first pick among the
/// targets that are not cooling down, then the other available targets by descending weight
/// (config order among equal weights).
///
/// `weights[i]` is target `i`'s weight; `available[i]` is false while it cools down. A target
/// of weight 0 is never the first pick unless every available target has weight 0 (then the
/// first of them in config order is): weight 0 means "fallback only". Cooling targets are left
/// out; an empty plan means every target is cooling and the caller answers unavailable (see
/// [`Cooldowns::remaining`] for a retry-after).
///
/// # Panics
/// If the two slices differ in length: a programming error of the caller.
pub fn plan(weights: &[u32], available: &[bool], random: u64) -> Vec<usize> {
    assert_eq!(
        weights.len(),
        available.len(),
        "one availability per target"
    );
    let Some(first) = pick(weights, available, random) else {
        return Vec::new();
    };
    let mut order = Vec::with_capacity(weights.len());
    order.push(first);
    order.extend((0..weights.len()).filter(|&i| i != first && available[i]));
    // A stable sort keeps config order among equal weights.
    order[1..].sort_by(|&a, &b| weights[b].cmp(&weights[a]));
    order
}

/// The weighted first pick of [`plan`]: `random % total weight` walks the available targets'
/// cumulative weights, so target `i` is chosen with probability `weights[i] / total`.
pub fn pick(weights: &[u32], available: &[bool], random: u64) -> Option<usize> {
    let candidates = || {
        weights
            .iter()
            .zip(available)
            .enumerate()
            .filter(|(_, (_, up))| **up)
            .map(|(i, (w, _))| (i, u64::from(*w)))
    };
    let total: u64 = candidates().map(|(_, w)| w).sum();
    if total == 0 {
        return candidates().next().map(|(i, _)| i);
    }
    let mut point = random % total;
    candidates()
        .find(|&(_, weight)| {
            let here = point < weight;
            point = point.saturating_sub(weight);
            here
        })
        .map(|(i, _)| i)
}

/// When a target is taken out of rotation: after `failures` consecutive failures it cools
/// down for `cooldown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownPolicy {
    pub failures: u32,
    pub cooldown: Duration,
}

/// What one call to a target ended with, as the cooldown counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered: its failure count starts over.
    Success,
    /// 429, 5xx, a timeout or a dropped connection: the target is struggling. A 429's
    /// `retry-after` lengthens the cooldown it triggers to at least that long.
    Failure { retry_after: Option<Duration> },
    /// The target answered with an error that is the request's fault (400, 404, 422): it says
    /// nothing about the target's health, so the count stays as it is.
    Neutral,
}

impl Outcome {
    /// The outcome of an upstream HTTP status.
    pub fn from_status(status: u16) -> Self {
        match status {
            200..=399 => Outcome::Success,
            429 | 500..=599 => Outcome::Failure { retry_after: None },
            _ => Outcome::Neutral,
        }
    }
}

#[derive(Debug, Default)]
struct TargetState {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
}

/// Per-target cooldowns of one gateway instance, shared by all its requests.
///
/// One mutex over a map: every operation is a hash lookup and a few integer updates, far
/// shorter than the upstream call it accompanies, so the lock is never held long enough to be
/// contended in practice. A target the map has never seen fail is not inserted on success,
/// so healthy traffic allocates nothing.
///
/// After its cooldown a target is "half open": its failure count is not reset, so its next
/// failure sends it straight back into cooldown, while a success resets it.
#[derive(Debug)]
pub struct Cooldowns {
    policy: CooldownPolicy,
    targets: Mutex<HashMap<String, TargetState>>,
}

impl Cooldowns {
    pub fn new(policy: CooldownPolicy) -> Self {
        Self {
            policy,
            targets: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> CooldownPolicy {
        self.policy
    }

    /// Whether `target` is out of rotation at `now`.
    pub fn is_cooling(&self, target: &str, now: Instant) -> bool {
        self.remaining(target, now).is_some()
    }

    /// How long `target` still cools down at `now`, if it does: the retry-after of an answer
    /// that found every target cooling.
    pub fn remaining(&self, target: &str, now: Instant) -> Option<Duration> {
        let targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        let until = targets.get(target)?.cooling_until?;
        (until > now).then(|| until - now)
    }

    /// Records how a call to `target` ended at `now`.
    pub fn record(&self, target: &str, outcome: Outcome, now: Instant) {
        // A poisoned lock only means another request panicked mid-update of integers that
        // are valid in any state; carry on with them.
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Outcome::Neutral => {}
            Outcome::Success => {
                if let Some(state) = targets.get_mut(target) {
                    state.consecutive_failures = 0;
                    state.cooling_until = None;
                }
            }
            Outcome::Failure { retry_after } => {
                let state = match targets.get_mut(target) {
                    Some(state) => state,
                    None => targets.entry(target.to_owned()).or_default(),
                };
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                if state.consecutive_failures >= self.policy.failures.max(1) {
                    let cooldown = retry_after.map_or(self.policy.cooldown, |after| {
                        after.max(self.policy.cooldown)
                    });
                    let until = now + cooldown;
                    // A failure reported late (a slow call that started before the cooldown)
                    // never shortens a cooldown already running.
                    state.cooling_until = Some(state.cooling_until.map_or(until, |u| u.max(until)));
                }
            }
        }
    }
}

/// Delays between retries of one target: exponential from `base`, capped at `max`, with
/// "equal jitter" (half the delay fixed, half random) so clients that failed together do not
/// retry together, while every retry still waits at least half its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry), given a random `u64`.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let step = self
            .base
            .checked_mul(2u32.saturating_pow(attempt.min(31)))
            .map_or(self.max, |d| d.min(self.max));
        let half = step / 2;
        let spread = (step - half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [bool; 3] = [true, true, true];

    #[test]
    fn the_pick_follows_the_cumulative_weights() {
        let weights = [3, 1, 6];
        // 0..3 → target 0, 3..4 → target 1, 4..10 → target 2, then it wraps.
        let picks: Vec<_> = (0..11).map(|r| pick(&weights, &ALL, r).unwrap()).collect();
        assert_eq!(picks, [0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 0]);
    }

    #[test]
    fn the_pick_spreads_in_proportion_to_the_weights() {
        let weights = [1, 3];
        let mut counts = [0u32; 2];
        for r in 0..4000u64 {
            counts[pick(
                &weights,
                &[true, true],
                r.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )
            .unwrap()] += 1;
        }
        assert_eq!(counts, [1000, 3000]);
    }

    #[test]
    fn a_cooling_target_is_never_picked_nor_a_fallback() {
        let weights = [5, 5, 5];
        let available = [true, false, true];
        for r in 0..20 {
            let order = plan(&weights, &available, r);
            assert!(!order.contains(&1), "{order:?}");
            assert_eq!(order.len(), 2);
        }
    }

    #[test]
    fn fallbacks_follow_descending_weight_then_config_order() {
        let weights = [1, 5, 2, 5, 0];
        // random 0 picks target 0 (the first unit of weight).
        assert_eq!(plan(&weights, &[true; 5], 0), [0, 1, 3, 2, 4]);
        // random 1 falls in target 1's range; target 3 has equal weight and comes next.
        assert_eq!(plan(&weights, &[true; 5], 1), [1, 3, 2, 0, 4]);
    }

    #[test]
    fn weight_zero_targets_are_fallback_only() {
        let weights = [0, 4, 0];
        for r in 0..16 {
            assert_eq!(plan(&weights, &ALL, r), [1, 0, 2]);
        }
        // With the weighted target cooling, the first zero-weight one leads.
        assert_eq!(plan(&weights, &[true, false, true], 7), [0, 2]);
    }

    #[test]
    fn everything_cooling_is_an_empty_plan() {
        assert!(plan(&[1, 2], &[false, false], 3).is_empty());
        assert!(plan(&[], &[], 3).is_empty());
    }

    fn policy() -> CooldownPolicy {
        CooldownPolicy {
            failures: 2,
            cooldown: Duration::from_secs(30),
        }
    }

    const FAIL: Outcome = Outcome::Failure { retry_after: None };

    #[test]
    fn consecutive_failures_start_a_cooldown_that_ends() {
        let cooldowns = Cooldowns::new(policy());
        let t0 = Instant::now();
        cooldowns.record("a", FAIL, t0);
        assert!(
            !cooldowns.is_cooling("a", t0),
            "one failure is below the threshold"
        );
        cooldowns.record("a", FAIL, t0);
        assert!(cooldowns.is_cooling("a", t0));
        assert_eq!(
            cooldowns.remaining("a", t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(20))
        );
        assert!(!cooldowns.is_cooling("b", t0), "targets are independent");
        assert!(!cooldowns.is_cooling("a", t0 + Duration::from_secs(30)));
    }

    #[test]
    fn a_success_resets_the_count_and_a_neutral_answer_does_not() {
        let cooldowns = Cooldowns::new(policy());
        let t0 = Instant::now();
        cooldowns.record("a", FAIL, t0);
        cooldowns.record("a", Outcome::Success, t0);
        cooldowns.record("a", FAIL, t0);
        assert!(
            !cooldowns.is_cooling("a", t0),
            "the success started the count over"
        );
        cooldowns.record("a", Outcome::Neutral, t0);
        cooldowns.record("a", FAIL, t0);
        assert!(
            cooldowns.is_cooling("a", t0),
            "a 400 neither counts nor resets"
        );
        cooldowns.record("a", Outcome::Success, t0);
        assert!(!cooldowns.is_cooling("a", t0), "a success ends a cooldown");
    }

    #[test]
    fn after_a_cooldown_one_failure_sends_the_target_back() {
        let cooldowns = Cooldowns::new(policy());
        let t0 = Instant::now();
        cooldowns.record("a", FAIL, t0);
        cooldowns.record("a", FAIL, t0);
        let later = t0 + Duration::from_secs(31);
        assert!(!cooldowns.is_cooling("a", later));
        cooldowns.record("a", FAIL, later);
        assert_eq!(
            cooldowns.remaining("a", later),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_lengthens_the_cooldown_and_a_late_failure_never_shortens_it() {
        let cooldowns = Cooldowns::new(policy());
        let t0 = Instant::now();
        cooldowns.record("a", FAIL, t0);
        let long = Outcome::Failure {
            retry_after: Some(Duration::from_secs(120)),
        };
        cooldowns.record("a", long, t0);
        assert_eq!(cooldowns.remaining("a", t0), Some(Duration::from_secs(120)));
        let short = Outcome::Failure {
            retry_after: Some(Duration::from_secs(1)),
        };
        cooldowns.record("a", short, t0);
        assert_eq!(cooldowns.remaining("a", t0), Some(Duration::from_secs(120)));
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(Outcome::from_status(200), Outcome::Success);
        assert_eq!(Outcome::from_status(429), FAIL);
        assert_eq!(Outcome::from_status(503), FAIL);
        assert_eq!(Outcome::from_status(400), Outcome::Neutral);
        assert_eq!(Outcome::from_status(404), Outcome::Neutral);
    }

    #[test]
    fn cooldowns_are_shared_across_threads() {
        let cooldowns = std::sync::Arc::new(Cooldowns::new(CooldownPolicy {
            failures: 100,
            cooldown: Duration::from_secs(1),
        }));
        let t0 = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cooldowns = cooldowns.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        cooldowns.record("a", FAIL, t0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(
            cooldowns.is_cooling("a", t0),
            "all 100 failures were counted"
        );
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_caps() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 0..40 {
            let step = Duration::from_millis(100 * 2u64.pow(attempt.min(20))).min(backoff.max);
            let low = backoff.delay(attempt, 0);
            let high = backoff.delay(attempt, u64::MAX - 1);
            assert_eq!(low, step / 2, "attempt {attempt}");
            assert!(high <= step && high >= low, "attempt {attempt}: {high:?}");
        }
        assert_eq!(backoff.delay(1, 0), Duration::from_millis(100));
        assert_eq!(backoff.delay(10, 0), Duration::from_millis(500));
        // The random part covers the upper half exactly: spread + 1 values.
        let spread = Duration::from_millis(50).as_nanos() as u64;
        assert_eq!(backoff.delay(0, spread), Duration::from_millis(100));
    }
}
