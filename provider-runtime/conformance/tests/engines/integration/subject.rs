//! How a connector is hosted for the acceptance suite, shared by the engines harness and the
//! broken connectors of `tests/broken.rs`.

use std::sync::Arc;

use switchyard_conformance::Subject;
use switchyard_conformance::integration::Fixture;
use switchyard_conformance::integration::acceptance::{Source, SourceFixture};
use switchyard_provider_integration::builtins;
use switchyard_spi::tenancy::{EgressCeiling, Tenancy};
use switchyard_spi::{Host, ProviderFactory};

/// Connector `name` as `switchyard` hosts it (its builtin, under the tests' egress ceiling,
/// its stores in a temp dir of its own), certified against `source`, which provides
/// `features` beyond a plain read; the builtin's factory passed through `wrap` (where a test
/// puts a fault in on purpose).
pub fn connector_as(
    name: &str,
    source: Arc<dyn Source>,
    features: &[&'static str],
    wrap: impl FnOnce(Arc<dyn ProviderFactory>) -> Arc<dyn ProviderFactory>,
) -> Subject {
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
        source: Some(SourceFixture(source)),
    };
    let mut subject = Subject::new(wrap(factory))
        .with_fixture(fixture)
        .providing("source")
        .keeping(dir);
    for feature in features {
        subject = subject.providing(feature);
    }
    subject
}

/// The operator's egress ceiling in these tests: loopback, where the receivers listen, and
/// one private network a tenant may narrow to.
pub fn ceiling() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: ["127.0.0.0/8", "::1/128", "10.20.0.0/16"]
            .map(|network| network.parse().expect("a network"))
            .to_vec(),
        allowed_ports: Vec::new(),
    }
}
