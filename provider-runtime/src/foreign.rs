//! What providers outside this build — plugins ([`crate::plugin`]) and remote providers
//! ([`crate::remote`]) — send the runtime as JSON: their descriptor and their errors. Both are
//! read defensively: a foreign provider's mistake becomes a clear load error or a
//! `provider_failed` answer, never a panic of the runtime.

use serde_json::Value;
use switchyard_contracts::{ActionDescriptor, FieldError, domains};
use switchyard_spi::{ErrorCode, ProviderDescriptor, ProviderError};

/// Builds a descriptor from a plugin's or a manifest's JSON. A domain with a contract file
/// keeps its contract: the provider lists the action names it serves (all of them when it
/// lists none) and their schemas come from `contracts/schemas/domains/<domain>.json`, so a
/// foreign engine cannot loosen the schemas its domain promises. A domain without a contract
/// file must bring its own action schemas.
pub fn descriptor(json: &Value) -> Result<ProviderDescriptor, DescriptorError> {
    let text = |field: &'static str| -> Result<String, DescriptorError> {
        json.get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(DescriptorError::MissingField(field))
    };
    let domain = text("domain")?;
    let name = text("name")?;
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    if !valid_name(&domain) || !valid_name(&name) {
        return Err(DescriptorError::BadName { domain, name });
    }
    let capabilities = match json.get("capabilities") {
        None => Vec::new(),
        Some(c) => serde_json::from_value(c.clone()).map_err(DescriptorError::Capabilities)?,
    };
    let declared: Option<Vec<Value>> = json.get("actions").and_then(Value::as_array).cloned();
    let known = domains::names().any(|d| d == domain);
    let actions = match (known, declared) {
        (true, None) => domains::actions(&domain),
        (true, Some(declared)) => {
            let contract = domains::actions(&domain);
            let mut actions = Vec::new();
            for action in declared {
                let wanted = action
                    .get("name")
                    .and_then(Value::as_str)
                    .or(action.as_str())
                    .ok_or(DescriptorError::UnnamedAction)?;
                let found = contract.iter().find(|a| a.name == wanted).ok_or_else(|| {
                    DescriptorError::UnknownAction {
                        domain: domain.clone(),
                        action: wanted.to_owned(),
                    }
                })?;
                actions.push(found.clone());
            }
            actions
        }
        (false, Some(declared)) => declared
            .into_iter()
            .map(serde_json::from_value::<ActionDescriptor>)
            .collect::<Result<_, _>>()
            .map_err(DescriptorError::ActionSchemas)?,
        (false, None) => return Err(DescriptorError::NoContract(domain)),
    };
    // `configs` is the config history (`GET …/configs`, `POST …/configs/rollback`).
    for reserved in ["health", "configure", "start", "stop", "configs"] {
        if actions.iter().any(|a| a.name == reserved) {
            return Err(DescriptorError::ReservedAction(reserved));
        }
    }
    Ok(ProviderDescriptor {
        version: text("version")?,
        summary: json
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        capabilities,
        config_schema: json
            .get("config_schema")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object"})),
        actions,
        domain,
        name,
    })
}

/// Why a plugin's or a manifest's descriptor is refused.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    #[error("the descriptor lacks the string field {0:?}")]
    MissingField(&'static str),
    #[error("{domain}/{name}: domain and name must be lowercase letters, digits, '-' or '_'")]
    BadName { domain: String, name: String },
    #[error("capabilities must be a list of strings: {0}")]
    Capabilities(#[source] serde_json::Error),
    #[error("every action needs a name")]
    UnnamedAction,
    #[error("the {domain} contract has no action {action:?}")]
    UnknownAction { domain: String, action: String },
    #[error("actions need name, summary, params and result schemas: {0}")]
    ActionSchemas(#[source] serde_json::Error),
    #[error(
        "domain {0:?} has no contract file, so the provider must list its actions with their schemas"
    )]
    NoContract(String),
    #[error("the action name {0:?} is reserved by the routes")]
    ReservedAction(&'static str),
}

/// A foreign error `{"code", "detail", "retryable"?, "errors"?}` (a problem+json body has the
/// same fields). A code outside the contract becomes `provider_failed` that names it.
pub fn error(json: &Value, who: &str) -> ProviderError {
    let detail = json
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("no detail given")
        .to_owned();
    let code = json.get("code").cloned().unwrap_or(Value::Null);
    let Ok(code) = serde_json::from_value::<ErrorCode>(code.clone()) else {
        return failed(format!(
            "{who} answered the unknown error code {code}: {detail}"
        ));
    };
    let mut error = ProviderError::new(code, detail);
    if let Some(retryable) = json.get("retryable").and_then(Value::as_bool) {
        error.retryable = retryable;
    }
    if let Some(errors) = json.get("errors") {
        error.errors =
            serde_json::from_value::<Vec<FieldError>>(errors.clone()).unwrap_or_default();
    }
    error
}

/// `provider_failed`: the provider broke the contract; not retryable.
pub fn failed(detail: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::ProviderFailed, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_known_domain_keeps_its_contract_schemas() {
        let d = descriptor(&json!({"domain": "cache", "name": "x", "version": "1", "actions": ["get", {"name": "set", "params": {}}]})).unwrap();
        let contract = domains::actions("cache");
        assert_eq!(d.actions.len(), 2);
        assert_eq!(
            Some(&d.actions[1]),
            contract.iter().find(|a| a.name == "set")
        );
        let err = descriptor(
            &json!({"domain": "cache", "name": "x", "version": "1", "actions": ["fly"]}),
        )
        .unwrap_err();
        assert!(
            matches!(&err, DescriptorError::UnknownAction { action, .. } if action == "fly"),
            "{err:?}"
        );
        assert!(err.to_string().contains("no action \"fly\""), "{err}");
    }

    #[test]
    fn unknown_codes_become_provider_failed() {
        let e = error(&json!({"code": "oops", "detail": "d"}), "plugin p");
        assert_eq!(e.code, ErrorCode::ProviderFailed);
        assert!(!e.retryable);
        let e = error(
            &json!({"code": "conflict", "detail": "d", "errors": [{"pointer": "/k", "detail": "x"}]}),
            "p",
        );
        assert_eq!((e.code, e.errors.len()), (ErrorCode::Conflict, 1));
    }
}
