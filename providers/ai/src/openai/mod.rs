#![doc = include_str!("docs.md")]

mod config;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::SchemaError;
use switchyard_egress::{Egress, Redirects, Refusal};
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    ErrorCode, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext,
};

use crate::contract::{ChatMessage, ChatParams, ChatResult, EmbedParams, Embeddings, Usage};
use crate::engine::{Engine, Instance, describe};
use config::OpenAiConfig;

/// What an unconfigured tenant is told, on every call and in its health.
const UNCONFIGURED: &str = "ai/openai is not configured for this tenant: configure base_url (and api_key, chat_model, embedding_model)";

/// How long health waits for the server's model list.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The config field every egress refusal points at: the only address the tenant gives.
const BASE_URL: &str = "/base_url";

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
                    "Chat and embeddings from the tenant's OpenAI-compatible server \
                     (OpenAI, or a local server speaking its API).",
                )
                .capabilities(&["openai_compatible"])
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
            Some(config) => {
                // Refused at configure, before the tenant's key is ever sent: a server whose
                // address the operator does not allow. The client's resolver checks again at
                // connect time, and every redirect hop is checked like the first.
                self.egress
                    .vet_url(&config.base_url)
                    .await
                    .map_err(|refusal| refusal.at(BASE_URL))?;
                let client = self
                    .egress
                    .client(Redirects::Checked)
                    .timeout(config.timeout)
                    .user_agent(concat!("switchyard-ai/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| ProviderError::internal(format!("HTTP client: {e}")))?;
                Some(Server { config, client })
            }
        };
        Ok(Arc::new(Instance(OpenAi { server })))
    }
}

struct Server {
    config: OpenAiConfig,
    client: Client,
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

#[derive(Deserialize)]
struct AnswerMessage {
    /// `null` when the model answered with tool calls only; the contract has no tools, so
    /// that is an empty message.
    #[serde(default)]
    content: Option<String>,
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

    async fn embed(&self, p: EmbedParams) -> Result<Embeddings, ProviderError> {
        self.server()?.embed(p).await
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        self.server()?.list_models().await?;
        Ok(None)
    }
}

impl Server {
    fn model<'a>(&self, model: &'a Option<String>, field: &str) -> Result<&'a str, ProviderError> {
        model.as_deref().ok_or_else(|| {
            ProviderError::field(
                ErrorCode::ProviderNotConfigured,
                &format!("/{field}"),
                format!("ai/openai has no {field} in this tenant's config"),
            )
        })
    }

    async fn chat(&self, p: ChatParams) -> Result<ChatResult, ProviderError> {
        let model = self.model(&self.config.chat_model, "chat_model")?;
        let mut request = json!({"model": model, "messages": p.messages});
        if let Some(temperature) = p.temperature {
            request["temperature"] = json!(temperature);
        }
        if let Some(max_tokens) = p.max_tokens {
            request["max_tokens"] = json!(max_tokens);
        }
        let completion: Completion = self.post("chat/completions", &request).await?;
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

    async fn embed(&self, p: EmbedParams) -> Result<Embeddings, ProviderError> {
        let model = self.model(&self.config.embedding_model, "embedding_model")?;
        let list: EmbeddingList = self
            .post("embeddings", &json!({"model": model, "input": p.texts}))
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

    /// `GET /models`: the cheapest request that proves the server is there and takes the key.
    async fn list_models(&self) -> Result<(), ProviderError> {
        let response = self
            .authorised(self.client.get(self.url("models")))
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error(status))
        }
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ProviderError> {
        let response = self
            .authorised(self.client.post(self.url(path)))
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(status_error(status));
        }
        // The parser's message would quote the answer: it is not the tenant's to read.
        serde_json::from_str(&text)
            .map_err(|_| off_contract("an answer that is not OpenAI's shape"))
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.config.base_url.as_str().trim_end_matches('/')
        )
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// No answer: the guard refused the address, or the server is down, unreachable or too
    /// slow. Says which, never why in the remote's or the resolver's words (they could tell
    /// the tenant about hosts it cannot reach).
    fn transport_error(&self, error: reqwest::Error) -> ProviderError {
        let error = error.without_url();
        if let Some(refusal) = Refusal::of(&error) {
            return refusal.at(BASE_URL);
        }
        if error.is_timeout() {
            return ProviderError::new(
                ErrorCode::Timeout,
                format!(
                    "the AI server did not answer within {} ms",
                    self.config.timeout.as_millis()
                ),
            );
        }
        tracing::warn!(error = %error, "ai/openai server unreachable");
        ProviderError::unavailable(if error.is_connect() {
            "the AI server is unreachable: could not connect"
        } else {
            "the AI server is unreachable: the request failed"
        })
    }
}

/// A non-2xx answer, mapped to a stable code by its status; the detail names the status class
/// only, never the server's words (the server is the tenant's, but what answers at an address
/// is not the tenant's to learn through the platform):
/// 401/403 → `provider_unavailable`, not retryable (the configured key is refused);
/// 429 → `rate_limited`, retryable; 5xx → `provider_unavailable`, retryable;
/// any other 4xx → `params_invalid` (too long a prompt, an unknown model, …);
/// 3xx (a redirect past the hops followed) → `provider_unavailable`, not retryable.
fn status_error(status: StatusCode) -> ProviderError {
    let class = format!("{}xx", status.as_u16() / 100);
    match status.as_u16() {
        401 | 403 => ProviderError::unavailable(format!(
            "the AI server answered {class}: it refused this tenant's API key; check api_key"
        ))
        .with_retryable(false),
        429 => ProviderError::new(
            ErrorCode::RateLimited,
            format!("the AI server answered {class}: it is rate limiting this tenant"),
        ),
        500..=599 => ProviderError::unavailable(format!("the AI server answered {class}")),
        400..=499 => ProviderError::new(
            ErrorCode::ParamsInvalid,
            format!("the AI server answered {class}: it refused the request"),
        ),
        _ => ProviderError::unavailable(format!("the AI server answered {class}; check base_url"))
            .with_retryable(false),
    }
}

fn off_contract(what: &str) -> ProviderError {
    ProviderError::unavailable(format!("the AI server answered {what}")).with_retryable(false)
}

/// Always hosted: each tenant configures its own server; unconfigured, it says so.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(
        OpenAiFactory::new().with_egress(&host.tenancy.egress),
    )))
}
