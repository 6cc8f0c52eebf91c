//! The feeds between replicas: a tenant's provider config changed, so each swaps its running
//! instance within a moment of the save instead of at its next restart; and a tenant's services
//! wrote something, so the replica running the tenant's workers wakes them.
//!
//! On PostgreSQL a save sends `NOTIFY` after it commits, and each replica `LISTEN`s on its own
//! connection. A notification can be missed (the listening connection dropped and came back);
//! the feed says so ([`Change::Gap`]) and the replica then compares every running instance with
//! [`PlatformStore::latest_config_versions`]. On SQLite there is one process, which swaps as it
//! saves, so there is no feed.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::postgres::PgListener;
use switchyard_contracts::TenantId;

use super::{Backend, PlatformStore, StoreError};

/// The channel the saves notify on.
const CHANNEL: &str = "switchyard_config_changes";
/// The channel service calls notify on, with the tenant's id as the payload.
const WORK_CHANNEL: &str = "switchyard_work";
/// The channel a tenant's secret writes notify on; heard by the config feed, since both swap
/// running instances.
const SECRET_CHANNEL: &str = "switchyard_secret_changes";

/// A new config version of one tenant's provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub tenant: String,
    pub domain: String,
    pub name: String,
    pub version: i64,
}

/// A tenant's secret was written through the API: every replica restarts the instances of
/// that tenant whose config references it. The name only; the value never leaves Vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretChange {
    pub tenant: String,
    pub name: String,
}

/// What a feed says next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Config(ConfigChange),
    /// A tenant's secret was rotated (heard by the config feed).
    Secret(SecretChange),
    /// A service call of this tenant may have written events.
    Work(TenantId),
    /// The feed was interrupted: changes may have been missed since the last one.
    Gap,
}

/// Which notifications a [`Feed`] hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// Config saves ([`Change::Config`]) and secret writes ([`Change::Secret`]).
    Configs,
    /// Service calls that may have written events ([`Change::Work`]).
    Work,
}

/// One replica's subscription to what every replica notifies on one channel.
pub struct Feed {
    listener: PgListener,
}

impl Feed {
    /// The next change; reconnects by itself after a [`Change::Gap`].
    pub async fn next(&mut self) -> Result<Change, StoreError> {
        let Some(notification) = self.listener.try_recv().await? else {
            return Ok(Change::Gap);
        };
        let payload = notification.payload();
        if notification.channel() == WORK_CHANNEL {
            return TenantId::parse(payload)
                .map(Change::Work)
                .map_err(|e| StoreError::Invalid(format!("work notification: {e}")));
        }
        if notification.channel() == SECRET_CHANNEL {
            return serde_json::from_str(payload)
                .map(Change::Secret)
                .map_err(|e| StoreError::Invalid(format!("secret change notification: {e}")));
        }
        serde_json::from_str(payload)
            .map(Change::Config)
            .map_err(|e| StoreError::Invalid(format!("config change notification: {e}")))
    }
}

impl PlatformStore {
    /// Subscribes to what every replica notifies of `kind`; `None` where the store is one
    /// process's own (SQLite), which has nothing to hear from others.
    pub async fn feed(&self, kind: FeedKind) -> Result<Option<Feed>, StoreError> {
        let Some(url) = self.url.as_deref() else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        match kind {
            FeedKind::Configs => listener.listen_all([CHANNEL, SECRET_CHANNEL]).await?,
            FeedKind::Work => listener.listen(WORK_CHANNEL).await?,
        }
        Ok(Some(Feed { listener }))
    }

    /// Tells the replica running `tenant`'s workers that its services may have written events
    /// (nothing on SQLite, where one process runs them all).
    pub async fn notify_work(&self, tenant: &TenantId) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(WORK_CHANNEL)
            .bind(tenant.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Tells the other replicas that `change` was saved. Sent after the save committed, so a
    /// replica that hears it reads the new version.
    pub(crate) async fn notify_config_change(
        &self,
        change: &ConfigChange,
    ) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let payload =
            serde_json::to_string(change).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Tells the other replicas that `change`'s secret was written to Vault.
    pub async fn notify_secret_change(&self, change: &SecretChange) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let payload =
            serde_json::to_string(change).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(SECRET_CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest config version of every tenant's provider that has one, as
    /// `((tenant, domain, name), version)`: what a replica compares its instances with after a
    /// gap in the feed.
    pub async fn latest_config_versions(
        &self,
    ) -> Result<Vec<((TenantId, String, String), i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, domain, name, MAX(version) AS version FROM provider_configs
              GROUP BY tenant_id, domain, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let tenant: String = row.try_get("tenant_id")?;
                let tenant =
                    TenantId::parse(&tenant).map_err(|e| StoreError::Invalid(e.to_string()))?;
                Ok((
                    (tenant, row.try_get("domain")?, row.try_get("name")?),
                    row.try_get("version")?,
                ))
            })
            .collect()
    }
}
