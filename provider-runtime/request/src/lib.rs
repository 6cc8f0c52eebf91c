//! How the gateway and the provider runtime read one request alike.
//!
//! The gateway's policy must judge exactly what the runtime runs, so both read a request
//! with this one code: [`path`] splits its path once, [`envelope`] decides which body it takes
//! and what params it carries ([`inbound`] those of a webhook, from its sender's headers). The
//! types travel from the gateway to a runtime in the same process as request extensions, so
//! they must be one type in both: hence this crate, which the gateway uses without the runtime.

pub mod envelope;
pub mod inbound;
pub mod openai;
pub mod path;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use switchyard_spi::CallContext;

/// The error code of a problem answer, set by the runtime for the gateway's metrics; the
/// gateway strips it before the answer leaves.
pub const CODE_HEADER: &str = "x-switchyard-code";

/// A request body from the network (hyper's) or handed over by the gateway in the same
/// process ([`Dispatch`]); boxed so that one routing code serves both. Its error is hyper's
/// (an in-memory body has none).
pub type RequestBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// A response body: whole for most answers, or a stream of server-sent events that the
/// gateway passes on as the runtime writes them (a streamed `/v1/chat/completions`).
pub type ResponseBody = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// The Content-Type of a streamed answer, by which the gateway knows to pass it on in parts.
pub const EVENT_STREAM: &str = "text/event-stream";

/// A provider runtime in the gateway's own process (`serve --dispatch in-process`, ADR 16):
/// the runtime's own routing, without the loopback hop and the signing of a context the
/// gateway has just verified. The runtime implements it; the gateway holds one without
/// depending on the runtime crate.
#[async_trait]
pub trait Dispatch: Send + Sync {
    /// Answers one request. `trusted` is the context of the caller the gateway authenticated;
    /// an [`envelope::Executed`] in the request's extensions is what the gateway's policy
    /// judged, and is executed as it is.
    async fn dispatch(
        &self,
        request: Request<RequestBody>,
        trusted: Option<CallContext>,
    ) -> Response<ResponseBody>;
}
