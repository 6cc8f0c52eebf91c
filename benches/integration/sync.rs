//! Bench B's sync: `integration/shopify` reading the fake shop's orders through the runtime
//! in process, as `switchyard serve` hosts it (the builtin registry, a tenant's stored config
//! with its access token as a `secret://file/` reference, the tenant-bound client), mapped by
//! the 10 plain paths of bench A and written to the tenant's `db/sqlite` table with dedupe.
//! A full sync, started with `sync` and followed with `sync` again (it answers the run already
//! under way) every second until it completes.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use switchyard_contracts::TenantId;
use switchyard_runtime::secrets::SecretResolver;
use switchyard_runtime::{PlatformStore, Runtime};
use switchyard_spi::CallContext;
use switchyard_spi::tenancy::Tenancy;

use super::mapping::PATHS;

/// How long one `sync` call waits for the run (the contract allows up to 25 s): the progress
/// line's period.
const WAIT_MS: u64 = 1_000;

pub struct Synced {
    pub records: u64,
    pub pages: u64,
    pub secs: f64,
    /// The destination's rows after the run, counted through `db/sqlite`.
    pub rows: u64,
}

impl Synced {
    pub fn per_sec(&self) -> f64 {
        self.records as f64 / self.secs
    }

    pub fn to_json(&self) -> Value {
        json!({"records": self.records, "pages": self.pages, "secs": self.secs,
               "per_sec": self.per_sec(), "destination_rows": self.rows})
    }
}

struct Host {
    runtime: Arc<Runtime>,
    ctx: CallContext,
    /// The data directory and the tenant's secret file, kept while the runtime uses them.
    _dir: tempfile::TempDir,
}

impl Host {
    async fn start(shop_url: &str, access_token: &str) -> Host {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        let secrets = dir.path().join("secrets");
        let tenant = TenantId::parse("bench").expect("a tenant id");
        std::fs::create_dir_all(secrets.join(tenant.as_str())).expect("the secrets directory");
        let token_file = secrets.join(tenant.as_str()).join("shopify-token");
        std::fs::write(&token_file, access_token).expect("the token file");
        // The operator lets tenants reach loopback (the fake shop) and keep secrets in files.
        let tenancy: Tenancy = serde_json::from_value(json!({
            "egress": {"allowed_networks": ["127.0.0.0/8"]},
            "secrets": {"file_dir": format!("{}/{{tenant}}", secrets.display())},
        }))
        .expect("the bench's tenancy");
        let store = PlatformStore::open(&data)
            .await
            .expect("the platform store");
        let registry =
            switchyard::builtin_registry(&data, switchyard::no_policy(), &tenancy, Some(&store))
                .expect("the builtin registry");
        store.create_tenant(&tenant).await.expect("the tenant");
        let mapping: serde_json::Map<String, Value> = PATHS
            .iter()
            .map(|(field, code)| ((*field).to_owned(), json!(code)))
            .collect();
        let config = json!({
            "shop_url": shop_url,
            "access_token": format!("secret://file{}", token_file.display()),
            "allowed_networks": ["127.0.0.0/8"],
            "streams": {"orders": {
                "mapping": mapping,
                "destination": {"db": {"provider": "db/sqlite", "table": "orders", "write": "dedupe"}},
            }},
        });
        store
            .save_config(&tenant, "integration", "shopify", &config)
            .await
            .expect("the shopify config");
        let runtime = Arc::new(
            Runtime::new(
                registry,
                store,
                Default::default(),
                SecretResolver::new(None).expect("a secret resolver"),
            )
            .with_secret_scope(tenancy.secrets.clone()),
        );
        let ctx = CallContext {
            tenant,
            request_id: "bench-integration".into(),
            subject: Some("bench".into()),
            service: None,
        };
        Host {
            runtime,
            ctx,
            _dir: dir,
        }
    }

    async fn call(&self, provider: &str, action: &str, params: Value) -> Value {
        let (domain, name) = provider.split_once('/').expect("domain/name");
        self.runtime
            .invoke(&self.ctx, domain, name, action, params, None)
            .await
            .unwrap_or_else(|p| panic!("{provider}/{action}: {} {}", p.code, p.detail))
    }
}

/// A full sync of the shop's orders into the tenant's `db/sqlite`, timed from the first call
/// to the run's completion.
pub async fn orders(shop_url: &str, access_token: &str) -> Synced {
    let host = Host::start(shop_url, access_token).await;
    let started = Instant::now();
    let params = json!({"stream": "orders", "mode": "full", "wait_ms": WAIT_MS});
    let run = loop {
        let run = host
            .call("integration/shopify", "sync", params.clone())
            .await;
        match run["status"].as_str() {
            Some("running") => eprintln!(
                "bench integration: sync: {} records, {} pages, {:.0} s",
                run["records"],
                run["pages"],
                started.elapsed().as_secs_f64()
            ),
            Some("completed") => break run,
            _ => panic!("the sync failed: {run}"),
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let count = host
        .call(
            "db/sqlite",
            "query",
            json!({"sql": "SELECT COUNT(*) AS n FROM orders"}),
        )
        .await;
    Synced {
        records: run["records"].as_u64().unwrap_or_default(),
        pages: run["pages"].as_u64().unwrap_or_default(),
        secs,
        rows: count["rows"][0]["n"].as_u64().unwrap_or_default(),
    }
}
