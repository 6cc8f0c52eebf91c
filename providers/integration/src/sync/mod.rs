//! Syncs, upserts, inbound webhooks and re-maps for every connector alike: cursors, raw
//! records, the mapping, destinations written through the tenant's own providers, deletes,
//! events.

use schemars::JsonSchema;
use serde::Deserialize;

/// The settings every connector's config shares (flattened into each engine's config).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub(crate) struct Settings {}
