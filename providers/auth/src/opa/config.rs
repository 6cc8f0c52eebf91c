//! Per-tenant config of `auth/opa`: there is none. The policy bundle is the gateway's, the same
//! for every tenant, so a tenant cannot point its decisions at a policy of its own choosing.

use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError};

/// Accepts only the empty object (the schema of a descriptor without config says the same), so
/// a config meant for another engine is refused rather than silently ignored.
pub fn check(config: &Value) -> Result<(), ProviderError> {
    if config.as_object().is_some_and(|fields| fields.is_empty()) {
        Ok(())
    } else {
        Err(ProviderError::new(
            ErrorCode::ConfigInvalid,
            "auth/opa takes no config: it evaluates the gateway's policy bundle",
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_empty_config_is_accepted() {
        assert!(check(&json!({})).is_ok());
        let err = check(&json!({"bundle": "/tmp/other.tar.gz"})).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
    }
}
