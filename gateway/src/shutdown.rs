//! Graceful shutdown that waits for requests instead of for a fixed time.
//!
//! On SIGTERM the gateway starts draining: requests already in flight run to completion,
//! new ones are answered 503 `shutting_down` (closing the connection) so a load balancer
//! moves on, and once nothing is in flight — or the drain timeout passes — Pingora is told to
//! terminate. SIGINT still stops at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Default)]
struct State {
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

/// Shared by the proxy (which counts requests) and the signal watch (which drains).
#[derive(Clone, Default)]
pub struct Drain(Arc<State>);

/// One request in flight; dropping it (when the request's context is dropped) counts it out.
pub struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drain {
    /// Counts a new request in, or `None` once draining.
    pub fn enter(&self) -> Option<InFlight> {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.0.clone());
        (!self.0.draining.load(Ordering::SeqCst)).then_some(guard)
    }

    /// Stops admitting requests and waits until none is in flight, at most `max_wait`.
    pub async fn drain(&self, max_wait: Duration) {
        self.0.draining.store(true, Ordering::SeqCst);
        let waited = tokio::time::timeout(max_wait, async {
            while self.0.in_flight.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                in_flight = self.0.in_flight.load(Ordering::SeqCst),
                "drain timeout passed with requests still in flight"
            );
        }
    }
}

/// Pingora's shutdown trigger: drain on SIGTERM, stop at once on SIGINT.
pub struct DrainOnSigterm {
    pub drain: Drain,
    pub max_wait: Duration,
    /// Work that must end before Pingora stops its runtimes (at most `max_wait`, or 5 s): the
    /// hosted workers giving their leases back through store connections some of which live
    /// on those runtimes, and would fail once they are being shut down.
    pub before_exit: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl ShutdownSignalWatch for DrainOnSigterm {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut interrupt)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: draining in-flight requests");
                self.drain.drain(self.max_wait).await;
                let pending = self.before_exit.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(pending) = pending {
                    let _ = tokio::time::timeout(self.max_wait.max(Duration::from_secs(5)), pending).await;
                }
                ShutdownSignal::GracefulTerminate
            }
            _ = interrupt.recv() => ShutdownSignal::FastShutdown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_waits_for_requests_in_flight_and_refuses_new_ones() {
        let drain = Drain::default();
        let request = drain.enter().expect("admitted before draining");
        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move { drain.drain(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            !waiter.is_finished(),
            "drain returned while a request was in flight"
        );
        assert!(
            drain.enter().is_none(),
            "a new request was admitted while draining"
        );
        drop(request);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn draining_gives_up_after_its_timeout() {
        let drain = Drain::default();
        let _stuck = drain.enter();
        tokio::time::timeout(
            Duration::from_secs(1),
            drain.drain(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    }
}
