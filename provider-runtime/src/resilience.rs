//! Resilience around every provider call, shared by all providers: a bulkhead (bounded
//! concurrent calls), a circuit breaker (open after consecutive infrastructure failures,
//! half-open probe after a pause), a timeout per attempt, and retries with jittered backoff.
//!
//! Only `provider_unavailable` is retried: it is raised when the backend could not be reached,
//! before anything happened. A timeout is never retried, because the call may have taken effect
//! (a second insert is worse than an error). Client errors (bad params, conflicts) never count
//! against the breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine, backoff, failure_policy};
use serde::Serialize;
use serde_json::Value;
use switchyard_contracts::ErrorCode;
use switchyard_spi::ProviderError;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct ResilienceConfig {
    /// How long one attempt may take.
    pub call_timeout: Duration,
    /// Calls in flight per tenant instance; more are refused at once (retryable).
    pub max_concurrent: usize,
    /// Consecutive infrastructure failures that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before one probe call is let through.
    pub open_for: Duration,
    /// Extra attempts after a `provider_unavailable`.
    pub retries: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        ResilienceConfig {
            call_timeout: Duration::from_secs(30),
            max_concurrent: 256,
            failure_threshold: 5,
            open_for: Duration::from_secs(2),
            retries: 2,
            backoff_min: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// Told when the circuit opens or closes again (not of half-open probes).
pub type CircuitObserver = Arc<dyn Fn(CircuitState) + Send + Sync>;

/// Mirrors the breaker's transitions so health can report them, and tells the observer.
#[derive(Clone)]
struct StateTracker {
    state: Arc<AtomicU8>,
    observer: Option<CircuitObserver>,
}

impl StateTracker {
    fn observe(&self, state: CircuitState) {
        if let Some(observer) = &self.observer {
            observer(state);
        }
    }
}

impl Instrument for StateTracker {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        self.state.store(1, Ordering::SeqCst);
        self.observe(CircuitState::Open);
    }
    fn on_half_open(&self) {
        self.state.store(2, Ordering::SeqCst);
    }
    fn on_closed(&self) {
        self.state.store(0, Ordering::SeqCst);
        self.observe(CircuitState::Closed);
    }
}

type Breaker = StateMachine<failure_policy::ConsecutiveFailures<backoff::Constant>, StateTracker>;

pub struct Resilience {
    config: ResilienceConfig,
    bulkhead: Semaphore,
    breaker: Breaker,
    state: Arc<AtomicU8>,
}

/// Why one attempt failed: the provider's error, or the open circuit.
enum Failure {
    Provider(ProviderError),
    Open,
}

fn is_infrastructure_failure(e: &ProviderError) -> bool {
    matches!(e.code, ErrorCode::ProviderUnavailable | ErrorCode::Timeout)
}

impl Resilience {
    pub fn new(config: &ResilienceConfig) -> Self {
        Self::observed(config, None)
    }

    /// Like [`new`](Self::new), telling `observer` when the circuit opens and closes.
    pub fn observed(config: &ResilienceConfig, observer: Option<CircuitObserver>) -> Self {
        let state = Arc::new(AtomicU8::new(0));
        let breaker = Config::new()
            .failure_policy(failure_policy::consecutive_failures(
                config.failure_threshold,
                backoff::constant(config.open_for),
            ))
            .instrument(StateTracker {
                state: state.clone(),
                observer,
            })
            .build();
        Resilience {
            config: config.clone(),
            bulkhead: Semaphore::new(config.max_concurrent),
            breaker,
            state,
        }
    }

    pub fn circuit(&self) -> CircuitState {
        match self.state.load(Ordering::SeqCst) {
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        }
    }

    /// Runs `attempt` under the bulkhead, the breaker and the timeout, retrying as described
    /// in the module doc. `attempt` is called once per try.
    pub async fn call<F, Fut>(&self, what: &str, attempt: F) -> Result<Value, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Value, ProviderError>>,
    {
        let Ok(_permit) = self.bulkhead.try_acquire() else {
            return Err(ProviderError::unavailable(format!(
                "{what} has {} calls in flight already; retry shortly",
                self.config.max_concurrent
            )));
        };
        let once = || async {
            let timed = async {
                tokio::time::timeout(self.config.call_timeout, attempt())
                    .await
                    .unwrap_or_else(|_| {
                        Err(ProviderError::new(
                            ErrorCode::Timeout,
                            format!(
                                "{what} did not answer within {} ms",
                                self.config.call_timeout.as_millis()
                            ),
                        ))
                    })
            };
            match self
                .breaker
                .call_with(is_infrastructure_failure, timed)
                .await
            {
                Ok(value) => Ok(value),
                Err(failsafe::Error::Inner(e)) => Err(Failure::Provider(e)),
                Err(failsafe::Error::Rejected) => Err(Failure::Open),
            }
        };
        let policy = ExponentialBuilder::default()
            .with_min_delay(self.config.backoff_min)
            .with_max_delay(self.config.backoff_max)
            .with_max_times(self.config.retries)
            .with_jitter();
        once.retry(policy)
            .when(|f| matches!(f, Failure::Provider(e) if e.code == ErrorCode::ProviderUnavailable))
            .await
            .map_err(|f| match f {
                Failure::Provider(e) => e,
                Failure::Open => ProviderError::unavailable(format!(
                    "{what}: circuit open after {} consecutive failures; retry in {} s",
                    self.config.failure_threshold,
                    self.config.open_for.as_secs().max(1)
                )),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn config() -> ResilienceConfig {
        ResilienceConfig {
            call_timeout: Duration::from_millis(100),
            max_concurrent: 2,
            failure_threshold: 3,
            open_for: Duration::from_millis(200),
            retries: 2,
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn unavailable_is_retried_and_other_errors_are_not() {
        let r = Resilience::new(&config());
        let tries = AtomicUsize::new(0);
        let outcome = r
            .call("t", || async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(ProviderError::unavailable("down")),
                    _ => Ok(Value::Bool(true)),
                }
            })
            .await;
        assert_eq!(
            (outcome.unwrap(), tries.load(Ordering::SeqCst)),
            (Value::Bool(true), 3)
        );

        let tries = AtomicUsize::new(0);
        let err = r
            .call("t", || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err::<Value, _>(ProviderError::new(ErrorCode::Conflict, "no"))
            })
            .await
            .unwrap_err();
        assert_eq!(
            (err.code, tries.load(Ordering::SeqCst)),
            (ErrorCode::Conflict, 1)
        );
    }

    #[tokio::test]
    async fn a_timeout_is_not_retried_and_counts_against_the_breaker() {
        let r = Resilience::new(&config());
        let tries = AtomicUsize::new(0);
        let err = r
            .call("t", || async {
                tries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(Value::Null)
            })
            .await
            .unwrap_err();
        assert_eq!(
            (err.code, tries.load(Ordering::SeqCst)),
            (ErrorCode::Timeout, 1)
        );
    }

    #[tokio::test]
    async fn the_breaker_opens_fails_fast_then_half_opens_and_closes() {
        let r = Resilience::new(&ResilienceConfig {
            retries: 0,
            ..config()
        });
        for _ in 0..3 {
            let _ = r
                .call("t", || async {
                    Err::<Value, _>(ProviderError::unavailable("down"))
                })
                .await;
        }
        assert_eq!(r.circuit(), CircuitState::Open);
        let called = AtomicUsize::new(0);
        let err = r
            .call("t", || async {
                called.fetch_add(1, Ordering::SeqCst);
                Ok(Value::Null)
            })
            .await
            .unwrap_err();
        assert!(err.detail.contains("circuit open"), "{}", err.detail);
        assert_eq!(
            called.load(Ordering::SeqCst),
            0,
            "an open circuit must not call the provider"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        r.call("t", || async { Ok(Value::Null) }).await.unwrap();
        assert_eq!(r.circuit(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn client_errors_never_open_the_breaker() {
        let r = Resilience::new(&config());
        for _ in 0..10 {
            let _ = r
                .call("t", || async {
                    Err::<Value, _>(ProviderError::new(ErrorCode::ParamsInvalid, "bad"))
                })
                .await;
        }
        assert_eq!(r.circuit(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn the_bulkhead_refuses_calls_beyond_its_size() {
        let r = Arc::new(Resilience::new(&config()));
        let release = Arc::new(tokio::sync::Notify::new());
        let mut held = Vec::new();
        for _ in 0..2 {
            let (r, release) = (r.clone(), release.clone());
            held.push(tokio::spawn(async move {
                r.call("t", || async {
                    release.notified().await;
                    Ok(Value::Null)
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = r.call("t", || async { Ok(Value::Null) }).await.unwrap_err();
        assert!(
            err.retryable && err.detail.contains("calls in flight"),
            "{}",
            err.detail
        );
        release.notify_waiters();
        for h in held {
            h.await.unwrap().unwrap();
        }
    }
}
