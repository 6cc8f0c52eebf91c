//! Idempotency-Key records: a retried POST replays the first response instead of running twice.
//!
//! One record per (tenant, key), bound to a fingerprint of the request. A record is
//! `in_flight` while the first request runs, under a lease so a gateway that dies mid-request
//! does not block the key forever, and `done` once its response is stored. Times come from the
//! caller (Unix milliseconds), which keeps every rule here testable without sleeping.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError};

/// A response kept for replay: what the client saw the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the gateway does with a request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Forward it: this request now holds the key (new, released, expired or lease taken over).
    Proceed,
    /// Answer with the first response without forwarding.
    Replay(StoredResponse),
    /// The same request is still running elsewhere and its lease is live.
    InFlight,
    /// The key was used with a different request.
    KeyReused,
}

impl PlatformStore {
    /// Claims the key for this request or says why not.
    ///
    /// A record older than `retention_ms` counts as absent, whatever its fingerprint, so an
    /// expired record never replays. An in-flight record whose lease has run out is taken over
    /// only by the same request: a different one under that key is still a reused key.
    pub async fn idempotency_begin(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &[u8; 32],
        now_ms: i64,
        lease_ms: i64,
        retention_ms: i64,
    ) -> Result<Begin, StoreError> {
        // BEGIN IMMEDIATE takes SQLite's write lock before the read, so no other writer can act
        // between reading the record and claiming it: of many concurrent identical requests,
        // first or taking over an expired lease, exactly one proceeds. A deferred transaction
        // would instead fail the later writers with SQLITE_BUSY_SNAPSHOT.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT fingerprint, state, lease_until_ms, status, headers, body, created_at_ms
               FROM idempotency_records WHERE tenant_id = ?1 AND idem_key = ?2",
        )
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let oldest_live_ms = now_ms.saturating_sub(retention_ms);
        let begin = match row {
            Some(row) if row.try_get::<i64, _>("created_at_ms")? >= oldest_live_ms => {
                let stored: Vec<u8> = row.try_get("fingerprint")?;
                let state: String = row.try_get("state")?;
                if stored.as_slice() != fingerprint.as_slice() {
                    Begin::KeyReused
                } else if state == "done" {
                    Begin::Replay(stored_response(&row)?)
                } else if row.try_get::<i64, _>("lease_until_ms")? > now_ms {
                    Begin::InFlight
                } else {
                    Begin::Proceed
                }
            }
            _ => Begin::Proceed,
        };
        if begin == Begin::Proceed {
            sqlx::query(
                "INSERT INTO idempotency_records
                        (tenant_id, idem_key, fingerprint, state, lease_until_ms, created_at_ms)
                 VALUES (?1, ?2, ?3, 'in_flight', ?4, ?5)
                 ON CONFLICT (tenant_id, idem_key) DO UPDATE SET
                        fingerprint = excluded.fingerprint, state = 'in_flight',
                        lease_until_ms = excluded.lease_until_ms, status = NULL, headers = NULL,
                        body = NULL, created_at_ms = excluded.created_at_ms",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(fingerprint.as_slice())
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(begin)
    }

    /// Stores the response of a request that proceeded, for replay.
    ///
    /// Only an in-flight record with this fingerprint is completed: if the record was released
    /// or purged meanwhile there is nothing to complete, and the next retry simply runs again.
    pub async fn idempotency_complete(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &[u8; 32],
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&response.headers)
            .map_err(|e| StoreError::Invalid(format!("idempotency headers: {e}")))?;
        sqlx::query(
            "UPDATE idempotency_records SET state = 'done', status = ?4, headers = ?5, body = ?6
              WHERE tenant_id = ?1 AND idem_key = ?2 AND fingerprint = ?3 AND state = 'in_flight'",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(fingerprint.as_slice())
        .bind(i64::from(response.status))
        .bind(headers)
        .bind(response.body.as_slice())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Frees the key after a request that ended without a response worth replaying (5xx,
    /// upstream failure, client gone), so a retry runs it again. A completed record, or one
    /// held by a different request, is left alone.
    pub async fn idempotency_release(
        &self,
        tenant: &TenantId,
        key: &str,
        fingerprint: &[u8; 32],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_records
              WHERE tenant_id = ?1 AND idem_key = ?2 AND fingerprint = ?3 AND state = 'in_flight'",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(fingerprint.as_slice())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes every record created before `older_than_ms` and returns how many went.
    /// `idempotency_begin` already ignores such records; purging only reclaims the space.
    pub async fn idempotency_purge(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM idempotency_records WHERE created_at_ms < ?1")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}

/// The response columns of a `done` record; missing ones mean the row was written by hand.
fn stored_response(row: &SqliteRow) -> Result<StoredResponse, StoreError> {
    let corrupt = |what: &str| StoreError::Invalid(format!("idempotency record without {what}"));
    let status: Option<i64> = row.try_get("status")?;
    let status = status
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| corrupt("a valid status"))?;
    let headers: Option<String> = row.try_get("headers")?;
    let headers = headers.ok_or_else(|| corrupt("headers"))?;
    let headers = serde_json::from_str(&headers)
        .map_err(|e| StoreError::Invalid(format!("idempotency headers: {e}")))?;
    let body: Option<Vec<u8>> = row.try_get("body")?;
    Ok(StoredResponse {
        status,
        headers,
        body: body.ok_or_else(|| corrupt("a body"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE_MS: i64 = 60_000;
    const RETENTION_MS: i64 = 86_400_000;

    async fn store_with(tenants: &[&str]) -> (tempfile::TempDir, PlatformStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        for tenant in tenants {
            store
                .create_tenant(&TenantId::parse(tenant).unwrap())
                .await
                .unwrap();
        }
        (dir, store)
    }

    async fn begin(store: &PlatformStore, tenant: &TenantId, fp: u8, now_ms: i64) -> Begin {
        store
            .idempotency_begin(tenant, "k1", &[fp; 32], now_ms, LEASE_MS, RETENTION_MS)
            .await
            .unwrap()
    }

    fn created(body: &str) -> StoredResponse {
        StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn a_first_request_proceeds_and_its_completed_response_replays() {
        let (_dir, store) = store_with(&["acme"]).await;
        let acme = TenantId::parse("acme").unwrap();

        assert_eq!(begin(&store, &acme, 1, 0).await, Begin::Proceed);
        assert_eq!(begin(&store, &acme, 1, 10).await, Begin::InFlight);
        store
            .idempotency_complete(&acme, "k1", &[1; 32], &created(r#"{"id":7}"#))
            .await
            .unwrap();
        // Replays even after the lease ran out: a done record has no lease.
        for now in [20, LEASE_MS * 2] {
            assert_eq!(
                begin(&store, &acme, 1, now).await,
                Begin::Replay(created(r#"{"id":7}"#))
            );
        }
    }

    #[tokio::test]
    async fn a_different_request_under_a_used_key_is_refused() {
        let (_dir, store) = store_with(&["acme"]).await;
        let acme = TenantId::parse("acme").unwrap();

        assert_eq!(begin(&store, &acme, 1, 0).await, Begin::Proceed);
        assert_eq!(begin(&store, &acme, 2, 10).await, Begin::KeyReused);
        // Not even an expired lease frees the key for a different request.
        assert_eq!(
            begin(&store, &acme, 2, LEASE_MS + 1).await,
            Begin::KeyReused
        );
        store
            .idempotency_complete(&acme, "k1", &[1; 32], &created("{}"))
            .await
            .unwrap();
        assert_eq!(begin(&store, &acme, 2, 20).await, Begin::KeyReused);
    }

    #[tokio::test]
    async fn the_same_key_in_two_tenants_is_two_records() {
        let (_dir, store) = store_with(&["acme", "globex"]).await;
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();

        assert_eq!(begin(&store, &acme, 1, 0).await, Begin::Proceed);
        store
            .idempotency_complete(&acme, "k1", &[1; 32], &created("acme"))
            .await
            .unwrap();
        assert_eq!(begin(&store, &globex, 2, 0).await, Begin::Proceed);
        assert_eq!(begin(&store, &globex, 1, 0).await, Begin::KeyReused);
        store
            .idempotency_release(&globex, "k1", &[2; 32])
            .await
            .unwrap();
        assert_eq!(
            begin(&store, &acme, 1, 0).await,
            Begin::Replay(created("acme"))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn exactly_one_of_many_concurrent_first_requests_proceeds() {
        let (_dir, store) = store_with(&["acme"]).await;
        let acme = TenantId::parse("acme").unwrap();

        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (store, acme) = (store.clone(), acme.clone());
                tokio::spawn(async move { begin(&store, &acme, 1, 0).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let proceeded = outcomes.iter().filter(|b| **b == Begin::Proceed).count();
        let in_flight = outcomes.iter().filter(|b| **b == Begin::InFlight).count();
        assert_eq!((proceeded, in_flight), (1, 49));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_expired_lease_is_taken_over_by_exactly_one_request() {
        let (_dir, store) = store_with(&["acme"]).await;
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(begin(&store, &acme, 1, 0).await, Begin::Proceed);
        assert_eq!(begin(&store, &acme, 1, LEASE_MS - 1).await, Begin::InFlight);

        let after_lease = LEASE_MS;
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (store, acme) = (store.clone(), acme.clone());
                tokio::spawn(async move { begin(&store, &acme, 1, after_lease).await })
            })
            .collect();
        let mut proceeded = 0;
        for task in tasks {
            match task.await.unwrap() {
                Begin::Proceed => proceeded += 1,
                Begin::InFlight => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(proceeded, 1);
        // The winner holds a fresh lease.
        assert_eq!(
            begin(&store, &acme, 1, after_lease + LEASE_MS - 1).await,
            Begin::InFlight
        );
    }

    #[tokio::test]
    async fn a_released_request_may_proceed_again() {
        let (_dir, store) = store_with(&["acme"]).await;
        let acme = TenantId::parse("acme").unwrap();

        assert_eq!(begin(&store, &acme, 1, 0).await, Begin::Proceed);
        // Releasing with another fingerprint does not free someone else's key.
        store
            .idempotency_release(&acme, "k1", &[2; 32])
            .await
            .unwrap();
        assert_eq!(begin(&store, &acme, 1, 10).await, Begin::InFlight);
        store
            .idempotency_release(&acme, "k1", &[1; 32])
            .await
            .unwrap();
        // Completing a released record stores nothing.
        store
            .idempotency_complete(&acme, "k1", &[1; 32], &created("late"))
            .await
            .unwrap();
        assert_eq!(begin(&store, &acme, 1, 20).await, Begin::Proceed);

        store
            .idempotency_complete(&acme, "k1", &[1; 32], &created("done"))
            .await
            .unwrap();
        // A completed record is not released.
        store
            .idempotency_release(&acme, "k1", &[1; 32])
            .await
            .unwrap();
        assert_eq!(
            begin(&store, &acme, 1, 30).await,
            Begin::Replay(created("done"))
        );
    }

    #[tokio::test]
    async fn records_past_retention_neither_replay_nor_survive_purge() {
        let (_dir, store) = store_with(&["acme"]).await;
        let acme = TenantId::parse("acme").unwrap();
        let begin_at = |key: &'static str, fp: u8, now_ms: i64| {
            let (store, acme) = (store.clone(), acme.clone());
            async move {
                store
                    .idempotency_begin(&acme, key, &[fp; 32], now_ms, LEASE_MS, RETENTION_MS)
                    .await
                    .unwrap()
            }
        };
        for (key, created_at) in [("a", 0), ("b", 0), ("c", 0), ("fresh", RETENTION_MS)] {
            assert_eq!(begin_at(key, 1, created_at).await, Begin::Proceed);
            store
                .idempotency_complete(&acme, key, &[1; 32], &created(key))
                .await
                .unwrap();
        }
        let now = RETENTION_MS + 1;

        assert_eq!(begin_at("a", 1, now).await, Begin::Proceed);
        assert_eq!(begin_at("b", 2, now).await, Begin::Proceed);
        assert_eq!(
            begin_at("fresh", 1, now).await,
            Begin::Replay(created("fresh"))
        );
        // "a" and "b" were claimed anew just now; only "c" is still old.
        assert_eq!(
            store.idempotency_purge(now - RETENTION_MS).await.unwrap(),
            1
        );
        assert_eq!(
            store.idempotency_purge(now - RETENTION_MS).await.unwrap(),
            0
        );
        assert_eq!(
            begin_at("fresh", 1, now).await,
            Begin::Replay(created("fresh"))
        );
    }
}
