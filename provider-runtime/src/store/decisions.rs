//! The policy decision log: what was decided, for whom, under which bundle revision.
//!
//! Auditors read it newest first, one tenant at a time, with keyset pagination so a page never
//! shifts under concurrent writes.

use serde::Serialize;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite};
use switchyard_contracts::TenantId;

use super::{PlatformStore, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub at_ms: i64,
    pub tenant: String,
    pub subject: String,
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub revision: String,
    /// The policy input as evaluated, with secrets and PII already masked by the caller.
    pub input: Value,
}

/// Which decisions an auditor wants; the tenant is always the auditor's own.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub subject: Option<String>,
    pub allowed: Option<bool>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// `(at_ms, decision_id)` of the last record of the previous page.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

impl PlatformStore {
    /// Writes a batch in one transaction: the gateway logs decisions off the request path.
    pub async fn record_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO policy_decisions (id, at_ms, tenant_id, subject, allowed, reasons, revision, input)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(&r.decision_id)
            .bind(r.at_ms)
            .bind(&r.tenant)
            .bind(&r.subject)
            .bind(r.allowed)
            .bind(serde_json::to_string(&r.reasons).unwrap_or_default())
            .bind(&r.revision)
            .bind(r.input.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_decisions(
        &self,
        tenant: &TenantId,
        filter: &DecisionFilter,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, at_ms, tenant_id, subject, allowed, reasons, revision, input FROM policy_decisions WHERE tenant_id = ",
        );
        q.push_bind(tenant.as_str());
        if let Some(subject) = &filter.subject {
            q.push(" AND subject = ").push_bind(subject.clone());
        }
        if let Some(allowed) = filter.allowed {
            q.push(" AND allowed = ").push_bind(allowed);
        }
        if let Some(from) = filter.from_ms {
            q.push(" AND at_ms >= ").push_bind(from);
        }
        if let Some(to) = filter.to_ms {
            q.push(" AND at_ms < ").push_bind(to);
        }
        if let Some((at, id)) = &filter.after {
            q.push(" AND (at_ms < ")
                .push_bind(*at)
                .push(" OR (at_ms = ")
                .push_bind(*at)
                .push(" AND id < ")
                .push_bind(id.clone())
                .push("))");
        }
        q.push(" ORDER BY at_ms DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let reasons: String = row.try_get("reasons")?;
                let input: String = row.try_get("input")?;
                Ok(DecisionRecord {
                    decision_id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    tenant: row.try_get("tenant_id")?,
                    subject: row.try_get("subject")?,
                    allowed: row.try_get("allowed")?,
                    reasons: serde_json::from_str(&reasons)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    revision: row.try_get("revision")?,
                    input: serde_json::from_str(&input)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str, at_ms: i64, tenant: &str, allowed: bool) -> DecisionRecord {
        DecisionRecord {
            decision_id: id.into(),
            at_ms,
            tenant: tenant.into(),
            subject: "key:1".into(),
            allowed,
            reasons: if allowed { vec![] } else { vec!["no".into()] },
            revision: "r1".into(),
            input: json!({"action": "query"}),
        }
    }

    #[tokio::test]
    async fn decisions_page_newest_first_per_tenant_with_filters() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let mut batch: Vec<DecisionRecord> = (0..5)
            .map(|i| record(&format!("d{i}"), 1000 + i, "acme", i % 2 == 0))
            .collect();
        batch.push(record("g1", 1002, "globex", true));
        store.record_decisions(&batch).await.unwrap();
        let acme = TenantId::parse("acme").unwrap();

        let page = store
            .list_decisions(
                &acme,
                &DecisionFilter {
                    limit: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.iter()
                .map(|r| r.decision_id.as_str())
                .collect::<Vec<_>>(),
            ["d4", "d3"]
        );
        let last = page.last().unwrap();
        let next = DecisionFilter {
            limit: 10,
            after: Some((last.at_ms, last.decision_id.clone())),
            ..Default::default()
        };
        let rest = store.list_decisions(&acme, &next).await.unwrap();
        assert_eq!(
            rest.iter()
                .map(|r| r.decision_id.as_str())
                .collect::<Vec<_>>(),
            ["d2", "d1", "d0"]
        );

        let denied = DecisionFilter {
            allowed: Some(false),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.list_decisions(&acme, &denied).await.unwrap().len(), 2);
        let window = DecisionFilter {
            from_ms: Some(1001),
            to_ms: Some(1003),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.list_decisions(&acme, &window).await.unwrap().len(), 2);
        let globex = store
            .list_decisions(
                &TenantId::parse("globex").unwrap(),
                &DecisionFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            globex
                .iter()
                .map(|r| r.decision_id.as_str())
                .collect::<Vec<_>>(),
            ["g1"],
            "tenant-scoped"
        );
    }
}
