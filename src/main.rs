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
use switchyard_contracts::{Scopes, TenantId, openapi};
use switchyard_gateway::config::GatewayConfig;
use switchyard_gateway::filters::authenticate::Authenticator;
use switchyard_gateway::filters::client_cert;
use switchyard_gateway::purge::IdempotencyPurge;
use switchyard_gateway::shutdown::{Drain, DrainOnSigterm};
use switchyard_gateway::upstream::Upstreams;
use switchyard_gateway::{Gateway, GatewayParts};
use switchyard_runtime::internal_auth::InternalKey;
use switchyard_runtime::{PlatformStore, Runtime, http};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Gateway and runtime in one process, on the embedded defaults.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Loopback address of the in-process runtime (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        runtime_listen: SocketAddr,
        #[arg(long, default_value_t = 30_000)]
        call_timeout_ms: u64,
        /// Gateway config (TOML): limits, upstream health checks, OIDC, rate limits, mTLS.
        #[arg(long)]
        config: Option<PathBuf>,
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
    /// List the providers this build offers.
    Providers,
    /// Print the OpenAPI document this build serves.
    Openapi,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; NAME is its id (a-z, 0-9, '-').
    Create { name: String },
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let data_dir = cli.data_dir;
    match cli.command {
        Command::Serve {
            listen,
            runtime_listen,
            call_timeout_ms,
            config,
        } => {
            let config = GatewayConfig::load(config.as_deref()).map_err(anyhow::Error::msg)?;
            serve(&data_dir, &listen, runtime_listen, call_timeout_ms, config)
        }
        Command::Gateway {
            listen,
            runtimes,
            config,
        } => {
            let config = GatewayConfig::load(config.as_deref()).map_err(anyhow::Error::msg)?;
            let (background, store) = background_runtime(&data_dir)?;
            let key = InternalKey::load(&data_dir)?;
            run_gateway(&listen, &runtimes, config, store, key, background)
        }
        Command::Runtime {
            listen,
            call_timeout_ms,
        } => {
            let (background, store) = background_runtime(&data_dir)?;
            let key = InternalKey::load(&data_dir)?;
            background.block_on(async {
                let runtime = Arc::new(Runtime::new(
                    registry(&data_dir)?,
                    store,
                    Duration::from_millis(call_timeout_ms),
                ));
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(%listen, "runtime listening");
                http::serve(listener, runtime, key, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await;
                Ok(())
            })
        }
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let tenant = TenantId::parse(&name).map_err(anyhow::Error::msg)?;
            block_on_store(&data_dir, |store| async move {
                store.create_tenant(&tenant).await?;
                println!("created tenant {tenant}");
                Ok(())
            })
        }
        Command::Key {
            command: KeyCommand::Create { tenant, scopes },
        } => {
            let tenant = TenantId::parse(&tenant).map_err(anyhow::Error::msg)?;
            let scopes = Scopes::parse(&scopes).map_err(anyhow::Error::msg)?;
            block_on_store(&data_dir, |store| async move {
                let key = store.create_key(&tenant, &scopes).await?;
                eprintln!(
                    "key {} for tenant {tenant}, scopes {}; it is shown only this once:",
                    key.id,
                    scopes.to_header_value()
                );
                println!("{}", key.plaintext);
                Ok(())
            })
        }
        Command::Providers => {
            let registry = registry(&data_dir)?;
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
        Command::Openapi => {
            let document = openapi::document(&registry(&data_dir)?.descriptors());
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
    }
}

fn registry(data_dir: &Path) -> Result<switchyard_runtime::Registry> {
    switchyard::builtin_registry(data_dir).context("a built-in provider has an invalid schema")
}

/// The tokio runtime that hosts the provider runtime and the platform store's pool. Pingora
/// owns the process's main thread and its own runtimes, so ours lives beside them.
fn background_runtime(data_dir: &Path) -> Result<(tokio::runtime::Runtime, PlatformStore)> {
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("switchyard-runtime")
        .enable_all()
        .build()?;
    let store = background
        .block_on(PlatformStore::open(data_dir))
        .with_context(|| format!("cannot open the platform store in {}", data_dir.display()))?;
    Ok((background, store))
}

fn block_on_store<F, Fut>(data_dir: &Path, f: F) -> Result<()>
where
    F: FnOnce(PlatformStore) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let (background, store) = background_runtime(data_dir)?;
    background.block_on(f(store))
}

fn serve(
    data_dir: &Path,
    listen: &str,
    runtime_listen: SocketAddr,
    call_timeout_ms: u64,
    config: GatewayConfig,
) -> Result<()> {
    let (background, store) = background_runtime(data_dir)?;
    let key = InternalKey::load(data_dir)?;
    let runtime = Arc::new(Runtime::new(
        registry(data_dir)?,
        store.clone(),
        Duration::from_millis(call_timeout_ms),
    ));
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
    run_gateway(listen, &[runtime_addr], config, store, key, background)
}

fn run_gateway(
    listen: &str,
    runtimes: &[SocketAddr],
    config: GatewayConfig,
    store: PlatformStore,
    key: InternalKey,
    background: tokio::runtime::Runtime,
) -> Result<()> {
    if listen.parse::<SocketAddr>().is_err() {
        bail!("--listen {listen:?} is not an address like 127.0.0.1:8080");
    }
    let server_conf = ServerConf {
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        // The drain on SIGTERM already waited for requests in flight; nothing to wait for here.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, server_conf);
    server.bootstrap();
    let (upstreams, health_checks) = Upstreams::new(
        runtimes,
        Duration::from_millis(config.upstreams.health_check_interval_ms),
    )?;
    let mut authenticator = Authenticator::new(store.clone());
    let mtls = config.mtls.clone();
    if let Some(mtls) = &mtls {
        authenticator = authenticator
            .with_client_certificates(Scopes::parse(&mtls.scopes).map_err(anyhow::Error::msg)?);
    }
    let drain = Drain::default();
    let max_wait = Duration::from_millis(config.limits.drain_timeout_ms);
    let purge = IdempotencyPurge {
        store: store.clone(),
        retention: Duration::from_secs(config.idempotency.retention_secs),
    };
    let gateway = Gateway::new(GatewayParts {
        config,
        upstreams,
        authenticator,
        store,
        internal_key: key,
        drain: drain.clone(),
    })
    .map_err(anyhow::Error::msg)?;
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, gateway);
    proxy.add_tcp(listen);
    if let Some(mtls) = &mtls {
        let tls = client_cert::tls_settings(mtls).map_err(anyhow::Error::msg)?;
        proxy.add_tls_with_settings(&mtls.listen, None, tls);
        tracing::info!(listen = %mtls.listen, "mTLS listener");
    }
    server.add_service(proxy);
    server.add_service(health_checks);
    server.add_service(background_service("idempotency purge", purge));
    tracing::info!(%listen, ?runtimes, "gateway listening");
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnSigterm { drain, max_wait }),
    });
    // The runtime (in `serve`) and the store's pool live on `background` until here.
    drop(background);
    Ok(())
}
