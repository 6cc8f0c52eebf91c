#![doc = include_str!("docs.md")]

mod config;
mod ngram;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use switchyard_contracts::SchemaError;
use switchyard_spi::{
    ErrorCode, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext,
};

use crate::contract::{Classification, ClassifyParams, EmbedParams, Embeddings, Score};
use crate::engine::{Engine, Instance, describe};

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
            descriptor: describe("local", &["embed", "classify"])
                .summary(
                    "Offline, deterministic text vectors from hashed character n-grams \
                     (feature hashing, L2-normalised) and nearest-label cosine \
                     classification. Not a language model: it compares spellings, not \
                     meanings.",
                )
                .capabilities(&["deterministic", "offline"])
                .config::<config::LocalAiConfig>()
                .build(),
        }
    }
}

#[async_trait]
impl ProviderFactory for LocalAiFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Instance(LocalAi {
            embedder: config::parse(ctx.config)?,
        })))
    }
}

struct LocalAi {
    embedder: Embedder,
}

#[async_trait]
impl Engine for LocalAi {
    const NAME: &'static str = "local";
    const DEPENDENCY: &'static str = "ngram";

    async fn embed(&self, p: EmbedParams) -> Result<Embeddings, ProviderError> {
        let embedder = self.embedder;
        // One model per config: vectors of another would not be comparable, so another name
        // is refused rather than answered with this one's (a rule no schema states: 422).
        if let Some(model) = p.model.as_ref().filter(|m| **m != embedder.model()) {
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/model",
                format!(
                    "ai/local's model is {:?} in this tenant's config, not {model:?}",
                    embedder.model()
                ),
            ));
        }
        blocking(move || Ok(embed(embedder, p))).await
    }

    async fn classify(&self, p: ClassifyParams) -> Result<Classification, ProviderError> {
        let embedder = self.embedder;
        blocking(move || classify(embedder, p)).await
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        Ok(Some(self.embedder.model()))
    }
}

/// Hashing a full batch is pure CPU work (up to 256 texts of 32 KiB): off the async workers,
/// so other calls keep being served meanwhile.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ProviderError::internal(format!("ai/local worker failed: {e}")))?
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
            // Unique names across items is a rule no JSON Schema states: 422, not 400.
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
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

/// Always hosted: the embedded default.
pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(LocalAiFactory::new())))
}
