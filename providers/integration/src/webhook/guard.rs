//! The SSRF guard: webhook URLs come from tenants, so without it a tenant could make the
//! platform send requests into its own network — the cloud metadata service, a database's
//! HTTP port, an admin console on loopback.
//!
//! Every address a URL's host stands for is checked, not only the first: a host resolving to
//! one public and one private address is refused. The check runs twice: up front, so a refused
//! trigger answers a clear `config_invalid` and stores nothing; and again in the HTTP client's
//! resolver at connect time, so a host whose DNS answer changes between the two (DNS
//! rebinding) is still refused. IP literals never reach a resolver, so they are checked up
//! front only — an IP literal cannot change. Redirects are not followed, so a receiver cannot
//! bounce a delivery to a forbidden address either.
//!
//! A tenant's `allowed_networks` exempt addresses it names (a receiver on its own private
//! network, or the tests' receiver on loopback).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use switchyard_spi::{ErrorCode, ProviderError};

/// The ranges no endpoint may reach unless allowlisted, with what they are, first match wins.
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

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: IpAddr,
    pub network: IpNet,
    pub what: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is a {} address ({}); the tenant's allowed_networks must include it to reach it",
            self.address, self.what, self.network
        )
    }
}

impl std::error::Error for Refusal {}

/// One tenant's guard. Cheap to clone: the allowlist is shared.
#[derive(Debug, Clone)]
pub struct Guard {
    allowed: Arc<[IpNet]>,
}

impl Guard {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Guard {
            allowed: allowed.into(),
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
            Some((network, what)) => Err(Refusal {
                address,
                network,
                what,
            }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP literal; hostnames pass (they are checked when
    /// resolved). Used when a config is read, so an endpoint that can never be reached is
    /// refused when it is configured.
    pub fn check_literal(&self, url: &Url) -> Result<(), Refusal> {
        match literal(url) {
            Some(address) => self.check(address),
            None => Ok(()),
        }
    }

    /// Checks every address of `url`'s host, for the endpoint named `endpoint`. A refusal is
    /// `config_invalid`: the tenant's config points at the address, the caller can do nothing
    /// about it. A name that does not resolve passes: the delivery attempt will fail on it,
    /// be retried, and dead-lettered — the same as a receiver that is down.
    pub async fn vet(&self, url: &Url, endpoint: &str) -> Result<(), ProviderError> {
        let refusal = match (literal(url), url.host_str()) {
            (Some(address), _) => self.check(address).err(),
            (None, Some(host)) => match tokio::net::lookup_host((host, 0)).await {
                Ok(addresses) => addresses.map(|a| self.check(a.ip())).find_map(Result::err),
                Err(_) => None,
            },
            (None, None) => None,
        };
        match refusal {
            None => Ok(()),
            Some(refusal) => Err(refused(endpoint, &refusal)),
        }
    }
}

/// The `config_invalid` error for an endpoint the guard refuses. Names the address, never the
/// URL (it may carry a token).
pub fn refused(endpoint: &str, refusal: &Refusal) -> ProviderError {
    ProviderError::field(
        ErrorCode::ConfigInvalid,
        &format!("/endpoints/{endpoint}/url"),
        format!("endpoint {endpoint:?} is refused by the SSRF guard: {refusal}"),
    )
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
pub struct GuardedResolver {
    guard: Guard,
}

impl GuardedResolver {
    pub fn new(guard: Guard) -> Self {
        GuardedResolver { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                guard.check(address.ip())?;
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_as(guard: &Guard, address: &str) -> Option<&'static str> {
        guard
            .check(address.parse().unwrap())
            .err()
            .map(|refusal| refusal.what)
    }

    #[test]
    fn the_table_parses_whole() {
        assert_eq!(FORBIDDEN_NETWORKS.len(), FORBIDDEN.len());
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        let guard = Guard::new(Vec::new());
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
            assert_eq!(refused_as(&guard, address), Some(what), "{address}");
        }
        for public in [
            "93.184.215.14",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(refused_as(&guard, public), None, "{public}");
        }
    }

    #[test]
    fn allowed_networks_exempt_exactly_what_they_name() {
        let guard = Guard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.20.0.0/16".parse().unwrap(),
        ]);
        assert_eq!(refused_as(&guard, "127.0.0.1"), None);
        assert_eq!(refused_as(&guard, "::ffff:127.0.0.1"), None);
        assert_eq!(refused_as(&guard, "10.20.3.4"), None);
        assert_eq!(refused_as(&guard, "10.21.0.1"), Some("private"));
        assert_eq!(refused_as(&guard, "::1"), Some("loopback"));
    }

    #[test]
    fn a_refusal_names_the_address_and_how_to_allow_it() {
        let guard = Guard::new(Vec::new());
        let refusal = guard.check("169.254.169.254".parse().unwrap()).unwrap_err();
        let error = refused("erp", &refusal);
        assert_eq!(error.code, ErrorCode::ConfigInvalid);
        assert_eq!(error.errors[0].pointer, "/endpoints/erp/url");
        assert!(error.detail.contains("169.254.169.254"), "{}", error.detail);
        assert!(
            error.detail.contains("allowed_networks"),
            "{}",
            error.detail
        );
    }

    #[tokio::test]
    async fn a_hostname_is_judged_by_every_address_it_resolves_to() {
        let guard = Guard::new(Vec::new());
        let url = Url::parse("http://localhost:9/hook").unwrap();
        let err = guard.vet(&url, "local").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
        assert!(err.detail.contains("loopback"), "{}", err.detail);
    }
}
