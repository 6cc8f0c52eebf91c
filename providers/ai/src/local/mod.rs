#![doc = include_str!("docs.md")]

mod config;
mod ngram;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_contracts::domains;
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, parse_params, to_result,
};

use ngram::Embedder;

/// Describes the engine; an instance is just the tenant's embedder settings, so there is no
/// shared state to own.
pub struct LocalAiFactory {
    descriptor: ProviderDescriptor,
}

impl Default for LocalAiFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalAiFactory {
    pub fn new() -> Self {
        LocalAiFactory {
            descriptor: ProviderDescriptor {
                domain: "ai".into(),
                name: "local".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: "Offline, deterministic text vectors from hashed character n-grams \
                          (feature hashing, L2-normalised) and nearest-label cosine \
                          classification. Not a language model: it compares spellings, not \
                          meanings."
                    .into(),
                capabilities: vec!["deterministic".into(), "offline".into()],
                config_schema: config::schema(),
                actions: domains::actions_named("ai", &["embed", "classify"]),
            },
        }
    }
}

#[async_trait]
impl ProviderFactory for LocalAiFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(LocalAi {
            embedder: config::parse(ctx.config)?,
        }))
    }
}

struct LocalAi {
    embedder: Embedder,
}

#[derive(Deserialize)]
struct EmbedParams {
    texts: Vec<String>,
}

#[derive(Serialize)]
struct Embeddings {
    model: String,
    dimensions: usize,
    vectors: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct ClassifyParams {
    text: String,
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct Label {
    name: String,
    examples: Vec<String>,
}

#[derive(Serialize)]
struct Classification {
    label: String,
    scores: Vec<Score>,
}

#[derive(Serialize)]
struct Score {
    label: String,
    score: f64,
}

#[async_trait]
impl Provider for LocalAi {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let embedder = self.embedder;
        // Hashing a full batch is pure CPU work (up to 256 texts of 32 KiB): off the async
        // workers, so other calls keep being served meanwhile.
        let work = move || match call.action.as_str() {
            "embed" => to_result(embed(embedder, parse_params(call.params)?)),
            "classify" => to_result(classify(embedder, parse_params(call.params)?)?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("ai/local has no action {other:?}"),
            )),
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ProviderError::internal(format!("ai/local worker failed: {e}")))?
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(vec![DependencyHealth {
            name: "ngram".into(),
            status: HealthStatus::Up,
            detail: Some(self.embedder.model()),
        }])
    }
}

fn embed(embedder: Embedder, p: EmbedParams) -> Embeddings {
    Embeddings {
        model: embedder.model(),
        dimensions: embedder.dimensions,
        vectors: p.texts.iter().map(|text| embedder.embed(text)).collect(),
    }
}

/// Scores each label by the cosine of the text's vector with the centroid of the label's
/// examples; the best score wins, the first label given among equals.
fn classify(embedder: Embedder, p: ClassifyParams) -> Result<Classification, ProviderError> {
    let mut seen = HashSet::new();
    for (i, label) in p.labels.iter().enumerate() {
        if !seen.insert(label.name.as_str()) {
            return Err(ProviderError::invalid_param(
                &format!("/labels/{i}/name"),
                format!("label {:?} is given twice", label.name),
            ));
        }
    }
    let text = embedder.embed(&p.text);
    let scores: Vec<Score> = p
        .labels
        .into_iter()
        .map(|label| {
            let examples: Vec<Vec<f64>> =
                label.examples.iter().map(|e| embedder.embed(e)).collect();
            let centre = ngram::centroid(&examples, embedder.dimensions);
            Score {
                score: ngram::cosine(&text, &centre),
                label: label.name,
            }
        })
        .collect();
    let best = scores
        .iter()
        .fold(None::<&Score>, |best, s| match best {
            Some(b) if b.score >= s.score => Some(b),
            _ => Some(s),
        })
        .map(|s| s.label.clone())
        .ok_or_else(|| ProviderError::invalid_param("/labels", "no labels given"))?;
    Ok(Classification {
        label: best,
        scores,
    })
}
