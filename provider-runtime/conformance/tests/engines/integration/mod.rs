//! The integration engines. webhook over a temp dir of its own per subject, under the egress
//! ceiling the suite's `fixture:loopback_egress` checks count on: loopback, where the suite's
//! receivers listen, and one private network a tenant may narrow to. A reopened subject is a
//! new factory over the same files: a process restart. The connectors (shopify, salesforce,
//! rest) as `switchyard` hosts them, each against its source (a fake of a SaaS API, or a real
//! server), syncing into `db/sqlite` through a tenant-bound client ([`destination`]).

mod destination;
mod rest;
mod shopify;

use std::sync::Arc;

use switchyard_conformance::Subject;
use switchyard_conformance::integration::Fixture;
use switchyard_conformance::integration::acceptance::{Source, SourceFixture};
use switchyard_provider_integration::{WebhookFactory, builtins};
use switchyard_spi::tenancy::{EgressCeiling, Tenancy};
use switchyard_spi::{Host, ProviderFactory};

use crate::Enrolled;

pub fn enrolled() -> Vec<Enrolled> {
    vec![
        Enrolled::new("integration/webhook", || async { webhook() }),
        Enrolled::new("integration/shopify", || async {
            let shop = shopify::Shop::start().await;
            connector("shopify", shop, &["source:throttle", "source:upsert"])
        }),
        Enrolled::new("integration/rest", || async {
            connector("rest", rest::JsonServer::start(), &["source:throttle"])
        }),
    ]
}

/// Connector `name` as `switchyard` hosts it (its builtin, under the tests' egress ceiling,
/// its stores in a temp dir of its own), certified against `source`, which provides
/// `features` beyond a plain read.
fn connector(name: &str, source: impl Source + 'static, features: &[&'static str]) -> Subject {
    let dir = tempfile::tempdir().expect("a temp dir for the connector's stores");
    let tenancy = Tenancy {
        egress: ceiling(),
        ..Tenancy::default()
    };
    let host = Host {
        data: dir.path(),
        books: dir.path(),
        tenancy: &tenancy,
    };
    let factory = builtins(&host)
        .expect("the integration engines")
        .into_iter()
        .find(|f| f.descriptor().name == name)
        .unwrap_or_else(|| panic!("integration/{name} is a builtin"));
    let fixture = Fixture {
        storage: None,
        source: Some(SourceFixture(Arc::new(source))),
    };
    let mut subject = Subject::new(factory)
        .with_fixture(fixture)
        .providing("source")
        .keeping(dir);
    for feature in features {
        subject = subject.providing(feature);
    }
    subject
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

/// The operator's egress ceiling in these tests: loopback, where the receivers listen, and
/// one private network a tenant may narrow to.
fn ceiling() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: ["127.0.0.0/8", "::1/128", "10.20.0.0/16"]
            .map(|network| network.parse().expect("a network"))
            .to_vec(),
        allowed_ports: Vec::new(),
    }
}
