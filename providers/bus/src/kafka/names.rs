//! How a tenant's contract names become Kafka names (ADR 0010: tenant isolation by prefix).
//!
//! Everything of tenant `acme` in namespace `switchyard` lives under `switchyard.acme.`:
//! - topic `orders` is the Kafka topic `switchyard.acme.t.orders`;
//! - its delivery counters (dead letters) are the empty topic `switchyard.acme.d.orders`;
//! - group `billing` is the Kafka group id `switchyard.acme.billing`.
//!
//! Tenant ids cannot contain `.`, so no tenant's prefix is a prefix of another's and one
//! prefixed ACL (`switchyard.acme.`) covers a tenant's topics and groups. The `t.`/`d.` kind
//! segment keeps engine-owned topics apart from any name a tenant can choose. A name that would
//! exceed Kafka's 249 characters is shortened to `<kind>h.<first characters>.<hash>`, where the
//! hash is the first 128 bits of the SHA-256 of the whole contract name: distinct names stay
//! distinct, and `th.`/`dh.` never meet the plain `t.`/`d.` forms.

use sha2::{Digest, Sha256};
use switchyard_spi::TenantId;

/// Kafka's limit on topic names.
const MAX_TOPIC_LEN: usize = 249;
/// Hex digits of the hash in a shortened name.
const HASH_HEX_LEN: usize = 32;

/// One tenant's view of the cluster's names.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// `<namespace>.<tenant>.`
    prefix: String,
}

impl Names {
    pub(crate) fn new(namespace: &str, tenant: &TenantId) -> Self {
        Names {
            prefix: format!("{namespace}.{}.", tenant.as_str()),
        }
    }

    /// The Kafka topic holding the records of the contract topic `topic`.
    pub(crate) fn topic(&self, topic: &str) -> String {
        self.kafka_topic("t", topic)
    }

    /// The empty Kafka topic on which a group's delivery count for `topic` is committed.
    pub(crate) fn counters(&self, topic: &str) -> String {
        self.kafka_topic("d", topic)
    }

    /// The Kafka group id of the contract group `group`. Kafka puts no length limit on group
    /// ids, so they are never shortened.
    pub(crate) fn group(&self, group: &str) -> String {
        format!("{}{group}", self.prefix)
    }

    fn kafka_topic(&self, kind: &str, name: &str) -> String {
        let plain = format!("{}{kind}.{name}", self.prefix);
        if plain.len() <= MAX_TOPIC_LEN {
            return plain;
        }
        let hash = hex::encode(Sha256::digest(name.as_bytes()));
        let fixed = self.prefix.len() + kind.len() + "h..".len() + HASH_HEX_LEN;
        // Contract names are ASCII, so any byte index is a character boundary.
        let readable = &name[..MAX_TOPIC_LEN.saturating_sub(fixed).min(name.len())];
        format!(
            "{}{kind}h.{readable}.{}",
            self.prefix,
            &hash[..HASH_HEX_LEN]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Names {
        Names::new("switchyard", &TenantId::parse("acme").unwrap())
    }

    #[test]
    fn names_sit_under_the_tenant_prefix() {
        let names = acme();
        assert_eq!(names.topic("orders.v1"), "switchyard.acme.t.orders.v1");
        assert_eq!(names.counters("orders.v1"), "switchyard.acme.d.orders.v1");
        assert_eq!(names.group("billing"), "switchyard.acme.billing");
    }

    #[test]
    fn long_names_are_shortened_distinctly_and_stay_under_the_prefix() {
        let names = Names::new(&"n".repeat(100), &TenantId::parse(&"t".repeat(63)).unwrap());
        let a = format!("{}a", "x".repeat(248));
        let b = format!("{}b", "x".repeat(248));
        for topic in [names.topic(&a), names.topic(&b), names.counters(&a)] {
            assert!(topic.len() <= MAX_TOPIC_LEN, "{topic}");
            assert!(topic.starts_with(&names.prefix), "{topic}");
        }
        assert_ne!(names.topic(&a), names.topic(&b));
        assert_ne!(names.topic(&a), names.counters(&a));
        assert!(names.topic(&a).contains(".th.xxxx"));
        // Shortening starts one character past Kafka's limit.
        let fits = "y".repeat(MAX_TOPIC_LEN - "switchyard.acme.t.".len());
        assert_eq!(acme().topic(&fits), format!("switchyard.acme.t.{fits}"));
        assert!(
            acme()
                .topic(&format!("{fits}y"))
                .starts_with("switchyard.acme.th.yyy")
        );
    }
}
