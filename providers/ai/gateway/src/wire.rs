//! OpenAI's request and answer shapes (https://platform.openai.com/docs/api-reference/chat),
//! the part of them the gateway serves, and the domain's `chat` and `embed` read into the same
//! request so that both surfaces run one pipeline.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

use crate::tokens::Usage;

/// A request its schema admits and the gateway cannot serve (422 `params_unprocessable`):
/// a content part that is not text, a chat with neither messages nor a template, a domain
/// call without the alias the gateway routes by.
pub fn unprocessable(pointer: &str, detail: impl Into<String>) -> ProviderError {
    ProviderError::field(ErrorCode::ParamsUnprocessable, pointer, detail)
}

/// One message of a chat, its content as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn to_value(&self) -> Value {
        json!({"role": self.role, "content": self.content})
    }
}

/// A template call: the messages come from a tenant's template, rendered here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateCall {
    pub name: String,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default = "empty_object")]
    pub variables: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// A chat request, from OpenAI's `/v1/chat/completions` body or the domain's `chat` params.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub alias: String,
    pub messages: Vec<Message>,
    pub template: Option<TemplateCall>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub stream: bool,
    /// Whether a streamed answer ends with a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    pub user: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiChat {
    model: String,
    #[serde(default)]
    messages: Vec<OpenAiMessage>,
    #[serde(default)]
    template: Option<TemplateCall>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct OpenAiMessage {
    role: String,
    #[serde(default)]
    content: Content,
}

/// A message's content: text, or OpenAI's list of parts of which the text ones are read.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
    #[default]
    None,
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl ChatRequest {
    /// `POST /v1/chat/completions`'s body, already checked by the action's params schema.
    pub fn from_openai(params: Value) -> Result<ChatRequest, ProviderError> {
        let chat: OpenAiChat = switchyard_spi::parse_params(params)?;
        let mut messages = Vec::with_capacity(chat.messages.len());
        for (i, message) in chat.messages.into_iter().enumerate() {
            let content = match message.content {
                Content::Text(text) => text,
                Content::None => String::new(),
                Content::Parts(parts) => {
                    let mut text = String::new();
                    for part in parts {
                        match (part.kind.as_str(), part.text) {
                            ("text", Some(t)) => text.push_str(&t),
                            (kind, _) => {
                                return Err(unprocessable(
                                    &format!("/messages/{i}/content"),
                                    format!(
                                        "content parts of type {kind:?} are not served; send text"
                                    ),
                                ));
                            }
                        }
                    }
                    text
                }
            };
            messages.push(Message {
                role: message.role,
                content,
            });
        }
        if messages.is_empty() && chat.template.is_none() {
            return Err(unprocessable(
                "/messages",
                "a chat needs messages or a template",
            ));
        }
        Ok(ChatRequest {
            alias: chat.model,
            messages,
            template: chat.template,
            temperature: chat.temperature,
            top_p: chat.top_p,
            max_tokens: chat.max_completion_tokens.or(chat.max_tokens),
            stream: chat.stream,
            include_usage: chat.stream_options.is_some_and(|o| o.include_usage),
            user: chat.user,
        })
    }

    /// The domain's `chat` params (`/providers/ai/gateway/chat`): its `model` names the alias.
    pub fn from_domain(params: Value, stream: bool) -> Result<ChatRequest, ProviderError> {
        let mut openai = params;
        if openai.get("model").is_none() {
            return Err(unprocessable(
                "/model",
                "ai/gateway needs the alias to use as model",
            ));
        }
        openai["stream"] = json!(stream);
        ChatRequest::from_openai(openai)
    }

    /// What the cache keys on besides the alias and the messages.
    pub fn sampling(&self) -> Value {
        json!({"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens})
    }
}

/// An embeddings request, from `/v1/embeddings` or the domain's `embed`.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    pub alias: String,
    pub texts: Vec<String>,
    pub user: Option<String>,
    /// Vectors as base64 of little-endian `f32`s, which OpenAI's Python SDK asks for unless
    /// told otherwise (and decodes itself).
    pub base64: bool,
}

#[derive(Deserialize)]
struct OpenAiEmbed {
    model: String,
    input: Input,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    encoding_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

impl EmbedRequest {
    pub fn from_openai(params: Value) -> Result<EmbedRequest, ProviderError> {
        let embed: OpenAiEmbed = switchyard_spi::parse_params(params)?;
        Ok(EmbedRequest {
            base64: embed.encoding_format.as_deref() == Some("base64"),
            alias: embed.model,
            texts: match embed.input {
                Input::One(text) => vec![text],
                Input::Many(texts) => texts,
            },
            user: embed.user,
        })
    }

    /// The domain's `embed` params: `texts` and the alias as `model`.
    pub fn from_domain(params: Value) -> Result<EmbedRequest, ProviderError> {
        let alias = params
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| unprocessable("/model", "ai/gateway needs the alias to use as model"))?
            .to_owned();
        let texts = params
            .get("texts")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ProviderError::invalid_param("/texts", e.to_string()))?
            .unwrap_or_default();
        Ok(EmbedRequest {
            alias,
            texts,
            user: None,
            base64: false,
        })
    }
}

/// The answer of a chat, whatever the surface.
#[derive(Debug, Clone)]
pub struct ChatAnswer {
    pub content: String,
    pub model: String,
    pub finish_reason: Option<String>,
    pub usage: Usage,
}

impl ChatAnswer {
    /// As `/v1/chat/completions` answers it.
    pub fn to_openai(&self, id: &str, created: i64) -> Value {
        json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.content},
                "finish_reason": self.finish_reason,
                "logprobs": null,
            }],
            "usage": usage_value(&self.usage),
        })
    }

    /// As the domain's `chat` answers it.
    pub fn to_domain(&self) -> Value {
        json!({
            "message": {"role": "assistant", "content": self.content},
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": usage_value(&self.usage),
        })
    }
}

pub fn usage_value(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    })
}

/// One `chat.completion.chunk` of a streamed answer.
pub fn chunk(id: &str, created: i64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
    })
}

/// The last chunk of a stream asked with `include_usage`: no choices, the usage.
pub fn usage_chunk(id: &str, created: i64, model: &str, usage: &Usage) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_value(usage),
    })
}

/// `/v1/embeddings`' answer.
pub fn embeddings(model: &str, vectors: Vec<Value>, prompt_tokens: u64, base64: bool) -> Value {
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| {
            let embedding = if base64 {
                packed(&embedding)
            } else {
                embedding
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
}

/// A vector as OpenAI's base64 encoding: its numbers as little-endian `f32`s.
fn packed(vector: &Value) -> Value {
    use base64::Engine;
    let bytes: Vec<u8> = vector
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .flat_map(|x| (x as f32).to_le_bytes())
        .collect();
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_chat_reads_text_parts_and_the_newer_max_field() {
        let chat = ChatRequest::from_openai(json!({
            "model": "smart",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
            ],
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "stream": true,
            "stream_options": {"include_usage": true},
        }))
        .unwrap();
        assert_eq!(chat.alias, "smart");
        assert_eq!(chat.messages[1].content, "hi there");
        assert_eq!(chat.max_tokens, Some(20));
        assert!(chat.stream && chat.include_usage);
    }

    #[test]
    fn an_image_part_is_refused_by_its_pointer() {
        let refused = ChatRequest::from_openai(json!({
            "model": "smart",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        }))
        .unwrap_err();
        assert_eq!(refused.errors[0].pointer, "/messages/0/content");
    }

    #[test]
    fn embeddings_take_one_text_or_many() {
        let one = EmbedRequest::from_openai(json!({"model": "e", "input": "a"})).unwrap();
        assert_eq!(one.texts, ["a"]);
        let many = EmbedRequest::from_openai(json!({"model": "e", "input": ["a", "b"]})).unwrap();
        assert_eq!(many.texts.len(), 2);
        let packed = EmbedRequest::from_openai(
            json!({"model": "e", "input": "a", "encoding_format": "base64"}),
        )
        .unwrap();
        assert!(packed.base64);
        let answer = embeddings("m", vec![json!([1.0, -0.5])], 1, true);
        // 1.0f32 and -0.5f32, little-endian.
        assert_eq!(answer["data"][0]["embedding"], "AACAPwAAAL8=");
    }
}
