//! Writes a refusal as problem+json, the same shape the runtime uses — or, on the
//! OpenAI-compatible surface (`/v1/*`), in OpenAI's error shape, as the runtime answers there,
//! so that OpenAI's clients read a refusal of the gateway's (a 401, a 429) like one of theirs.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use switchyard_contracts::{PROBLEM_CONTENT_TYPE, Problem};

pub async fn respond(
    session: &mut Session,
    problem: Problem,
    request_id: &str,
    extra_headers: &[(&'static str, String)],
) -> pingora::Result<()> {
    let problem = problem.with_request_id(request_id);
    let openai = session.req_header().uri.path().starts_with("/v1/");
    let (body, content_type) = if openai {
        (problem.to_openai_body(), "application/json")
    } else {
        (problem.to_body(), PROBLEM_CONTENT_TYPE)
    };
    let body = Bytes::from(body);
    let mut header = ResponseHeader::build(problem.status(), Some(5 + extra_headers.len()))?;
    header.insert_header("content-type", content_type)?;
    header.insert_header("content-length", body.len().to_string())?;
    header.insert_header("x-request-id", request_id)?;
    for (name, value) in extra_headers {
        header.insert_header(*name, value)?;
    }
    if problem.status() == 401 {
        header.insert_header("www-authenticate", "Bearer")?;
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}
