//! The `ai` domain suite (`contracts/schemas/domains/ai.json`), one file per action.
//!
//! Engines serve different parts of the domain, so every check requires the action it calls
//! (`embed`, `classify`); behaviour only some engines promise is gated on the capability they
//! declare (`deterministic`). `chat` has no engine that runs without a server, so it is tested
//! with `ai/openai`'s own tests (providers/ai/tests/openai.rs).

mod classify;
mod embed;
mod tenancy;

use serde_json::{Value, json};
use switchyard_spi::testkit::TenantInstance;

use crate::{Check, Level, Subject, check};
use classify::*;
use embed::*;
use tenancy::*;

/// What a built-in engine's fixture knows beyond the contract.
#[derive(Debug)]
pub struct Fixture {
    /// The tenant config that makes the engine work (e.g. the server `ai/openai` talks to).
    /// Default: `{}`, which is all `ai/local` needs.
    pub config: Value,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture { config: json!({}) }
    }
}

/// `tenant`'s instance, with the config that makes the engine work.
async fn tenant(s: &Subject, tenant: &str) -> TenantInstance {
    let config = s.fixture::<Fixture>().config.clone();
    s.tenant_with_config(tenant, config).await
}

/// Every check with its level, in the order reports list them.
pub fn checks() -> Vec<Check> {
    vec![
        // embed
        check!(
            Level::Core,
            one_vector_per_text_in_order_all_of_the_stated_dimension,
            requires = ["action:embed"]
        ),
        check!(
            Level::Core,
            shared_words_are_closer_than_none,
            requires = ["action:embed"]
        ),
        check!(
            Level::Core,
            the_same_texts_give_the_same_vectors_on_every_call,
            requires = ["action:embed", "deterministic"]
        ),
        check!(
            Level::Core,
            params_outside_the_schema_are_refused_with_pointers,
            requires = ["action:embed"]
        ),
        // classify
        check!(
            Level::Core,
            the_text_gets_the_label_its_words_match,
            requires = ["action:classify"]
        ),
        check!(
            Level::Core,
            classification_is_the_same_on_every_call,
            requires = ["action:classify", "deterministic"]
        ),
        check!(
            Level::Core,
            a_text_like_no_label_picks_the_first_of_equals,
            requires = ["action:classify", "deterministic"]
        ),
        check!(
            Level::Core,
            labels_must_be_unique_and_at_least_two,
            requires = ["action:classify"]
        ),
        // tenancy
        check!(
            Level::Isolation,
            every_tenant_gets_the_same_vectors_under_the_same_config,
            requires = ["action:embed", "deterministic"]
        ),
        // `ai/local`'s config fields and model names: only its fixture says the engine is the
        // hashed character n-gram embedder.
        check!(
            Level::Isolation,
            a_tenants_config_changes_only_its_own_vectors,
            requires = ["action:embed", "fixture:hashed_ngrams"]
        ),
    ]
}

/// The vectors of an `embed` answer.
fn vectors(answer: &Value) -> Vec<Vec<f64>> {
    answer["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            v.as_array()
                .expect("a vector")
                .iter()
                .map(|x| x.as_f64().expect("a number"))
                .collect()
        })
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}
