//! The connector developer's commands: `switchyard conformance` (run a domain's suite against
//! a registered provider and certify it) and `switchyard provider new` (a skeleton that
//! passes that suite from the first build). docs/write-a-provider.md walks through both.

mod scaffold;

use std::path::Path;

use anyhow::{Context, Result, bail};
use switchyard::external::External;
use switchyard_provider_auth::PolicySource;
use switchyard_spi::tenancy::Tenancy;

pub use scaffold::{Kind, new_provider};

/// Runs the suite of `provider`'s domain against it, prints the report (text, or JSON with
/// `json`) and answers it; the caller records it and fails (exit status 1) when the provider
/// is not certified at `core`.
pub fn conformance(
    data_dir: &Path,
    policy: PolicySource,
    provider: &str,
    external: &External,
    json: bool,
) -> Result<switchyard_conformance::Report> {
    let (domain, name) = provider
        .split_once('/')
        .with_context(|| format!("{provider:?} is not <domain>/<name>"))?;
    let Some(checks) = switchyard_conformance::suite(domain) else {
        bail!(
            "the {domain} domain has no conformance suite yet; suites exist for: {}",
            switchyard_conformance::DOMAINS.join(", ")
        );
    };
    let mut registry = crate::registry(data_dir, policy, &Tenancy::default(), None)?;
    external.register(&mut registry)?;
    let factory = registry
        .index_of(domain, name)
        .and_then(|index| registry.get(index))
        .with_context(|| {
            format!("no provider {provider} is registered; `switchyard providers` lists them")
        })?
        .factory
        .clone();
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(switchyard_conformance::run(
            || switchyard_conformance::Subject::new(factory.clone()),
            checks,
        ));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(report)
}
