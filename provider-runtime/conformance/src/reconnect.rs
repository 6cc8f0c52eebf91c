//! What the +stable checks share: waiting, within a bound, for an instance to answer again
//! after its backing server restarted.

use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_spi::testkit::TenantInstance;

/// How long a provider may take to answer again after its backing server is back: a client
/// that reconnects on its next call needs one round trip; one that backs off, a few seconds.
pub const RECONNECT_WITHIN: Duration = Duration::from_secs(15);

/// The first answer of `action` from `tenant` (the same instance as before the restart),
/// calling again every 200 ms while it fails; it may fail only with retryable errors, and for
/// at most [`RECONNECT_WITHIN`].
pub async fn answer_after_restart(
    engine: &str,
    tenant: &TenantInstance,
    action: &str,
    params: Value,
) -> Value {
    let deadline = Instant::now() + RECONNECT_WITHIN;
    loop {
        match tenant.call(action, params.clone()).await {
            Ok(answer) => return answer,
            Err(e) => {
                assert!(
                    e.retryable,
                    "{engine}: while its server came back it answered a non-retryable {e:?}"
                );
                assert!(
                    Instant::now() < deadline,
                    "{engine}: still failing {RECONNECT_WITHIN:?} after its server restarted: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
