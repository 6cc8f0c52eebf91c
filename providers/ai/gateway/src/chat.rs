//! One chat through the gateway, as a list of steps: the alias; the messages (a template
//! rendered, then the caller's); the request guardrails; PII redaction; the cache; the budget
//! reservation; the targets tried in order ([`crate::route`]); the response guardrails; the
//! placeholders restored; the reservation settled to the reported usage; the audit record.
//! A streamed chat runs the same steps, the last four as its chunks pass.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_spi::{CallContext, ErrorCode, EventStream, ProviderError};
use tokio::sync::mpsc;

use crate::budget::Settlement;
use crate::config::{Alias, Kind, Target};
use crate::engine::Gateway;
use crate::guard::Verdict;
use crate::redact::Redaction;
use crate::tokens::{Usage, prompt_tokens_upper_bound};
use crate::wire::{self, ChatAnswer, ChatRequest, EmbedRequest, Message};

/// A chat past its checks, ready to send.
pub(crate) struct Prepared<'g> {
    pub alias: &'g Alias,
    /// The messages as they leave the platform: redacted.
    pub sent: Vec<Message>,
    pub redaction: Redaction,
    pub template: Option<(String, u32)>,
    pub max_tokens: u32,
    pub started: Instant,
}

/// The domain's answer of one target's chat.
#[derive(Deserialize)]
struct TargetAnswer {
    message: TargetMessage,
    model: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct TargetMessage {
    content: String,
}

/// One chunk of a target's streamed chat.
#[derive(Deserialize)]
struct TargetChunk {
    #[serde(default)]
    delta: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

impl Gateway {
    pub(crate) fn alias(&self, name: &str, kind: Kind) -> Result<&Alias, ProviderError> {
        let alias = self.config.aliases.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.config.aliases.keys().map(String::as_str).collect();
            ProviderError::field(
                ErrorCode::ResourceNotFound,
                "/model",
                format!(
                    "no model {name:?} in this tenant's AI gateway; its aliases are: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        if alias.kind != kind {
            return Err(crate::wire::unprocessable(
                "/model",
                format!(
                    "{name:?} is an alias for {:?}, not for this call",
                    alias.kind
                ),
            ));
        }
        Ok(alias)
    }

    /// Steps 1 to 4: the alias, the messages, the request guardrails, the redaction.
    fn prepare(&self, request: &ChatRequest) -> Result<Prepared<'_>, ProviderError> {
        let started = Instant::now();
        let alias = self.alias(&request.alias, Kind::Chat)?;
        let mut messages = Vec::with_capacity(request.messages.len() + 2);
        let mut template = None;
        if let Some(call) = &request.template {
            let (version, rendered) = self
                .config
                .templates
                .render(&call.name, call.version, &call.variables)
                .map_err(|e| {
                    let code = match e.code() {
                        "resource_not_found" => ErrorCode::ResourceNotFound,
                        _ => ErrorCode::ParamsUnprocessable,
                    };
                    ProviderError::field(code, "/template", e.to_string())
                })?;
            messages.extend(rendered.into_iter().map(|(role, content)| Message {
                role: role.as_str().to_owned(),
                content,
            }));
            template = Some((call.name.clone(), version));
        }
        messages.extend(request.messages.iter().cloned());
        if let Verdict::RequestRefused(rule) = self
            .config
            .guard
            .check_request(messages.iter().map(|m| m.content.as_str()))
        {
            return Err(ProviderError::new(
                ErrorCode::GuardrailRefused,
                format!("the prompt was refused by this tenant's guardrail: {rule}"),
            ));
        }
        let mut redaction = Redaction::new();
        let sent = messages
            .into_iter()
            .map(|m| Message {
                content: self
                    .config
                    .redactor
                    .redact(&m.content, &mut redaction)
                    .into_owned(),
                // OpenAI's `developer` role is what the domain calls `system`.
                role: if m.role == "developer" {
                    "system".into()
                } else {
                    m.role
                },
            })
            .collect();
        Ok(Prepared {
            alias,
            sent,
            redaction,
            template,
            max_tokens: request.max_tokens.unwrap_or(self.config.default_max_tokens),
            started,
        })
    }

    /// The params of the domain's `chat` for `target`.
    fn target_params(prepared: &Prepared, request: &ChatRequest, target: &Target) -> Value {
        let messages: Vec<Value> = prepared.sent.iter().map(Message::to_value).collect();
        let mut params = json!({
            "messages": messages,
            "model": target.model,
            "max_tokens": prepared.max_tokens,
        });
        if let Some(temperature) = request.temperature {
            params["temperature"] = json!(temperature);
        }
        params
    }

    /// A whole chat: answered, and its id and creation time for OpenAI's shape.
    pub(crate) async fn chat(
        &self,
        ctx: &CallContext,
        request: ChatRequest,
    ) -> Result<(ChatAnswer, String, i64), ProviderError> {
        let prepared = self.prepare(&request)?;
        let id = completion_id();
        let created = crate::audit::now_ms() / 1000;
        let cache_key = self
            .cache
            .as_ref()
            .filter(|cache| cache.is_cacheable(request.temperature))
            .map(|_| {
                let sent: Vec<Value> = prepared.sent.iter().map(Message::to_value).collect();
                crate::cache::cache_key(&request.alias, &Value::Array(sent), &request.sampling())
            });
        if let (Some(cache), Some(key)) = (&self.cache, &cache_key)
            && let Some(hit) = cache.get(key, Instant::now()).await
        {
            let answer: ChatAnswer = cached_answer(&hit.answer, hit.usage);
            let answer = self.finish_answer(&prepared, answer)?;
            self.audit_chat(ctx, &request, &prepared, Outcome::cached(&answer));
            return Ok((answer, id, created));
        }
        let held = self
            .reserve(ctx, request.user.as_deref(), &prepared)
            .await?;
        let routed = self
            .route(prepared.alias, |target| {
                let params = Self::target_params(&prepared, &request, target);
                let client = self.client.clone();
                let provider = target.provider.clone();
                async move { client.invoke(&provider, "chat", params).await }
            })
            .await;
        let (answer, target, path) = match routed {
            Ok(routed) => {
                let parsed: TargetAnswer = serde_json::from_value(routed.value).map_err(|_| {
                    ProviderError::internal("a target answered off the ai contract")
                })?;
                let usage = parsed.usage;
                let answer = ChatAnswer {
                    content: parsed.message.content,
                    model: parsed.model,
                    finish_reason: parsed.finish_reason,
                    usage: usage.unwrap_or_default(),
                };
                held.settle(usage, self.price_of(Some(&routed.target)))
                    .await;
                (answer, routed.target, routed.path)
            }
            Err((error, path)) => {
                held.settle(Some(Usage::default()), None).await;
                self.audit_chat(ctx, &request, &prepared, Outcome::failed(&error, path));
                return Err(error);
            }
        };
        if let (Some(cache), Some(key)) = (&self.cache, cache_key) {
            cache
                .insert(key, json!({"content": answer.content, "model": answer.model, "finish_reason": answer.finish_reason}), answer.usage, Instant::now())
                .await;
        }
        let outcome = Outcome::answered(&answer, &target, path, self.config.price(&target.model));
        match self.finish_answer(&prepared, answer) {
            Ok(answer) => {
                self.audit_chat(ctx, &request, &prepared, outcome);
                Ok((answer, id, created))
            }
            Err(refused) => {
                self.audit_chat(ctx, &request, &prepared, outcome.refused(&refused));
                Err(refused)
            }
        }
    }

    /// The response guardrails, then the placeholders restored when the tenant asks for it.
    fn finish_answer(
        &self,
        prepared: &Prepared,
        mut answer: ChatAnswer,
    ) -> Result<ChatAnswer, ProviderError> {
        if let Verdict::ResponseRefused(rule) = self.config.guard.check_response(&answer.content) {
            return Err(ProviderError::new(
                ErrorCode::ResponseRefused,
                format!("the answer was withheld by this tenant's response filter: {rule}"),
            ));
        }
        if self.config.redactor.restores() {
            answer.content = prepared.redaction.restore(&answer.content).into_owned();
        }
        Ok(answer)
    }

    /// A streamed chat: OpenAI's chunks, passed on as the target writes them. A target that
    /// fails before its first token (an error, or nothing within the first-token timeout) is
    /// left for the next one, as for a whole chat; after the first token the stream is the
    /// caller's, and a failure ends it with an error event.
    pub(crate) async fn chat_stream(
        &self,
        ctx: &CallContext,
        request: ChatRequest,
    ) -> Result<EventStream, ProviderError> {
        let prepared = self.prepare(&request)?;
        let held = self
            .reserve(ctx, request.user.as_deref(), &prepared)
            .await?;
        let first_token = self.config.first_token_timeout;
        let routed = self
            .route(prepared.alias, |target| {
                let params = Self::target_params(&prepared, &request, target);
                let client = self.client.clone();
                let provider = target.provider.clone();
                // The timeout covers opening the stream too: an ai engine reads its
                // upstream up to the first chunk before its stream is handed over.
                let first = async move {
                    let mut items = client.stream(&provider, "chat", params).await?;
                    match items.next().await {
                        Some(Ok(first)) => Ok((first, items)),
                        Some(Err(problem)) => Err(problem),
                        None => Err(switchyard_contracts::Problem::new(
                            ErrorCode::ProviderUnavailable,
                            "the target's stream ended before its first token",
                        )),
                    }
                };
                async move {
                    tokio::time::timeout(first_token, first)
                        .await
                        .unwrap_or_else(|_| {
                            Err(switchyard_contracts::Problem::new(
                                ErrorCode::Timeout,
                                format!("no first token within {} ms", first_token.as_millis()),
                            ))
                        })
                }
            })
            .await;
        let ((first, rest), target, path) = match routed {
            Ok(routed) => (routed.value, routed.target, routed.path),
            Err((error, path)) => {
                held.settle(Some(Usage::default()), None).await;
                self.audit_chat(ctx, &request, &prepared, Outcome::failed(&error, path));
                return Err(error);
            }
        };
        let (sender, receiver) = mpsc::channel(64);
        let relay = Relay {
            gateway: self.shared(),
            settlement: held,
            request,
            template: prepared.template.clone(),
            sent: prepared.sent.clone(),
            redaction: prepared.redaction,
            started: prepared.started,
            key: ctx.subject.clone().unwrap_or_default(),
            target,
            path,
            id: completion_id(),
            created: crate::audit::now_ms() / 1000,
        };
        tokio::spawn(relay.run(first, rest, sender));
        Ok(Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async { receiver.recv().await.map(|item| (item, receiver)) },
        )))
    }

    /// Embeddings: the alias, the redaction, the budget, the targets.
    pub(crate) async fn embed(
        &self,
        ctx: &CallContext,
        request: EmbedRequest,
    ) -> Result<(String, Vec<Value>, u64), ProviderError> {
        let started = Instant::now();
        let alias = self.alias(&request.alias, Kind::Embedding)?;
        let mut redaction = Redaction::new();
        let texts: Vec<String> = request
            .texts
            .iter()
            .map(|t| self.config.redactor.redact(t, &mut redaction).into_owned())
            .collect();
        let prompt = prompt_tokens_upper_bound(texts.iter().map(String::as_str));
        let held = self
            .reserve_tokens(ctx, request.user.as_deref(), alias, prompt, 0)
            .await?;
        let routed = self
            .route(alias, |target| {
                let params = json!({"texts": texts, "model": target.model});
                let client = self.client.clone();
                let provider = target.provider.clone();
                async move { client.invoke(&provider, "embed", params).await }
            })
            .await;
        match routed {
            Ok(mut routed) => {
                // The domain's embed reports no usage: the bound reserved is what is spent.
                let usage = Usage::new(prompt, 0);
                held.settle(Some(usage), self.price_of(Some(&routed.target)))
                    .await;
                let vectors = match routed.value["vectors"].take() {
                    Value::Array(vectors) => vectors,
                    _ => {
                        return Err(ProviderError::internal(
                            "a target answered off the ai contract",
                        ));
                    }
                };
                let model = routed.value["model"]
                    .as_str()
                    .unwrap_or(&routed.target.model)
                    .to_owned();
                self.audit_embed(
                    ctx,
                    &request,
                    &texts,
                    &redaction,
                    started,
                    Ok((&routed.target, usage)),
                    routed.path,
                );
                Ok((model, vectors, prompt))
            }
            Err((error, path)) => {
                held.settle(Some(Usage::default()), None).await;
                self.audit_embed(
                    ctx,
                    &request,
                    &texts,
                    &redaction,
                    started,
                    Err(&error),
                    path,
                );
                Err(error)
            }
        }
    }

    /// Step 6: reserves the prompt's bound and the completion's cap in every limit.
    async fn reserve(
        &self,
        ctx: &CallContext,
        user: Option<&str>,
        prepared: &Prepared<'_>,
    ) -> Result<Settlement, ProviderError> {
        let prompt = prompt_tokens_upper_bound(prepared.sent.iter().map(|m| m.content.as_str()));
        self.reserve_tokens(
            ctx,
            user,
            prepared.alias,
            prompt,
            u64::from(prepared.max_tokens),
        )
        .await
    }
}

/// A cached answer as the cache kept it.
fn cached_answer(answer: &Value, usage: Usage) -> ChatAnswer {
    ChatAnswer {
        content: answer["content"].as_str().unwrap_or_default().to_owned(),
        model: answer["model"].as_str().unwrap_or_default().to_owned(),
        finish_reason: answer["finish_reason"].as_str().map(str::to_owned),
        usage,
    }
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::now_v7().simple())
}

/// What happened to a call, for its audit record.
pub(crate) struct Outcome {
    pub status: String,
    pub target: Option<String>,
    pub answer: Option<String>,
    pub usage: Usage,
    pub cost_micros: i64,
    pub path: Vec<Value>,
    pub cache: bool,
}

impl Outcome {
    fn answered(
        answer: &ChatAnswer,
        target: &Target,
        path: Vec<Value>,
        price: Option<crate::config::PriceFields>,
    ) -> Outcome {
        Outcome {
            status: "ok".into(),
            target: Some(target.id.clone()),
            answer: Some(answer.content.clone()),
            usage: answer.usage,
            cost_micros: crate::budget::cost_micros(
                answer.usage.prompt_tokens,
                answer.usage.completion_tokens,
                price,
            ),
            path,
            cache: false,
        }
    }

    fn cached(answer: &ChatAnswer) -> Outcome {
        Outcome {
            status: "ok".into(),
            target: None,
            answer: Some(answer.content.clone()),
            usage: answer.usage,
            cost_micros: 0,
            path: Vec::new(),
            cache: true,
        }
    }

    fn failed(error: &ProviderError, path: Vec<Value>) -> Outcome {
        Outcome {
            status: error.code.as_str().into(),
            target: None,
            answer: None,
            usage: Usage::default(),
            cost_micros: 0,
            path,
            cache: false,
        }
    }

    fn refused(mut self, error: &ProviderError) -> Outcome {
        self.status = error.code.as_str().into();
        self.answer = None;
        self
    }
}

/// What a streamed chat's relay task owns: everything it needs after the call has returned.
struct Relay {
    gateway: Arc<crate::engine::Shared>,
    settlement: Settlement,
    request: ChatRequest,
    template: Option<(String, u32)>,
    sent: Vec<Message>,
    redaction: Redaction,
    started: Instant,
    key: String,
    target: Target,
    path: Vec<Value>,
    id: String,
    created: i64,
}

impl Relay {
    /// Passes the target's chunks on as OpenAI's, watching the answer as it grows; settles
    /// and audits when the stream ends, however it ends (a caller who went away included).
    async fn run(
        self,
        first: Value,
        mut rest: switchyard_client::ValueStream,
        sender: mpsc::Sender<Result<Value, ProviderError>>,
    ) {
        let Relay {
            gateway,
            settlement,
            request,
            template,
            sent,
            redaction,
            started,
            key,
            target,
            path,
            id,
            created,
        } = self;
        let config = &gateway.config;
        let mut watch = config.guard.watch_response();
        let mut restore = redaction.restore_stream();
        let restores = config.redactor.restores();
        let mut model = target.model.clone();
        let mut answer = String::new();
        let mut usage = None;
        let mut status = "ok".to_owned();
        let opening = wire::chunk(
            &id,
            created,
            &model,
            json!({"role": "assistant", "content": ""}),
            None,
        );
        let mut open = sender.send(Ok(opening)).await.is_ok();
        let mut next: Option<Result<Value, switchyard_contracts::Problem>> = Some(Ok(first));
        while open && let Some(item) = next.take() {
            let chunk: TargetChunk = match item.map(serde_json::from_value) {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(_)) => {
                    status = "provider_failed".into();
                    let _ = sender
                        .send(Err(ProviderError::internal(
                            "a target streamed off the ai contract",
                        )))
                        .await;
                    break;
                }
                Err(problem) => {
                    status = problem.code.as_str().into();
                    let _ = sender
                        .send(Err(ProviderError::new(problem.code, problem.detail)))
                        .await;
                    break;
                }
            };
            if let Some(m) = chunk.model {
                model = m;
            }
            if chunk.usage.is_some() {
                usage = chunk.usage;
            }
            if !chunk.delta.is_empty() {
                answer.push_str(&chunk.delta);
                if let Verdict::ResponseRefused(rule) = watch.push(&chunk.delta) {
                    status = "response_refused".into();
                    let _ = sender
                        .send(Err(ProviderError::new(
                            ErrorCode::ResponseRefused,
                            format!(
                                "the answer was cut off by this tenant's response filter: {rule}"
                            ),
                        )))
                        .await;
                    break;
                }
                let text = if restores {
                    restore.push(&chunk.delta)
                } else {
                    chunk.delta
                };
                if !text.is_empty() {
                    open = sender
                        .send(Ok(wire::chunk(
                            &id,
                            created,
                            &model,
                            json!({"content": text}),
                            None,
                        )))
                        .await
                        .is_ok();
                }
            }
            if let Some(finish) = chunk.finish_reason {
                let held_back = if restores {
                    restore.finish()
                } else {
                    String::new()
                };
                if !held_back.is_empty() {
                    let _ = sender
                        .send(Ok(wire::chunk(
                            &id,
                            created,
                            &model,
                            json!({"content": held_back}),
                            None,
                        )))
                        .await;
                }
                let _ = sender
                    .send(Ok(wire::chunk(
                        &id,
                        created,
                        &model,
                        json!({}),
                        Some(&finish),
                    )))
                    .await;
                if request.include_usage {
                    let reported = usage.unwrap_or_default();
                    let _ = sender
                        .send(Ok(wire::usage_chunk(&id, created, &model, &reported)))
                        .await;
                }
                break;
            }
            next = rest.next().await;
            if next.is_none() {
                status = "provider_unavailable".into();
                let _ = sender
                    .send(Err(ProviderError::unavailable(
                        "the target's stream ended without finishing",
                    )))
                    .await;
            }
        }
        if !open {
            status = "client_gone".into();
        }
        let price = config.price(&target.model);
        settlement.settle(usage, price).await;
        let reported = usage.unwrap_or_default();
        let outcome = Outcome {
            status,
            target: Some(target.id.clone()),
            answer: Some(answer),
            usage: reported,
            cost_micros: crate::budget::cost_micros(
                reported.prompt_tokens,
                reported.completion_tokens,
                price,
            ),
            path,
            cache: false,
        };
        gateway.audit_record(
            &key,
            &request,
            template.as_ref(),
            &sent,
            &redaction,
            started,
            outcome,
            true,
        );
    }
}
