//! An event as it travels: CloudEvents 1.0 attributes in the Kafka protocol binding's binary
//! mode, where each attribute is a `ce_`-prefixed header and the record's value is `data`.
//!
//! CloudEvents allows only lower-case letters and digits in attribute names, so the extensions
//! every Switchyard event carries are spelled `tenantid`, `idempotencykey` and
//! `schemaversion` (headers `ce_tenantid`, …).

use crate::TenantId;
use serde_json::{Map, Value, json};

pub const SPEC_VERSION: &str = "1.0";

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique per event; consumers deduplicate on it.
    pub id: String,
    /// CloudEvents `type`, e.g. `ledger.journal.posted`.
    pub kind: String,
    /// CloudEvents `source`: the service that decided the event, e.g. `/services/ledger`.
    pub source: String,
    pub subject: Option<String>,
    /// RFC 3339.
    pub time: String,
    /// The bus topic the relay publishes to.
    pub topic: String,
    /// Ordering key: events with the same key reach the bus in the order they were written.
    pub key: Option<String>,
    pub idempotency_key: Option<String>,
    /// Version of `data`'s schema, as published in `asyncapi/`.
    pub schema_version: String,
    pub data: Value,
}

impl Event {
    /// A new event with a fresh time-ordered id, stamped now, schema version 1.
    pub fn new(kind: &str, source: &str, topic: &str, data: Value) -> Self {
        Event {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.into(),
            source: source.into(),
            subject: None,
            time: now_rfc3339(),
            topic: topic.into(),
            key: None,
            idempotency_key: None,
            schema_version: "1".into(),
            data,
        }
    }

    /// An id the producer derives from what happened (e.g. one state change of one order)
    /// instead of a fresh one, so recording the same happening twice is refused as a duplicate.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The record headers: the CloudEvents attributes of this event, for `tenant`.
    pub fn headers(&self, tenant: &TenantId) -> Map<String, Value> {
        let mut headers = Map::new();
        let mut put = |name: &str, value: &str| {
            headers.insert(name.into(), json!(value));
        };
        put("ce_specversion", SPEC_VERSION);
        put("ce_id", &self.id);
        put("ce_type", &self.kind);
        put("ce_source", &self.source);
        put("ce_time", &self.time);
        put("content-type", "application/json");
        put("ce_tenantid", tenant.as_str());
        put("ce_schemaversion", &self.schema_version);
        if let Some(subject) = &self.subject {
            put("ce_subject", subject);
        }
        if let Some(key) = &self.idempotency_key {
            put("ce_idempotencykey", key);
        }
        headers
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_cloudevents_attributes_and_the_tenant() {
        let tenant = TenantId::parse("acme").unwrap();
        let event = Event::new(
            "ledger.journal.posted",
            "/services/ledger",
            "ledger",
            json!({}),
        )
        .with_subject("J-1")
        .with_idempotency_key("idem-1");
        let headers = event.headers(&tenant);
        assert_eq!(headers["ce_specversion"], "1.0");
        assert_eq!(headers["ce_id"], event.id.as_str());
        assert_eq!(headers["ce_type"], "ledger.journal.posted");
        assert_eq!(headers["ce_tenantid"], "acme");
        assert_eq!(headers["ce_subject"], "J-1");
        assert_eq!(headers["ce_idempotencykey"], "idem-1");
        assert_eq!(headers["ce_schemaversion"], "1");
        // CloudEvents attribute names: lower-case letters and digits only.
        for name in headers.keys().filter_map(|h| h.strip_prefix("ce_")) {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{name}"
            );
        }
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let a = Event::new("t", "/s", "x", json!(null));
        let b = Event::new("t", "/s", "x", json!(null));
        assert_ne!(a.id, b.id);
        assert!(a.id < b.id);
    }
}
