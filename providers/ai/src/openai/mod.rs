#![doc = include_str!("docs.md")]

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use switchyard_contracts::SchemaError;
use switchyard_egress::Egress;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    ErrorCode, EventStream, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory,
    StartContext,
};

use crate::contract::{
    ChatChunk, ChatMessage, ChatParams, ChatResult, EmbedParams, Embeddings, Usage,
};
use crate::engine::{Engine, Instance, describe};
use crate::upstream::{SseEvent, Translate, Upstream, broke_off, off_contract};
use config::OpenAiConfig;

/// What an unconfigured tenant is told, on every call and in its health.
const UNCONFIGURED: &str = "ai/openai is not configured for this tenant: configure base_url (and api_key, chat_model, embedding_model)";

/// What the answers are checked to be.
const SHAPE: &str = "OpenAI's shape";

/// Describes the engine. Each tenant's instance holds its own server, key and HTTP client.
pub struct OpenAiFactory {
    descriptor: ProviderDescriptor,
    /// The operator's egress ceiling every tenant's `base_url` (and each redirect from it) is
    /// held to.
    egress: Egress,
}

impl Default for OpenAiFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenAiFactory {
    pub fn new() -> Self {
        OpenAiFactory {
            descriptor: describe("openai", &["chat", "embed"])
                .summary(
                    "Chat (whole or streamed) and embeddings from the tenant's \
                     OpenAI-compatible server (OpenAI, or a local server speaking its API).",
                )
                .capabilities(&["openai_compatible", "chat_stream"])
                .config::<config::OpenAiConfigFields>()
                .build(),
            egress: Egress::default(),
        }
    }

    /// Holds every tenant's server to the operator's egress ceiling (by default: no loopback,
    /// private or link-local address).
    pub fn with_egress(mut self, ceiling: &EgressCeiling) -> Self {
        self.egress = Egress::new(ceiling);
        self
    }
}

#[async_trait]
impl ProviderFactory for OpenAiFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let server = match config::parse(ctx.config)? {
            None => None,
            Some(config) => Some(Server {
                upstream: Upstream::connect(&self.egress, config.endpoint.clone()).await?,
                config,
            }),
        };
        Ok(Arc::new(Instance(OpenAi { server })))
    }
}

struct Server {
    config: OpenAiConfig,
    upstream: Upstream,
}

struct OpenAi {
    /// `None` until the tenant configures a server.
    server: Option<Server>,
}

/// The parts of OpenAI's chat completion answer the contract uses.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct AnswerMessage {
    /// `null` when the model answered with tool calls only; the contract has no tools, so
    /// that is an empty message.
    #[serde(default)]
    content: Option<String>,
}

/// One `chat.completion.chunk` of a streamed answer: its `choices` carry a piece of the
/// message, then the finish reason; with `include_usage` a last chunk has no choices and the
/// usage.
#[derive(Deserialize)]
struct CompletionChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    /// Some servers (vLLM, LocalAI) report a failure past the first chunk as an event of its
    /// own.
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: AnswerMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct EmbeddingList {
    #[serde(default)]
    model: Option<String>,
    data: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    index: usize,
    embedding: Vec<f64>,
}

impl OpenAi {
    fn server(&self) -> Result<&Server, ProviderError> {
        self.server
            .as_ref()
            .ok_or_else(|| ProviderError::new(ErrorCode::ProviderNotConfigured, UNCONFIGURED))
    }
}

#[async_trait]
impl Engine for OpenAi {
    const NAME: &'static str = "openai";
    const DEPENDENCY: &'static str = "server";

    async fn chat(&self, p: ChatParams) -> Result<ChatResult, ProviderError> {
        self.server()?.chat(p).await
    }

    async fn chat_stream(&self, p: ChatParams) -> Result<EventStream, ProviderError> {
        self.server()?.chat_stream(p).await
    }

    async fn embed(&self, p: EmbedParams) -> Result<Embeddings, ProviderError> {
        self.server()?.embed(p).await
    }

    /// `GET /models`: the cheapest request that proves the server is there and takes the key.
    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let server = self.server()?;
        server
            .upstream
            .probe(server.authorised(server.upstream.get("models")))
            .await?;
        Ok(None)
    }
}

impl Server {
    /// The model a call names, else the configured one (`field`), else the call cannot be
    /// made.
    fn model<'a>(
        &self,
        asked: &'a Option<String>,
        configured: &'a Option<String>,
        field: &str,
    ) -> Result<&'a str, ProviderError> {
        asked.as_deref().or(configured.as_deref()).ok_or_else(|| {
            ProviderError::field(
                ErrorCode::ProviderNotConfigured,
                &format!("/{field}"),
                format!(
                    "ai/openai has no {field} in this tenant's config and the call named no model"
                ),
            )
        })
    }

    /// The chat completion request for `p`, which answers in the model it names.
    fn chat_request<'a>(
        &'a self,
        p: &'a ChatParams,
    ) -> Result<(serde_json::Value, &'a str), ProviderError> {
        let model = self.model(&p.model, &self.config.chat_model, "chat_model")?;
        let mut request = json!({"model": model, "messages": p.messages});
        if let Some(temperature) = p.temperature {
            request["temperature"] = json!(temperature);
        }
        if let Some(max_tokens) = p.max_tokens {
            request["max_tokens"] = json!(max_tokens);
        }
        Ok((request, model))
    }

    async fn chat(&self, p: ChatParams) -> Result<ChatResult, ProviderError> {
        let (request, model) = self.chat_request(&p)?;
        let completion: Completion = self
            .upstream
            .send(
                self.authorised(self.upstream.post("chat/completions"))
                    .json(&request),
                SHAPE,
            )
            .await?;
        let choice = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| off_contract("a chat completion without choices"))?;
        Ok(ChatResult {
            message: ChatMessage {
                role: "assistant".into(),
                content: choice.message.content.unwrap_or_default(),
            },
            model: completion.model.unwrap_or_else(|| model.to_owned()),
            finish_reason: choice.finish_reason,
            usage: completion.usage,
        })
    }

    /// The same request with `stream`, and the usage asked for in a last chunk (servers that
    /// do not know `stream_options` answer without it: the last chunk's usage is then null).
    async fn chat_stream(&self, p: ChatParams) -> Result<EventStream, ProviderError> {
        let (mut request, model) = self.chat_request(&p)?;
        request["stream"] = json!(true);
        request["stream_options"] = json!({"include_usage": true});
        let translate = Chunks {
            model: model.to_owned(),
            finish_reason: None,
            usage: None,
        };
        self.upstream
            .open_stream(
                self.authorised(self.upstream.post("chat/completions"))
                    .header("accept", "text/event-stream")
                    .json(&request),
                translate,
            )
            .await
    }

    async fn embed(&self, p: EmbedParams) -> Result<Embeddings, ProviderError> {
        let model = self.model(&p.model, &self.config.embedding_model, "embedding_model")?;
        let list: EmbeddingList = self
            .upstream
            .send(
                self.authorised(self.upstream.post("embeddings"))
                    .json(&json!({"model": model, "input": p.texts})),
                SHAPE,
            )
            .await?;
        let mut data = list.data;
        data.sort_by_key(|e| e.index);
        let in_order = data.iter().enumerate().all(|(i, e)| e.index == i);
        if data.len() != p.texts.len() || !in_order {
            return Err(off_contract(&format!(
                "{} embeddings for {} texts",
                data.len(),
                p.texts.len()
            )));
        }
        let dimensions = data.first().map_or(0, |e| e.embedding.len());
        if dimensions == 0 || data.iter().any(|e| e.embedding.len() != dimensions) {
            return Err(off_contract("embeddings of differing or zero length"));
        }
        Ok(Embeddings {
            model: list.model.unwrap_or_else(|| model.to_owned()),
            dimensions,
            vectors: data.into_iter().map(|e| e.embedding).collect(),
        })
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.endpoint.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }
}

/// A streamed chat completion as chunks: each piece of content as it comes, and at
/// `data: [DONE]` the last chunk with what the chunks said on the way (the model as the
/// server names it, the finish reason, the usage).
struct Chunks {
    /// The model asked for, until the server names the one that answers.
    model: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl Translate for Chunks {
    fn event(&mut self, event: SseEvent) -> Result<Option<ChatChunk>, ProviderError> {
        if event.data == "[DONE]" {
            return Ok(Some(ChatChunk::last(
                self.finish_reason.take(),
                std::mem::take(&mut self.model),
                self.usage.take(),
            )));
        }
        let chunk: CompletionChunk = serde_json::from_str(&event.data).map_err(|_| broke_off())?;
        if chunk.error.is_some() {
            return Err(broke_off());
        }
        if let Some(model) = chunk.model {
            self.model = model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(None);
        };
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        Ok(choice
            .delta
            .content
            .filter(|text| !text.is_empty())
            .map(|delta| ChatChunk::Delta { delta }))
    }
}

/// Always hosted: each tenant configures its own server; unconfigured, it says so.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(
        OpenAiFactory::new().with_egress(&host.tenancy.egress),
    )))
}
