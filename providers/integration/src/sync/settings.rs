//! The part of every connector engine's config that is not about one system: per stream, the
//! mapping and the default destination; where events go; the networks the connector may reach.
//! Flattened into each engine's config (`#[serde(flatten)] sync: Settings`), so a tenant writes
//! `{"shop": ..., "streams": {"orders": {...}}, "events": {...}}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_spi::{ErrorCode, ProviderError};

use crate::contract::Destination;
use crate::mapping::Mapping;

/// The settings every connector's config shares.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub(crate) struct Settings {
    /// Per stream (by the name discover lists): how its records are mapped and where a sync
    /// writes them when the call names no destination. A stream left out is written raw, to
    /// the destination each call names.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"}))]
    pub(crate) streams: BTreeMap<String, StreamSettings>,
    /// Where the sync events (integration.sync.started|completed|failed, integration.auth.failed
    /// and, when asked, integration.record.upserted|deleted) are published. Absent: none are.
    #[serde(default)]
    pub(crate) events: Option<Events>,
    /// Narrows the forbidden networks (loopback, private, link-local, …) the connector may
    /// reach to these CIDR networks, each inside the operator's [tenancy.egress]
    /// allowed_networks (else egress_forbidden). Absent: every network the operator allows.
    #[serde(default)]
    #[schemars(
        with = "Vec<String>",
        length(max = 64),
        inner(regex(pattern = "^[0-9a-fA-F.:]+/[0-9]{1,3}$"))
    )]
    pub(crate) allowed_networks: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamSettings {
    /// Output field → jq expression over the raw record (e.g. `{"order_id": ".id | tostring",
    /// "total": ".total_price | tonumber"}`). Absent: the raw record is written as it is.
    #[serde(default)]
    pub(crate) mapping: Option<BTreeMap<String, String>>,
    /// Where a sync of this stream writes when the call names no destination, and where
    /// received webhooks of this stream are written.
    #[serde(default)]
    pub(crate) destination: Option<Destination>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Events {
    /// The tenant's bus provider the events go to (topic `integration`), `bus/<name>`.
    #[schemars(regex(pattern = r"^bus/[a-z0-9_-]{1,64}$"))]
    pub(crate) provider: String,
    /// Also publish one integration.record.upserted or .deleted per record written.
    #[serde(default)]
    pub(crate) records: bool,
}

/// [`Settings`] read once per config version: mappings compiled, networks parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub(crate) streams: BTreeMap<String, StreamPlan>,
    pub(crate) events: Option<Events>,
    pub(crate) allowed_networks: Option<Vec<IpNet>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct StreamPlan {
    pub(crate) mapping: Option<Arc<Mapping>>,
    pub(crate) destination: Option<Destination>,
}

impl Plan {
    pub(crate) fn of(settings: &Settings) -> Result<Self, ProviderError> {
        let mut streams = BTreeMap::new();
        for (name, stream) in &settings.streams {
            let mapping = match &stream.mapping {
                Some(fields) => Some(Arc::new(Mapping::compile(
                    fields,
                    &format!("/streams/{name}/mapping"),
                )?)),
                None => None,
            };
            streams.insert(
                name.clone(),
                StreamPlan {
                    mapping,
                    destination: stream.destination.clone(),
                },
            );
        }
        let allowed_networks = match &settings.allowed_networks {
            None => None,
            Some(networks) => Some(
                networks
                    .iter()
                    .enumerate()
                    .map(|(i, network)| {
                        network.parse::<IpNet>().map_err(|_| {
                            ProviderError::field(
                                ErrorCode::ConfigUnprocessable,
                                &format!("/allowed_networks/{i}"),
                                format!("{network:?} is not a CIDR network"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Plan {
            streams,
            events: settings.events.clone(),
            allowed_networks,
        })
    }

    /// The stream's mapping, if the tenant configured one.
    pub(crate) fn mapping(&self, stream: &str) -> Option<Arc<Mapping>> {
        self.streams.get(stream).and_then(|s| s.mapping.clone())
    }

    /// The destination a call names, else the stream's configured one; 422 when neither.
    pub(crate) fn destination(
        &self,
        stream: &str,
        named: Option<Destination>,
    ) -> Result<Destination, ProviderError> {
        named
            .or_else(|| self.streams.get(stream).and_then(|s| s.destination.clone()))
            .ok_or_else(|| {
                ProviderError::field(
                    ErrorCode::ParamsUnprocessable,
                    "/destination",
                    format!(
                        "name a destination: this tenant's config has none for stream {stream:?} \
                         (streams.{stream}.destination)"
                    ),
                )
            })
    }
}
