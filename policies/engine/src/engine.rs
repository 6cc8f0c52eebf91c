//! Evaluating the gateway's decision rule.

use serde::{Deserialize, Serialize};

use crate::{Bundle, PolicyError};

/// The rule the gateway asks; every bundle it loads must define it.
pub const DECISION_RULE: &str = "data.switchyard.authz.decision";

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub allow: bool,
    /// Why the request is denied (empty when allowed), sorted.
    pub reasons: Vec<String>,
}

/// A bundle ready to answer decisions from many threads.
///
/// Each call evaluates on a clone of the bundle's prepared regorus engine. The clone shares the
/// parsed modules and data (`Arc`) and costs about 0.2 µs against roughly 70 µs of evaluation,
/// so it needs no lock; a pool of engines and regorus' `CompiledPolicy` measured no faster.
pub struct PolicyEngine {
    bundle: Bundle,
}

impl PolicyEngine {
    /// Prepares `bundle` for evaluation and checks that it answers [`DECISION_RULE`] with a
    /// well-formed decision (for an empty input), so a bundle lacking the rule is refused here
    /// rather than on the first request.
    pub fn new(bundle: Bundle) -> Result<PolicyEngine, PolicyError> {
        let engine = PolicyEngine { bundle };
        engine.decide(&serde_json::json!({}))?;
        Ok(engine)
    }

    /// The bundle this engine evaluates.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Evaluates [`DECISION_RULE`] for `input`. An error (the policy raised one, or answered
    /// something that is not a decision) must be treated as a denial by the caller.
    pub fn decide(&self, input: &serde_json::Value) -> Result<Decision, PolicyError> {
        let mut engine = self.bundle.engine.clone();
        engine.set_input(regorus::Value::from(input.clone()));
        let value = engine
            .eval_rule(DECISION_RULE.to_string())
            .map_err(|e| PolicyError::Evaluation(format!("{e:#}")))?;
        let json =
            serde_json::to_value(&value).map_err(|e| PolicyError::Decision(e.to_string()))?;
        serde_json::from_value(json).map_err(|e| PolicyError::Decision(format!("{e}: {value}")))
    }
}
