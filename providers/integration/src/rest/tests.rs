//! `integration/rest` against json-server 0.17 (npm), a REST API nobody here wrote, started by
//! scripts/test-servers at `SWITCHYARD_TEST_JSON_SERVER_URL` with 25 seeded `items` (whose
//! `updated_at` order is not their id order), a `catalog` holding its records under
//! `data.products`, and `changes`/`changes_deleted` that tests fill through its API, each
//! record tagged with the test's own run id; a small middleware there checks `X-API-Key`s,
//! counts calls and answers 429s per key. json-server has no cursor pagination and always
//! links to itself, so the cursor style, bearer and OAuth2 credentials and a next link off
//! the base URL's origin are served by a small server in the test.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchyard_egress::Egress;
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{ErrorCode, ProviderError};
use tokio::net::TcpListener;

use super::{Rest, RestConfig};
use crate::connector::{Connect, Connector, Deletes, Link, ReadFrom};

fn json_server() -> String {
    std::env::var("SWITCHYARD_TEST_JSON_SERVER_URL").expect(
        "SWITCHYARD_TEST_JSON_SERVER_URL is not set: run the tests with scripts/test (it starts \
         json-server), or `source scripts/test-servers && start_json_server`",
    )
}

/// The connector for `config`, allowed to reach loopback as an operator's developer machine
/// would allow it.
fn connect(config: Value) -> Result<Rest, ProviderError> {
    let config: RestConfig = serde_json::from_value(config).expect("config shape");
    let ceiling = EgressCeiling {
        allowed_networks: vec!["127.0.0.0/8".parse().expect("network")],
        allowed_ports: Vec::new(),
    };
    Rest::connect(
        config,
        Link {
            egress: Egress::new(&ceiling),
            tokens: crate::http::Tokens::in_memory("rest"),
        },
    )
}

fn items(pagination: Value) -> Rest {
    connect(json!({
        "base_url": json_server(),
        "resources": {"items": {
            "path": "/items",
            "primary_key": "id",
            "cursor_field": "updated_at",
            "cursor_param": "updated_at_gte",
            "sort_params": {"_sort": "updated_at", "_order": "asc"},
            "pagination": pagination,
        }},
    }))
    .expect("connect")
}

/// Every page of `stream` from `since`, as the sync reads them: (records, pages).
async fn read_all(rest: &Rest, stream: &str, since: Option<&Value>) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let page = rest
            .read(
                stream,
                ReadFrom {
                    since,
                    page: token.as_deref(),
                },
            )
            .await
            .expect("read");
        pages += 1;
        records.extend(page.records);
        match page.next_page {
            Some(next) => token = Some(next),
            None => return (records, pages),
        }
        assert!(pages < 100, "the read never ends");
    }
}

fn field<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records.iter().map(|record| &record[name]).collect()
}

/// The 25 seeded items, ascending by `updated_at`: item `id` has second `(id * 7) % 25`.
fn seeded_ids_by_updated_at() -> Vec<Value> {
    let mut ids: Vec<u64> = (1..=25).collect();
    ids.sort_by_key(|id| (id * 7) % 25);
    ids.into_iter().map(Value::from).collect()
}

#[tokio::test]
async fn link_pagination_follows_rel_next_json_server() {
    // json-server pages only when asked for a page: the path carries the first one.
    let rest = connect(json!({
        "base_url": json_server(),
        "resources": {"items": {
            "path": "/items?_page=1&_limit=10",
            "primary_key": "id",
            "sort_params": {"_sort": "updated_at", "_order": "asc"},
            "pagination": {"link": {}},
        }},
    }))
    .expect("connect");
    let (records, pages) = read_all(&rest, "items", None).await;
    assert_eq!(pages, 3, "10 + 10 + 5 items");
    assert_eq!(
        field(&records, "id"),
        seeded_ids_by_updated_at().iter().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn offset_pagination_reads_every_item_once_json_server() {
    let rest =
        items(json!({"offset": {"offset_param": "_start", "limit_param": "_limit", "limit": 10}}));
    let (records, pages) = read_all(&rest, "items", None).await;
    assert_eq!(pages, 3, "a short page (5 of 10) is the last");
    assert_eq!(
        field(&records, "id"),
        seeded_ids_by_updated_at().iter().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn page_pagination_reads_every_item_once_json_server() {
    let rest = items(json!({"page": {"page_param": "_page", "size_param": "_limit", "size": 7}}));
    let (records, pages) = read_all(&rest, "items", None).await;
    assert_eq!(pages, 4, "7 + 7 + 7 + 4 items");
    assert_eq!(
        field(&records, "id"),
        seeded_ids_by_updated_at().iter().collect::<Vec<_>>()
    );

    // Exactly full pages end with an empty one.
    let rest = items(json!({"page": {"page_param": "_page", "size_param": "_limit", "size": 5}}));
    let (records, pages) = read_all(&rest, "items", None).await;
    assert_eq!((records.len(), pages), (25, 6));
}

#[tokio::test]
async fn incremental_read_sends_the_cursor_as_a_gte_filter_json_server() {
    let rest =
        items(json!({"offset": {"offset_param": "_start", "limit_param": "_limit", "limit": 2}}));
    let since = json!("2026-01-01T00:00:20Z");
    let (records, pages) = read_all(&rest, "items", Some(&since)).await;
    // Seconds 20..=24 (inclusive: a record at the cursor itself is read again).
    assert_eq!(
        field(&records, "updated_at"),
        (20..25)
            .map(|s| json!(format!("2026-01-01T00:00:{s}Z")))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(pages, 3, "the server filtered: 2 + 2 + 1 of 5, not 25");
}

/// The `changes` collection of json-server, written through its REST API, for one test run.
struct Changes {
    url: String,
    run: String,
    http: reqwest::Client,
}

impl Changes {
    fn new() -> Self {
        Changes {
            url: json_server(),
            run: uuid::Uuid::new_v4().to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("json-server");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("json")
    }

    async fn create(&self, name: &str, updated_at: &str) -> Value {
        let body = json!({"run": self.run, "name": name, "updated_at": updated_at});
        self.send(reqwest::Method::POST, "/changes", body).await["id"].clone()
    }

    fn connector(&self) -> Rest {
        connect(json!({
            "base_url": self.url,
            "resources": {"changes": {
                "path": format!("/changes?run={}", self.run),
                "primary_key": "id",
                "cursor_field": "updated_at",
                "cursor_param": "updated_at_gte",
                "sort_params": {"_sort": "updated_at", "_order": "asc"},
                "pagination": {"page": {"page_param": "_page", "size_param": "_limit", "size": 2}},
                "deleted": {
                    "path": format!("/changes_deleted?run={}", self.run),
                    "key_field": "key",
                    "at_field": "deleted_at",
                    "cursor_param": "deleted_at_gte",
                    "sort_params": {"_sort": "deleted_at", "_order": "asc"},
                },
            }},
        }))
        .expect("connect")
    }
}

#[tokio::test]
async fn incremental_reads_see_created_and_updated_records_json_server() {
    let changes = Changes::new();
    let a = changes.create("a", "2026-03-01T10:00:00Z").await;
    let b = changes.create("b", "2026-03-01T11:00:00Z").await;
    let c = changes.create("c", "2026-03-01T12:00:00Z").await;
    let rest = changes.connector();

    let (full, _) = read_all(&rest, "changes", None).await;
    assert_eq!(field(&full, "id"), vec![&a, &b, &c]);

    // The sync stored c's updated_at as its cursor; then d is created and a updated.
    let cursor = json!("2026-03-01T12:00:00Z");
    let d = changes.create("d", "2026-03-01T13:00:00Z").await;
    let a_path = format!("/changes/{a}");
    let patch = json!({"updated_at": "2026-03-01T14:00:00Z", "name": "a2"});
    changes.send(reqwest::Method::PATCH, &a_path, patch).await;

    let (since, _) = read_all(&rest, "changes", Some(&cursor)).await;
    assert_eq!(
        field(&since, "id"),
        vec![&c, &d, &a],
        "ascending from the cursor, inclusive"
    );
    assert_eq!(since[2]["name"], "a2");
}

#[tokio::test]
async fn the_deleted_feed_answers_keys_since_the_cursor_json_server() {
    let changes = Changes::new();
    let rest = changes.connector();
    for (key, at) in [
        (7, "2026-03-02T09:00:00Z"),
        (8, "2026-03-02T10:00:00Z"),
        (9, "2026-03-02T11:00:00Z"),
    ] {
        let body = json!({"run": changes.run, "key": key, "deleted_at": at});
        changes
            .send(reqwest::Method::POST, "/changes_deleted", body)
            .await;
    }
    let streams = rest.discover().await.expect("discover");
    assert_eq!(streams[0].deletes, Deletes::Feed);

    let since = json!("2026-03-02T10:00:00Z");
    let first = rest
        .read_deleted(
            "changes",
            ReadFrom {
                since: Some(&since),
                page: None,
            },
        )
        .await
        .expect("deleted");
    assert_eq!(first.deleted, vec!["8", "9"]);
    let token = first.next_page.expect("a full page of 2 has a next page");
    let last = rest
        .read_deleted(
            "changes",
            ReadFrom {
                since: Some(&since),
                page: Some(&token),
            },
        )
        .await
        .expect("deleted");
    assert!(last.deleted.is_empty() && last.next_page.is_none());
}

#[tokio::test]
async fn records_path_reads_records_inside_the_answer_json_server() {
    for records_path in ["data.products", "/data/products"] {
        let rest = connect(json!({
            "base_url": json_server(),
            "resources": {"products": {
                "path": "/catalog",
                "records_path": records_path,
                "primary_key": "sku",
                "pagination": {"link": {}},
            }},
        }))
        .expect("connect");
        let (records, pages) = read_all(&rest, "products", None).await;
        assert_eq!(pages, 1, "no Link header: one page");
        assert_eq!(field(&records, "sku"), vec!["sku-1", "sku-2", "sku-3"]);
    }

    // A path that holds no array is the API's answer not matching the config.
    let rest = connect(json!({
        "base_url": json_server(),
        "resources": {"products": {
            "path": "/catalog", "records_path": "data", "primary_key": "sku",
            "pagination": {"link": {}},
        }},
    }))
    .expect("connect");
    let error = rest
        .read("products", ReadFrom::default())
        .await
        .expect_err("no array");
    assert_eq!(error.code, ErrorCode::ProviderFailed);
}

#[tokio::test]
async fn discover_and_check_read_the_first_page_json_server() {
    let rest =
        items(json!({"offset": {"offset_param": "_start", "limit_param": "_limit", "limit": 10}}));
    rest.check().await.expect("check");
    let streams = rest.discover().await.expect("discover");
    assert_eq!(streams.len(), 1);
    let stream = &streams[0];
    assert_eq!(
        (stream.name.as_str(), stream.primary_key.as_str()),
        ("items", "id")
    );
    assert_eq!(stream.cursor_field.as_deref(), Some("updated_at"));
    assert_eq!(stream.deletes, Deletes::FullRefresh);
    let fields: BTreeMap<&str, &str> = stream
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(
        fields,
        BTreeMap::from([
            ("id", "integer"),
            ("name", "string"),
            ("updated_at", "string")
        ])
    );

    // A resource json-server does not have answers 404: the config is wrong, not the API down.
    let rest = connect(json!({
        "base_url": json_server(),
        "resources": {"nothing": {"path": "/nothing", "primary_key": "id", "pagination": {"link": {}}}},
    }))
    .expect("connect");
    assert_eq!(
        rest.check().await.expect_err("404").code,
        ErrorCode::ProviderFailed
    );
}

/// What json-server's key middleware (scripts/test-servers) counted for `key`: calls, and
/// calls answered 429.
async fn counted(key: &str) -> (u64, u64) {
    let url = format!("{}/__calls?key={key}", json_server());
    let counts: Value = reqwest::get(url)
        .await
        .expect("json-server")
        .json()
        .await
        .expect("json");
    (
        counts["calls"].as_u64().expect("calls"),
        counts["throttled"].as_u64().expect("throttled"),
    )
}

#[tokio::test]
async fn a_429_is_waited_out_and_a_refused_key_is_a_credentials_error_json_server() {
    let key = format!("good-{}", uuid::Uuid::new_v4());
    let keyed = |key: &str| {
        connect(json!({
            "base_url": json_server(),
            "auth": {"api_key": {"header": "X-API-Key", "key": key}},
            "resources": {"items": {
                "path": "/items", "primary_key": "id",
                "pagination": {"offset": {"offset_param": "_start", "limit_param": "_limit", "limit": 10}},
            }},
        }))
        .expect("connect")
    };
    let url = format!("{}/__throttle?key={key}&n=1", json_server());
    reqwest::Client::new()
        .post(url)
        .send()
        .await
        .expect("throttle");
    let page = keyed(&key)
        .read("items", ReadFrom::default())
        .await
        .expect("read");
    assert_eq!(page.records.len(), 10);
    assert_eq!(
        counted(&key).await,
        (2, 1),
        "one 429, then the page after Retry-After"
    );

    let refused = format!("bad-{}", uuid::Uuid::new_v4());
    let error = keyed(&refused).check().await.expect_err("refused key");
    assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    assert!(!error.detail.contains(&refused), "{}", error.detail);
    assert_eq!(counted(&refused).await.0, 1, "a refused key is not retried");
}

#[tokio::test]
async fn discover_names_the_key_and_cursor_of_an_empty_resource_json_server() {
    let changes = Changes::new();
    let discover = |fields: Value| {
        let rest = connect(json!({
            "base_url": changes.url,
            "resources": {"changes": {
                "path": format!("/changes?run={}", changes.run),
                "primary_key": "id",
                "cursor_field": "updated_at",
                "fields": fields,
                "pagination": {"link": {}},
            }},
        }))
        .expect("connect");
        async move {
            let streams = rest.discover().await.expect("discover");
            streams[0]
                .fields
                .iter()
                .map(|f| (f.name.clone(), f.kind.clone()))
                .collect::<BTreeMap<String, String>>()
        }
    };
    let as_map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, k)| (n.to_string(), k.to_string()))
            .collect()
    };
    assert_eq!(
        discover(json!({})).await,
        as_map(&[("id", "string"), ("updated_at", "string")]),
        "no record yet: the key and cursor the config names"
    );
    assert_eq!(
        discover(json!({"id": "integer", "total": "number"})).await,
        as_map(&[
            ("id", "integer"),
            ("total", "number"),
            ("updated_at", "string")
        ])
    );
    changes.create("a", "2026-03-03T10:00:00Z").await;
    assert_eq!(
        discover(json!({"name": "object"})).await,
        as_map(&[
            ("id", "integer"),
            ("name", "object"),
            ("run", "string"),
            ("updated_at", "string")
        ]),
        "the first record's fields, a declared type winning"
    );
}

/// What the small server in the test answers and saw.
#[derive(Default)]
struct Served {
    /// The credential of every request, in order: its `Authorization` header, or its
    /// `X-API-Key` as `key <value>`.
    authorizations: Vec<Option<String>>,
}

/// A small API on loopback: `/api/things` pages 5 records by a body cursor (`?cursor=`), and
/// `/api/linked` answers with a `Link` header to what `link` makes of the server's address.
async fn small_api(link: impl Fn(SocketAddr) -> String) -> (SocketAddr, Arc<Mutex<Served>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let link = link(addr);
    let served = Arc::new(Mutex::new(Served::default()));
    let state = served.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (state, link) = (state.clone(), link.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (state, link) = (state.clone(), link.clone());
                    async move { Ok::<_, Infallible>(answer(&request, &state, &link)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, served)
}

fn answer(
    request: &Request<hyper::body::Incoming>,
    state: &Mutex<Served>,
    link: &str,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // The credential a call carried: its Authorization header, or its X-API-Key as "key ..".
    let authorization =
        header("authorization").or_else(|| header("x-api-key").map(|k| format!("key {k}")));
    state
        .lock()
        .expect("state")
        .authorizations
        .push(authorization.clone());
    if request.uri().path() == "/oauth/token" {
        // A token endpoint for the client credentials grant: client rest-client, secret s3cret,
        // by HTTP Basic authentication.
        let client = format!("Basic {}", STANDARD.encode("rest-client:s3cret"));
        let (status, body) = if authorization.as_deref() == Some(client.as_str()) {
            let token =
                json!({"access_token": "t0ken", "token_type": "bearer", "expires_in": 3600});
            (200, token)
        } else {
            (401, json!({"error": "invalid_client"}))
        };
        return Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("response");
    }
    if !matches!(authorization.as_deref(), Some("Bearer t0ken" | "key k3y")) {
        return Response::builder()
            .status(401)
            .body(Full::new(Bytes::from("{}")))
            .expect("response");
    }
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = match request.uri().path() {
        "/api/things" => {
            // Records 1..=5, two a page; the cursor is an opaque "c<next id>".
            let start: u64 = query
                .get("cursor")
                .and_then(|c| c.strip_prefix('c')?.parse().ok())
                .unwrap_or(1);
            let records: Vec<Value> = (start..=5).take(2).map(|id| json!({"id": id})).collect();
            let next = (start + 2 <= 5).then(|| format!("c{}", start + 2));
            json!({"data": records, "meta": {"next_cursor": next}})
        }
        "/api/linked" if query.contains_key("page") => json!([{"id": 2}]),
        "/api/linked" => {
            let body = serde_json::to_vec(&json!([{"id": 1}])).expect("json");
            return Response::builder()
                .header("link", format!("<{link}>; rel=\"next last\""))
                .body(Full::new(Bytes::from(body)))
                .expect("response");
        }
        _ => {
            return Response::builder()
                .status(404)
                .body(Full::new(Bytes::from("{}")))
                .expect("response");
        }
    };
    Response::new(Full::new(Bytes::from(
        serde_json::to_vec(&body).expect("json"),
    )))
}

fn small_api_connector(addr: SocketAddr, resources: Value) -> Rest {
    connect(json!({
        "base_url": format!("http://{addr}/api"),
        "auth": {"bearer": {"token": "t0ken"}},
        "resources": resources,
    }))
    .expect("connect")
}

#[tokio::test]
async fn cursor_pagination_sends_the_body_cursor_back() {
    let (addr, served) = small_api(|_| String::new()).await;
    let rest = small_api_connector(
        addr,
        json!({"things": {
            "path": "/things", "records_path": "data", "primary_key": "id",
            "pagination": {"cursor": {"param": "cursor", "next_path": "meta.next_cursor"}},
        }}),
    );
    let (records, pages) = read_all(&rest, "things", None).await;
    assert_eq!(
        field(&records, "id"),
        vec![&json!(1), &json!(2), &json!(3), &json!(4), &json!(5)]
    );
    assert_eq!(pages, 3);
    let authorizations = served.lock().expect("state").authorizations.clone();
    assert_eq!(authorizations, vec![Some("Bearer t0ken".to_owned()); 3]);
}

#[tokio::test]
async fn an_api_key_goes_in_the_header_the_config_names() {
    let (addr, served) = small_api(|_| String::new()).await;
    let rest = connect(json!({
        "base_url": format!("http://{addr}/api"),
        "auth": {"api_key": {"header": "X-API-Key", "key": "k3y"}},
        "requests_per_second": 50,
        "resources": {"things": {
            "path": "/things", "records_path": "/data", "primary_key": "id",
            "pagination": {"cursor": {"param": "cursor", "next_path": "/meta/next_cursor"}},
        }},
    }))
    .expect("connect");
    let (records, _) = read_all(&rest, "things", None).await;
    assert_eq!(records.len(), 5);
    let authorizations = served.lock().expect("state").authorizations.clone();
    assert_eq!(authorizations, vec![Some("key k3y".to_owned()); 3]);
}

#[tokio::test]
async fn oauth2_client_credentials_obtain_the_bearer_token_once() {
    let (addr, served) = small_api(|_| String::new()).await;
    let oauth2 = |secret: &str| {
        connect(json!({
            "base_url": format!("http://{addr}/api"),
            "auth": {"oauth2": {
                "token_url": format!("http://{addr}/oauth/token"),
                "client_id": "rest-client",
                "client_secret": secret,
            }},
            "resources": {"things": {
                "path": "/things", "records_path": "data", "primary_key": "id",
                "pagination": {"cursor": {"param": "cursor", "next_path": "meta.next_cursor"}},
            }},
        }))
        .expect("connect")
    };
    let rest = oauth2("s3cret");
    let (records, pages) = read_all(&rest, "things", None).await;
    assert_eq!((records.len(), pages), (5, 3));
    let authorizations = served.lock().expect("state").authorizations.clone();
    let basic = format!("Basic {}", STANDARD.encode("rest-client:s3cret"));
    let bearer = "Bearer t0ken".to_owned();
    assert_eq!(
        authorizations,
        vec![
            Some(basic),
            Some(bearer.clone()),
            Some(bearer.clone()),
            Some(bearer)
        ],
        "one token request, then the token on every page"
    );

    let error = oauth2("wrong").check().await.expect_err("refused client");
    assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    assert!(!error.detail.contains("wrong"), "{}", error.detail);
}

#[tokio::test]
async fn a_next_link_on_the_origin_is_followed_relative_or_absolute() {
    let relative = |_: SocketAddr| "/api/linked?page=2".to_owned();
    let absolute = |addr: SocketAddr| format!("http://{addr}/api/linked?page=2");
    for link in [&relative as &dyn Fn(SocketAddr) -> String, &absolute] {
        let (addr, _) = small_api(link).await;
        let rest = small_api_connector(
            addr,
            json!({"linked": {"path": "/linked", "primary_key": "id", "pagination": {"link": {}}}}),
        );
        let (records, pages) = read_all(&rest, "linked", None).await;
        assert_eq!(field(&records, "id"), vec![&json!(1), &json!(2)]);
        assert_eq!(pages, 2);
    }
}

#[tokio::test]
async fn a_next_link_off_the_origin_is_refused() {
    let other_host =
        |addr: SocketAddr| format!("http://127.0.0.2:{}/api/linked?page=2", addr.port());
    let other_port =
        |addr: SocketAddr| format!("http://127.0.0.1:{}/api/linked?page=2", addr.port() + 1);
    let other_scheme = |addr: SocketAddr| format!("https://{addr}/api/linked?page=2");
    let other_name =
        |addr: SocketAddr| format!("http://localhost:{}/api/linked?page=2", addr.port());
    for link in [
        &other_host as &dyn Fn(SocketAddr) -> String,
        &other_port,
        &other_scheme,
        &other_name,
    ] {
        let (addr, served) = small_api(link).await;
        let rest = small_api_connector(
            addr,
            json!({"linked": {"path": "/linked", "primary_key": "id", "pagination": {"link": {}}}}),
        );
        let error = rest
            .read("linked", ReadFrom::default())
            .await
            .expect_err("off origin");
        assert_eq!(error.code, ErrorCode::ProviderFailed);
        assert!(error.detail.contains("origin"), "{}", error.detail);
        assert!(!error.retryable);
        // A stored token naming another origin is refused before any call.
        let off = link(addr);
        let error = rest
            .read(
                "linked",
                ReadFrom {
                    since: None,
                    page: Some(&off),
                },
            )
            .await
            .expect_err("stored off-origin token");
        assert!(error.detail.contains("origin"), "{}", error.detail);
        assert_eq!(
            served.lock().expect("state").authorizations.len(),
            1,
            "only the first page was asked for"
        );
    }
}

#[tokio::test]
async fn bad_credentials_are_upstream_credentials_invalid() {
    let (addr, _) = small_api(|_| String::new()).await;
    let rest = connect(json!({
        "base_url": format!("http://{addr}/api"),
        "auth": {"bearer": {"token": "wrong"}},
        "resources": {"things": {
            "path": "/things", "records_path": "data", "primary_key": "id",
            "pagination": {"cursor": {"param": "cursor", "next_path": "meta.next_cursor"}},
        }},
    }))
    .expect("connect");
    let error = rest.check().await.expect_err("refused");
    assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    assert!(
        !error.detail.contains("wrong"),
        "no credential in errors: {}",
        error.detail
    );
}

fn refused(config: Value) -> (ErrorCode, String) {
    let error = connect(config).err().expect("refused");
    let pointer = error
        .errors
        .first()
        .map(|e| e.pointer.clone())
        .unwrap_or_default();
    (error.code, pointer)
}

#[test]
fn config_cannot_aim_calls_off_the_base_url() {
    let resource = |path: &str| {
        json!({"base_url": "http://127.0.0.1:9/v2", "resources": {"r": {
            "path": path, "primary_key": "id", "pagination": {"link": {}},
        }}})
    };
    for path in ["//evil.example/items", "http://evil.example/items", "items"] {
        assert_eq!(
            refused(resource(path)),
            (
                ErrorCode::ConfigUnprocessable,
                "/resources/r/path".to_owned()
            ),
            "{path}"
        );
    }
    let joined = connect(resource("/items?status=any")).expect("a relative path");
    assert_eq!(
        joined.resources["r"].url.as_str(),
        "http://127.0.0.1:9/v2/items?status=any"
    );

    for base in [
        "http://127.0.0.1:9/?x=1",
        "http://user:pw@127.0.0.1:9/",
        "ftp://127.0.0.1/",
        "http://[::1",
    ] {
        let mut config = resource("/items");
        config["base_url"] = json!(base);
        assert_eq!(
            refused(config),
            (ErrorCode::ConfigUnprocessable, "/base_url".to_owned()),
            "{base}"
        );
    }
}

#[test]
fn config_checks_what_the_schema_cannot() {
    let base = |resource: Value, auth: Value| json!({"base_url": "http://127.0.0.1:9", "auth": auth, "resources": {"r": resource}});
    let plain = json!({"path": "/r", "primary_key": "id", "pagination": {"link": {}}});
    let mut cursor_param_alone = plain.clone();
    cursor_param_alone["cursor_param"] = json!("updated_gte");
    assert_eq!(
        refused(base(cursor_param_alone, json!("none"))),
        (
            ErrorCode::ConfigUnprocessable,
            "/resources/r/cursor_param".to_owned()
        )
    );
    let mut feed_without_time = plain.clone();
    feed_without_time["deleted"] = json!({"path": "/r_deleted"});
    assert_eq!(
        refused(base(feed_without_time, json!("none"))),
        (
            ErrorCode::ConfigUnprocessable,
            "/resources/r/deleted/at_field".to_owned()
        )
    );
    let mut bad_pointer = plain.clone();
    bad_pointer["records_path"] = json!("/data/~2");
    assert_eq!(
        refused(base(bad_pointer, json!("none"))),
        (
            ErrorCode::ConfigUnprocessable,
            "/resources/r/records_path".to_owned()
        )
    );
    let host_header = json!({"api_key": {"header": "Host", "key": "k"}});
    assert_eq!(
        refused(base(plain.clone(), host_header)),
        (
            ErrorCode::ConfigUnprocessable,
            "/auth/api_key/header".to_owned()
        )
    );
}

#[test]
fn the_schema_bounds_page_sizes_and_paths() {
    let schema = serde_json::to_value(schemars::schema_for!(RestConfig)).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let config = |pagination: Value, path: &str| {
        json!({"base_url": "https://api.example.com/v2", "resources": {"r": {
            "path": path, "primary_key": "id", "pagination": pagination,
        }}})
    };
    let offset =
        |limit: u64| json!({"offset": {"offset_param": "o", "limit_param": "l", "limit": limit}});
    let page = |size: u64| json!({"page": {"page_param": "p", "size_param": "s", "size": size}});
    assert!(validator.is_valid(&config(offset(1000), "/r")));
    assert!(validator.is_valid(&config(page(1), "/r?x=1")));
    for refused in [
        config(offset(0), "/r"),
        config(offset(1001), "/r"),
        config(page(0), "/r"),
        config(page(5000), "/r"),
        config(page(10), "//evil.example/r"),
        config(page(10), "https://evil.example/r"),
    ] {
        assert!(!validator.is_valid(&refused), "{refused}");
    }
    let mut key_in_clear = config(page(10), "/r");
    key_in_clear["auth"] = json!({"bearer": {"token": "sk_live_123"}});
    assert!(
        !validator.is_valid(&key_in_clear),
        "credentials are secret:// references"
    );
    key_in_clear["auth"] = json!({"bearer": {"token": "secret://env/API_TOKEN"}});
    assert!(validator.is_valid(&key_in_clear));

    let mut paced = config(page(10), "/r");
    for (per_second, valid) in [(1, true), (1000, true), (0, false), (1001, false)] {
        paced["requests_per_second"] = json!(per_second);
        assert_eq!(validator.is_valid(&paced), valid, "{per_second} a second");
    }
}
