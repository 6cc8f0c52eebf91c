//! What the fake's tests share: a client, and a server-sent-events reader that keeps what
//! arrived before a stream broke.

use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_ai_fakes::{FakeAi, FakeAiSettings};

pub const KEY: &str = "sk-fake-0123456789";

/// A fake with a key and a short `…-slow` delay.
pub async fn fake() -> FakeAi {
    FakeAi::start(FakeAiSettings {
        api_key: Some(KEY.into()),
        slow_first_token: Duration::from_millis(300),
        ..FakeAiSettings::default()
    })
    .await
}

/// One server-sent event: its `event:` name (if any) and its `data:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("the event's data is JSON")
    }
}

/// A stream as the client saw it.
pub struct Sse {
    pub status: u16,
    pub content_type: String,
    pub events: Vec<Event>,
    /// The connection broke before the stream's end.
    pub broken: bool,
    /// From sending the request to the first event.
    pub first_event_after: Option<Duration>,
}

/// Sends `request` and reads its event stream to the end (or to the break).
pub async fn stream(request: reqwest::RequestBuilder) -> Sse {
    let sent = Instant::now();
    let mut response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let mut first_event_after = None;
    let broken = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8 events"));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    first_event_after.get_or_insert_with(|| sent.elapsed());
                    let mut event = Event {
                        name: None,
                        data: String::new(),
                    };
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event: ") {
                            event.name = Some(name.to_owned());
                        } else if let Some(data) = line.strip_prefix("data: ") {
                            event.data = data.to_owned();
                        }
                    }
                    events.push(event);
                }
            }
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(
        broken || buffer.is_empty(),
        "a stream ended in the middle of an event: {buffer:?}"
    );
    Sse {
        status,
        content_type,
        events,
        broken,
        first_event_after,
    }
}
