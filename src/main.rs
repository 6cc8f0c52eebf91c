//! `switchyard`: one binary for the gateway, the provider runtime and their administration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use std::sync::OnceLock;
use switchyard::workers::{HostedWorkers, LeaseTiming, Marking, Nudges};
use switchyard_contracts::{Scopes, TenantId, openapi};
use switchyard_gateway::admin::TenantPurge;
use switchyard_gateway::config::{GatewayConfig, Limits};
use switchyard_gateway::filters::authenticate::Authenticator;
use switchyard_gateway::filters::client_cert;
use switchyard_gateway::filters::decision_log::DecisionLogWriter;
use switchyard_gateway::filters::policy::{Policy, PolicyReloader};
use switchyard_gateway::filters::tenant::TenantGateRefresh;
use switchyard_gateway::purge::IdempotencyPurge;
use switchyard_gateway::shutdown::{Drain, DrainOnSigterm};
use switchyard_gateway::upstream::{BareProxy, RuntimeLink, Upstreams};
use switchyard_gateway::usage::UsageFlush;
use switchyard_gateway::{Gateway, GatewayParts};
use switchyard_policy::SigningKey;
use switchyard_provider_auth::PolicySource;
use switchyard_runtime::internal_auth::InternalKey;
use switchyard_runtime::secrets::{SecretRef, SecretResolver, VaultSettings};
use switchyard_runtime::store::redacted_url;
use switchyard_runtime::{PlatformStore, ResilienceConfig, Runtime, http};
use switchyard_spi::tenancy::Tenancy;

mod audit_cli;
mod bench;
mod connector;
mod relay;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Every ERP capability as a provider behind one multi-tenant gateway"
)]
struct Cli {
    /// Where the platform store, the internal key and the embedded providers' data live.
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_DATA_DIR",
        default_value = "data"
    )]
    data_dir: PathBuf,
    /// The platform store (tenants, keys, configs, idempotency records, decisions) shared by
    /// every replica: `postgres://user:password@host/db`, or a `secret://` reference to such a
    /// URL. Default: SQLite, `platform.db` in the data dir. Its password is never logged.
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_STORE_URL",
        hide_env_values = true
    )]
    store_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Gateway and runtime in one process, on the embedded defaults.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Loopback address of the runtime's own listener with `--dispatch http` (port 0: any
        /// free port); unused with `--dispatch in-process`, the default.
        #[arg(long, default_value = "127.0.0.1:0")]
        runtime_listen: SocketAddr,
        /// How the gateway reaches the runtime in this process: `http` over loopback, or
        /// `in-process` by a direct call (no loopback hop; docs/adr/0016-in-process-dispatch.md).
        #[arg(long, value_enum, default_value_t = Dispatch::InProcess)]
        dispatch: Dispatch,
        #[arg(long, default_value_t = 30_000)]
        call_timeout_ms: u64,
        /// Gateway config (TOML): limits, upstream health checks, OIDC, rate limits, mTLS.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        hosting: HostingArgs,
    },
    /// The gateway alone, in front of runtimes started with `switchyard runtime`.
    Gateway {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Address of a runtime; repeat for several (health-checked, round robin, failover).
        #[arg(long = "runtime", default_value = "127.0.0.1:8081")]
        runtimes: Vec<SocketAddr>,
        /// Gateway config (TOML): limits, upstream health checks, OIDC, rate limits, mTLS.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The provider runtime alone; it accepts only gateway-signed requests.
    Runtime {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 30_000)]
        call_timeout_ms: u64,
        /// The same config file as the gateway's; the runtime reads its `[tenancy]` section
        /// (egress ceiling, quotas, secret scope).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        hosting: HostingArgs,
    },
    /// Relay one tenant's outbox to its bus through a gateway, until interrupted. Safe to
    /// kill at any moment: unsent rows go on the next run.
    Relay {
        #[command(flatten)]
        connection: ConnectionArgs,
        /// The db provider whose database holds the outbox.
        #[arg(long, default_value = "db/sqlite")]
        db: String,
        #[arg(long, default_value = "bus/embedded")]
        bus: String,
        /// Outbox rows read per round (1..=500).
        #[arg(long, default_value_t = 200)]
        batch: usize,
        /// Pause when the outbox is empty or a round failed.
        #[arg(long, default_value_t = 200)]
        idle_ms: u64,
    },
    /// Annotate one tenant's new orders: read `orders.order.created` from its bus through a
    /// gateway and call `services/orders/annotate` for each, until interrupted. An order the
    /// AI provider could not annotate is read again until it is annotated.
    AnnotateOrders {
        #[command(flatten)]
        connection: ConnectionArgs,
        /// The bus the orders service's outbox is relayed to.
        #[arg(long, default_value = "bus/embedded")]
        bus: String,
        /// Pause when there is nothing new, or after an order could not be annotated.
        #[arg(long, default_value_t = 500)]
        idle_ms: u64,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage the platform operators' keys (for `/admin/*`, above every tenant).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// List the providers this build offers.
    Providers,
    /// Run a domain's conformance suite against a registered provider (built-in, plugin or
    /// remote) and print its certification level; exit status 1 unless certified at `core`.
    Conformance {
        /// `<domain>/<name>`, e.g. `cache/memory`.
        provider: String,
        /// A plugin library to register for this run (repeatable), besides `SWITCHYARD_PLUGINS`.
        #[arg(long = "plugin")]
        plugins: Vec<PathBuf>,
        /// A remote provider manifest to register for this run (repeatable), besides
        /// `SWITCHYARD_REMOTE_PROVIDERS`.
        #[arg(long = "manifest")]
        manifests: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Connector developers' tools.
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
    /// Print the OpenAPI document this build serves.
    Openapi,
    /// The entity-change audit log: check a tenant's hash chain.
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Policy as code: test the Rego policies, build them into an OPA bundle.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Benchmarks side by side in one run: the gateway beside the runtime direct and bare
    /// nginx, in-process `serve`, memory, startup, policy, ledger, lot trace; a table, JSON and
    /// SVG plots (`scripts/bench` installs nginx and wrk first).
    Bench(bench::BenchArgs),
    /// For `switchyard bench`: a Pingora proxy with no filters in front of one runtime, built
    /// like the gateway (same Pingora, same `ServerConf`, same upstream peer), so that the
    /// bench can tell Pingora's own cost from the gateway's filters.
    #[command(hide = true)]
    BenchProxy {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        upstream: SocketAddr,
    },
}

/// `serve`'s link from gateway to runtime.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Dispatch {
    Http,
    InProcess,
}

/// Where `run_gateway` finds the runtime.
enum Runtimes<'a> {
    Remote(&'a [SocketAddr]),
    InProcess(Arc<http::Service>),
}

/// How a per-tenant worker reaches its tenant: through a gateway, with the tenant's key.
#[derive(clap::Args)]
struct ConnectionArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    #[arg(long)]
    tenant: String,
    /// The tenant's API key, with invoke rights on what the worker calls.
    #[arg(long, env = "SWITCHYARD_API_KEY", hide_env_values = true)]
    api_key: String,
}

impl From<ConnectionArgs> for relay::Connection {
    fn from(args: ConnectionArgs) -> Self {
        relay::Connection {
            gateway: args.gateway,
            tenant: args.tenant,
            api_key: args.api_key,
        }
    }
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// Write the skeleton of a new provider that builds and passes its domain's suite:
    /// a plugin crate (default) or a remote service with its manifest.
    New {
        /// `<domain>/<name>`, e.g. `cache/acme`.
        provider: String,
        /// A plugin crate (cdylib) loaded by the runtime.
        #[arg(long, conflicts_with = "remote")]
        plugin: bool,
        /// An out-of-process service and its manifest.
        #[arg(long)]
        remote: bool,
        /// Where to write it (default: a directory named after the provider).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The switchyard-plugin-abi crate the plugin depends on (default: this source tree's).
        #[arg(long)]
        abi_path: Option<PathBuf>,
    },
}

/// How `serve` and `runtime` host the providers: where lifecycle events go, whether the
/// tenants' workers run here, and what a shared store refuses.
#[derive(clap::Args)]
struct HostingArgs {
    /// The bus provider each tenant's provider lifecycle events go to (on that tenant's own
    /// bus), or `off`.
    #[arg(long, env = "SWITCHYARD_LIFECYCLE_BUS", default_value = "bus/embedded")]
    lifecycle_bus: String,
    /// Run every tenant's outbox relay and business-event consumers in this process, one
    /// replica per tenant at a time under a lease in the platform store (`on`), or leave them
    /// to `switchyard relay` and `switchyard annotate-orders` (`off`).
    #[arg(long, env = "SWITCHYARD_HOSTED_WORKERS", value_enum, default_value_t = Switch::On)]
    hosted_workers: Switch,
    /// On a store replicas share (`--store-url postgres://…`): `refuse` the engines that keep a
    /// tenant's state on one node (db/sqlite, cache/memory, bus/embedded, storage/fs, …), or
    /// `allow` them (one replica, or state the operator accepts to split). `/readyz` lists them.
    #[arg(long, env = "SWITCHYARD_NODE_LOCAL", value_enum, default_value_t = NodeLocal::Refuse)]
    node_local: NodeLocal,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NodeLocal {
    Refuse,
    Allow,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

impl HostingArgs {
    /// Starts publishing; must run inside the tokio runtime that hosts `runtime`.
    fn publish(&self, runtime: &Arc<Runtime>) -> Result<()> {
        if self.lifecycle_bus == "off" {
            return Ok(());
        }
        runtime
            .publish_lifecycle_events(&self.lifecycle_bus)
            .map_err(|p| anyhow::anyhow!("--lifecycle-bus: {}", p.detail))
    }

    /// The registry this process hosts, held to the cluster rule ([`switchyard::cluster`]), and
    /// what it keeps node-local.
    fn registry(
        &self,
        data_dir: &Path,
        policy: PolicySource,
        tenancy: &Tenancy,
        store: &PlatformStore,
    ) -> Result<(switchyard_runtime::Registry, serde_json::Value)> {
        let mut registry = registry(data_dir, policy, tenancy, Some(store))?;
        let entries = switchyard::cluster::node_local(
            &mut registry,
            store.is_shared(),
            self.node_local == NodeLocal::Allow,
            &self.lifecycle_bus,
            &switchyard::ServiceSettings::from_env(),
        )
        .map_err(anyhow::Error::msg)?;
        if store.is_shared() {
            tracing::info!(
                node_local = entries.len(),
                "cluster mode: the platform store is shared by the replicas"
            );
        }
        Ok((registry, serde_json::Value::Array(entries)))
    }

    /// The business services, marking the tenants that use them when workers are hosted; the
    /// events their outbox relay publishes are recorded in the tenants' audit logs.
    fn services(
        &self,
        store: &PlatformStore,
        nudges: &Nudges,
    ) -> Result<Vec<Arc<dyn switchyard_client::Service>>> {
        let services = switchyard::builtin_services_audited(store)?;
        Ok(match self.hosted_workers {
            Switch::On => Marking::wrap(services, store, nudges),
            Switch::Off => services,
        })
    }

    /// Starts following the other replicas' config saves and, when on and some service has a
    /// bus, the hosted workers; must run inside the tokio runtime that hosts `runtime`.
    /// Answers the workers' task, which ends once they gave their leases back on a signal.
    fn host(
        &self,
        runtime: &Arc<Runtime>,
        store: &PlatformStore,
        nudges: Nudges,
    ) -> Option<tokio::task::JoinHandle<()>> {
        tokio::spawn(runtime.clone().follow_config_changes());
        let work = switchyard::ServiceSettings::from_env().hosted_work();
        if self.hosted_workers == Switch::Off || work.is_empty() {
            return None;
        }
        let workers = HostedWorkers::new(
            runtime.clone(),
            store.clone(),
            work,
            LeaseTiming::default(),
            nudges,
        );
        // On SIGTERM or SIGINT the leases are given back at once, so the other replicas take
        // this one's tenants while it drains instead of after the leases run out.
        Some(tokio::spawn(workers.run(until_stopped())))
    }
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run the `test_*` rules of the policies with regorus.
    Test {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
    /// Build an OPA bundle (.tar.gz), optionally signed (.signatures.json).
    Build {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        #[arg(long, default_value = "bundle.tar.gz")]
        out: PathBuf,
        /// Revision in the manifest; default: a hash of the sources.
        #[arg(long)]
        revision: Option<String>,
        /// Private key (RS256, PEM) or shared secret (HS256) file to sign with.
        #[arg(long)]
        sign_key: Option<PathBuf>,
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "HS256"])]
        sign_algorithm: String,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; NAME is its id (a-z, 0-9, '-'), not a reserved name such as `readyz`.
    Create { name: String },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator key and print it once; only its hash is stored.
    CreateKey {
        /// Who holds it (shown in the audit log's records of their actions).
        #[arg(long)]
        name: String,
    },
    /// List the operator keys (never their secrets).
    ListKeys,
    /// Revoke an operator key by its id.
    RevokeKey { id: String },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key and print it once; only its hash is stored.
    Create {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: *, read, admin, invoke, invoke:<domain>, invoke:<domain>/<name>.
        #[arg(long)]
        scopes: String,
    },
}

fn main() -> Result<()> {
    switchyard_telemetry::logs::init();
    let cli = Cli::parse();
    // Held to the end of `main`: dropping it flushes the spans of the last requests.
    let _traces = switchyard_telemetry::trace::init_from_env(match &cli.command {
        Command::Gateway { .. } => "switchyard-gateway",
        Command::Runtime { .. } => "switchyard-runtime",
        _ => "switchyard",
    })
    .map_err(anyhow::Error::msg)?;
    let data_dir = cli.data_dir;
    let location = StoreLocation {
        data_dir: data_dir.clone(),
        url: cli.store_url,
    };
    match cli.command {
        Command::Serve {
            listen,
            runtime_listen,
            dispatch,
            call_timeout_ms,
            config,
            hosting,
        } => {
            let config = GatewayConfig::load(config.as_deref()).map_err(anyhow::Error::msg)?;
            serve(
                &location,
                &listen,
                (dispatch, runtime_listen),
                call_timeout_ms,
                config,
                &hosting,
            )
        }
        Command::Gateway {
            listen,
            runtimes,
            config,
        } => {
            let config = GatewayConfig::load(config.as_deref()).map_err(anyhow::Error::msg)?;
            let (background, store) = background_runtime(&location)?;
            let store = store.with_quotas(&config.tenancy.quotas);
            let key = InternalKey::load(&data_dir)?;
            run_gateway(
                None,
                &listen,
                Runtimes::Remote(&runtimes),
                config,
                store,
                key,
                background,
            )
        }
        Command::Runtime {
            listen,
            call_timeout_ms,
            config,
            hosting,
        } => {
            let config = GatewayConfig::load(config.as_deref()).map_err(anyhow::Error::msg)?;
            let (background, store) = background_runtime(&location)?;
            let store = store.with_quotas(&config.tenancy.quotas);
            let key = InternalKey::load(&data_dir)?;
            background.block_on(async {
                let nudges = Nudges::default();
                let (registry, node_local) = hosting.registry(
                    &data_dir,
                    switchyard::no_policy(),
                    &config.tenancy,
                    &store,
                )?;
                let runtime = Arc::new(
                    Runtime::new(
                        registry,
                        store.clone(),
                        resilience(call_timeout_ms),
                        secret_resolver()?,
                    )
                    .with_secret_scope(config.tenancy.secrets.clone())
                    .with_node_local(node_local)
                    .with_services(hosting.services(&store, &nudges)?)?,
                );
                hosting.publish(&runtime)?;
                if let Some(settings) = switchyard::durable::EndpointSettings::from_env()? {
                    switchyard::durable::host(runtime.clone(), settings).await?;
                }
                let workers = hosting.host(&runtime, &store, nudges);
                runtime.restore_registrations().await?;
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(%listen, "runtime listening");
                tokio::spawn(refresh_secrets(runtime.clone()));
                http::serve(listener, runtime, key, until_stopped()).await;
                if let Some(workers) = workers {
                    let _ = tokio::time::timeout(Duration::from_secs(5), workers).await;
                }
                Ok(())
            })
        }
        Command::Relay {
            connection,
            db,
            bus,
            batch,
            idle_ms,
        } => relay::run(relay::RelayArgs {
            connection: connection.into(),
            db,
            bus,
            batch,
            idle: Duration::from_millis(idle_ms),
        }),
        Command::AnnotateOrders {
            connection,
            bus,
            idle_ms,
        } => relay::run_annotator(relay::AnnotatorArgs {
            connection: connection.into(),
            bus,
            idle: Duration::from_millis(idle_ms),
        }),
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let tenant = TenantId::parse_new(&name).map_err(anyhow::Error::msg)?;
            block_on_store(&location, |store| async move {
                store.create_tenant(&tenant).await?;
                store
                    .append_audit(cli_audit(
                        &tenant,
                        "tenant",
                        "create",
                        serde_json::json!({"id": tenant.as_str()}),
                    ))
                    .await?;
                println!("created tenant {tenant}");
                Ok(())
            })
        }
        Command::Operator { command } => block_on_store(&location, |store| async move {
            match command {
                OperatorCommand::CreateKey { name } => {
                    let key = store.create_operator_key(&name).await?;
                    let entry = switchyard_runtime::store::AuditEntry {
                        tenant: switchyard_runtime::store::PLATFORM_CHAIN.into(),
                        actor: "cli".into(),
                        entity: format!("operator_key/{}", key.id),
                        operation: "create".into(),
                        new: Some(serde_json::json!({"id": key.id, "name": name})),
                        ..Default::default()
                    };
                    store.append_audit(entry).await?;
                    eprintln!(
                        "operator key {} for {name}; it is shown only this once:",
                        key.id
                    );
                    println!("{}", key.plaintext);
                }
                OperatorCommand::ListKeys => {
                    for key in store.list_operator_keys().await? {
                        let state = key
                            .revoked_at
                            .as_deref()
                            .map_or("live".to_owned(), |at| format!("revoked {at}"));
                        println!("{}\t{}\t{}\t{state}", key.id, key.name, key.created_at);
                    }
                }
                OperatorCommand::RevokeKey { id } => {
                    if !store.revoke_operator_key(&id).await? {
                        bail!("no live operator key {id}");
                    }
                    let entry = switchyard_runtime::store::AuditEntry {
                        tenant: switchyard_runtime::store::PLATFORM_CHAIN.into(),
                        actor: "cli".into(),
                        entity: format!("operator_key/{id}"),
                        operation: "revoke".into(),
                        ..Default::default()
                    };
                    store.append_audit(entry).await?;
                    println!("revoked operator key {id}");
                }
            }
            Ok(())
        }),
        Command::Key {
            command: KeyCommand::Create { tenant, scopes },
        } => {
            let tenant = TenantId::parse(&tenant).map_err(anyhow::Error::msg)?;
            let scopes = Scopes::parse(&scopes).map_err(anyhow::Error::msg)?;
            block_on_store(&location, |store| async move {
                let key = store.create_key(&tenant, &scopes).await?;
                let new = serde_json::json!({"id": key.id, "scopes": scopes.to_header_value()});
                store
                    .append_audit(cli_audit(
                        &tenant,
                        &format!("api_key/{}", key.id),
                        "create",
                        new,
                    ))
                    .await?;
                eprintln!(
                    "key {} for tenant {tenant}, scopes {}; it is shown only this once:",
                    key.id,
                    scopes.to_header_value()
                );
                println!("{}", key.plaintext);
                Ok(())
            })
        }
        Command::Conformance {
            provider,
            plugins,
            manifests,
            json,
        } => {
            let report = connector::conformance(
                &data_dir,
                switchyard::no_policy(),
                &provider,
                &switchyard::external::External { plugins, manifests },
                json,
            )?;
            // The catalog (and the console) show the level of the version that ran.
            let text = serde_json::to_string(&report)?;
            block_on_store(&location, |store| async move {
                let (domain, name) = report.provider.split_once('/').unwrap_or_default();
                store
                    .record_certification(
                        domain,
                        name,
                        &report.version,
                        &report.certification,
                        &text,
                    )
                    .await?;
                if report.levels.is_empty() {
                    anyhow::bail!("{} is not certified: a core check failed", report.provider);
                }
                Ok(())
            })
        }
        Command::Provider {
            command:
                ProviderCommand::New {
                    provider,
                    plugin: _,
                    remote,
                    dir,
                    abi_path,
                },
        } => {
            let kind = if remote {
                connector::Kind::Remote
            } else {
                connector::Kind::Plugin
            };
            let dir = dir.unwrap_or_else(|| PathBuf::from(provider.replace('/', "-")));
            connector::new_provider(&provider, kind, &dir, abi_path)
        }
        Command::Providers => {
            let registry = registry(
                &data_dir,
                switchyard::no_policy(),
                &Tenancy::default(),
                None,
            )?;
            println!(
                "{:<18} {:<8} {:<40} actions",
                "provider", "version", "capabilities"
            );
            for (_, p) in registry.iter() {
                let d = p.descriptor();
                let actions: Vec<&str> = d.actions.iter().map(|a| a.name.as_str()).collect();
                println!(
                    "{:<18} {:<8} {:<40} {}",
                    p.id(),
                    d.version,
                    d.capabilities.join(","),
                    actions.join(",")
                );
            }
            Ok(())
        }
        Command::Policy { command } => policy_command(command),
        Command::Bench(args) => bench::run(args),
        Command::BenchProxy { listen, upstream } => {
            let mut server = Server::new_with_opt_and_conf(None, server_conf());
            server.bootstrap();
            let bare = BareProxy {
                upstream,
                limits: Limits::default(),
            };
            let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, bare);
            proxy.add_tcp(&listen.to_string());
            server.add_service(proxy);
            tracing::info!(%listen, %upstream, "bench proxy listening");
            server.run_forever()
        }
        Command::Audit { command } => {
            block_on_store(&location, |store| audit_cli::run(store, command))
        }
        Command::Openapi => {
            let services: Vec<_> = switchyard::builtin_services()?
                .iter()
                .map(|s| s.descriptor().clone())
                .collect();
            let document = openapi::document(
                &registry(
                    &data_dir,
                    switchyard::no_policy(),
                    &Tenancy::default(),
                    None,
                )?
                .descriptors(),
                &services,
            );
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
    }
}

fn policy_command(command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::Test { dir } => {
            let report = switchyard_policy::run_tests(&dir)?;
            for (test, passed) in &report.results {
                println!("{} {test}", if *passed { "ok    " } else { "FAILED" });
            }
            let failed = report.results.iter().filter(|(_, passed)| !passed).count();
            println!(
                "policy tests: {} passed, {failed} failed",
                report.results.len() - failed
            );
            if failed > 0 || report.results.is_empty() {
                bail!(
                    "policy tests failed (or none were found) in {}",
                    dir.display()
                );
            }
            Ok(())
        }
        PolicyCommand::Build {
            dir,
            out,
            revision,
            sign_key,
            sign_algorithm,
        } => {
            let revision = match revision {
                Some(r) => r,
                None => source_revision(&dir)?,
            };
            let signing = match sign_key {
                None => None,
                Some(path) => {
                    let key = std::fs::read(&path).with_context(|| path.display().to_string())?;
                    Some(if sign_algorithm == "HS256" {
                        SigningKey::Hs256(key)
                    } else {
                        SigningKey::Rs256Pem(key)
                    })
                }
            };
            let bytes = switchyard_policy::build_bundle(&dir, &revision, signing.as_ref())?;
            std::fs::write(&out, &bytes).with_context(|| out.display().to_string())?;
            println!(
                "{} revision {revision}{}",
                out.display(),
                if signing.is_some() { ", signed" } else { "" }
            );
            Ok(())
        }
    }
}

/// A revision that changes exactly when a source file does.
fn source_revision(dir: &Path) -> Result<String> {
    use sha2::Digest;
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).with_context(|| next.display().to_string())? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rego" || e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash = sha2::Sha256::new();
    for file in files {
        hash.update(
            file.strip_prefix(dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update(std::fs::read(&file)?);
    }
    Ok(format!("src-{}", &hex::encode(hash.finalize())[..12]))
}

fn resilience(call_timeout_ms: u64) -> ResilienceConfig {
    ResilienceConfig {
        call_timeout: Duration::from_millis(call_timeout_ms),
        ..ResilienceConfig::default()
    }
}

/// Vault is reached with `VAULT_ADDR` / `VAULT_TOKEN` when set; env and file references
/// always work.
fn secret_resolver() -> Result<SecretResolver> {
    SecretResolver::new(VaultSettings::from_env()).map_err(anyhow::Error::msg)
}

/// Re-resolves secret references on an interval (`SWITCHYARD_SECRET_REFRESH_SECS`, default 30),
/// so a rotated secret reaches its provider without a restart.
async fn refresh_secrets(runtime: Arc<Runtime>) {
    let every = std::env::var("SWITCHYARD_SECRET_REFRESH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut ticks = tokio::time::interval(Duration::from_secs(every));
    loop {
        ticks.tick().await;
        runtime.refresh_secrets().await;
    }
}

/// The built-in engines, then the plugins and remote providers the operator named
/// (`SWITCHYARD_PLUGINS`, `SWITCHYARD_REMOTE_PROVIDERS`): after the built-ins, so a name clash
/// is refused as "registered twice" rather than shadowing a built-in engine.
fn registry(
    data_dir: &Path,
    policy: PolicySource,
    tenancy: &Tenancy,
    store: Option<&PlatformStore>,
) -> Result<switchyard_runtime::Registry> {
    let mut registry = switchyard::builtin_registry(data_dir, policy, tenancy, store)
        .context("a built-in provider has an invalid schema")?;
    switchyard::external::External::from_env().register(&mut registry)?;
    Ok(registry)
}

/// Where the platform store lives: `--store-url` when given, else SQLite in the data dir.
struct StoreLocation {
    data_dir: PathBuf,
    url: Option<String>,
}

impl StoreLocation {
    async fn open(&self) -> Result<PlatformStore> {
        let Some(url) = &self.url else {
            return PlatformStore::open(&self.data_dir).await.with_context(|| {
                format!(
                    "cannot open the platform store in {}",
                    self.data_dir.display()
                )
            });
        };
        // A reference keeps the password out of the environment and the command line.
        let resolved;
        let url = if url.starts_with("secret://") {
            let reference = SecretRef::parse(url)?;
            resolved = secret_resolver()?.resolve(&reference, url).await?;
            resolved.expose()
        } else {
            url
        };
        // Only the redacted form is ever shown: sqlx's own errors do not repeat the URL.
        let shown = redacted_url(url);
        let store = PlatformStore::connect(url)
            .await
            .with_context(|| format!("cannot open the platform store at {shown}"))?;
        tracing::info!(store = %shown, "platform store");
        Ok(store)
    }
}

/// The tokio runtime that hosts the provider runtime and the platform store's pool. Pingora
/// owns the process's main thread and its own runtimes, so ours lives beside them.
fn background_runtime(
    location: &StoreLocation,
) -> Result<(tokio::runtime::Runtime, PlatformStore)> {
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("switchyard-runtime")
        .enable_all()
        .build()?;
    let store = background.block_on(location.open())?;
    Ok((background, store))
}

/// An audit record of a change made from the CLI on the store directly (actor `cli`).
fn cli_audit(
    tenant: &TenantId,
    entity: &str,
    operation: &str,
    new: serde_json::Value,
) -> switchyard_runtime::store::AuditEntry {
    switchyard_runtime::store::AuditEntry {
        tenant: tenant.to_string(),
        actor: "cli".into(),
        entity: entity.to_owned(),
        operation: operation.to_owned(),
        new: Some(new),
        ..Default::default()
    }
}

fn block_on_store<F, Fut>(location: &StoreLocation, f: F) -> Result<()>
where
    F: FnOnce(PlatformStore) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let (background, store) = background_runtime(location)?;
    background.block_on(f(store))
}

fn serve(
    location: &StoreLocation,
    listen: &str,
    (dispatch, runtime_listen): (Dispatch, SocketAddr),
    call_timeout_ms: u64,
    config: GatewayConfig,
    hosting: &HostingArgs,
) -> Result<()> {
    let data_dir = location.data_dir.as_path();
    let (background, store) = background_runtime(location)?;
    let store = store.with_quotas(&config.tenancy.quotas);
    let key = InternalKey::load(data_dir)?;
    // `auth/opa` answers from the bundle the gateway runs; the gateway loads it further down.
    let running_policy: Arc<OnceLock<Arc<Policy>>> = Arc::default();
    let cell = running_policy.clone();
    let policy_source: PolicySource = Arc::new(move || cell.get().map(|p| p.current()));
    let nudges = Nudges::default();
    let (registry, mut node_local) =
        hosting.registry(data_dir, policy_source, &config.tenancy, &store)?;
    if config
        .rate_limit
        .as_ref()
        .is_some_and(|limits| limits.redis_url.is_none())
        && let serde_json::Value::Array(entries) = &mut node_local
    {
        entries.push(switchyard::cluster::local_rate_limits());
    }
    let runtime = Arc::new(
        Runtime::new(
            registry,
            store.clone(),
            resilience(call_timeout_ms),
            secret_resolver()?,
        )
        .with_secret_scope(config.tenancy.secrets.clone())
        .with_services(hosting.services(&store, &nudges)?)?,
    );
    if let Some(settings) = switchyard::durable::EndpointSettings::from_env()? {
        background.block_on(switchyard::durable::host(runtime.clone(), settings))?;
    }
    let workers = background.block_on(async {
        hosting.publish(&runtime)?;
        anyhow::Ok(hosting.host(&runtime, &store, nudges))
    })?;
    // Remote providers an operator registered while an earlier process served.
    background.block_on(runtime.restore_registrations())?;
    background.spawn(refresh_secrets(runtime.clone()));
    if let Dispatch::InProcess = dispatch {
        tracing::info!("runtime in process (in-process dispatch)");
        let service = Arc::new(http::Service::new(runtime, key.clone()));
        return run_gateway(
            Some(Hosted {
                policy: running_policy,
                node_local,
                workers,
            }),
            listen,
            Runtimes::InProcess(service),
            config,
            store,
            key,
            background,
        );
    }
    let listener = background
        .block_on(tokio::net::TcpListener::bind(runtime_listen))
        .with_context(|| format!("cannot listen on {runtime_listen}"))?;
    let runtime_addr = listener.local_addr()?;
    background.spawn(http::serve(
        listener,
        runtime,
        key.clone(),
        std::future::pending(),
    ));
    tracing::info!(%runtime_addr, "runtime listening (internal)");
    run_gateway(
        Some(Hosted {
            policy: running_policy,
            node_local,
            workers,
        }),
        listen,
        Runtimes::Remote(&[runtime_addr]),
        config,
        store,
        key,
        background,
    )
}

/// The Pingora server settings of the gateway (and of `bench-proxy`, which must match it).
/// One Pingora thread per core: one thread (no work stealing, no cross-thread wake-up of the
/// task Pingora spawns per pooled upstream connection) halved the context switches per request
/// of a bare proxy at 1 connection and cost about 10% less CPU per request at 32, but gave the
/// gateway, whose filters also run on the background runtime, no more throughput (issue 18).
fn server_conf() -> ServerConf {
    ServerConf {
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        // The drain on SIGTERM already waited for requests in flight; nothing to wait for here.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    }
}

/// Resolves on SIGTERM or SIGINT. Listening for SIGTERM replaces its default action, so every
/// part of a process that stops on it listens here.
async fn until_stopped() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// What `serve` hands its gateway of the runtime it hosts: the cell `auth/opa` reads the
/// running policy from, what the process keeps node-local (for `/readyz`), and the hosted
/// workers, waited for at the end so they give their leases back before the process exits.
struct Hosted {
    policy: Arc<OnceLock<Arc<Policy>>>,
    node_local: serde_json::Value,
    workers: Option<tokio::task::JoinHandle<()>>,
}

fn run_gateway(
    hosted: Option<Hosted>,
    listen: &str,
    runtimes: Runtimes,
    config: GatewayConfig,
    store: PlatformStore,
    key: InternalKey,
    background: tokio::runtime::Runtime,
) -> Result<()> {
    if listen.parse::<SocketAddr>().is_err() {
        bail!("--listen {listen:?} is not an address like 127.0.0.1:8080");
    }
    let mut server = Server::new_with_opt_and_conf(None, server_conf());
    server.bootstrap();
    let runtime = match &runtimes {
        Runtimes::Remote(addresses) => {
            let (upstreams, health_checks) = Upstreams::new(
                addresses,
                Duration::from_millis(config.upstreams.health_check_interval_ms),
            )?;
            server.add_service(health_checks);
            RuntimeLink::Http(upstreams)
        }
        Runtimes::InProcess(service) => RuntimeLink::InProcess(service.clone()),
    };
    let mut authenticator = Authenticator::new(store.clone());
    let mtls = config.mtls.clone();
    if let Some(mtls) = &mtls {
        authenticator = authenticator
            .with_client_certificates(Scopes::parse(&mtls.scopes).map_err(anyhow::Error::msg)?);
    }
    let drain = Drain::default();
    let max_wait = Duration::from_millis(config.limits.drain_timeout_ms);
    // A configured policy must load before the gateway serves: it never runs unguarded.
    let mut policy = None;
    if let Some(policy_config) = &config.policy {
        let (loaded, decision_log) = background
            .block_on(Policy::start_with(policy_config, Some(store.clone())))
            .map_err(anyhow::Error::msg)?;
        server.add_service(background_service(
            "policy reload",
            PolicyReloader(loaded.clone()),
        ));
        let writer = DecisionLogWriter {
            store: store.clone(),
            queue: decision_log,
        };
        server.add_service(background_service("decision log", writer));
        if let Some(Hosted { policy: cell, .. }) = &hosted {
            let _ = cell.set(loaded.clone());
        }
        policy = Some(loaded);
    }
    let store_for_admin = store.clone();
    let purge = IdempotencyPurge {
        store: store.clone(),
        retention: Duration::from_secs(config.idempotency.retention_secs),
    };
    // The decision log's retention, and its upload to the operator's collector (ADR 42).
    server.add_service(background_service(
        "decision purge",
        switchyard_gateway::decision_retention::DecisionPurge::new(
            store.clone(),
            config.policy.as_ref(),
        ),
    ));
    let upload = config
        .policy
        .as_ref()
        .and_then(|p| p.decision_upload.as_ref());
    if let Some(upload) = upload {
        let upload =
            switchyard_gateway::decision_upload::DecisionUpload::new(store.clone(), upload);
        let upload = upload.map_err(anyhow::Error::msg)?;
        server.add_service(background_service("decision upload", upload));
    }
    let tenant_purge = TenantPurge {
        store: store.clone(),
        every: Duration::from_millis(config.admin.purge_interval_ms.max(100)),
    };
    let gateway = Gateway::new(GatewayParts {
        config,
        runtime,
        authenticator,
        policy,
        store,
        internal_key: key,
        drain: drain.clone(),
    })
    .map_err(anyhow::Error::msg)?;
    let (gateway, workers) = match hosted {
        Some(hosted) => (gateway.with_node_local(hosted.node_local), hosted.workers),
        None => (gateway, None),
    };
    // The operator plane's state on this replica: suspensions from the store, usage to it.
    let tenant_gate = gateway.tenant_gate();
    background
        .block_on(tenant_gate.refresh(&store_for_admin))
        .context("reading the suspended tenants")?;
    server.add_service(background_service(
        "tenant gate",
        TenantGateRefresh {
            gate: tenant_gate,
            limiter: gateway.rate_limiter(),
            store: store_for_admin.clone(),
        },
    ));
    server.add_service(background_service(
        "tenant usage",
        UsageFlush {
            counter: gateway.usage(),
            store: store_for_admin,
        },
    ));
    server.add_service(background_service("tenant purge", tenant_purge));
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, gateway);
    proxy.add_tcp(listen);
    if let Some(mtls) = &mtls {
        let tls = client_cert::tls_settings(mtls).map_err(anyhow::Error::msg)?;
        proxy.add_tls_with_settings(&mtls.listen, None, tls);
        tracing::info!(listen = %mtls.listen, "mTLS listener");
    }
    server.add_service(proxy);
    server.add_service(background_service("idempotency purge", purge));
    match runtimes {
        Runtimes::Remote(runtimes) => tracing::info!(%listen, ?runtimes, "gateway listening"),
        Runtimes::InProcess(_) => tracing::info!(%listen, "gateway listening (runtime in process)"),
    }
    // On SIGTERM the workers give their leases back before Pingora stops its runtimes (see
    // `before_exit`); on SIGINT the process stops at once and the leases run out by themselves.
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnSigterm {
            drain,
            max_wait,
            before_exit: std::sync::Mutex::new(workers),
        }),
    });
    // The runtime (in `serve`) and the store's pool live on `background` until here.
    drop(background);
    Ok(())
}
