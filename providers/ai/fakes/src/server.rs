//! The fake's HTTP side: connections, the request record, and which API family a request is
//! for. The families' routes answer synchronously (a `…-slow` answer says how long to wait),
//! so a request is recorded before any wait and the record stays in arrival order.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::body::Answer;
use crate::{FakeAiSettings, Received, State, anthropic, openai};

/// How long accepting pauses after a failed accept (out of file descriptors under a
/// benchmark's load): until some connections close, rather than spinning or giving up.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Each SSE frame is a small write: without this, Nagle holds frames back.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(answer(request, &state).await) }
        });
        tokio::spawn(async move {
            // A client hanging up, or a `…-cut` stream, ends the connection: not the fake's
            // business to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request as the families' routes see it.
pub(crate) struct Call<'a> {
    /// The request's sequence number, for answers' ids.
    pub(crate) seq: u64,
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    /// `None` when there is no body or it is not JSON.
    pub(crate) body: Option<&'a Value>,
    pub(crate) settings: &'a FakeAiSettings,
}

impl Call<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A route's answer and how long to hold all of it back (a non-streamed `…-slow` answer).
pub(crate) struct Routed {
    pub(crate) response: Response<Answer>,
    pub(crate) delay: Option<Duration>,
}

impl From<Response<Answer>> for Routed {
    fn from(response: Response<Answer>) -> Self {
        Routed {
            response,
            delay: None,
        }
    }
}

async fn answer(request: Request<Incoming>, state: &State) -> Response<Answer> {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path();
    if path == "/__fake/requests" {
        return fake_requests(&parts.method, state);
    }
    let seq = state.count();
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let call = Call {
        seq,
        method: &parts.method,
        path,
        headers: &parts.headers,
        body: parsed.as_ref(),
        settings: &state.settings,
    };
    let anthropic = path.starts_with("/v1/messages")
        || (path.starts_with("/v1/models") && call.header("anthropic-version").is_some());
    let Routed { response, delay } = if anthropic {
        anthropic::route(&call)
    } else {
        openai::route(&call)
    };
    if state.records_requests() {
        state.record(Received {
            method: parts.method.to_string(),
            path: path.to_owned(),
            headers: header_map(&parts.headers),
            body: parsed.unwrap_or_else(|| raw(&bytes)),
        });
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

/// `GET` the record as JSON, `DELETE` to empty it: for tests in another process.
fn fake_requests(method: &Method, state: &State) -> Response<Answer> {
    match *method {
        Method::GET => json(StatusCode::OK, &state.requests()),
        Method::DELETE => {
            state.clear();
            let mut response = Response::new(Answer::Whole(None));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        _ => {
            let mut response = Response::new(Answer::Whole(None));
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
        }
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|seen: &mut String| {
                seen.push_str(", ");
                seen.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

/// A body that is not JSON, recorded as its text; none as `null`.
fn raw(bytes: &Bytes) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        Value::String(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// A JSON answer with `content-length`.
pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Response<Answer> {
    let body = serde_json::to_vec(body).expect("the fake's answers serialize");
    let mut response = Response::new(Answer::whole(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A `text/event-stream` answer of `frames` (see [`Answer::events`]).
pub(crate) fn event_stream(
    frames: Vec<Bytes>,
    first_after: Option<Duration>,
    cut: bool,
) -> Response<Answer> {
    let mut response = Response::new(Answer::events(frames, first_after, cut));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One server-sent event: `event: <name>` when named, `data: <json>`, a blank line.
pub(crate) fn sse(event: Option<&str>, data: &Value) -> Bytes {
    let mut frame = Vec::with_capacity(160);
    if let Some(event) = event {
        frame.extend_from_slice(b"event: ");
        frame.extend_from_slice(event.as_bytes());
        frame.push(b'\n');
    }
    frame.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut frame, data).expect("the fake's events serialize");
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// Unix seconds now: the `created` of OpenAI's answers.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
