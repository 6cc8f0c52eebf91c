//! How the gateway reaches the provider runtime ([`RuntimeLink`]): over HTTP to runtime
//! upstreams — round robin over the healthy ones, health-checked in the background with
//! `GET /healthz` (pingora-load-balancing) — or by a call into the runtime in the same process.
//! [`BareProxy`] is the same upstream path with no filters, for `switchyard bench` to measure
//! what Pingora itself costs beside the gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::lb::LoadBalancer;
use pingora::lb::health_check::HttpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::services::background::{GenBackgroundService, background_service};
use switchyard_request::Dispatch;

use crate::config::Limits;

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
    InProcess(Arc<dyn Dispatch>),
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

/// How the gateway reaches one runtime: plain HTTP/1.1 with the config's timeouts, the
/// connection pooled for the next request.
pub fn peer(addr: SocketAddr, limits: &Limits) -> HttpPeer {
    let mut peer = HttpPeer::new(addr, false, String::new());
    peer.options.connection_timeout = Some(Duration::from_secs(1));
    peer.options.read_timeout = Some(Duration::from_millis(limits.upstream_timeout_ms));
    peer.options.write_timeout = Some(Duration::from_millis(limits.upstream_timeout_ms));
    peer
}

/// A Pingora proxy with no filters, forwarding everything to one upstream through [`peer`]:
/// run by `switchyard bench-proxy` beside the gateway (same Pingora, same `ServerConf`), so
/// that the bench can tell what Pingora's proxying costs from what the gateway's filters cost.
pub struct BareProxy {
    pub upstream: SocketAddr,
    pub limits: Limits,
}

#[async_trait]
impl ProxyHttp for BareProxy {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(peer(self.upstream, &self.limits)))
    }
}
