#![doc = include_str!("docs.md")]

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::SchemaError;
use switchyard_egress::Egress;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    ErrorCode, EventStream, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory,
    StartContext,
};

use crate::contract::{ChatChunk, ChatMessage, ChatParams, ChatResult, Usage};
use crate::engine::{Engine, Instance, describe};
use crate::upstream::{SseEvent, Translate, Upstream, broke_off, status_error};
use config::AnthropicConfig;

/// What an unconfigured tenant is told, on every call and in its health.
const UNCONFIGURED: &str =
    "ai/anthropic is not configured for this tenant: configure base_url (and api_key, chat_model)";

/// What the answers are checked to be.
const SHAPE: &str = "the Messages API's shape";

/// Describes the engine. Each tenant's instance holds its own server, key and HTTP client.
pub struct AnthropicFactory {
    descriptor: ProviderDescriptor,
    /// The operator's egress ceiling every tenant's `base_url` (and each redirect from it) is
    /// held to.
    egress: Egress,
}

impl Default for AnthropicFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl AnthropicFactory {
    pub fn new() -> Self {
        AnthropicFactory {
            descriptor: describe("anthropic", &["chat"])
                .summary(
                    "Chat (whole or streamed) from Anthropic's Messages API, or a server \
                     speaking it, with the tenant's key.",
                )
                .capabilities(&["chat_stream"])
                .config::<config::AnthropicConfigFields>()
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
impl ProviderFactory for AnthropicFactory {
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
        Ok(Arc::new(Instance(Anthropic { server })))
    }
}

struct Server {
    config: AnthropicConfig,
    upstream: Upstream,
}

struct Anthropic {
    /// `None` until the tenant configures a server.
    server: Option<Server>,
}

/// The parts of a Messages API answer the contract uses.
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    model: Option<String>,
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// A block of the answer: text, or another kind (tool use, thinking) the contract has no
/// place for.
#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// Anthropic counts the prompt's tokens read from or written to its cache apart from the
/// rest; the contract's prompt tokens are all of them, as OpenAI counts them.
#[derive(Deserialize, Default, Clone, Copy)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// A stream's `message_delta` repeats counts that grew since `message_start`; a count it
    /// leaves out stays as it was.
    fn update(&mut self, later: AnthropicUsage) {
        let keep = |now: &mut Option<u64>, later: Option<u64>| {
            if later.is_some() {
                *now = later;
            }
        };
        keep(&mut self.input_tokens, later.input_tokens);
        keep(&mut self.output_tokens, later.output_tokens);
        keep(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        keep(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
    }

    fn contract(self) -> Usage {
        let prompt_tokens = self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0);
        let completion_tokens = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Why the model stopped, in the words the domain (and OpenAI) use; a reason with no such
/// word is passed on as Anthropic says it.
fn finish_reason(stop_reason: String) -> String {
    match stop_reason.as_str() {
        "end_turn" | "stop_sequence" => "stop".into(),
        "max_tokens" => "length".into(),
        "tool_use" => "tool_calls".into(),
        "refusal" => "content_filter".into(),
        _ => stop_reason,
    }
}

impl Anthropic {
    fn server(&self) -> Result<&Server, ProviderError> {
        self.server
            .as_ref()
            .ok_or_else(|| ProviderError::new(ErrorCode::ProviderNotConfigured, UNCONFIGURED))
    }
}

#[async_trait]
impl Engine for Anthropic {
    const NAME: &'static str = "anthropic";
    const DEPENDENCY: &'static str = "server";

    async fn chat(&self, p: ChatParams) -> Result<ChatResult, ProviderError> {
        self.server()?.chat(p).await
    }

    async fn chat_stream(&self, p: ChatParams) -> Result<EventStream, ProviderError> {
        self.server()?.chat_stream(p).await
    }

    /// `GET /v1/models`: the cheapest request that proves the server is there and takes the
    /// key.
    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let server = self.server()?;
        server
            .upstream
            .probe(server.authorised(server.upstream.get("v1/models")))
            .await?;
        Ok(None)
    }
}

impl Server {
    /// The Messages API request for `p`, and the model it names. The domain's system
    /// messages, wherever they stand, become the request's top-level `system` (the Messages
    /// API has no system role), in their order.
    fn request<'a>(&'a self, p: &'a ChatParams) -> Result<(Value, &'a str), ProviderError> {
        let model = p
            .model
            .as_deref()
            .or(self.config.chat_model.as_deref())
            .ok_or_else(|| {
                ProviderError::field(
                    ErrorCode::ProviderNotConfigured,
                    "/chat_model",
                    "ai/anthropic has no chat_model in this tenant's config and the call named no model",
                )
            })?;
        if let Some(temperature) = p.temperature.filter(|t| *t > 1.0) {
            // The domain allows up to 2 (OpenAI's range); Anthropic's ends at 1.
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/temperature",
                format!("ai/anthropic takes a temperature from 0 to 1, not {temperature}"),
            ));
        }
        let (system, turns): (Vec<&ChatMessage>, Vec<&ChatMessage>) =
            p.messages.iter().partition(|m| m.role == "system");
        if turns.is_empty() {
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/messages",
                "ai/anthropic needs a user or assistant message besides the system ones",
            ));
        }
        let mut request = json!({
            "model": model,
            "max_tokens": p.max_tokens.unwrap_or(self.config.default_max_tokens),
            "messages": turns,
        });
        if !system.is_empty() {
            let system: Vec<&str> = system.iter().map(|m| m.content.as_str()).collect();
            request["system"] = json!(system.join("\n\n"));
        }
        if let Some(temperature) = p.temperature {
            request["temperature"] = json!(temperature);
        }
        Ok((request, model))
    }

    async fn chat(&self, p: ChatParams) -> Result<ChatResult, ProviderError> {
        let (request, model) = self.request(&p)?;
        let message: Message = self
            .upstream
            .send(
                self.authorised(self.upstream.post("v1/messages"))
                    .json(&request),
                SHAPE,
            )
            .await?;
        let content: String = message
            .content
            .iter()
            .filter(|block| block.kind == "text")
            .filter_map(|block| block.text.as_deref())
            .collect();
        Ok(ChatResult {
            message: ChatMessage {
                role: "assistant".into(),
                content,
            },
            model: message.model.unwrap_or_else(|| model.to_owned()),
            finish_reason: message.stop_reason.map(finish_reason),
            usage: message.usage.map(AnthropicUsage::contract),
        })
    }

    async fn chat_stream(&self, p: ChatParams) -> Result<EventStream, ProviderError> {
        let (mut request, model) = self.request(&p)?;
        request["stream"] = json!(true);
        let translate = Events {
            model: model.to_owned(),
            stop_reason: None,
            usage: None,
        };
        self.upstream
            .open_stream(
                self.authorised(self.upstream.post("v1/messages"))
                    .header("accept", "text/event-stream")
                    .json(&request),
                translate,
            )
            .await
    }

    fn authorised(&self, request: RequestBuilder) -> RequestBuilder {
        let request = request.header("anthropic-version", &self.config.version);
        match &self.config.endpoint.api_key {
            Some(key) => request.header("x-api-key", key.expose()),
            None => request,
        }
    }
}

/// One event of a streamed message, by its `type` (the same as the SSE event's name).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockDelta {
        delta: Delta,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    MessageStop,
    Error {
        error: StreamError,
    },
    /// `ping`, `content_block_start`, `content_block_stop` and the kinds Anthropic adds later
    /// (its versioning policy: "we may add new event types").
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct StreamError {
    #[serde(rename = "type")]
    kind: String,
}

/// A streamed message as chunks: each text delta as it comes, and at `message_stop` the last
/// chunk with what the events said on the way.
struct Events {
    /// The model asked for, until `message_start` names the one that answers.
    model: String,
    stop_reason: Option<String>,
    usage: Option<AnthropicUsage>,
}

impl Translate for Events {
    fn event(&mut self, event: SseEvent) -> Result<Option<ChatChunk>, ProviderError> {
        let event: StreamEvent = serde_json::from_str(&event.data).map_err(|_| broke_off())?;
        match event {
            StreamEvent::MessageStart { message } => {
                if let Some(model) = message.model {
                    self.model = model;
                }
                self.usage = message.usage;
                Ok(None)
            }
            // Text only: a tool call's JSON or a thinking block is no part of the message.
            StreamEvent::ContentBlockDelta { delta } if delta.kind == "text_delta" => Ok(delta
                .text
                .filter(|text| !text.is_empty())
                .map(|delta| ChatChunk::Delta { delta })),
            StreamEvent::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                if let Some(later) = usage {
                    self.usage.get_or_insert_default().update(later);
                }
                Ok(None)
            }
            StreamEvent::MessageStop => Ok(Some(ChatChunk::last(
                self.stop_reason.take().map(finish_reason),
                std::mem::take(&mut self.model),
                self.usage.take().map(AnthropicUsage::contract),
            ))),
            StreamEvent::Error { error } => Err(stream_error(&error.kind)),
            StreamEvent::ContentBlockDelta { .. } | StreamEvent::Other => Ok(None),
        }
    }
}

/// An `error` event, mapped as the HTTP status Anthropic documents for its type would be
/// (a stream that fails after it started cannot change its status any more).
fn stream_error(kind: &str) -> ProviderError {
    let status = match kind {
        "invalid_request_error" => StatusCode::BAD_REQUEST,
        "authentication_error" => StatusCode::UNAUTHORIZED,
        "permission_error" => StatusCode::FORBIDDEN,
        "not_found_error" => StatusCode::NOT_FOUND,
        "request_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "rate_limit_error" => StatusCode::TOO_MANY_REQUESTS,
        "overloaded_error" => StatusCode::from_u16(529).expect("529 is a status code"),
        // `api_error` and any type added later: the server's own failure.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    status_error(status)
}

/// Always hosted: each tenant configures its own server; unconfigured, it says so.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(
        AnthropicFactory::new().with_egress(&host.tenancy.egress),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Events {
        Events {
            model: "asked".into(),
            stop_reason: None,
            usage: None,
        }
    }

    fn event(data: Value) -> SseEvent {
        SseEvent {
            event: data["type"].as_str().unwrap_or("message").into(),
            data: data.to_string(),
        }
    }

    fn chunk(events: &mut Events, data: Value) -> Option<Value> {
        events
            .event(event(data))
            .unwrap()
            .map(|chunk| serde_json::to_value(chunk).unwrap())
    }

    #[test]
    fn text_deltas_are_pieces_and_the_rest_makes_the_last_chunk() {
        let mut e = events();
        let start = json!({"type": "message_start", "message": {"model": "claude-x", "usage":
            {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}});
        assert_eq!(chunk(&mut e, start), None);
        assert_eq!(chunk(&mut e, json!({"type": "ping"})), None);
        let thinking = json!({"type": "content_block_delta", "index": 0,
                              "delta": {"type": "thinking_delta", "thinking": "hmm"}});
        assert_eq!(
            chunk(&mut e, thinking),
            None,
            "thinking is no part of the message"
        );
        let text = json!({"type": "content_block_delta", "index": 1,
                          "delta": {"type": "text_delta", "text": "Hi"}});
        assert_eq!(chunk(&mut e, text), Some(json!({"delta": "Hi"})));
        let unknown = json!({"type": "a_kind_added_later", "x": 1});
        assert_eq!(chunk(&mut e, unknown), None);
        let delta = json!({"type": "message_delta", "delta": {"stop_reason": "stop_sequence"},
                           "usage": {"output_tokens": 7}});
        assert_eq!(chunk(&mut e, delta), None);
        assert_eq!(
            chunk(&mut e, json!({"type": "message_stop"})),
            Some(
                json!({"delta": "", "finish_reason": "stop", "model": "claude-x",
                        "usage": {"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22}})
            )
        );
    }

    #[test]
    fn error_events_map_as_their_status_and_unreadable_ones_break_the_stream() {
        for (kind, code, retryable) in [
            ("overloaded_error", ErrorCode::ProviderUnavailable, true),
            ("api_error", ErrorCode::ProviderUnavailable, true),
            ("rate_limit_error", ErrorCode::RateLimited, true),
            (
                "authentication_error",
                ErrorCode::ProviderUnavailable,
                false,
            ),
            ("invalid_request_error", ErrorCode::ParamsInvalid, false),
        ] {
            let error = json!({"type": "error", "error": {"type": kind, "message": "sk-ant-leak"}});
            let err = events().event(event(error)).unwrap_err();
            assert_eq!((err.code, err.retryable), (code, retryable), "{kind}");
            assert!(!err.detail.contains("leak"), "{}", err.detail);
        }
        for unreadable in [
            "{not json",
            r#"{"no": "type"}"#,
            r#"{"type": "message_start"}"#,
        ] {
            let bad = SseEvent {
                event: "message".into(),
                data: unreadable.into(),
            };
            let err = events().event(bad).unwrap_err();
            assert_eq!(
                err.detail, "the AI server's stream broke off",
                "{unreadable}"
            );
        }
    }

    #[test]
    fn stop_reasons_are_the_domains_words() {
        for (anthropic, ours) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "pause_turn"),
        ] {
            assert_eq!(finish_reason(anthropic.into()), ours);
        }
    }
}
