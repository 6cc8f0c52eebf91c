//! The kit must catch what it claims to: a working engine broken on purpose in one way fails
//! exactly the checks about that behaviour, by name, and loses exactly the level they earn.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
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
