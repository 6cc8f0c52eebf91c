//! A FAKE upstream AI server on 127.0.0.1 for tests and benchmarks: no hosted model is
//! reachable here, so the `ai/openai` and `ai/anthropic` engines and the `ai/gateway` are
//! tested against this instead. It follows the documented wire formats closely enough that a
//! client passing against it would pass against the real APIs:
//!
//! - OpenAI (platform.openai.com/docs/api-reference): `POST /v1/chat/completions` (a
//!   `chat.completion`, or with `stream: true` server-sent `chat.completion.chunk`s ending in
//!   `data: [DONE]`, with a usage chunk when `stream_options.include_usage`),
//!   `POST /v1/embeddings` (`encoding_format` `float` or `base64`), `GET /v1/models` and
//!   `GET /v1/models/{id}`; errors as `{"error": {"message", "type", "param", "code"}}`.
//! - Anthropic Messages (docs.anthropic.com/en/api/messages): `POST /v1/messages` with
//!   `x-api-key` and `anthropic-version`, answered whole or as the documented event sequence
//!   (`message_start`, `content_block_start`, `ping`, `content_block_delta`…,
//!   `content_block_stop`, `message_delta`, `message_stop`); errors as
//!   `{"type": "error", "error": {"type", "message"}}`. `GET /v1/models` with an
//!   `anthropic-version` header answers Anthropic's model list.
//!
//! What it answers is deterministic, so tests can assert exact text and usage:
//!
//! - The answer is `"echo: <last user message>"` (trailing whitespace dropped), streamed one
//!   word per delta (a word carries the whitespace before it, so the deltas concatenate to the
//!   whole answer). `max_tokens` (OpenAI's `max_completion_tokens` too) truncates it to that
//!   many words, and then the finish reason is `length` (Anthropic: `max_tokens`).
//! - Usage: prompt tokens = whitespace-separated words over every message's text (and
//!   Anthropic's `system`), completion tokens = words in the answer.
//! - Embeddings: 8 dimensions, unit length, from a hash of each input; prompt tokens = words.
//!
//! Faults are chosen by the requested model's last `-` suffix, for both API families:
//! `…-429` (with `retry-after: 1`), `…-500`, `…-503` and `…-529` (Anthropic's "overloaded")
//! answer that status in the family's error shape before any token; `…-slow` holds the first
//! token back for [`FakeAiSettings::slow_first_token`] (a non-streamed answer: the whole
//! answer); `…-cut` streams the opening and two words, then drops the connection (not
//! streamed: 500). Any other model succeeds.
//!
//! Every request is recorded (method, path, lower-cased headers, JSON body) in arrival order,
//! for tests to check what reached the upstream — [`FakeAi::requests`] in process,
//! `GET /__fake/requests` out of process (`DELETE` clears it). Tests using it say "fake" in
//! their names.

mod anthropic;
mod body;
mod echo;
mod openai;
mod server;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct FakeAiSettings {
    /// The key calls must carry (OpenAI: `Authorization: Bearer <key>`, Anthropic:
    /// `x-api-key`); `None` takes any call, keyed or not.
    pub api_key: Option<String>,
    /// How long a `…-slow` model holds its first token back (the design's `FAKE_SLOW_MS`).
    pub slow_first_token: Duration,
    /// How many requests the record keeps, the oldest dropped first: a benchmark's millions
    /// of requests would otherwise fill the memory. 0 records nothing; [`FakeAi::calls`]
    /// counts every request either way.
    pub record_limit: usize,
}

impl Default for FakeAiSettings {
    fn default() -> Self {
        FakeAiSettings {
            api_key: None,
            slow_first_token: Duration::from_millis(2000),
            record_limit: 10_000,
        }
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Names lower-cased; the keys' values kept, so a test can assert which key was sent.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; a body that is not JSON as a string; no body as `null`.
    pub body: Value,
}

/// What the server's connections share with the test's handle.
pub(crate) struct State {
    pub(crate) settings: FakeAiSettings,
    /// Every request but the fake's own `/__fake/…`, also the sequence in answers' ids.
    calls: AtomicU64,
    record: Mutex<VecDeque<Received>>,
}

impl State {
    /// Counts a request; answers its sequence number (1 for the first).
    pub(crate) fn count(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn records_requests(&self) -> bool {
        self.settings.record_limit > 0
    }

    pub(crate) fn record(&self, received: Received) {
        let mut record = self.lock_record();
        if record.len() == self.settings.record_limit {
            record.pop_front();
        }
        record.push_back(received);
    }

    pub(crate) fn requests(&self) -> Vec<Received> {
        self.lock_record().iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.lock_record().clear();
    }

    fn lock_record(&self) -> MutexGuard<'_, VecDeque<Received>> {
        // A panicking test thread cannot leave the record half-written: push and pop are whole.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fake upstream AI server, serving on the current tokio runtime until dropped.
pub struct FakeAi {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for FakeAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAi {
    /// A fake on a fresh loopback port. Panics when no port can be bound: a test cannot go on.
    pub async fn start(settings: FakeAiSettings) -> FakeAi {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        FakeAi::bind(loopback, settings)
            .await
            .expect("bind the fake AI server on loopback")
    }

    /// A fake on `addr` (the binary's `--listen`).
    pub async fn bind(addr: SocketAddr, settings: FakeAiSettings) -> std::io::Result<FakeAi> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            settings,
            calls: AtomicU64::new(0),
            record: Mutex::new(VecDeque::new()),
        });
        let server = tokio::spawn(server::serve(listener, state.clone()));
        Ok(FakeAi {
            addr,
            state,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, without `/v1`: Anthropic clients take it as is, OpenAI
    /// clients take it with `/v1` appended.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The recorded requests (at most [`FakeAiSettings::record_limit`], the latest), in
    /// arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.state.requests()
    }

    /// Empties the record (not the call count).
    pub fn clear_requests(&self) {
        self.state.clear();
    }

    /// Every request served, whatever it answered, apart from the fake's own `/__fake/…`.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::Relaxed)
    }
}
