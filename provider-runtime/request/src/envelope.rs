//! What a request asks the runtime to execute, read once by one set of rules that the gateway's
//! policy and the runtime's dispatch share (ADR 20): the policy must judge exactly the params
//! that run, so there is no second reading of a body that could disagree with the first.
//!
//! Each route declares the bodies it takes ([`BodyRule`]); the Content-Type picks one of them
//! before a byte is read ([`accept`]), and anything else is refused with 415
//! `unsupported_media_type` — a body in an unexpected type is never guessed at. [`execute`] then
//! turns the accepted body into what runs ([`Executed`]): the invoke envelope's `params`, the
//! configure body's `config`, or for a raw upload the query parameters, which both the policy and
//! the runtime take from the request URI (the gateway forwards and signs that URI unchanged).
//!
//! JSON bodies are `application/json` or any `+json` type, in UTF-8 (the only charset JSON has,
//! RFC 8259); media types compare case-insensitively (RFC 9110). A request without a
//! Content-Type may only have an empty body, read as no params: clients that send nothing (a
//! `trial_balance` without params, `start`) need no header, and a body whose type nobody declared
//! is not interpreted.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, InvokeRequest, Problem};

use crate::path::Split;
use crate::{inbound, openai};

/// The actions of a domain that take raw bytes (`Content-Type: application/octet-stream`, params
/// in the query string) besides the JSON envelope: every engine of a domain serves the domain's
/// actions (`contracts/schemas/domains`), so this is a property of the domain contract.
const RAW_BODY_ACTIONS: [(&str, &str); 1] = [("storage", "put")];

/// The bodies a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRule {
    /// Nothing is read from the body: reads, `start`, `stop`, routes the runtime does not serve.
    Ignored,
    /// An invoke envelope `{"params": {...}, "metadata": {...}}`.
    Envelope,
    /// An invoke envelope, or raw bytes with the params in the query string.
    EnvelopeOrRaw,
    /// `{"config": {...}}`.
    Config,
    /// An inbound webhook ([`inbound`]): raw bytes of any type, the params read from the
    /// sender's headers.
    Inbound,
    /// The params object itself, as OpenAI's clients send it ([`openai`]).
    Bare,
}

/// How the body of one request is read, decided from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyForm {
    /// The route reads no body.
    Ignored,
    /// No Content-Type: the body must be empty.
    Absent,
    /// JSON, parsed by [`execute`].
    Json,
    /// Raw bytes for the action; its params are the query parameters.
    Raw,
}

/// What runs: the same value is the policy's `resource` and the runtime's input.
#[derive(Debug, Clone, PartialEq)]
pub enum Executed {
    /// The route takes nothing from the body.
    Nothing,
    /// An action's params; with `raw`, the request body is the action's payload.
    Params { params: Value, raw: bool },
    /// A provider config, as `configure` stores and validates it.
    Config(Value),
}

impl Executed {
    /// The policy input's `resource`: the params or config that run, `{}` when nothing does.
    pub fn resource(&self) -> Value {
        match self {
            Executed::Nothing => json!({}),
            Executed::Params { params, .. } => params.clone(),
            Executed::Config(config) => config.clone(),
        }
    }

    /// The body `configure` takes, rebuilt from the config that [`execute`] checked.
    pub fn configure_body(&self) -> Value {
        json!({"config": self.resource()})
    }
}

/// The rule of the route `method path`, as the runtime routes it.
pub fn rule_of(method: &Method, path: &str) -> BodyRule {
    rule_of_segments(method, Split::of(path).as_slice())
}

/// [`rule_of`] for a path already split.
pub fn rule_of_segments(method: &Method, segments: &[&str]) -> BodyRule {
    if method != Method::POST {
        return BodyRule::Ignored;
    }
    match segments {
        ["providers", _, _, "configure"] => BodyRule::Config,
        ["providers", _, _, "start" | "stop"] => BodyRule::Ignored,
        ["providers", domain, _, action] if RAW_BODY_ACTIONS.contains(&(*domain, *action)) => {
            BodyRule::EnvelopeOrRaw
        }
        ["providers", _, _, _] | ["services", _, _] => BodyRule::Envelope,
        segments if inbound::target(segments).is_some() => BodyRule::Inbound,
        segments if openai::action(segments).is_some() => BodyRule::Bare,
        _ => BodyRule::Ignored,
    }
}

/// Picks the form of the body from its Content-Type, or refuses the type with 415.
pub fn accept(rule: BodyRule, content_type: Option<&HeaderValue>) -> Result<BodyForm, Problem> {
    match rule {
        BodyRule::Ignored => return Ok(BodyForm::Ignored),
        // The sender chose the type; its engine reads the bytes it signed, whatever they are.
        BodyRule::Inbound => return Ok(BodyForm::Raw),
        _ => {}
    }
    let Some(content_type) = content_type else {
        return Ok(BodyForm::Absent);
    };
    let media = content_type
        .to_str()
        .ok()
        .and_then(|text| text.parse::<mime::Mime>().ok());
    match media {
        Some(media) if is_json(&media) => Ok(BodyForm::Json),
        Some(media)
            if rule == BodyRule::EnvelopeOrRaw
                && media.essence_str() == mime::APPLICATION_OCTET_STREAM.essence_str() =>
        {
            Ok(BodyForm::Raw)
        }
        _ => {
            let accepted = match rule {
                BodyRule::EnvelopeOrRaw => {
                    "application/json (or a +json type, UTF-8) or application/octet-stream"
                }
                _ => "application/json (or a +json type, UTF-8)",
            };
            Err(Problem::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "this route takes {accepted}, not {:?}",
                    String::from_utf8_lossy(content_type.as_bytes())
                ),
            ))
        }
    }
}

/// `application/json` or `*/*+json`, without a charset or with UTF-8.
fn is_json(media: &mime::Mime) -> bool {
    let json_type = media.type_() == mime::APPLICATION
        && (media.subtype() == mime::JSON || media.suffix() == Some(mime::JSON));
    let utf8 = media
        .get_param(mime::CHARSET)
        .is_none_or(|charset| charset.as_str().eq_ignore_ascii_case("utf-8"));
    json_type && utf8
}

/// What the request executes, from its accepted form, its URI query, its headers (an inbound
/// webhook's params) and its body (a raw form does not read the body: the payload is whatever
/// bytes arrive). Refuses a malformed body with 400 `request_invalid`, and a body sent without
/// a Content-Type with 415.
pub fn execute(
    rule: BodyRule,
    form: BodyForm,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Executed, Problem> {
    if rule == BodyRule::Inbound {
        return Ok(Executed::Params {
            params: inbound::params(headers),
            raw: true,
        });
    }
    match form {
        BodyForm::Ignored => Ok(Executed::Nothing),
        BodyForm::Raw => Ok(Executed::Params {
            params: query_params(query),
            raw: true,
        }),
        BodyForm::Absent if !body.is_empty() => Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "a request body needs a Content-Type (application/json)",
        )),
        BodyForm::Absent | BodyForm::Json => match rule {
            BodyRule::Ignored | BodyRule::Inbound => Ok(Executed::Nothing),
            BodyRule::Config => config(body).map(Executed::Config),
            BodyRule::Envelope | BodyRule::EnvelopeOrRaw => Ok(Executed::Params {
                params: envelope_params(body)?,
                raw: false,
            }),
            BodyRule::Bare => Ok(Executed::Params {
                params: bare_params(body)?,
                raw: false,
            }),
        },
    }
}

/// A body that is the params object itself; an empty body means no params.
fn bare_params(body: &[u8]) -> Result<Value, Problem> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice(body) {
        Ok(params @ Value::Object(_)) => Ok(params),
        Ok(_) => Err(Problem::new(
            ErrorCode::RequestInvalid,
            "the body must be a JSON object",
        )),
        Err(e) => Err(Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not JSON: {e}"),
        )),
    }
}

/// The `params` of an invoke envelope; an empty body means no params.
fn envelope_params(body: &[u8]) -> Result<Value, Problem> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let invalid = |why: String| {
        Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not an invoke envelope {{\"params\": {{...}}}}: {why}"),
        )
    };
    // serde would also read a struct from a JSON array; an envelope is an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(invalid("not a JSON object".into()));
    }
    let envelope: InvokeRequest =
        serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    Ok(envelope.params)
}

/// The config of a `{"config": {...}}` body, nothing else beside it.
fn config(body: &[u8]) -> Result<Value, Problem> {
    let shape = || {
        Problem::new(
            ErrorCode::RequestInvalid,
            "the body must be {\"config\": {...}}",
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not JSON: {e}"),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(shape());
    };
    match (fields.remove("config"), fields.is_empty()) {
        (Some(config), true) => Ok(config),
        _ => Err(shape()),
    }
}

/// The query string's parameters as string params; a repeated name keeps its last value.
pub fn query_params(query: Option<&str>) -> Value {
    let params: Map<String, Value> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Value::Object(params)
}

/// The payload an action receives: the body of a raw upload, nothing otherwise.
pub fn payload(executed: &Executed, body: Bytes) -> Option<Bytes> {
    matches!(executed, Executed::Params { raw: true, .. }).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(value: &'static str) -> Option<HeaderValue> {
        Some(HeaderValue::from_static(value))
    }

    #[test]
    fn routes_declare_their_bodies() {
        let post = Method::POST;
        assert_eq!(
            rule_of(&post, "/services/ledger/post_journal"),
            BodyRule::Envelope
        );
        assert_eq!(
            rule_of(&post, "/providers/db/sqlite/query"),
            BodyRule::Envelope
        );
        assert_eq!(
            rule_of(&post, "/providers/storage/fs/put"),
            BodyRule::EnvelopeOrRaw
        );
        assert_eq!(
            rule_of(&post, "/providers/storage/fs/get"),
            BodyRule::Envelope
        );
        assert_eq!(
            rule_of(&post, "/providers/db/sqlite/configure"),
            BodyRule::Config
        );
        assert_eq!(
            rule_of(&post, "/providers/db/sqlite/start"),
            BodyRule::Ignored
        );
        assert_eq!(
            rule_of(&Method::GET, "/providers/db/sqlite"),
            BodyRule::Ignored
        );
        assert_eq!(
            rule_of(&post, "/inbound/acme/integration/shopify"),
            BodyRule::Inbound
        );
        assert_eq!(rule_of(&post, "/inbound/acme/db/sqlite"), BodyRule::Ignored);
    }

    #[test]
    fn an_inbound_webhook_runs_with_its_headers_as_params_and_its_body_as_payload() {
        for any in [ct("application/json"), ct("text/xml"), None] {
            assert_eq!(accept(BodyRule::Inbound, any.as_ref()), Ok(BodyForm::Raw));
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-shopify-topic", HeaderValue::from_static("orders/create"));
        headers.insert("authorization", HeaderValue::from_static("Bearer k"));
        let executed = execute(
            BodyRule::Inbound,
            BodyForm::Raw,
            Some("headers=forged"),
            &headers,
            b"{\"id\": 1}",
        )
        .unwrap();
        assert_eq!(
            executed,
            Executed::Params {
                params: json!({"headers": {"x-shopify-topic": "orders/create"}}),
                raw: true
            }
        );
        let body = Bytes::from_static(b"{\"id\": 1}");
        assert_eq!(payload(&executed, body.clone()), Some(body));
    }

    #[test]
    fn only_declared_types_are_accepted() {
        for json in [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "application/json; charset=UTF-8",
            "application/vnd.acme+json",
        ] {
            assert_eq!(
                accept(BodyRule::Envelope, ct(json).as_ref()),
                Ok(BodyForm::Json),
                "{json}"
            );
        }
        for refused in [
            "application/octet-stream",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=utf-16",
            "text/json",
            "json",
            "",
        ] {
            let problem = accept(BodyRule::Envelope, ct(refused).as_ref()).unwrap_err();
            assert_eq!(problem.code, ErrorCode::UnsupportedMediaType, "{refused}");
            assert_eq!(
                accept(BodyRule::Config, ct(refused).as_ref())
                    .unwrap_err()
                    .code,
                ErrorCode::UnsupportedMediaType
            );
        }
        assert_eq!(
            accept(
                BodyRule::EnvelopeOrRaw,
                ct("application/octet-stream").as_ref()
            ),
            Ok(BodyForm::Raw)
        );
        assert_eq!(accept(BodyRule::Envelope, None), Ok(BodyForm::Absent));
        assert_eq!(
            accept(BodyRule::Ignored, ct("text/plain").as_ref()),
            Ok(BodyForm::Ignored)
        );
    }

    #[test]
    fn what_runs_is_read_from_the_accepted_form_only() {
        let body = br#"{"params": {"amount": 50000}}"#;
        let query = Some("amount=1");
        assert_eq!(
            execute(
                BodyRule::Envelope,
                BodyForm::Json,
                query,
                &HeaderMap::new(),
                body
            )
            .unwrap(),
            Executed::Params {
                params: json!({"amount": 50000}),
                raw: false
            }
        );
        assert_eq!(
            execute(
                BodyRule::EnvelopeOrRaw,
                BodyForm::Raw,
                query,
                &HeaderMap::new(),
                body
            )
            .unwrap(),
            Executed::Params {
                params: json!({"amount": "1"}),
                raw: true
            }
        );
        assert_eq!(
            execute(
                BodyRule::Envelope,
                BodyForm::Absent,
                query,
                &HeaderMap::new(),
                body
            )
            .unwrap_err()
            .code,
            ErrorCode::UnsupportedMediaType
        );
        assert_eq!(
            execute(
                BodyRule::Envelope,
                BodyForm::Absent,
                query,
                &HeaderMap::new(),
                b""
            )
            .unwrap(),
            Executed::Params {
                params: json!({}),
                raw: false
            }
        );
        for malformed in [
            &b"{"[..],
            b"[]",
            br#"[{"amount": 1}]"#,
            br#"{"params": {}, "extra": 1}"#,
            br#"{"params": {"amount": 1}, "params": {"amount": 50000}}"#,
        ] {
            assert_eq!(
                execute(
                    BodyRule::Envelope,
                    BodyForm::Json,
                    None,
                    &HeaderMap::new(),
                    malformed
                )
                .unwrap_err()
                .code,
                ErrorCode::RequestInvalid
            );
        }
        assert_eq!(
            execute(
                BodyRule::Config,
                BodyForm::Json,
                None,
                &HeaderMap::new(),
                br#"{"config": {"a": 1}}"#
            )
            .unwrap(),
            Executed::Config(json!({"a": 1}))
        );
        for malformed in [&b""[..], b"{}", br#"{"config": {}, "params": {}}"#, b"[1]"] {
            assert_eq!(
                execute(
                    BodyRule::Config,
                    BodyForm::Json,
                    None,
                    &HeaderMap::new(),
                    malformed
                )
                .unwrap_err()
                .code,
                ErrorCode::RequestInvalid
            );
        }
    }
}
