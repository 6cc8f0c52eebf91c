//! The ai domain's params and results (`contracts/schemas/domains/ai.json`) as Rust types,
//! shared by every engine so that they read and answer exactly the same shapes.

use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
pub(crate) struct ChatMessage {
    pub(crate) role: String,
    pub(crate) content: String,
}

#[derive(Deserialize)]
pub(crate) struct ChatParams {
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) temperature: Option<f64>,
    pub(crate) max_tokens: Option<u32>,
    /// Overrides the engine's configured chat model: a router picks the model per call.
    pub(crate) model: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct ChatResult {
    /// Always the assistant's.
    pub(crate) message: ChatMessage,
    /// The model that answered, as the server names it.
    pub(crate) model: String,
    pub(crate) finish_reason: Option<String>,
    pub(crate) usage: Option<Usage>,
}

/// One item of a streamed chat: the assistant's message in pieces, in order, then one last
/// item with what [`ChatResult`] says besides the message (its `delta` empty), so that the
/// pieces and the last item together say everything a whole answer would.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum ChatChunk {
    /// `{"delta": "<text>"}`: the next piece of the message, never empty.
    Delta { delta: String },
    /// `{"delta": "", "finish_reason", "model", "usage"}`: the end of the answer.
    Last {
        delta: String,
        finish_reason: Option<String>,
        model: String,
        usage: Option<Usage>,
    },
}

impl ChatChunk {
    pub(crate) fn last(finish_reason: Option<String>, model: String, usage: Option<Usage>) -> Self {
        ChatChunk::Last {
            delta: String::new(),
            finish_reason,
            model,
            usage,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) total_tokens: u64,
}

#[derive(Deserialize)]
pub(crate) struct EmbedParams {
    pub(crate) texts: Vec<String>,
    /// Overrides the engine's configured embedding model.
    pub(crate) model: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Embeddings {
    /// What made the vectors; vectors of different models are not comparable.
    pub(crate) model: String,
    pub(crate) dimensions: usize,
    pub(crate) vectors: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
pub(crate) struct ClassifyParams {
    pub(crate) text: String,
    pub(crate) labels: Vec<Label>,
}

#[derive(Deserialize)]
pub(crate) struct Label {
    pub(crate) name: String,
    pub(crate) examples: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct Classification {
    pub(crate) label: String,
    pub(crate) scores: Vec<Score>,
}

#[derive(Serialize)]
pub(crate) struct Score {
    pub(crate) label: String,
    pub(crate) score: f64,
}
