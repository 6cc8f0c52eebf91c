//! The head of a streamed export (the audit log, the decision log): the body follows a page at
//! a time, so an export of any length leaves without being held whole, and a failure after
//! this head cuts the response short (no final chunk), which a client sees as a broken
//! transfer rather than as a whole log.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use switchyard_platform_store::ExportFormat;

/// Writes the 200 head of an export of `format`, offered as the file `<name>.<extension>`.
pub async fn begin(
    session: &mut Session,
    format: ExportFormat,
    name: &str,
    request_id: &str,
) -> pingora::Result<()> {
    let (content_type, extension) = match format {
        ExportFormat::JsonLines => ("application/x-ndjson", "jsonl"),
        ExportFormat::Csv => ("text/csv", "csv"),
    };
    let mut response = ResponseHeader::build(200, Some(5))?;
    response.insert_header("content-type", content_type)?;
    response.insert_header("transfer-encoding", "chunked")?;
    response.insert_header(
        "content-disposition",
        format!("attachment; filename=\"{name}.{extension}\""),
    )?;
    response.insert_header("x-request-id", request_id)?;
    response.insert_header("cache-control", "no-store")?;
    session
        .write_response_header(Box::new(response), false)
        .await
}
