//! A webhook receiver on 127.0.0.1 for the suite: it checks every request's signature with
//! the `standardwebhooks` crate (the spec authors' implementation, independent of the
//! provider's signing code), records what it got, and answers from a script — e.g. 503 for
//! the first two calls — then 200. A [`Port`] is a receiver that is down (nothing listens);
//! it can be brought up later on the same port.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use standardwebhooks::Webhook;
use tokio::net::TcpListener;

/// One answer the receiver gives instead of its default 200.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<&'static str>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            retry_after: None,
        }
    }

    pub fn retry_after(status: u16, retry_after: &'static str) -> Self {
        Reply {
            status,
            retry_after: Some(retry_after),
        }
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub webhook_id: String,
    pub body: Value,
    /// Whether `standardwebhooks` accepted the signature (and the timestamp's freshness).
    pub verified: bool,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    requests: Vec<Seen>,
    script: VecDeque<Reply>,
    /// Answered once the script is used up; 200 unless set.
    always: Option<Reply>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// A port nothing listens on: a receiver that is down.
pub struct Port(pub SocketAddr);

impl Port {
    /// A free loopback port, closed again at once, so connecting to it is refused.
    pub async fn closed() -> Port {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Port(listener.local_addr().expect("local addr"))
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.0)
    }

    /// The receiver comes up on this very port.
    pub async fn open(self, secret: &str) -> Receiver {
        Receiver::on(self.0, secret).await
    }
}

impl Receiver {
    /// A receiver on a fresh loopback port that verifies with `secret`.
    pub async fn start(secret: &str) -> Receiver {
        Receiver::on("127.0.0.1:0".parse().expect("address"), secret).await
    }

    async fn on(addr: SocketAddr, secret: &str) -> Receiver {
        let listener = TcpListener::bind(addr).await.expect("bind the receiver");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let verifier = Arc::new(Webhook::new(secret).expect("a whsec_ secret"));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let verifier = verifier.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let state = state.clone();
                    let verifier = verifier.clone();
                    async move { Ok::<_, Infallible>(answer(request, &state, &verifier).await) }
                });
                tokio::spawn(async move {
                    // A client giving up mid-request (a timed-out attempt) is part of the game.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers these, in order, before answering normally.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Answers this to every request once the script is used up.
    pub fn always(&self, reply: Reply) {
        self.state.lock().unwrap().always = Some(reply);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn answer(
    request: Request<Incoming>,
    state: &Mutex<State>,
    verifier: &Webhook,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let verified = verifier.verify(&bytes, &parts.headers).is_ok();
    let webhook_id = parts
        .headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(Seen {
            webhook_id,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            verified,
            at: Instant::now(),
        });
        state.script.pop_front().or(state.always)
    };
    let reply = match reply {
        // A forged or stale signature is what a real receiver refuses.
        _ if !verified => Reply::status(401),
        Some(reply) => reply,
        None => Reply::status(200),
    };
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).expect("a valid status"));
    if let Some(retry_after) = reply.retry_after {
        response = response.header("retry-after", retry_after);
    }
    response
        .body(Full::new(Bytes::new()))
        .expect("a static response")
}
