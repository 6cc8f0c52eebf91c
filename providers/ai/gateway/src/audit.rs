//! The audit of AI calls: one record per call, written to the platform store in batches off
//! the call's path, so that recording costs a call a channel send, not a transaction.
//!
//! A record holds the redacted prompt and answer only (what left the platform and what came
//! back), never the placeholders' originals. Records older than the tenant's retention are
//! purged as new ones are written. A full queue drops the record and counts it in the log
//! rather than slow every call down to the store's pace; the queue is deep enough that this
//! takes a store that has stopped answering.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_platform_store::{AuditRow, PlatformStore};
use switchyard_spi::{CallContext, ProviderError, TenantId};
use tokio::sync::mpsc;

use crate::chat::{Outcome, Prepared};
use crate::config::Target;
use crate::engine::{Gateway, Shared};
use crate::redact::Redaction;
use crate::tokens::Usage;
use crate::wire::{ChatRequest, EmbedRequest, Message, usage_value};

/// Records waiting for the store, at most.
const QUEUE: usize = 16_384;
/// Records written in one transaction, at most.
const BATCH: usize = 512;
/// How long the writer waits for more records before writing what it has.
const GATHER: Duration = Duration::from_millis(20);
/// How often a tenant's old records are purged, at most.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// One record and how long its tenant keeps records.
struct Entry {
    row: AuditRow,
    retention: Duration,
}

/// Sends records to the writer task; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Entry>,
}

impl AuditLog {
    /// Starts the writer on the current tokio runtime.
    pub fn start(store: PlatformStore) -> AuditLog {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, receiver));
        AuditLog { queue }
    }

    /// Queues `record` of `tenant`, stamped now.
    pub fn record(&self, tenant: &TenantId, record: Value, retention: Duration) {
        let row = AuditRow {
            tenant: tenant.clone(),
            id: uuid::Uuid::now_v7().to_string(),
            at_ms: now_ms(),
            record,
        };
        if self.queue.try_send(Entry { row, retention }).is_err() {
            tracing::warn!(tenant = %tenant, "ai audit queue full: a record was dropped");
        }
    }
}

async fn write(store: PlatformStore, mut receiver: mpsc::Receiver<Entry>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut purged: HashMap<TenantId, std::time::Instant> = HashMap::new();
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        // At a low rate each record would be a transaction of its own (an fsync on SQLite);
        // waiting a moment gathers the calls of that moment into one.
        if batch.len() < BATCH {
            tokio::time::sleep(GATHER).await;
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
        }
        let rows: Vec<AuditRow> = batch.iter().map(|e| e.row.clone()).collect();
        if let Err(e) = store.ai_audit_append(&rows).await {
            tracing::error!(error = %e, records = rows.len(), "ai audit records could not be written");
        }
        for entry in batch.drain(..) {
            let due = purged
                .get(&entry.row.tenant)
                .is_none_or(|at| at.elapsed() >= PURGE_EVERY);
            if due {
                let horizon =
                    now_ms() - i64::try_from(entry.retention.as_millis()).unwrap_or(i64::MAX);
                if let Err(e) = store.ai_audit_purge(&entry.row.tenant, horizon).await {
                    tracing::error!(error = %e, "ai audit records could not be purged");
                }
                purged.insert(entry.row.tenant.clone(), std::time::Instant::now());
            }
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Shared {
    /// Records one chat: who, which alias and template, the redacted prompt and the answer
    /// as it came back (placeholders, never their originals), tokens, cost, latency, the route
    /// taken and what the guardrails did.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn audit_record(
        &self,
        key: &str,
        request: &ChatRequest,
        template: Option<&(String, u32)>,
        sent: &[Message],
        redaction: &Redaction,
        started: Instant,
        outcome: Outcome,
        stream: bool,
    ) {
        let audit = self.config.audit;
        if !audit.enabled {
            return;
        }
        let text = audit.text;
        let record = json!({
            "kind": "chat",
            "key": key,
            "user": request.user,
            "alias": request.alias,
            "target": outcome.target,
            "template": template.map(|(name, version)| json!({"name": name, "version": version})),
            "prompt": text.then(|| sent
                .iter()
                .map(|m| json!({"role": m.role, "content": clip(&m.content)}))
                .collect::<Vec<_>>()),
            // A restored answer holds the originals again: redacted anew for the record.
            "response": outcome.answer.filter(|_| text).map(|answer| {
                clip(&self.config.redactor.redact(&answer, &mut Redaction::new()))
            }),
            "usage": usage_value(&outcome.usage),
            "cost_usd": outcome.cost_micros as f64 / 1_000_000.0,
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
            "path": outcome.path,
            "cache": outcome.cache,
            "stream": stream,
            "status": outcome.status,
            "guardrails": {"redacted": counts(redaction)},
        });
        self.audit.record(&self.tenant, record, audit.retention);
    }
}

impl Gateway {
    pub(crate) fn audit_chat(
        &self,
        ctx: &CallContext,
        request: &ChatRequest,
        prepared: &Prepared,
        outcome: Outcome,
    ) {
        self.audit_record(
            ctx.subject.as_deref().unwrap_or_default(),
            request,
            prepared.template.as_ref(),
            &prepared.sent,
            &prepared.redaction,
            prepared.started,
            outcome,
            false,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn audit_embed(
        &self,
        ctx: &CallContext,
        request: &EmbedRequest,
        texts: &[String],
        redaction: &Redaction,
        started: Instant,
        answer: Result<(&Target, Usage), &ProviderError>,
        path: Vec<Value>,
    ) {
        let audit = self.config.audit;
        if !audit.enabled {
            return;
        }
        let (status, target, usage) = match answer {
            Ok((target, usage)) => ("ok", Some(target.id.as_str()), usage),
            Err(error) => (error.code.as_str(), None, Usage::default()),
        };
        let record = json!({
            "kind": "embedding",
            "key": ctx.subject,
            "user": request.user,
            "alias": request.alias,
            "target": target,
            "prompt": audit.text.then(|| texts.iter().map(|t| clip(t)).collect::<Vec<_>>()),
            "usage": usage_value(&usage),
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
            "path": path,
            "status": status,
            "guardrails": {"redacted": counts(redaction)},
        });
        self.audit.record(&self.tenant, record, audit.retention);
    }
}

/// The most of one text a record keeps, so that a tenant's prompts cannot grow the platform
/// store faster than its calls: the rest is cut, and the cut says how much.
const MAX_TEXT: usize = 16 * 1024;

fn clip(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} more bytes]", &text[..end], text.len() - end)
}

/// How many values of each kind a redaction replaced: counts only, never a value.
fn counts(redaction: &Redaction) -> Value {
    Value::Object(
        redaction
            .counts()
            .map(|(kind, n)| (kind.to_owned(), json!(n)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_clipped_at_a_char_boundary_and_says_how_much() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(MAX_TEXT);
        let clipped = clip(&long);
        assert!(clipped.ends_with(&format!("…[{} more bytes]", MAX_TEXT)));
        assert!(clipped.len() < MAX_TEXT + 32);
    }
}
