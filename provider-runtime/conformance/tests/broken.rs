//! The kit must catch what it claims to: a working engine broken on purpose in one way fails
//! exactly the checks about that behaviour, by name, and loses exactly the level they earn.
//! The cache suite against the memory cache, and the connector acceptance suite against
//! integration/shopify over the fake Shopify Admin API, hosted as the engines harness hosts it.

mod engines {
    pub mod integration {
        pub mod destination;
        pub mod shopify;
        pub mod subject;
    }
}

use std::sync::Arc;

use async_trait::async_trait;
use engines::integration::{shopify, subject};
use serde_json::{Value, json};
use switchyard_conformance::{Report, Subject, run, suite};
use switchyard_provider_cache::MemoryCacheFactory;
use switchyard_spi::{
    CallContext, Health, Invocation, Provider, ProviderDescriptor, ProviderError, ProviderFactory,
    StartContext, TenantId,
};

/// How the wrapped engine is broken.
#[derive(Clone, Copy)]
enum Fault {
    /// `set` drops the caller's `ttl_ms`: keys live until the tenant's default says.
    IgnoresTtl,
    /// Every tenant's calls reach one shared tenant's data.
    SharesOneTenant,
    /// A connector whose incremental sync reads everything again, as if it ignored its cursor.
    IncrementalReadsEverything,
    /// A connector whose `check` answers ok without asking the system.
    ChecksNothing,
}

struct Broken {
    inner: Arc<dyn ProviderFactory>,
    fault: Fault,
}

struct BrokenInstance {
    inner: Arc<dyn Provider>,
    fault: Fault,
}

fn shared() -> TenantId {
    TenantId::parse("shared").expect("a valid tenant id")
}

#[async_trait]
impl ProviderFactory for Broken {
    fn descriptor(&self) -> &ProviderDescriptor {
        self.inner.descriptor()
    }

    async fn start(&self, mut ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        if let Fault::SharesOneTenant = self.fault {
            ctx.tenant = shared();
        }
        Ok(Arc::new(BrokenInstance {
            inner: self.inner.start(ctx).await?,
            fault: self.fault,
        }))
    }
}

#[async_trait]
impl Provider for BrokenInstance {
    async fn invoke(
        &self,
        ctx: &CallContext,
        mut call: Invocation,
    ) -> Result<Value, ProviderError> {
        let mut ctx = ctx.clone();
        match self.fault {
            Fault::IgnoresTtl => {
                if let Some(params) = call.params.as_object_mut() {
                    params.remove("ttl_ms");
                }
            }
            Fault::SharesOneTenant => ctx.tenant = shared(),
            Fault::IncrementalReadsEverything => {
                if call.action == "sync" && call.params["mode"] == "incremental" {
                    call.params["mode"] = json!("full");
                }
            }
            Fault::ChecksNothing => {
                if call.action == "check" {
                    return Ok(json!({"ok": true}));
                }
            }
        }
        self.inner.invoke(&ctx, call).await
    }

    async fn health(&self) -> Health {
        self.inner.health().await
    }
}

async fn certify(fault: Fault) -> Report {
    let factory: Arc<dyn ProviderFactory> = Arc::new(Broken {
        inner: Arc::new(MemoryCacheFactory::new()),
        fault,
    });
    run(
        || Subject::new(factory.clone()),
        suite("cache").expect("the cache suite"),
    )
    .await
}

/// integration/shopify with `fault`, each check against a fake shop of its own.
async fn certify_connector(fault: Fault) -> Report {
    let subject = move || {
        // `run` makes subjects synchronously; the fake shop starts on this runtime.
        let shop = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(shopify::Shop::start())
        });
        subject::connector_as(
            "shopify",
            Arc::new(shop),
            &["source:throttle", "source:upsert"],
            |inner| Arc::new(Broken { inner, fault }),
        )
    };
    run(
        subject,
        suite("integration").expect("the integration suite"),
    )
    .await
}

fn failed(report: &Report) -> Vec<&'static str> {
    report
        .checks
        .iter()
        .filter(|c| !c.passed && !c.skipped)
        .map(|c| c.name)
        .collect()
}

#[tokio::test]
async fn a_cache_that_ignores_ttls_fails_the_expiry_check_by_name_and_is_not_certified() {
    let report = certify(Fault::IgnoresTtl).await;
    assert_eq!(
        failed(&report),
        vec!["a_key_expires_after_its_ttl"],
        "{}",
        report.to_text()
    );
    assert_eq!(report.certification, "none", "{}", report.to_text());
    let text = report.to_text();
    assert!(text.contains("FAIL  core"), "{text}");
}

#[tokio::test]
async fn a_cache_that_lets_tenants_share_keys_fails_isolation_by_name_and_keeps_core() {
    let report = certify(Fault::SharesOneTenant).await;
    assert_eq!(
        failed(&report),
        vec!["one_tenant_never_reads_counts_or_deletes_another_tenants_keys"],
        "{}",
        report.to_text()
    );
    assert!(report.levels.contains(&"core"), "{}", report.to_text());
    assert!(
        !report.levels.contains(&"+isolation"),
        "{}",
        report.to_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_whose_incremental_sync_reads_everything_fails_the_incremental_checks_by_name()
{
    let report = certify_connector(Fault::IncrementalReadsEverything).await;
    assert_eq!(
        failed(&report),
        vec![
            "an_incremental_sync_reads_only_what_changed",
            "an_incremental_sync_from_a_future_cursor_reads_nothing",
            "an_abnormal_cursor_is_refused_clearly_and_loses_nothing",
            "an_incremental_sync_carries_deletes_where_the_stream_has_a_feed",
        ],
        "{}",
        report.to_text()
    );
    assert_eq!(report.certification, "none", "{}", report.to_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_whose_check_asks_nothing_fails_the_refused_credentials_check_by_name() {
    let report = certify_connector(Fault::ChecksNothing).await;
    assert_eq!(
        failed(&report),
        vec!["check_with_refused_credentials_is_a_config_error_that_names_no_secret"],
        "{}",
        report.to_text()
    );
    assert_eq!(report.certification, "none", "{}", report.to_text());
}
