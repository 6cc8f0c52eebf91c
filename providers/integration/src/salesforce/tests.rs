//! The connector against the fake Salesforce org (`switchyard-integration-fakes`): no real
//! org is reachable from here.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use switchyard_egress::Egress;
use switchyard_integration_fakes::salesforce::{FakeSalesforce, Options};
use switchyard_spi::ErrorCode;
use switchyard_spi::tenancy::EgressCeiling;

use super::*;

async fn fake(options: Options) -> FakeSalesforce {
    FakeSalesforce::start(options)
        .await
        .expect("the fake starts")
}

fn link() -> Link {
    let ceiling = EgressCeiling {
        allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
        allowed_ports: Vec::new(),
    };
    Link {
        egress: Egress::new(&ceiling),
        tokens: crate::http::Tokens::in_memory("salesforce"),
    }
}

/// A connection to `fake`; with the fake's refresh token when `refresh` (else the client
/// credentials flow).
fn connect_with(fake: &FakeSalesforce, secret: &str, refresh: Option<&str>) -> Salesforce {
    let mut config = json!({
        "login_url": fake.url(),
        "client_id": Options::default().client_id,
        "client_secret": secret,
    });
    if let Some(token) = refresh {
        config["refresh_token"] = json!(token);
    }
    let config: SalesforceConfig = serde_json::from_value(config).expect("a valid config");
    Salesforce::connect(config, link()).expect("connects")
}

fn connect(fake: &FakeSalesforce) -> Salesforce {
    let options = Options::default();
    connect_with(fake, &options.client_secret, Some(&options.refresh_token))
}

/// Every page of `stream` since `since`: the records and the number of pages.
async fn read_all(sf: &Salesforce, stream: &str, since: Option<&Value>) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut pages = 0;
    let mut next: Option<String> = None;
    loop {
        let from = ReadFrom {
            since,
            page: next.as_deref(),
        };
        let page = sf.read(stream, from).await.expect("a page");
        pages += 1;
        records.extend(page.records);
        match page.next_page {
            Some(token) => next = Some(token),
            None => return (records, pages),
        }
    }
}

fn pointer(error: &ProviderError) -> Option<&str> {
    error.errors.first().map(|e| e.pointer.as_str())
}

fn stamps(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["SystemModstamp"].as_str().expect("a stamp").to_owned())
        .collect()
}

#[tokio::test]
async fn query_pages_by_next_records_url_fake_salesforce() {
    let fake = fake(Options {
        accounts: 4500,
        ..Options::default()
    })
    .await;
    let sf = connect(&fake);
    let first = sf
        .read("Account", ReadFrom::default())
        .await
        .expect("the first page");
    assert_eq!(first.records.len(), 2000);
    let next = first.next_page.expect("a nextRecordsUrl");
    assert!(next.starts_with("/services/data/v60.0/query/"), "{next}");

    let (records, pages) = read_all(&sf, "Account", None).await;
    assert_eq!(pages, 3);
    assert_eq!(records.len(), 4500);
    let ids: BTreeSet<&str> = records.iter().filter_map(|r| r["Id"].as_str()).collect();
    assert_eq!(ids.len(), 4500, "each record once");
    let order = stamps(&records);
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "ascending by SystemModstamp"
    );
    // Custom fields come from describe.
    assert!(records[0]["Tier__c"].is_string(), "{}", records[0]);
}

#[tokio::test]
async fn incremental_read_answers_records_at_or_after_the_cursor_fake_salesforce() {
    let fake = fake(Options {
        accounts: 10,
        ..Options::default()
    })
    .await;
    let sf = connect(&fake);
    let (records, _) = read_all(&sf, "Account", None).await;
    let last = records.last().expect("records");
    let cursor = last["SystemModstamp"].clone();
    let updated = records[2]["Id"].as_str().expect("an id");
    fake.update("Account", updated, json!({"Industry": "Energy"}))
        .expect("updated");
    let added = fake.add("Account", 1);

    let (since, _) = read_all(&sf, "Account", Some(&cursor)).await;
    let ids: Vec<&str> = since.iter().filter_map(|r| r["Id"].as_str()).collect();
    // Inclusive: the record at the cursor comes again (the destination dedupes on Id).
    assert_eq!(
        ids,
        [last["Id"].as_str().unwrap(), updated, added[0].as_str()]
    );
    assert_eq!(since[1]["Industry"], "Energy");
    assert!(stamps(&since).windows(2).all(|w| w[0] < w[1]));

    // A read from past the newest record answers nothing.
    let future = json!("2099-01-01T00:00:00.000+0000");
    let (none, pages) = read_all(&sf, "Account", Some(&future)).await;
    assert_eq!((none.len(), pages), (0, 1));
}

#[tokio::test]
async fn a_cursor_that_is_not_a_datetime_never_reaches_soql_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect(&fake);
    let injected = json!("2020-01-01T00:00:00Z OR Name != null");
    let from = ReadFrom {
        since: Some(&injected),
        page: None,
    };
    let error = sf.read("Account", from).await.expect_err("refused");
    assert_eq!(error.code, ErrorCode::ParamsUnprocessable);
    let foreign = ReadFrom {
        since: None,
        page: Some("https://elsewhere.example/services/data/v60.0/query/01g-2000"),
    };
    let error = sf.read("Account", foreign).await.expect_err("refused");
    assert_eq!(error.code, ErrorCode::ParamsUnprocessable);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_succeeds_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect(&fake);
    sf.check().await.expect("connected");
    assert_eq!(fake.tokens_issued(), 1);

    fake.expire_tokens();
    // Concurrent calls that all meet the expired token share one refresh.
    let read = || sf.read("Contact", ReadFrom::default());
    let pages = tokio::join!(read(), read(), read(), read());
    for page in [pages.0, pages.1, pages.2, pages.3] {
        assert_eq!(page.expect("a page after the refresh").records.len(), 5);
    }
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test]
async fn a_revoked_refresh_token_is_upstream_credentials_invalid_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect(&fake);
    sf.check().await.expect("connected");
    fake.revoke_refresh_token();
    fake.expire_tokens();
    let error = sf.check().await.expect_err("refused");
    assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    let options = Options::default();
    assert!(
        !error.detail.contains(&options.refresh_token),
        "{}",
        error.detail
    );
    assert!(
        !error.detail.contains(&options.client_secret),
        "{}",
        error.detail
    );

    for refresh in [None, Some(options.refresh_token.as_str())] {
        let wrong = connect_with(&fake, "not-the-secret", refresh);
        let error = wrong.check().await.expect_err("refused");
        assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
        assert!(!error.detail.contains("not-the-secret"), "{}", error.detail);
    }
}

#[tokio::test]
async fn the_daily_api_limit_is_rate_limited_not_a_refused_credential_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect(&fake);
    sf.check().await.expect("connected");
    fake.set_api_usage(15_000, 15_000);
    let error = sf.check().await.expect_err("over the daily limit");
    assert_eq!(error.code, ErrorCode::RateLimited, "{}", error.detail);
    assert!(error.retryable);
    // Not taken for an expired session: no token was fetched again.
    assert_eq!(fake.tokens_issued(), 1);
}

#[tokio::test]
async fn client_credentials_flow_without_a_refresh_token_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect_with(&fake, &Options::default().client_secret, None);
    let (records, _) = read_all(&sf, "Opportunity", None).await;
    assert_eq!(records.len(), 5);
}

#[tokio::test]
async fn the_deleted_feed_answers_deletions_since_the_cursor_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect(&fake);
    let (records, _) = read_all(&sf, "Contact", None).await;
    let cursor = records.last().expect("records")["SystemModstamp"].clone();
    let gone: Vec<String> = records[..2]
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    for id in &gone {
        fake.delete("Contact", id).expect("deleted");
    }
    let from = ReadFrom {
        since: Some(&cursor),
        page: None,
    };
    let page = sf.read_deleted("Contact", from).await.expect("the feed");
    assert_eq!(page.next_page, None);
    assert_eq!(page.deleted, gone);
    // Accounts had no deletions; and the feed answers from its start without a cursor.
    let accounts = sf
        .read_deleted("Account", ReadFrom::default())
        .await
        .expect("the feed");
    assert!(accounts.deleted.is_empty());
    let (left, _) = read_all(&sf, "Contact", None).await;
    assert_eq!(left.len(), 3);

    let old = json!("2020-01-01T00:00:00.000+0000");
    let from = ReadFrom {
        since: Some(&old),
        page: None,
    };
    let error = sf.read_deleted("Contact", from).await.expect_err("too old");
    assert_eq!(error.code, ErrorCode::ParamsUnprocessable);

    // A cursor in the future has no deletions after it (and asks the org nothing).
    let calls = fake.calls();
    let future = json!("9999-12-31T23:59:59Z");
    let from = ReadFrom {
        since: Some(&future),
        page: None,
    };
    let page = sf
        .read_deleted("Contact", from)
        .await
        .expect("no deletions");
    assert!(page.deleted.is_empty());
    assert_eq!(fake.calls(), calls);
}

#[tokio::test]
async fn upsert_by_external_id_is_idempotent_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect(&fake);
    let existing = fake.records("Account")[0].clone();
    let external = existing["External_Id__c"].as_str().unwrap().to_owned();
    let records = [
        json!({"External_Id__c": external, "Industry": "Energy"}),
        json!({"External_Id__c": "ERP-77", "Name": "Globex", "Tier__c": "Gold"}),
    ];
    let first = sf
        .upsert("Account", "External_Id__c", &records)
        .await
        .expect("upserted");
    assert_eq!(first[0].id, existing["Id"].as_str().unwrap());
    assert_eq!((first[0].created, first[1].created), (false, true));
    assert_eq!(first[1].external_id, "ERP-77");
    assert_eq!(fake.records("Account").len(), 6);
    let after_first = fake.records("Account");

    let again = sf
        .upsert("Account", "External_Id__c", &records)
        .await
        .expect("upserted again");
    assert_eq!((again[0].created, again[1].created), (false, false));
    assert_eq!(again[1].id, first[1].id);
    assert_eq!(
        fake.records("Account"),
        after_first,
        "the org is as after the first"
    );

    // A record Salesforce refuses writes none of the batch (allOrNone).
    let refused = [
        json!({"External_Id__c": "ERP-78", "Name": "Initech"}),
        json!({"External_Id__c": "ERP-79"}),
    ];
    let error = sf
        .upsert("Account", "External_Id__c", &refused)
        .await
        .expect_err("Name is required");
    assert_eq!(error.code, ErrorCode::ParamsUnprocessable);
    assert_eq!(pointer(&error), Some("/records/1"));
    assert!(
        error.detail.contains("REQUIRED_FIELD_MISSING"),
        "{}",
        error.detail
    );
    assert_eq!(fake.records("Account").len(), 6);

    let missing = [json!({"Name": "No id"})];
    let error = sf
        .upsert("Account", "External_Id__c", &missing)
        .await
        .expect_err("no external id");
    assert_eq!(pointer(&error), Some("/records/0/External_Id__c"));
}

#[tokio::test]
async fn discover_lists_the_streams_with_described_fields_fake_salesforce() {
    let fake = fake(Options::default()).await;
    let sf = connect(&fake);
    let streams = sf.discover().await.expect("discovered");
    let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, STREAMS);
    let account = &streams[0];
    assert_eq!(account.primary_key, "Id");
    assert_eq!(account.cursor_field.as_deref(), Some("SystemModstamp"));
    assert_eq!(account.deletes, Deletes::Feed);
    let kind = |name: &str| {
        account
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.kind.as_str())
    };
    assert_eq!(kind("Tier__c"), Some("string"));
    assert_eq!(kind("AnnualRevenue"), Some("number"));
    assert_eq!(kind("NumberOfEmployees"), Some("integer"));
    let error = sf
        .read("Lead", ReadFrom::default())
        .await
        .expect_err("no such stream");
    assert_eq!(pointer(&error), Some("/stream"));
}
