//! What the engines that talk to a tenant's server (`ai/openai`, `ai/anthropic`) share: the
//! HTTP client held to the operator's egress ceiling, the mapping of a failed request to a
//! stable code, and reading a streamed answer. What an engine says to its server and makes of
//! the answers is its own.
//!
//! Errors never quote the server, the resolver or the URL: the server is the tenant's, but
//! what answers at an address is not the tenant's to learn through the platform.

pub(crate) mod config;
mod sse;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use switchyard_egress::{Egress, Redirects, Refusal};
use switchyard_spi::{ErrorCode, EventStream, ProviderError, to_result};

use crate::contract::ChatChunk;
use config::Endpoint;
use sse::SseDecoder;
pub(crate) use sse::SseEvent;

/// The config field every egress refusal points at: the only address the tenant gives.
pub(crate) const BASE_URL: &str = "/base_url";

/// How long health waits for the server's answer.
pub(crate) const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The tenant's server: where it is and the client that reaches it.
pub(crate) struct Upstream {
    pub(crate) endpoint: Endpoint,
    client: Client,
}

impl Upstream {
    /// Refuses a server whose address the operator does not allow at configure, before the
    /// tenant's key is ever sent. The client's resolver checks again at connect time, and
    /// every redirect hop is checked like the first.
    pub(crate) async fn connect(
        egress: &Egress,
        endpoint: Endpoint,
    ) -> Result<Self, ProviderError> {
        egress
            .vet_url(&endpoint.base_url)
            .await
            .map_err(|refusal| refusal.at(BASE_URL))?;
        // No client-wide timeout: it would bound a whole streamed answer, however steadily
        // it arrives. Each request sets its own (see `send` and `open_stream`).
        let client = egress
            .client(Redirects::Checked)
            .user_agent(concat!("switchyard-ai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::internal(format!("HTTP client: {e}")))?;
        Ok(Upstream { endpoint, client })
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.endpoint.url(path))
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.endpoint.url(path))
    }

    /// Sends `request` and reads its whole answer within the configured timeout: the JSON of
    /// a 2xx, or the error its status maps to.
    pub(crate) async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
        shape: &str,
    ) -> Result<T, ProviderError> {
        let response = request
            .timeout(self.endpoint.timeout)
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
            .map_err(|_| off_contract(&format!("an answer that is not {shape}")))
    }

    /// Health: `request` answers 2xx within [`HEALTH_TIMEOUT`].
    pub(crate) async fn probe(&self, request: RequestBuilder) -> Result<(), ProviderError> {
        let response = request
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

    /// Sends `request` for a streamed answer and reads it up to its first chunk, all within
    /// the configured timeout, so that whatever goes wrong before then (a refusal, a 429, a
    /// stream that breaks at once) is the `Err` here and a router can still go elsewhere.
    /// Past the first chunk each further piece of the body must come within the timeout too;
    /// a failure is then the stream's last item.
    pub(crate) async fn open_stream<T: Translate>(
        &self,
        request: RequestBuilder,
        translate: T,
    ) -> Result<EventStream, ProviderError> {
        let timeout = self.endpoint.timeout;
        let opening = async {
            let response = request.send().await.map_err(|e| self.transport_error(e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(status_error(status));
            }
            let mut reader = Reader::new(response, translate, timeout);
            match reader.next().await {
                Some(Ok(first)) => Ok((first, reader)),
                Some(Err(e)) => Err(e),
                None => Err(broke_off()),
            }
        };
        let (first, reader) = tokio::time::timeout(timeout, opening)
            .await
            .map_err(|_| self.timed_out())??;
        let rest = stream::unfold(reader, |mut reader| async move {
            reader.next().await.map(|item| (item, reader))
        });
        Ok(Box::pin(stream::once(async { Ok(first) }).chain(rest)))
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
            return self.timed_out();
        }
        tracing::warn!(error = %error, "ai server unreachable");
        ProviderError::unavailable(if error.is_connect() {
            "the AI server is unreachable: could not connect"
        } else {
            "the AI server is unreachable: the request failed"
        })
    }

    fn timed_out(&self) -> ProviderError {
        ProviderError::new(
            ErrorCode::Timeout,
            format!(
                "the AI server did not answer within {} ms",
                self.endpoint.timeout.as_millis()
            ),
        )
    }
}

/// A non-2xx answer, mapped to a stable code by its status; the detail names the status class
/// only, never the server's words:
/// 401/403 → `provider_unavailable`, not retryable (the configured key is refused);
/// 429 → `rate_limited`, retryable; 5xx (Anthropic's 529 "overloaded" too) →
/// `provider_unavailable`, retryable; any other 4xx → `params_invalid` (too long a prompt, an
/// unknown model, …); 3xx (a redirect past the hops followed) → `provider_unavailable`, not
/// retryable.
pub(crate) fn status_error(status: StatusCode) -> ProviderError {
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

/// A 2xx answer the engine cannot read: sending it again will not help.
pub(crate) fn off_contract(what: &str) -> ProviderError {
    ProviderError::unavailable(format!("the AI server answered {what}")).with_retryable(false)
}

/// A streamed answer that ended before its end, or went on in a way that cannot be read: the
/// part already passed on stays with the caller, who may ask again.
pub(crate) fn broke_off() -> ProviderError {
    ProviderError::unavailable("the AI server's stream broke off")
}

/// What an engine makes of its server's streamed events.
pub(crate) trait Translate: Send + 'static {
    /// The chunk `event` makes, if any (most events carry no text), or the error it reports.
    /// After a [`ChatChunk::Last`] the stream ends.
    fn event(&mut self, event: SseEvent) -> Result<Option<ChatChunk>, ProviderError>;
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A streamed answer being read: the body's bytes as events, the events as chunks, one at a
/// time as the caller asks for them (nothing is read ahead of the caller).
struct Reader<T> {
    body: Body,
    decoder: SseDecoder,
    events: VecDeque<SseEvent>,
    translate: T,
    /// How long the server may keep silent.
    timeout: Duration,
    ended: bool,
}

impl<T: Translate> Reader<T> {
    fn new(response: Response, translate: T, timeout: Duration) -> Self {
        Reader {
            body: Box::pin(response.bytes_stream()),
            decoder: SseDecoder::default(),
            events: VecDeque::new(),
            translate,
            timeout,
            ended: false,
        }
    }

    /// The next chunk; `None` once the last chunk or an error was answered.
    async fn next(&mut self) -> Option<Result<Value, ProviderError>> {
        if self.ended {
            return None;
        }
        let item = self.read().await;
        if !matches!(item, Ok((_, true))) {
            self.ended = true;
        }
        Some(item.and_then(|(chunk, _)| to_result(chunk)))
    }

    /// The next chunk, and whether more follow.
    async fn read(&mut self) -> Result<(ChatChunk, bool), ProviderError> {
        loop {
            while let Some(event) = self.events.pop_front() {
                if let Some(chunk) = self.translate.event(event)? {
                    let more = matches!(chunk, ChatChunk::Delta { .. });
                    return Ok((chunk, more));
                }
            }
            let piece = tokio::time::timeout(self.timeout, self.body.next())
                .await
                .map_err(|_| {
                    ProviderError::new(
                        ErrorCode::Timeout,
                        format!(
                            "the AI server's stream stalled for {} ms",
                            self.timeout.as_millis()
                        ),
                    )
                })?;
            match piece {
                Some(Ok(bytes)) => self
                    .decoder
                    .push(&bytes, &mut self.events)
                    .map_err(|_| broke_off())?,
                Some(Err(error)) => {
                    tracing::warn!(error = %error.without_url(), "ai server stream failed");
                    return Err(broke_off());
                }
                // The body ended before the answer's last event.
                None => return Err(broke_off()),
            }
        }
    }
}
