//! `ai/__NAME__`: an ai provider plugin (embed, classify) by hashed bag of words: each word of
//! a text adds 1 to one of 256 dimensions picked by its FNV-1a hash, and the vector is scaled
//! to length 1. Deterministic and offline, not a language model: replace `vector` with a real
//! model's embeddings and keep the rest. The runtime checks params and results against the ai
//! contract, so only what the schemas cannot say is checked here.

use serde_json::{Value, json};
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

const DIMENSIONS: usize = 256;
const MODEL: &str = "__NAME__-hashed-words-256";

pub struct Engine;

impl Plugin for Engine {
    type Instance = Tenant;

    fn new() -> Self {
        Engine
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "ai",
            "name": "__NAME__",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "ai/__NAME__: embeddings and classification by hashed bag of words (a plugin skeleton)",
            "capabilities": ["deterministic"],
            "actions": ["embed", "classify"],
            "config_schema": {"type": "object", "additionalProperties": false, "properties": {}}
        })
    }

    fn start(&self, _tenant: &str, _config: Value) -> Result<Tenant, PluginError> {
        Ok(Tenant)
    }
}

/// One tenant's instance; the engine keeps no state, so tenants share nothing.
pub struct Tenant;

fn fnv1a(word: &str) -> u64 {
    word.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn vector(text: &str) -> Vec<f64> {
    let mut v = vec![0.0; DIMENSIONS];
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        v[(fnv1a(word) % DIMENSIONS as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    (dot / (na * nb)).clamp(-1.0, 1.0)
}

fn texts(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

impl Instance for Tenant {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        let p = &call.params;
        match call.action.as_str() {
            "embed" => {
                let vectors: Vec<Vec<f64>> = texts(&p["texts"]).map(vector).collect();
                Ok(json!({"model": MODEL, "dimensions": DIMENSIONS, "vectors": vectors}))
            }
            "classify" => {
                let labels = p["labels"].as_array().cloned().unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                for (i, label) in labels.iter().enumerate() {
                    if !seen.insert(label["name"].as_str().unwrap_or_default()) {
                        let pointer = format!("/labels/{i}/name");
                        return Err(PluginError::field(
                            "params_unprocessable",
                            &pointer,
                            "label names must be unique",
                        ));
                    }
                }
                let text = vector(p["text"].as_str().unwrap_or_default());
                let mut scores = Vec::new();
                for label in &labels {
                    let mut centroid = vec![0.0; DIMENSIONS];
                    for example in texts(&label["examples"]) {
                        for (c, x) in centroid.iter_mut().zip(vector(example)) {
                            *c += x;
                        }
                    }
                    scores.push((label["name"].clone(), cosine(&text, &centroid)));
                }
                // The first of equals wins: only a strictly better score replaces it.
                let mut winner = 0;
                for (i, (_, score)) in scores.iter().enumerate() {
                    if *score > scores[winner].1 {
                        winner = i;
                    }
                }
                let label = scores.get(winner).map(|(name, _)| name.clone());
                let scores: Vec<Value> = scores
                    .into_iter()
                    .map(|(label, score)| json!({"label": label, "score": score}))
                    .collect();
                Ok(json!({"label": label, "scores": scores}))
            }
            other => Err(PluginError::new(
                "action_not_found",
                format!("ai/__NAME__ has no action {other:?}"),
            )),
        }
    }
}

export_plugin!(Engine);
