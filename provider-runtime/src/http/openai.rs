//! The runtime's side of the OpenAI-compatible surface ([`switchyard_request::openai`]): each
//! `/v1/*` route runs an action of the tenant's `ai/gateway` with the body as its params, and
//! answers what the action answers as it is (OpenAI's objects, no invoke envelope). A chat
//! asked with `"stream": true` is answered as server-sent events, one `data:` line per chunk
//! the provider yields and `data: [DONE]` at the end, written as they come. Refusals are in
//! OpenAI's error shape, so OpenAI's clients raise their own exception types for them.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_request::{EVENT_STREAM, ResponseBody, openai};
use switchyard_spi::CallContext;

use super::path::Segments;
use super::{RequestBody, Service, params, request_id_or_new};
use crate::observe;

impl Service {
    /// Answers one `/v1/*` request.
    pub(super) async fn openai(
        &self,
        req: Request<RequestBody>,
        segments: Segments,
        trusted: Option<CallContext>,
    ) -> Response<ResponseBody> {
        let given_id = req.headers().get("x-request-id").cloned();
        let split = segments.of(req.uri().path());
        let Some(action) = openai::action(split.as_slice()) else {
            let problem = Problem::new(
                ErrorCode::RouteNotFound,
                format!("no route for {}", req.uri().path()),
            );
            return refusal(problem, &request_id_or_new(given_id.as_ref()));
        };
        if req.method() != openai::method(action) {
            let problem = Problem::new(
                ErrorCode::MethodNotAllowed,
                format!("use {} for {}", openai::method(action), req.uri().path()),
            );
            return refusal(problem, &request_id_or_new(given_id.as_ref()));
        }
        let (ctx, admitted) = match self.admit(req, segments, trusted).await {
            Ok(admitted) => admitted,
            Err(problem) => return refusal(problem, &request_id_or_new(given_id.as_ref())),
        };
        let params = match admitted.executed {
            switchyard_request::envelope::Executed::Nothing => Ok(json!({})),
            executed => params(executed, admitted.body).map(|(params, _)| params),
        };
        let answer = match params {
            Ok(params) => self.run(&ctx, action, params).await,
            Err(problem) => Err(problem),
        };
        answer.unwrap_or_else(|problem| refusal(problem, &ctx.request_id))
    }

    async fn run(
        &self,
        ctx: &CallContext,
        action: &str,
        params: Value,
    ) -> Result<Response<ResponseBody>, Problem> {
        let (domain, name) = openai::PROVIDER;
        if params.get("stream") == Some(&Value::Bool(true)) {
            let items = self
                .runtime
                .stream(ctx, domain, name, action, params)
                .await?;
            let events = items
                .map(|item| {
                    let line = match item {
                        Ok(chunk) => format!("data: {chunk}\n\n"),
                        // The stream broke after it began: the status is sent already, so the
                        // error goes in-band, as OpenAI's own API sends it.
                        Err(problem) => format!(
                            "data: {}\n\n",
                            String::from_utf8_lossy(&problem.to_openai_body())
                        ),
                    };
                    Ok::<_, Infallible>(Frame::data(Bytes::from(line)))
                })
                .chain(futures_util::stream::once(async {
                    Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n")))
                }));
            let mut response = Response::new(StreamBody::new(events).boxed_unsync());
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            insert_request_id(headers, &ctx.request_id);
            return Ok(response);
        }
        let answer = self
            .runtime
            .invoke(ctx, domain, name, action, params, None)
            .await?;
        let mut response = Response::new(whole(Bytes::from(answer.to_string())));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        insert_request_id(headers, &ctx.request_id);
        Ok(response)
    }
}

/// A whole body as a [`ResponseBody`].
pub(super) fn whole(body: Bytes) -> ResponseBody {
    Full::new(body).boxed_unsync()
}

fn insert_request_id(headers: &mut http::HeaderMap, request_id: &str) {
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
}

/// A refusal in OpenAI's error shape, with the problem's status and the headers the
/// problem+json answers carry (the request id, the stable code for the gateway's metrics, and
/// when to retry a retryable 429 or 503: OpenAI's SDKs honour `Retry-After`).
pub(super) fn refusal(problem: Problem, request_id: &str) -> Response<ResponseBody> {
    let status =
        StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(whole(Bytes::from(problem.to_openai_body())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    insert_request_id(headers, request_id);
    headers.insert(
        observe::CODE_HEADER,
        HeaderValue::from_static(problem.code.as_str()),
    );
    if matches!(status.as_u16(), 429 | 503) && problem.retryable {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
