//! `integration/rest`: any JSON REST API described in config instead of code — its base URL,
//! how it authenticates, and per resource the path, where the records sit in an answer, the
//! primary key, the cursor an incremental read resumes from, the pagination style (cursor,
//! RFC 8288 link, offset, page) and an optional deleted-record feed. Airbyte's declarative
//! (low-code) sources are the model; what every connector shares (cursors, raw records,
//! mappings, destinations) is `crate::sync`'s.
//!
//! Every call goes through [`crate::http::Api`] (credentials, limits, retries, the egress
//! guard), to `base_url`'s origin only: resource paths are relative by schema and checked
//! again once joined, and a next-page link off that origin is refused, so neither a config
//! nor the API's answers can aim the tenant's credentials at another host.

mod config;
mod pagination;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, Url};
use serde_json::Value;
use switchyard_contracts::SchemaError;
use switchyard_spi::{ErrorCode, Host, ProviderError, ProviderFactory};

pub(crate) use config::RestConfig;
use config::{DeletedConfig, FieldType, ResourceConfig, auth, base_url, join};
use pagination::{BodyPath, Pagination, with_param};

use crate::connector::{
    Connect, Connector, DeletedPage, Deletes, Field, Link, Page, ReadFrom, Stream,
};
use crate::http::Api;
use crate::sync;

/// `integration/rest`, always hosted: it calls no API until a tenant configures one.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    sync::builtin::<Rest>(
        host,
        sync::About {
            summary: "Any JSON REST API described in config: base URL, auth, and per resource \
                      its path, records path, primary key, cursor and pagination (cursor, link, \
                      offset, page); incremental syncs and an optional deleted feed.",
            capabilities: &["incremental", "full_refresh", "deleted_feed"],
            actions: sync::READ_ACTIONS,
        },
    )
}

/// One tenant's connection to a declared REST API.
pub(crate) struct Rest {
    api: Api,
    /// `base_url`, whose origin every call stays on.
    base: Url,
    resources: BTreeMap<String, Resource>,
}

/// A resource of the config, checked and joined to the base URL.
#[derive(Debug)]
struct Resource {
    /// The first page's URL without pagination or cursor parameters.
    url: Url,
    records: BodyPath,
    primary_key: String,
    cursor_field: Option<String>,
    cursor_param: Option<String>,
    sort_params: Vec<(String, String)>,
    pagination: Pagination,
    deleted: Option<DeletedFeed>,
    /// Fields the config declares for `discover`.
    fields: BTreeMap<String, FieldType>,
}

#[derive(Debug)]
struct DeletedFeed {
    url: Url,
    key_field: String,
    at_field: String,
    cursor_param: Option<String>,
    sort_params: Vec<(String, String)>,
}

/// One list to read: a resource or its deleted feed.
struct List<'a> {
    url: &'a Url,
    cursor_param: Option<&'a str>,
    sort_params: &'a [(String, String)],
}

impl Rest {
    fn resource(&self, stream: &str) -> Result<&Resource, ProviderError> {
        self.resources.get(stream).ok_or_else(|| {
            ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/stream",
                format!("integration/rest has no resource {stream:?} in its config"),
            )
        })
    }

    /// One page of `list`: its records (raw) and the next page's token.
    async fn page(
        &self,
        resource: &Resource,
        list: List<'_>,
        from: ReadFrom<'_>,
    ) -> Result<(Vec<Value>, Option<String>), ProviderError> {
        let mut first = list.url.clone();
        for (name, value) in list.sort_params {
            first = with_param(&first, name, value);
        }
        if let (Some(since), Some(param)) = (from.since, list.cursor_param) {
            first = with_param(&first, param, &query_value(since)?);
        }
        for (name, value) in resource.pagination.first_params() {
            first = with_param(&first, name, &value);
        }
        let url = match from.page {
            None => first,
            Some(token) => resource.pagination.page_url(&first, token, &self.base)?,
        };
        let response = self.api.send(Method::GET, url.clone(), None).await?;
        if !response.status.is_success() {
            return Err(ProviderError::new(
                ErrorCode::ProviderFailed,
                format!(
                    "the API answered {} for a resource path of the config",
                    response.status
                ),
            ));
        }
        let records = match resource.records.find(&response.body) {
            Some(Value::Array(records)) => records.clone(),
            _ => {
                return Err(ProviderError::new(
                    ErrorCode::ProviderFailed,
                    "the API's answer holds no array of records at the resource's records_path",
                ));
            }
        };
        let next =
            resource
                .pagination
                .next(&url, from.page, &response, records.len(), &self.base)?;
        Ok((records, next))
    }
}

#[async_trait]
impl Connector for Rest {
    const NAME: &'static str = "rest";

    /// The declared resources, with their fields: those the config declares, those of the
    /// first record the resource answers (one call each), and always the primary key and
    /// cursor field, reported as strings when neither says more (the form both take in a
    /// query parameter and a destination's key).
    async fn discover(&self) -> Result<Vec<Stream>, ProviderError> {
        let mut streams = Vec::with_capacity(self.resources.len());
        for (name, resource) in &self.resources {
            let (records, _) = self
                .page(resource, resource.list(), ReadFrom::default())
                .await?;
            let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
            if let Some(Value::Object(first)) = records.first() {
                for (field, value) in first {
                    if let Some(kind) = json_type(value) {
                        fields.insert(field, kind);
                    }
                }
            }
            for (field, kind) in &resource.fields {
                fields.insert(field, kind.name());
            }
            for field in std::iter::once(&resource.primary_key).chain(&resource.cursor_field) {
                fields.entry(field).or_insert("string");
            }
            streams.push(Stream {
                name: name.clone(),
                primary_key: resource.primary_key.clone(),
                cursor_field: resource.cursor_field.clone(),
                deletes: match resource.deleted {
                    Some(_) => Deletes::Feed,
                    None => Deletes::FullRefresh,
                },
                fields: fields
                    .into_iter()
                    .map(|(name, kind)| Field {
                        name: name.to_owned(),
                        kind: kind.to_owned(),
                    })
                    .collect(),
            });
        }
        Ok(streams)
    }

    /// The first page of the first resource (by name).
    async fn check(&self) -> Result<(), ProviderError> {
        let Some(resource) = self.resources.values().next() else {
            return Err(ProviderError::internal(
                "connect let a config without resources through",
            ));
        };
        self.page(resource, resource.list(), ReadFrom::default())
            .await
            .map(drop)
    }

    async fn read(&self, stream: &str, from: ReadFrom<'_>) -> Result<Page, ProviderError> {
        let resource = self.resource(stream)?;
        let since = match (from.since, &resource.cursor_field) {
            (None, _) => None,
            (Some(since), Some(field)) => Some((since, field)),
            (Some(_), None) => {
                return Err(ProviderError::field(
                    ErrorCode::ParamsUnprocessable,
                    "/mode",
                    format!("resource {stream:?} declares no cursor_field: it is read whole"),
                ));
            }
        };
        let (mut records, next_page) = self.page(resource, resource.list(), from).await?;
        // The API's own filter may be looser than "at or after" (or absent): what it let
        // through from before the cursor is dropped here.
        if let Some((since, field)) = since {
            records.retain(|record| !is_before(record.get(field), since));
        }
        Ok(Page { records, next_page })
    }

    async fn read_deleted(
        &self,
        stream: &str,
        from: ReadFrom<'_>,
    ) -> Result<DeletedPage, ProviderError> {
        let resource = self.resource(stream)?;
        let Some(feed) = &resource.deleted else {
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/stream",
                format!("resource {stream:?} declares no deleted feed"),
            ));
        };
        let list = List {
            url: &feed.url,
            cursor_param: feed.cursor_param.as_deref(),
            sort_params: &feed.sort_params,
        };
        let (records, next_page) = self.page(resource, list, from).await?;
        let mut deleted = Vec::with_capacity(records.len());
        for record in records {
            let key = match record.get(&feed.key_field) {
                Some(Value::String(key)) => key.clone(),
                Some(Value::Number(key)) if key.is_i64() || key.is_u64() => key.to_string(),
                _ => {
                    return Err(ProviderError::new(
                        ErrorCode::ProviderFailed,
                        "a deleted-feed record has no string or integer key_field",
                    ));
                }
            };
            let Some(at) = record.get(&feed.at_field).filter(|at| !at.is_null()) else {
                return Err(ProviderError::new(
                    ErrorCode::ProviderFailed,
                    "a deleted-feed record has no at_field",
                ));
            };
            if from.since.is_some_and(|since| is_before(Some(at), since)) {
                continue;
            }
            deleted.push(key);
        }
        Ok(DeletedPage { deleted, next_page })
    }
}

impl Connect for Rest {
    type Config = RestConfig;

    fn settings(config: &RestConfig) -> &crate::sync::Settings {
        &config.sync
    }

    fn connect(config: RestConfig, link: Link) -> Result<Self, ProviderError> {
        let base = base_url(&config.base_url)?;
        if config.resources.is_empty() {
            return Err(ProviderError::field(
                ErrorCode::ConfigUnprocessable,
                "/resources",
                "declare at least one resource",
            ));
        }
        let auth = auth(config.auth, link.tokens)?;
        let mut resources = BTreeMap::new();
        for (name, resource) in config.resources {
            let pointer = format!("/resources/{}", name.replace('~', "~0").replace('/', "~1"));
            resources.insert(name, Resource::new(resource, &base, &pointer)?);
        }
        let mut api = Api::new(Self::NAME, link.egress, auth)?;
        if let Some(per_second) = config.requests_per_second {
            api = api.with_ceiling(per_second);
        }
        Ok(Rest {
            api,
            base,
            resources,
        })
    }
}

impl Resource {
    fn new(mut config: ResourceConfig, base: &Url, pointer: &str) -> Result<Self, ProviderError> {
        if config.cursor_param.is_some() && config.cursor_field.is_none() {
            return Err(ProviderError::field(
                ErrorCode::ConfigUnprocessable,
                &format!("{pointer}/cursor_param"),
                "a cursor_param needs the cursor_field it filters on",
            ));
        }
        let deleted = config
            .deleted
            .take()
            .map(|deleted| DeletedFeed::new(deleted, &config, base, &format!("{pointer}/deleted")))
            .transpose()?;
        Ok(Resource {
            url: join(base, &config.path, &format!("{pointer}/path"))?,
            records: BodyPath::parse(&config.records_path, &format!("{pointer}/records_path"))?,
            pagination: Pagination::new(config.pagination, &format!("{pointer}/pagination"))?,
            primary_key: config.primary_key,
            cursor_field: config.cursor_field,
            cursor_param: config.cursor_param,
            sort_params: config.sort_params.into_iter().collect(),
            deleted,
            fields: config.fields,
        })
    }

    fn list(&self) -> List<'_> {
        List {
            url: &self.url,
            cursor_param: self.cursor_param.as_deref(),
            sort_params: &self.sort_params,
        }
    }
}

impl DeletedFeed {
    fn new(
        config: DeletedConfig,
        resource: &ResourceConfig,
        base: &Url,
        pointer: &str,
    ) -> Result<Self, ProviderError> {
        let Some(at_field) = config.at_field.or_else(|| resource.cursor_field.clone()) else {
            return Err(ProviderError::field(
                ErrorCode::ConfigUnprocessable,
                &format!("{pointer}/at_field"),
                "a deleted feed needs an at_field (or the resource's cursor_field)",
            ));
        };
        Ok(DeletedFeed {
            url: join(base, &config.path, &format!("{pointer}/path"))?,
            key_field: config
                .key_field
                .unwrap_or_else(|| resource.primary_key.clone()),
            at_field,
            cursor_param: config
                .cursor_param
                .or_else(|| resource.cursor_param.clone()),
            sort_params: config.sort_params.into_iter().collect(),
        })
    }
}

/// A cursor value as a query parameter.
fn query_value(value: &Value) -> Result<String, ProviderError> {
    match value {
        Value::String(value) => Ok(value.clone()),
        Value::Number(value) => Ok(value.to_string()),
        _ => Err(ProviderError::field(
            ErrorCode::ParamsUnprocessable,
            "/since",
            "a cursor is a string or a number",
        )),
    }
}

/// Whether a record's cursor value comes before `since`. Values of different kinds (or a
/// missing one) are not comparable and kept: the destination dedupes on the primary key.
fn is_before(value: Option<&Value>, since: &Value) -> bool {
    match (value, since) {
        (Some(Value::String(value)), Value::String(since)) => value < since,
        (Some(Value::Number(value)), Value::Number(since)) => {
            matches!((value.as_f64(), since.as_f64()), (Some(v), Some(s)) if v < s)
        }
        _ => false,
    }
}

/// The JSON Schema type name of `value`; `None` for null, which says nothing of the field.
fn json_type(value: &Value) -> Option<&'static str> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    })
}
