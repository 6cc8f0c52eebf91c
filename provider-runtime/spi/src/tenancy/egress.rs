use ipnet::IpNet;
use serde::Deserialize;

/// The operator's egress ceiling, `[tenancy.egress]`: where providers may connect on a
/// tenant's behalf (webhook receivers, AI servers, JWKS URLs, a tenant's own database), held
/// by the one guard of `switchyard-egress`. Public addresses are reachable; loopback, private,
/// link-local (the cloud metadata service), multicast and the other special ranges are not,
/// unless `allowed_networks` opens them. A tenant's own `allowed_networks` (where a provider
/// has one) may only name networks inside these: a tenant narrows, never widens.
///
/// The default opens nothing and allows every port: safe on a shared host, where the
/// platform's own services listen on loopback and the private network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressCeiling {
    /// Forbidden ranges the operator opens to tenants (e.g. `["10.20.0.0/16"]` for an
    /// internal partner network, `["127.0.0.0/8"]` on a developer machine). Default: none.
    pub allowed_networks: Vec<IpNet>,
    /// The only ports outbound connections may use, public addresses included (e.g.
    /// `[443]` to keep tenants to https). Default: empty, meaning any port.
    pub allowed_ports: Vec<u16>,
}
