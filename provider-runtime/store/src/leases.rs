//! Leases on work that exactly one replica may do at a time: a tenant's hosted workers, and
//! each replica's own membership (which tells the others how many share the work).
//!
//! Time is the store's clock, never a replica's: two replicas whose clocks disagree still agree
//! on when a lease ran out. A holder renews all its leases in one statement, so the cost of
//! holding does not grow with the number of tenants; taking a free lease is one statement each,
//! paid only when a holder dies or the work is rebalanced.

use sqlx::Row;
use switchyard_contracts::TenantId;

use super::{Backend, PlatformStore, StoreError, now_rfc3339};

/// One holding of a lease: its number (`epoch`, one more than the holding before) and when it
/// runs out on the store's clock unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub name: String,
    pub epoch: i64,
    pub expires_ms: i64,
}

/// One row of the lease log: who held `name` in holding `epoch`, from `acquired_ms` until
/// `valid_until_ms` at the latest (the expiry of its last renewal, or its release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLogRow {
    pub name: String,
    pub epoch: i64,
    pub holder: String,
    pub acquired_ms: i64,
    pub valid_until_ms: i64,
}

impl PlatformStore {
    /// Milliseconds since the epoch on the store's clock, as SQL.
    fn now_ms_sql(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        }
    }

    /// Takes `name` for `holder` for `ttl_ms` if nobody holds it (or its holding ran out), and
    /// logs the new holding. `None`: someone else holds it.
    pub async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<Holding>, StoreError> {
        let now = self.now_ms_sql();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO worker_leases (name, holder, epoch, expires_ms) VALUES ($1, $2, 1, {now} + $3)
             ON CONFLICT (name) DO UPDATE
                SET holder = excluded.holder, epoch = worker_leases.epoch + 1,
                    expires_ms = excluded.expires_ms
              WHERE worker_leases.expires_ms < {now}
             RETURNING epoch, expires_ms"
        ))
        .bind(name)
        .bind(holder)
        .bind(ttl_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let holding = Holding {
            name: name.to_owned(),
            epoch: row.try_get("epoch")?,
            expires_ms: row.try_get("expires_ms")?,
        };
        sqlx::query(
            "INSERT INTO worker_lease_log (name, epoch, holder, acquired_ms, valid_until_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(holding.epoch)
        .bind(holder)
        .bind(holding.expires_ms - ttl_ms)
        .bind(holding.expires_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(holding))
    }

    /// Extends every lease `holder` still holds by `ttl_ms`, in one statement, and answers
    /// them. A lease that ran out before this call is not renewed (another replica may have
    /// taken it): it is missing from the answer, and its work must stop.
    pub async fn lease_renew(&self, holder: &str, ttl_ms: i64) -> Result<Vec<Holding>, StoreError> {
        let now = self.now_ms_sql();
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "UPDATE worker_leases SET expires_ms = {now} + $2
              WHERE holder = $1 AND expires_ms >= {now}
             RETURNING name, epoch, expires_ms"
        ))
        .bind(holder)
        .bind(ttl_ms)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE worker_lease_log SET valid_until_ms = (
                    SELECT w.expires_ms FROM worker_leases w
                     WHERE w.name = worker_lease_log.name AND w.epoch = worker_lease_log.epoch
                       AND w.holder = $1)
              WHERE holder = $1 AND EXISTS (
                    SELECT 1 FROM worker_leases w
                     WHERE w.name = worker_lease_log.name AND w.epoch = worker_lease_log.epoch
                       AND w.holder = $1)",
        )
        .bind(holder)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(Holding {
                    name: row.try_get("name")?,
                    epoch: row.try_get("epoch")?,
                    expires_ms: row.try_get("expires_ms")?,
                })
            })
            .collect()
    }

    /// Gives `names` back (all of `holder`'s leases when `None`) so another replica may take
    /// them at once rather than after they run out; the log records the release as their end.
    pub async fn lease_release(
        &self,
        holder: &str,
        names: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let now = self.now_ms_sql();
        let mut tx = self.begin_write().await?;
        let mut ended = Vec::new();
        let returning = "RETURNING name, epoch, expires_ms";
        match names {
            None => ended.extend(
                sqlx::query(&format!(
                    "UPDATE worker_leases SET expires_ms = {now} - 1
                      WHERE holder = $1 AND expires_ms >= {now} {returning}"
                ))
                .bind(holder)
                .fetch_all(&mut *tx)
                .await?,
            ),
            Some(names) => {
                for name in names {
                    ended.extend(
                        sqlx::query(&format!(
                            "UPDATE worker_leases SET expires_ms = {now} - 1
                              WHERE holder = $1 AND name = $2 AND expires_ms >= {now} {returning}"
                        ))
                        .bind(holder)
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?,
                    );
                }
            }
        }
        for row in ended {
            sqlx::query(
                "UPDATE worker_lease_log SET valid_until_ms = $3 WHERE name = $1 AND epoch = $2",
            )
            .bind(row.try_get::<String, _>("name")?)
            .bind(row.try_get::<i64, _>("epoch")?)
            .bind(row.try_get::<i64, _>("expires_ms")?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The leases held now whose names start with `prefix`, as `(name, holder)`.
    pub async fn lease_holders(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let now = self.now_ms_sql();
        let rows = sqlx::query(&format!(
            "SELECT name, holder FROM worker_leases
              WHERE expires_ms >= {now} AND substr(name, 1, CAST($2 AS INTEGER)) = $1 ORDER BY name"
        ))
        .bind(prefix)
        .bind(i64::try_from(prefix.len()).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("holder")?)))
            .collect()
    }

    /// Every holding of the leases whose names start with `prefix`, in order of name and epoch.
    pub async fn lease_log(&self, prefix: &str) -> Result<Vec<LeaseLogRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, epoch, holder, acquired_ms, valid_until_ms FROM worker_lease_log
              WHERE substr(name, 1, CAST($2 AS INTEGER)) = $1 ORDER BY name, epoch",
        )
        .bind(prefix)
        .bind(i64::try_from(prefix.len()).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LeaseLogRow {
                    name: row.try_get("name")?,
                    epoch: row.try_get("epoch")?,
                    holder: row.try_get("holder")?,
                    acquired_ms: row.try_get("acquired_ms")?,
                    valid_until_ms: row.try_get("valid_until_ms")?,
                })
            })
            .collect()
    }

    /// Deletes the log's holdings that ended more than `older_than_ms` ago.
    pub async fn lease_log_purge(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let now = self.now_ms_sql();
        let done = sqlx::query(&format!(
            "DELETE FROM worker_lease_log WHERE valid_until_ms < {now} - $1"
        ))
        .bind(older_than_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records that `tenant` uses the business services, so its hosted workers run (once per
    /// tenant; later calls change nothing).
    pub async fn mark_hosted_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hosted_tenants (tenant_id, since) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tenants whose hosted workers run, in order.
    pub async fn hosted_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows = sqlx::query(
            "SELECT h.tenant_id FROM hosted_tenants h JOIN tenants t ON t.id = h.tenant_id
              ORDER BY h.tenant_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("tenant_id")?;
                TenantId::parse(&id).map_err(|e| StoreError::Invalid(e.to_string()))
            })
            .collect()
    }
}
