//! Deployment-wide settings of `bus/kafka`: which cluster, under which namespace, how long to
//! wait for it. A tenant's own config is the shared `BusConfig` (same fields as
//! `bus/embedded`), so tenants never see or choose brokers.

use std::time::Duration;

use switchyard_spi::{ErrorCode, ProviderError};

/// The namespace when none is given: every topic and group id the engine creates starts with
/// `switchyard.`.
const DEFAULT_NAMESPACE: &str = "switchyard";
/// Longest namespace. With the longest tenant id (63) it leaves a topic name at least 80 of
/// Kafka's 249 characters, enough for the readable part of a shortened name (see `names`).
const MAX_NAMESPACE_LEN: usize = 100;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the engine reaches its cluster. Built once per process, from the environment by the
/// binary or directly by tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub(crate) brokers: String,
    pub(crate) namespace: String,
    pub(crate) replication_factor: i32,
    pub(crate) timeout: Duration,
}

impl KafkaSettings {
    /// Settings for the cluster at `brokers` (Kafka's `bootstrap.servers`: `host:port`, comma
    /// separated), with the default namespace, the broker's default replication factor and a
    /// 10 s timeout.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            namespace: DEFAULT_NAMESPACE.into(),
            replication_factor: -1,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Puts every topic and group id under `<namespace>.`, so several deployments (or test
    /// runs) can share one cluster without seeing each other. 1 to 100 characters of Kafka's
    /// topic alphabet `[A-Za-z0-9._-]`.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Replication factor of the topics the engine creates; -1 (the default) lets the broker
    /// choose (`default.replication.factor`).
    pub fn with_replication_factor(mut self, replication_factor: i32) -> Self {
        self.replication_factor = replication_factor;
        self
    }

    /// How long one call waits for the cluster (delivery acknowledgements, a fetch, an offset
    /// commit) before failing as retryable `provider_unavailable`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Rejects settings that would make every tenant fail later, with the reason.
    pub(crate) fn check(&self) -> Result<(), ProviderError> {
        let invalid = |detail: String| ProviderError::new(ErrorCode::ConfigInvalid, detail);
        if self.brokers.trim().is_empty() {
            return Err(invalid(
                "bus/kafka needs at least one broker address".into(),
            ));
        }
        let ns = &self.namespace;
        let ns_ok = (1..=MAX_NAMESPACE_LEN).contains(&ns.len())
            && ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ns_ok {
            return Err(invalid(format!(
                "bus/kafka namespace {ns:?} must be 1 to {MAX_NAMESPACE_LEN} characters of \
                 A-Z, a-z, 0-9, '.', '_' and '-'"
            )));
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return Err(invalid(format!(
                "bus/kafka replication factor must be positive or -1 (broker default), got {}",
                self.replication_factor
            )));
        }
        if self.timeout.is_zero() {
            return Err(invalid("bus/kafka timeout must be above zero".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_settings_are_config_invalid() {
        KafkaSettings::new("127.0.0.1:9092").check().unwrap();
        for bad in [
            KafkaSettings::new(" "),
            KafkaSettings::new("b:1").with_namespace(""),
            KafkaSettings::new("b:1").with_namespace("has space"),
            KafkaSettings::new("b:1").with_namespace("x".repeat(101)),
            KafkaSettings::new("b:1").with_replication_factor(0),
            KafkaSettings::new("b:1").with_timeout(Duration::ZERO),
        ] {
            let err = bad.check().unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid, "{bad:?}");
        }
    }
}
