//! How a declared resource is paged: the query of its first page, the URL of the page a token
//! names, and the next page's token read from an answer. A token is what the sync stores
//! between pages: the next link's URL, the body's cursor, an offset or a page number.

use reqwest::Url;
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError};

use super::config::PaginationConfig;
use crate::http::Response;

/// A place in a JSON body, from a config's JSON pointer (`/data/items`) or dotted path
/// (`data.items`), kept as a JSON pointer.
#[derive(Debug, Clone)]
pub(super) struct BodyPath(String);

impl BodyPath {
    /// Reads `raw`; `pointer` is the config field it came from, for errors.
    pub(super) fn parse(raw: &str, pointer: &str) -> Result<Self, ProviderError> {
        if raw.is_empty() {
            return Ok(BodyPath(String::new()));
        }
        if raw.starts_with('/') {
            let escapes_valid = raw
                .split('~')
                .skip(1)
                .all(|after| after.starts_with('0') || after.starts_with('1'));
            if !escapes_valid {
                return Err(ProviderError::field(
                    ErrorCode::ConfigUnprocessable,
                    pointer,
                    "a JSON pointer may escape only ~0 and ~1",
                ));
            }
            return Ok(BodyPath(raw.to_owned()));
        }
        let mut json_pointer = String::with_capacity(raw.len() + 1);
        for segment in raw.split('.') {
            if segment.is_empty() {
                return Err(ProviderError::field(
                    ErrorCode::ConfigUnprocessable,
                    pointer,
                    "a dotted path has no empty segment",
                ));
            }
            json_pointer.push('/');
            json_pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        }
        Ok(BodyPath(json_pointer))
    }

    pub(super) fn find<'a>(&self, body: &'a Value) -> Option<&'a Value> {
        body.pointer(&self.0)
    }
}

/// A resource's pagination, checked.
#[derive(Debug, Clone)]
pub(super) enum Pagination {
    Cursor {
        param: String,
        next: BodyPath,
    },
    Link,
    Offset {
        offset_param: String,
        limit_param: String,
        limit: u64,
    },
    Page {
        page_param: String,
        size_param: String,
        size: u64,
        first: u64,
    },
}

impl Pagination {
    /// Checks `config`; `pointer` is where it sits in the config.
    pub(super) fn new(config: PaginationConfig, pointer: &str) -> Result<Self, ProviderError> {
        Ok(match config {
            PaginationConfig::Cursor { param, next_path } => Pagination::Cursor {
                param,
                next: BodyPath::parse(&next_path, &format!("{pointer}/cursor/next_path"))?,
            },
            PaginationConfig::Link {} => Pagination::Link,
            PaginationConfig::Offset {
                offset_param,
                limit_param,
                limit,
            } => Pagination::Offset {
                offset_param,
                limit_param,
                limit,
            },
            PaginationConfig::Page {
                page_param,
                size_param,
                size,
                first,
            } => Pagination::Page {
                page_param,
                size_param,
                size,
                first,
            },
        })
    }

    /// The query parameters of a read's first page.
    pub(super) fn first_params(&self) -> Vec<(&str, String)> {
        match self {
            Pagination::Cursor { .. } | Pagination::Link => Vec::new(),
            Pagination::Offset {
                offset_param,
                limit_param,
                limit,
            } => vec![
                (offset_param, "0".to_owned()),
                (limit_param, limit.to_string()),
            ],
            Pagination::Page {
                page_param,
                size_param,
                size,
                first,
            } => vec![
                (page_param, first.to_string()),
                (size_param, size.to_string()),
            ],
        }
    }

    /// The URL of the page `token` names, in the read whose first page is `first`. A link
    /// token is checked against `origin` again: it may come from a stored run that predates a
    /// change of `base_url`.
    pub(super) fn page_url(
        &self,
        first: &Url,
        token: &str,
        origin: &Url,
    ) -> Result<Url, ProviderError> {
        match self {
            Pagination::Cursor { param, .. } => Ok(with_param(first, param, token)),
            Pagination::Link => {
                let url = Url::parse(token).map_err(|_| stale_token("a URL"))?;
                same_origin(&url, origin)?;
                Ok(url)
            }
            Pagination::Offset { offset_param, .. } => {
                let offset: u64 = token.parse().map_err(|_| stale_token("an offset"))?;
                Ok(with_param(first, offset_param, &offset.to_string()))
            }
            Pagination::Page { page_param, .. } => {
                let page: u64 = token.parse().map_err(|_| stale_token("a page number"))?;
                Ok(with_param(first, page_param, &page.to_string()))
            }
        }
    }

    /// The token of the page after the one `url` answered with `response` (holding `count`
    /// records), or `None` when it was the last. A token that would read the same page again
    /// is refused rather than followed forever.
    pub(super) fn next(
        &self,
        url: &Url,
        token: Option<&str>,
        response: &Response,
        count: usize,
        origin: &Url,
    ) -> Result<Option<String>, ProviderError> {
        let next = match self {
            Pagination::Cursor { next, .. } => {
                if count == 0 {
                    return Ok(None);
                }
                match next.find(&response.body) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(cursor)) if cursor.is_empty() => None,
                    Some(Value::String(cursor)) => Some(cursor.clone()),
                    Some(Value::Number(cursor)) => Some(cursor.to_string()),
                    Some(_) => {
                        return Err(ProviderError::new(
                            ErrorCode::ProviderFailed,
                            "the API's next-page cursor is neither a string nor a number",
                        ));
                    }
                }
            }
            Pagination::Link => match response.headers.get("link") {
                None => None,
                Some(header) => {
                    let links = http_link::parse_link_header(header, url).map_err(|e| {
                        ProviderError::new(
                            ErrorCode::ProviderFailed,
                            format!("the API answered a Link header RFC 8288 refuses: {e}"),
                        )
                    })?;
                    match links.into_iter().find(|link| link.rel == "next") {
                        None => None,
                        Some(link) => {
                            same_origin(&link.target, origin)?;
                            Some(link.target.to_string())
                        }
                    }
                }
            },
            Pagination::Offset { limit, .. } => {
                let offset: u64 = token.map_or(Ok(0), str::parse).unwrap_or(0);
                (count as u64 >= *limit).then(|| (offset + count as u64).to_string())
            }
            Pagination::Page { size, first, .. } => {
                let page: u64 = token.map_or(Ok(*first), str::parse).unwrap_or(*first);
                (count as u64 >= *size).then(|| (page + 1).to_string())
            }
        };
        if next.is_some() && next.as_deref() == token {
            return Err(ProviderError::new(
                ErrorCode::ProviderFailed,
                "the API named the page it answered as its next page",
            ));
        }
        Ok(next)
    }
}

/// `url` with query parameter `name` set to `value` (replacing any it had).
pub(super) fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != name)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let mut url = url.clone();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
    url
}

/// Refuses a next-page URL off `base_url`'s origin: a tenant's API (or whoever answers in
/// its name) could otherwise aim the connection, with its credentials, at another host.
fn same_origin(url: &Url, origin: &Url) -> Result<(), ProviderError> {
    if url.origin() == origin.origin() {
        return Ok(());
    }
    Err(ProviderError::new(
        ErrorCode::ProviderFailed,
        "the API's next-page link leaves base_url's origin; it is not followed",
    )
    .with_retryable(false))
}

fn stale_token(what: &str) -> ProviderError {
    ProviderError::field(
        ErrorCode::ParamsUnprocessable,
        "/page",
        format!("the page token is not {what}: it belongs to another pagination style"),
    )
}
