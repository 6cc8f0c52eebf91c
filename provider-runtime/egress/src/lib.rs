//! The egress guard: every outbound connection a provider makes on a tenant's behalf — a
//! webhook delivery, an AI server, a JWKS fetch, a tenant's own database — goes through it.
//! Without it a tenant could make the platform connect into the platform's own network: the
//! cloud metadata service, a database's port, an admin console on loopback.
//!
//! What may be reached is the operator's to say ([`EgressCeiling`], the config file's
//! `[tenancy.egress]`): public addresses are reachable, the ranges in the table below are not,
//! unless the operator's `allowed_networks` opens them; `allowed_ports`, when set, is the only
//! ports anything may reach. A tenant may narrow the networks ([`Egress::narrowed`]), never
//! widen them.
//!
//! Every address a host stands for is checked, not only the first: a host resolving to one
//! public and one private address is refused. Hosts are checked twice: up front (a refused
//! config answers a clear `egress_forbidden` and stores nothing), and again in the HTTP client's
//! resolver at connect time, so a host whose DNS answer changes between the two (DNS
//! rebinding) is still refused. IP literals never reach a resolver, so they are checked up
//! front, and on every redirect hop together with the port. A proxy from the environment is
//! never used: it would connect on the guard's behalf, to addresses the guard never saw.
//!
//! Refusals never quote a URL (it may carry a token) and name the config field to change.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{ErrorCode, ProviderError};

/// The ranges no connection may reach unless allowed, with what they are, first match wins.
const FORBIDDEN: [(&str, &str); 23] = [
    ("0.0.0.0/8", "\"this network\", including 0.0.0.0"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local, including the cloud metadata service 169.254.169.254",
    ),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, including broadcast"),
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("100::/64", "discard-only"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("2001::/32", "Teredo tunnel"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
];

static FORBIDDEN_NETWORKS: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    FORBIDDEN
        .iter()
        .filter_map(|(network, what)| network.parse().ok().map(|network| (network, *what)))
        .collect()
});

/// How many redirects a [`Redirects::Checked`] client follows, each hop checked again.
const MAX_REDIRECTS: usize = 5;

/// Why the guard refuses a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The address lies in a forbidden range that neither the operator nor the tenant opened.
    Address {
        address: IpAddr,
        network: IpNet,
        what: &'static str,
    },
    /// The operator's `allowed_ports` does not list the port.
    Port(u16),
    /// A redirect to a URL with no host or to a scheme other than http(s).
    Target,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Address {
                address,
                network,
                what,
            } => write!(
                f,
                "{address} is a {what} address ({network}); the platform operator's \
                 [tenancy.egress] allowed_networks (and the config's own allowed_networks, \
                 where it has one) must include it to reach it"
            ),
            Refusal::Port(port) => write!(
                f,
                "port {port} is not among the platform operator's [tenancy.egress] allowed_ports"
            ),
            Refusal::Target => f.write_str("a redirect led to a URL that is not http(s)"),
        }
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// The `egress_forbidden` answer (403, not retryable: the config points at the address,
    /// the caller can do nothing about it), pointing at the config field to change.
    pub fn at(&self, pointer: &str) -> ProviderError {
        ProviderError::field(
            ErrorCode::EgressForbidden,
            pointer,
            format!("the egress guard refuses {pointer}: {self}"),
        )
        .with_retryable(false)
    }

    /// The guard's refusal behind a failed request: the resolver's (a host resolving to a
    /// forbidden address at connect time) or the redirect policy's (a hop to a forbidden
    /// address or port). `None` for any other failure.
    pub fn of(error: &reqwest::Error) -> Option<&Refusal> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = cause {
            if let Some(refusal) = error.downcast_ref::<Refusal>() {
                return Some(refusal);
            }
            cause = error.source();
        }
        None
    }
}

/// Whether a guarded client follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// A 3xx is the answer. For requests that must reach exactly the configured URL (a
    /// signed webhook delivery, an operator's remote provider).
    None,
    /// Up to a few hops, each checked like the first (scheme, port, an IP literal's range;
    /// a hostname's addresses in the resolver).
    Checked,
}

/// What may be reached: forbidden networks opened by the operator (or the narrower set a
/// tenant chose) and the ports allowed. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allowed: Arc<[IpNet]>,
    /// Empty: any port.
    ports: Arc<[u16]>,
    /// A host the operator named itself (a remote provider's endpoint): reachable whatever it
    /// resolves to, and only it.
    operator_host: Option<Arc<str>>,
}

impl Egress {
    /// The operator's ceiling, as every tenant gets it unless it narrows it.
    pub fn new(ceiling: &EgressCeiling) -> Self {
        Egress {
            allowed: ceiling.allowed_networks.clone().into(),
            ports: ceiling.allowed_ports.clone().into(),
            operator_host: None,
        }
    }

    /// A tenant's narrowing: only `networks` of the forbidden ranges stay open. Each must lie
    /// inside a network the operator opened; one that does not is `egress_forbidden` at
    /// `{pointer}/{index}` (a tenant may only narrow the operator's ceiling). Ports stay the
    /// operator's.
    pub fn narrowed(&self, networks: &[IpNet], pointer: &str) -> Result<Egress, ProviderError> {
        for (i, network) in networks.iter().enumerate() {
            if !self.allowed.iter().any(|open| open.contains(network)) {
                return Err(ProviderError::field(
                    ErrorCode::EgressForbidden,
                    &format!("{pointer}/{i}"),
                    format!(
                        "{network} is not inside the platform operator's [tenancy.egress] \
                         allowed_networks; a tenant may only narrow them"
                    ),
                )
                .with_retryable(false));
            }
        }
        Ok(Egress {
            allowed: networks.into(),
            ..self.clone()
        })
    }

    /// The guard of an endpoint the operator registered itself (a remote provider's manifest):
    /// its host is reachable on its port whatever it resolves to — the operator chose it —
    /// and every other forbidden address stays refused. Used with [`Redirects::None`], so the
    /// client reaches nothing but that endpoint.
    pub fn operator_endpoint(url: &Url) -> Self {
        let allowed: Vec<IpNet> = literal(url).map(IpNet::from).into_iter().collect();
        Egress {
            allowed: allowed.into(),
            ports: url.port_or_known_default().into_iter().collect(),
            operator_host: url.host_str().map(Arc::from),
        }
    }

    /// Whether `address` may be reached.
    pub fn check(&self, address: IpAddr) -> Result<(), Refusal> {
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 host: judge it as one.
        let canonical = address.to_canonical();
        if self
            .allowed
            .iter()
            .any(|network| network.contains(&address) || network.contains(&canonical))
        {
            return Ok(());
        }
        match forbidden(canonical) {
            Some((network, what)) => Err(Refusal::Address {
                address,
                network,
                what,
            }),
            None => Ok(()),
        }
    }

    /// Whether `port` may be reached.
    pub fn check_port(&self, port: u16) -> Result<(), Refusal> {
        if self.ports.is_empty() || self.ports.contains(&port) {
            Ok(())
        } else {
            Err(Refusal::Port(port))
        }
    }

    /// What can be judged of a URL without resolving it: its port, and its host when that is
    /// an IP literal (hostnames are judged when resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Refusal::Target);
        }
        if let Some(port) = url.port_or_known_default() {
            self.check_port(port)?;
        }
        match literal(url) {
            Some(address) => self.check(address),
            None => Ok(()),
        }
    }

    /// Checks `url` whole: its port and every address its host resolves to. A name that does
    /// not resolve passes: connecting to it fails the same way later, and the resolver checks
    /// whatever it resolves to then.
    pub async fn vet_url(&self, url: &Url) -> Result<(), Refusal> {
        self.check_url(url)?;
        match (literal(url), url.host_str()) {
            (None, Some(host)) if !self.is_operator_host(host) => {
                self.resolve(host, 0).await.map(drop)
            }
            _ => Ok(()),
        }
    }

    /// Resolves `host` and checks the port and every address: the addresses to connect to
    /// (empty when the name does not resolve). For clients that are not HTTP (a tenant's
    /// database), which connect to these very addresses so that no later answer of the DNS
    /// is used unchecked.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        if port != 0 {
            self.check_port(port)?;
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addresses: Vec<SocketAddr> = match tokio::net::lookup_host((bare, port)).await {
            Ok(addresses) => addresses.collect(),
            Err(_) => return Ok(Vec::new()),
        };
        for address in &addresses {
            self.check(address.ip())?;
        }
        Ok(addresses)
    }

    fn is_operator_host(&self, host: &str) -> bool {
        self.operator_host.as_deref() == Some(host)
    }

    /// An HTTP client builder held to this guard: every hostname's addresses checked by the
    /// resolver at connect time, redirects as `redirects` says (each hop's port and IP literal
    /// checked), no proxy. Add timeouts and the user agent, never another resolver, proxy or
    /// redirect policy. The resolver never sees an IP literal nor the port, so the URL a
    /// request starts from must have passed [`Egress::check_url`] or [`Egress::vet_url`]
    /// (reqwest offers no hook that sees the destination of the first connection).
    pub fn client(&self, redirects: Redirects) -> reqwest::ClientBuilder {
        let policy = match redirects {
            Redirects::None => Policy::none(),
            Redirects::Checked => {
                let egress = self.clone();
                Policy::custom(move |attempt| {
                    if attempt.previous().len() > MAX_REDIRECTS {
                        return attempt.stop();
                    }
                    match egress.check_url(attempt.url()) {
                        Ok(()) => attempt.follow(),
                        Err(refusal) => attempt.error(refusal),
                    }
                })
            }
        };
        reqwest::Client::builder()
            .no_proxy()
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver {
                egress: self.clone(),
            }))
    }
}

/// The host of `url` when it is an IP literal (`http://10.0.0.1/`, `http://[::1]/`).
fn literal(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// The forbidden range `address` falls in. IPv6 addresses that carry an IPv4 address (NAT64,
/// 6to4) are judged by it too, so `64:ff9b::7f00:1` is loopback.
fn forbidden(address: IpAddr) -> Option<(IpNet, &'static str)> {
    if let IpAddr::V6(v6) = address
        && let Some(v4) = embedded_ipv4(v6)
        && let Some(hit) = forbidden(IpAddr::V4(v4))
    {
        return Some(hit);
    }
    FORBIDDEN_NETWORKS
        .iter()
        .find(|(network, _)| network.contains(&address))
        .copied()
}

fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let octets = v6.octets();
    match s {
        // 64:ff9b::/96, the well-known NAT64 prefix: the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(Ipv4Addr::new(
            octets[12], octets[13], octets[14], octets[15],
        )),
        // 2002::/16, 6to4: bits 16 to 48.
        [0x2002, ..] => Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        _ => None,
    }
}

/// The HTTP client's resolver: resolves with the system resolver, then refuses the whole
/// answer if any address is forbidden, so the addresses connected to are the ones checked.
struct GuardedResolver {
    egress: Egress,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.egress.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !egress.is_operator_host(&host) {
                for address in &addresses {
                    egress.check(address.ip())?;
                }
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn ceiling(networks: &[&str], ports: &[u16]) -> Egress {
        Egress::new(&EgressCeiling {
            allowed_networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
            allowed_ports: ports.to_vec(),
        })
    }

    fn refused_as(egress: &Egress, address: &str) -> Option<&'static str> {
        match egress.check(address.parse().unwrap()) {
            Err(Refusal::Address { what, .. }) => Some(what),
            _ => None,
        }
    }

    /// A listener that counts connections and answers each with `answer`.
    async fn server(answer: String) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buffer = [0; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (port, count)
    }

    #[test]
    fn the_table_parses_whole() {
        assert_eq!(FORBIDDEN_NETWORKS.len(), FORBIDDEN.len());
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        let egress = Egress::default();
        for (address, what) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            (
                "169.254.169.254",
                "link-local, including the cloud metadata service 169.254.169.254",
            ),
            ("0.0.0.0", "\"this network\", including 0.0.0.0"),
            (
                "100.100.100.200",
                "shared address space (carrier-grade NAT)",
            ),
            ("255.255.255.255", "reserved, including broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            (
                "::ffff:169.254.169.254",
                "link-local, including the cloud metadata service 169.254.169.254",
            ),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("fc00::1", "unique local (private)"),
            ("fd00:ec2::254", "unique local (private)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(refused_as(&egress, address), Some(what), "{address}");
        }
        for public in [
            "93.184.215.14",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(refused_as(&egress, public), None, "{public}");
        }
    }

    #[test]
    fn the_operators_networks_open_exactly_what_they_name() {
        let egress = ceiling(&["127.0.0.0/8", "10.20.0.0/16"], &[]);
        assert_eq!(refused_as(&egress, "127.0.0.1"), None);
        assert_eq!(refused_as(&egress, "::ffff:127.0.0.1"), None);
        assert_eq!(refused_as(&egress, "10.20.3.4"), None);
        assert_eq!(refused_as(&egress, "10.21.0.1"), Some("private"));
        assert_eq!(refused_as(&egress, "::1"), Some("loopback"));
    }

    #[test]
    fn a_tenant_may_narrow_the_ceiling_but_never_widen_it() {
        let operator = ceiling(&["10.20.0.0/16", "127.0.0.0/8"], &[443]);
        let narrowed = operator
            .narrowed(&["10.20.5.0/24".parse().unwrap()], "/allowed_networks")
            .unwrap();
        assert_eq!(refused_as(&narrowed, "10.20.5.9"), None);
        assert_eq!(refused_as(&narrowed, "10.20.6.9"), Some("private"));
        assert_eq!(refused_as(&narrowed, "127.0.0.1"), Some("loopback"));
        assert_eq!(narrowed.check_port(80), Err(Refusal::Port(80)));
        for wider in ["0.0.0.0/0", "10.0.0.0/8", "192.168.0.0/16", "::/0"] {
            let err = operator
                .narrowed(
                    &["10.20.5.0/24".parse().unwrap(), wider.parse().unwrap()],
                    "/allowed_networks",
                )
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::EgressForbidden, "{wider}");
            assert_eq!(err.errors[0].pointer, "/allowed_networks/1", "{wider}");
            assert!(!err.retryable);
        }
        let none = Egress::default();
        assert!(
            none.narrowed(&["127.0.0.1/32".parse().unwrap()], "/n")
                .is_err()
        );
    }

    #[test]
    fn urls_are_judged_by_port_and_literal_host() {
        let egress = ceiling(&["127.0.0.0/8"], &[443, 8443]);
        let url = |u: &str| Url::parse(u).unwrap();
        assert_eq!(egress.check_url(&url("https://127.0.0.1/")), Ok(()));
        assert_eq!(egress.check_url(&url("https://example.com:8443/")), Ok(()));
        assert_eq!(
            egress.check_url(&url("http://example.com/")),
            Err(Refusal::Port(80))
        );
        assert!(matches!(
            egress.check_url(&url("https://[::1]/")),
            Err(Refusal::Address { .. })
        ));
        assert!(matches!(
            egress.check_url(&url("https://169.254.169.254/")),
            Err(Refusal::Address { .. })
        ));
        assert_eq!(
            egress.check_url(&url("ftp://127.0.0.1/")),
            Err(Refusal::Target)
        );
    }

    #[test]
    fn a_refusal_points_at_the_field_and_names_the_operators_setting() {
        let refusal = Egress::default()
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        let error = refusal.at("/base_url");
        assert_eq!(error.code, ErrorCode::EgressForbidden);
        assert_eq!(error.code.status(), 403);
        assert_eq!(error.errors[0].pointer, "/base_url");
        assert!(error.detail.contains("169.254.169.254"), "{}", error.detail);
        assert!(
            error.detail.contains("[tenancy.egress] allowed_networks"),
            "{}",
            error.detail
        );
    }

    #[tokio::test]
    async fn a_hostname_is_judged_by_every_address_it_resolves_to() {
        let url = Url::parse("http://localhost:9/hook").unwrap();
        assert!(matches!(
            Egress::default().vet_url(&url).await,
            Err(Refusal::Address {
                what: "loopback",
                ..
            })
        ));
        assert!(
            ceiling(&["127.0.0.0/8", "::1/128"], &[])
                .vet_url(&url)
                .await
                .is_ok()
        );
        assert!(matches!(
            Egress::default().resolve("localhost", 5432).await,
            Err(Refusal::Address { .. })
        ));
    }

    #[tokio::test]
    async fn the_client_refuses_a_forbidden_host_at_connect_time_without_connecting() {
        let (port, connections) = server("HTTP/1.1 204 No Content\r\n\r\n".into()).await;
        let client = Egress::default()
            .client(Redirects::Checked)
            .build()
            .unwrap();
        let error = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(Refusal::of(&error), Some(Refusal::Address { .. })),
            "{error:?}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_redirect_to_a_port_the_operator_did_not_allow_is_not_followed() {
        let (other, reached) = server("HTTP/1.1 204 No Content\r\n\r\n".into()).await;
        let (port, _) = server(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{other}/\r\ncontent-length: 0\r\n\r\n"
        ))
        .await;
        let egress = ceiling(&["127.0.0.0/8"], &[port]);
        let client = egress.client(Redirects::Checked).build().unwrap();
        let error = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            Refusal::of(&error),
            Some(&Refusal::Port(other)),
            "{error:?}"
        );
        assert_eq!(reached.load(Ordering::SeqCst), 0);
        // Without the port limit the same hop is followed: the refusal was the guard's.
        let open = ceiling(&["127.0.0.0/8"], &[]).client(Redirects::Checked);
        let answer = open
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
        assert_eq!(reached.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_operator_endpoint_reaches_its_host_only() {
        let (port, _) = server("HTTP/1.1 204 No Content\r\n\r\n".into()).await;
        let endpoint = Url::parse(&format!("http://localhost:{port}")).unwrap();
        let client = Egress::operator_endpoint(&endpoint)
            .client(Redirects::None)
            .build()
            .unwrap();
        let answer = client.get(endpoint.as_str()).send().await.unwrap();
        assert_eq!(answer.status(), 204);
        let other = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        assert!(
            Egress::operator_endpoint(&endpoint)
                .vet_url(&other)
                .await
                .is_err()
        );
    }
}
