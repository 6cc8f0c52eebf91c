//! Trying an alias's targets in order: a weighted first pick among those not cooling down,
//! then the others by weight ([`crate::pick::plan`]). A 429 moves on at once; so does a 5xx
//! (`provider_unavailable`), which the runtime's own resilience has already retried: trying
//! it again here would count past the runtime's circuit threshold for the provider, and its
//! open circuit would then refuse the fallback to another model of the same provider. A
//! timeout is retried on the same target `routing.retries` times with backoff, then moves on;
//! a target that is not configured or not there is skipped. Any other refusal (the
//! prompt is too long, the params are wrong) is the caller's and ends the call: another target
//! would refuse it too.
//!
//! The gateway never answers `provider_unavailable` or `timeout` itself: those are what the
//! runtime retries and counts against a provider's circuit, and a gateway whose targets are
//! all down is not itself broken. It answers `upstream_unavailable` (503, retryable) then, or
//! `rate_limited` when every target was rate limiting.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_spi::{ErrorCode, ProviderError};

use crate::config::{Alias, Target};
use crate::engine::Gateway;
use crate::pick::{Outcome, plan};

/// A target's answer, the target, and the route the call took (each failed try).
pub(crate) struct Routed<T> {
    pub value: T,
    pub target: Target,
    pub path: Vec<Value>,
}

/// What one failure means for the route.
enum Next {
    /// Try this target again after a backoff, if tries are left; else move on.
    Retry,
    /// Move on to the next target.
    Move,
    /// Stop: the error is the caller's answer.
    Stop,
}

fn classify(code: ErrorCode) -> (Next, Outcome) {
    let failure = Outcome::Failure { retry_after: None };
    match code {
        ErrorCode::RateLimited | ErrorCode::ProviderUnavailable => (Next::Move, failure),
        ErrorCode::UpstreamUnavailable | ErrorCode::Timeout => (Next::Retry, failure),
        ErrorCode::ProviderNotConfigured
        | ErrorCode::ProviderNotFound
        | ErrorCode::ActionNotFound
        | ErrorCode::Conflict
        | ErrorCode::EgressForbidden => (Next::Move, Outcome::Neutral),
        _ => (Next::Stop, Outcome::Neutral),
    }
}

/// A random number for one pick: `RandomState` is seeded afresh each time.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

impl Gateway {
    pub(crate) async fn route<T, F, Fut>(
        &self,
        alias: &Alias,
        call: F,
    ) -> Result<Routed<T>, (ProviderError, Vec<Value>)>
    where
        F: Fn(&Target) -> Fut,
        Fut: Future<Output = Result<T, Problem>>,
    {
        let now = Instant::now();
        let weights: Vec<u32> = alias.targets.iter().map(|t| t.weight).collect();
        let available: Vec<bool> = alias
            .targets
            .iter()
            .map(|t| !self.cooldowns.is_cooling(&t.id, now))
            .collect();
        let order = plan(&weights, &available, random());
        let mut path = Vec::new();
        if order.is_empty() {
            let error = ProviderError::new(
                ErrorCode::UpstreamUnavailable,
                format!(
                    "every target of {:?} is cooling down after failures; retry shortly",
                    alias.name
                ),
            );
            return Err((error, path));
        }
        let mut all_rate_limited = true;
        for index in order {
            let target = &alias.targets[index];
            let mut attempt = 0;
            loop {
                let problem = match call(target).await {
                    Ok(value) => {
                        self.cooldowns
                            .record(&target.id, Outcome::Success, Instant::now());
                        return Ok(Routed {
                            value,
                            target: target.clone(),
                            path,
                        });
                    }
                    Err(problem) => problem,
                };
                path.push(json!({"target": target.id, "code": problem.code.as_str()}));
                let (next, outcome) = classify(problem.code);
                self.cooldowns.record(&target.id, outcome, Instant::now());
                all_rate_limited &= problem.code == ErrorCode::RateLimited;
                match next {
                    Next::Stop => {
                        let error = ProviderError::new(problem.code, problem.detail)
                            .with_retryable(problem.retryable);
                        return Err((
                            ProviderError {
                                errors: problem.errors,
                                ..error
                            },
                            path,
                        ));
                    }
                    Next::Retry if attempt < self.config.retries => {
                        tokio::time::sleep(self.config.backoff.delay(attempt, random())).await;
                        attempt += 1;
                    }
                    Next::Retry | Next::Move => break,
                }
            }
        }
        let error = if all_rate_limited {
            ProviderError::new(
                ErrorCode::RateLimited,
                format!(
                    "every target of {:?} is rate limiting; retry later",
                    alias.name
                ),
            )
        } else {
            ProviderError::new(
                ErrorCode::UpstreamUnavailable,
                format!(
                    "no target of {:?} answered ({} tries); retry shortly",
                    alias.name,
                    path.len()
                ),
            )
        };
        Err((error, path))
    }
}
