//! How the gateway reaches the provider runtime ([`RuntimeLink`]): over HTTP to runtime
//! upstreams — round robin over the healthy ones, health-checked in the background with
//! `GET /healthz` (pingora-load-balancing) — or by a call into the runtime in the same process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pingora::http::RequestHeader;
use pingora::lb::LoadBalancer;
use pingora::lb::health_check::HttpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::services::background::{GenBackgroundService, background_service};
use switchyard_runtime::http::Service;

/// The one seam between gateway and runtime, chosen when the process starts
/// (docs/adr/0016-in-process-dispatch.md). The filters run the same either way; only the last
/// step differs.
pub enum RuntimeLink {
    /// Pingora proxies to separate runtimes (`switchyard gateway`, `serve --dispatch http`):
    /// streaming, health checks, failover; the context travels signed in internal headers.
    Http(Upstreams),
    /// The runtime lives in this process (`serve --dispatch in-process`): the gateway hands
    /// it the request and the verified context directly — no loopback connection, no second
    /// HTTP parse, no signing.
    InProcess(Arc<Service>),
}

pub struct Upstreams {
    balancer: Arc<LoadBalancer<RoundRobin>>,
}

impl Upstreams {
    /// The upstreams and the background service that health-checks them; the service must be
    /// added to the server for health to be tracked.
    pub fn new(
        addresses: &[SocketAddr],
        check_every: Duration,
    ) -> std::io::Result<(Self, GenBackgroundService<LoadBalancer<RoundRobin>>)> {
        let mut balancer =
            LoadBalancer::<RoundRobin>::try_from_iter(addresses.iter().map(|a| a.to_string()))?;
        let mut check = HttpHealthCheck::new("switchyard-runtime", false);
        let mut probe =
            RequestHeader::build("GET", b"/healthz", None).map_err(std::io::Error::other)?;
        probe
            .insert_header("host", "switchyard-runtime")
            .map_err(std::io::Error::other)?;
        check.req = probe;
        // One probe lost on a loaded machine must not take the only runtime out of rotation
        // (every request would then answer 503); a dead runtime still goes after three, and
        // requests to it fail over at once meanwhile.
        check.consecutive_failure = 3;
        balancer.set_health_check(Box::new(check));
        balancer.health_check_frequency = Some(check_every);
        let service = background_service("runtime health checks", balancer);
        Ok((
            Upstreams {
                balancer: service.task(),
            },
            service,
        ))
    }

    /// A healthy upstream other than `avoid` (the one that just failed this request), if any.
    pub fn select(&self, avoid: Option<SocketAddr>) -> Option<SocketAddr> {
        self.balancer
            .select_with(b"", 64, |backend, healthy| {
                healthy && backend.addr.as_inet().copied() != avoid
            })
            .and_then(|backend| backend.addr.as_inet().copied())
    }
}
