use ipnet::IpNet;
use serde::Deserialize;

/// The operator's egress ceiling: which otherwise-forbidden networks (loopback, private,
/// link-local …) providers may reach on a tenant's behalf, and on which ports. Public
/// addresses are reachable unless `allowed_ports` narrows the ports. A tenant's own
/// `allowed_networks` may only name networks inside `allowed_networks` here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressCeiling {
    /// Forbidden ranges the operator opens to tenants (e.g. `["10.20.0.0/16"]` for an
    /// internal partner network, `["127.0.0.0/8"]` on a developer machine). Default: none.
    pub allowed_networks: Vec<IpNet>,
    /// Ports outbound connections may use; empty means any port.
    pub allowed_ports: Vec<u16>,
}
