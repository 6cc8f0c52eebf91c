//! The integration engines. webhook over a temp dir of its own per subject, under the egress
//! ceiling the suite's `fixture:loopback_egress` checks count on: loopback, where the suite's
//! receivers listen, and one private network a tenant may narrow to. A reopened subject is a
//! new factory over the same files: a process restart. The connectors (shopify, salesforce,
//! rest) as `switchyard` hosts them, each against its source (a fake of a SaaS API, or a real
//! server), syncing into `db/sqlite` through a tenant-bound client ([`destination`]).

mod destination;
mod rest;
mod salesforce;
mod shopify;
mod subject;

use std::sync::Arc;

use switchyard_conformance::Subject;
use switchyard_conformance::integration::Fixture;
use switchyard_conformance::integration::acceptance::Source;
use switchyard_provider_integration::WebhookFactory;
use switchyard_spi::ProviderFactory;

use subject::{ceiling, connector_as};

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("integration/webhook", || async { webhook() }),
        Enrolled::new("integration/shopify", || async {
            let shop = shopify::Shop::start().await;
            connector("shopify", shop, &["source:throttle", "source:upsert"])
        }),
        Enrolled::new("integration/salesforce", || async {
            let org = salesforce::Org::start().await;
            connector("salesforce", org, &["source:tokens", "source:upsert"])
        }),
        Enrolled::new("integration/rest", || async {
            connector("rest", rest::JsonServer::start(), &["source:throttle"])
        }),
    ]
}

/// Connector `name`, as `switchyard` hosts it, certified against `source`.
fn connector(name: &str, source: impl Source + 'static, features: &[&'static str]) -> Subject {
    connector_as(name, Arc::new(source), features, |factory| factory)
}

fn webhook() -> Subject {
    let dir = tempfile::tempdir().expect("temp dir for integration/webhook");
    let root = dir.path().to_path_buf();
    let fixture = Fixture {
        storage: Some(root.clone()),
        source: None,
    };
    let open = move || -> Arc<dyn ProviderFactory> {
        Arc::new(WebhookFactory::new(root.clone()).with_egress(&ceiling()))
    };
    Subject::new(open())
        .with_reopen(open)
        .with_fixture(fixture)
        .providing("loopback_egress")
        .keeping(dir)
}
