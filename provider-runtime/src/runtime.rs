//! The runtime: hosts provider instances per tenant and answers the provider contract.
//! The HTTP service is a thin layer over these methods, and in-process callers (business
//! services) use them directly.

mod configure;
mod history;
pub(crate) use history::CLIENT_ADDRESS;
mod tenant_secrets;

pub use history::{diff, shown};

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use arc_swap::ArcSwap;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Value, json};
use switchyard_client::{ProviderClient, Service, ValueStream};
use switchyard_contracts::{
    ActionValidators, ErrorCode, Problem, SchemaError, ServiceDescriptor, TenantId, openapi,
};
use switchyard_spi::tenancy::SecretScope;
use switchyard_spi::{CallContext, Invocation, ProviderError, StartContext};

use crate::client::RuntimeClient;
use crate::events::{Emitter, LifecycleEvent, cloud_event};
use crate::lifecycle::{Lease, Lifecycle, NotRunning, Slot};
use crate::registration::Registrations;
use crate::registry::{Registered, Registry};
use crate::resilience::{CircuitObserver, CircuitState, ResilienceConfig};
use crate::secrets::{Owner, SecretResolver, masked};
use crate::store::{PlatformStore, StoreError};
use switchyard_telemetry::{metrics, trace};

pub struct Runtime {
    /// Swapped whole when an operator registers or removes a provider; readers never wait.
    pub(crate) registry: ArcSwap<Registry>,
    pub(crate) store: PlatformStore,
    pub(crate) slots: RwLock<HashMap<(TenantId, usize), Arc<Slot>>>,
    resilience: ResilienceConfig,
    pub(crate) secrets: Arc<SecretResolver>,
    /// Where tenants' secret references may point (`[tenancy.secrets]`).
    secret_scope: SecretScope,
    /// Emptied with every change of the registry, so a registered provider's actions are
    /// published at once; built on the first request for it (a ~10 MB tree while built).
    openapi: ArcSwap<OnceLock<Bytes>>,
    events: Emitter,
    services: Vec<HostedService>,
    /// The providers registered while serving, and the lock that orders their changes.
    pub(crate) registrations: Registrations,
    /// What this process keeps on its node only (`[{what, why, state}]`), for `/readyz`.
    node_local: Value,
}

/// A business service with its params validators, each compiled on its first use.
struct HostedService {
    service: Arc<dyn Service>,
    params: HashMap<String, ActionValidators>,
}

impl Runtime {
    pub fn new(
        registry: Registry,
        store: PlatformStore,
        resilience: ResilienceConfig,
        secrets: SecretResolver,
    ) -> Self {
        Runtime {
            registry: ArcSwap::from_pointee(registry),
            store,
            slots: RwLock::new(HashMap::new()),
            resilience,
            secrets: Arc::new(secrets),
            secret_scope: SecretScope::default(),
            openapi: ArcSwap::from_pointee(OnceLock::new()),
            events: Emitter::default(),
            services: Vec::new(),
            registrations: Registrations::default(),
            node_local: json!([]),
        }
    }

    /// Records what this process keeps on its node only, which `/readyz` lists.
    pub fn with_node_local(mut self, node_local: Value) -> Self {
        self.node_local = node_local;
        self
    }

    pub fn node_local(&self) -> &Value {
        &self.node_local
    }

    /// Holds every tenant's secret references to the operator's scope (`[tenancy.secrets]`)
    /// instead of the default one, which admits only the tenant's own Vault subtree.
    pub fn with_secret_scope(mut self, scope: SecretScope) -> Self {
        self.secret_scope = scope;
        self
    }

    /// Hosts business services beside the providers: served under `/services/{name}/{action}`
    /// and listed in the OpenAPI document. The services are built in: their params schemas
    /// compile on first use ([`ActionValidators::deferred`]), as their tests compile them.
    pub fn with_services(mut self, services: Vec<Arc<dyn Service>>) -> Result<Self, SchemaError> {
        for service in services {
            let d = service.descriptor();
            let mut params = HashMap::new();
            for action in &d.actions {
                let id = format!("services/{}", d.name);
                params.insert(action.name.clone(), ActionValidators::deferred(&id, action));
            }
            self.services.push(HostedService { service, params });
        }
        self.refresh_openapi();
        Ok(self)
    }

    /// Drops the OpenAPI document: the next request for it builds it from the providers
    /// registered then.
    pub(crate) fn refresh_openapi(&self) {
        self.openapi.store(Arc::new(OnceLock::new()));
    }

    pub fn service_descriptors(&self) -> Vec<ServiceDescriptor> {
        self.services
            .iter()
            .map(|h| h.service.descriptor().clone())
            .collect()
    }

    /// Runs one action of a business service for `ctx`'s tenant: params checked against the
    /// action's schema, then the service with a provider client bound to that tenant.
    pub async fn invoke_service(
        self: &Arc<Self>,
        ctx: &CallContext,
        name: &str,
        action: &str,
        params: Value,
    ) -> Result<Value, Problem> {
        let hosted = self
            .services
            .iter()
            .find(|h| h.service.descriptor().name == name)
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::RouteNotFound,
                    format!("no service {name:?}; the OpenAPI document lists them"),
                )
            })?;
        let validators = hosted.params.get(action).ok_or_else(|| {
            Problem::new(
                ErrorCode::ActionNotFound,
                format!("service {name} has no action {action:?}"),
            )
        })?;
        // `5.0` where an integer is asked for is an integer (the schema says so), read as `5`.
        let params = validators.params.with_integers(params);
        let errors = validators.params.check(&params);
        if !errors.is_empty() {
            return Err(Problem::new(
                ErrorCode::ParamsInvalid,
                format!("params for services/{name}/{action} are invalid"),
            )
            .with_errors(errors));
        }
        // The caller is the subject the gateway verified (or the in-process client that
        // called), never a value of the request's params.
        let client =
            RuntimeClient::new(self.clone(), ctx.tenant.clone(), format!("service:{name}"))
                .serving(ctx.subject.clone());
        hosted.service.invoke(&client, action, params).await
    }

    /// Publishes every tenant's provider lifecycle events to that tenant's `bus` provider
    /// (`bus/embedded`, `bus/kafka`) from now on. Call once, from inside a tokio runtime.
    pub fn publish_lifecycle_events(self: &Arc<Self>, bus: &str) -> Result<(), Problem> {
        let (domain, name) = bus.split_once('/').unwrap_or((bus, ""));
        self.find(domain, name)?;
        if domain != "bus" {
            return Err(Problem::new(
                ErrorCode::ConfigInvalid,
                format!("lifecycle events need a bus provider, not {bus}"),
            ));
        }
        let Some(mut rx) = self.events.enable() else {
            return Err(Problem::new(
                ErrorCode::ConfigInvalid,
                "lifecycle events are already being published",
            ));
        };
        let runtime = Arc::downgrade(self);
        let bus = (domain.to_owned(), name.to_owned());
        tokio::spawn(async move {
            while let Some(emitted) = rx.recv().await {
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                // A provider removed since the event was emitted has no topic to name.
                let Some(registered) = runtime.registered(emitted.index) else {
                    continue;
                };
                let d = registered.descriptor();
                let event = cloud_event(&d.domain, &d.name, &emitted);
                let message = json!({
                    "key": event.key, "headers": event.headers(&emitted.tenant), "payload": event.data,
                });
                let ctx = CallContext {
                    tenant: emitted.tenant.clone(),
                    request_id: event.id.clone(),
                    subject: Some("switchyard:runtime".into()),
                    service: None,
                };
                let params = json!({"topic": event.topic, "messages": [message]});
                if let Err(problem) = runtime
                    .invoke(&ctx, &bus.0, &bus.1, "publish", params, None)
                    .await
                {
                    tracing::warn!(tenant = %emitted.tenant, topic = %event.topic, code = %problem.code, "lifecycle event not published");
                }
            }
        });
        Ok(())
    }

    fn emit(&self, tenant: &TenantId, index: usize, event: LifecycleEvent, data: Value) {
        self.events.emit(tenant, index, event, data);
    }

    /// The providers registered now; a registration while the answer is held is not in it.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.load_full()
    }

    /// The provider at `index`, or `None` once an operator removed it.
    pub(crate) fn registered(&self, index: usize) -> Option<Arc<Registered>> {
        self.registry.load().get(index).cloned()
    }

    /// [`Runtime::registered`] for a request that found the index a moment ago: a removal in
    /// between answers as if it had come first.
    fn registered_or_gone(&self, index: usize) -> Result<Arc<Registered>, Problem> {
        self.registered(index).ok_or_else(|| {
            Problem::new(
                ErrorCode::ProviderNotFound,
                "the provider was removed; GET /providers lists them",
            )
        })
    }

    pub fn store(&self) -> &PlatformStore {
        &self.store
    }

    /// The OpenAPI document for the registered providers, serialized once per registry.
    pub fn openapi(&self) -> Bytes {
        self.openapi
            .load_full()
            .get_or_init(|| {
                let document = openapi::document(
                    &self.registry.load().descriptors(),
                    &self.service_descriptors(),
                );
                Bytes::from(document.to_string())
            })
            .clone()
    }

    fn find(&self, domain: &str, name: &str) -> Result<usize, Problem> {
        self.registry.load().index_of(domain, name).ok_or_else(|| {
            Problem::new(
                ErrorCode::ProviderNotFound,
                format!("no provider {domain}/{name}; GET /providers lists them"),
            )
        })
    }

    /// [`Runtime::find`] with the provider itself, held for the rest of the request.
    fn find_registered(
        &self,
        domain: &str,
        name: &str,
    ) -> Result<(usize, Arc<Registered>), Problem> {
        let index = self.find(domain, name)?;
        Ok((index, self.registered_or_gone(index)?))
    }

    fn slot(&self, tenant: &TenantId, index: usize) -> Arc<Slot> {
        let key = (tenant.clone(), index);
        if let Some(slot) = self
            .slots
            .read()
            .ok()
            .and_then(|slots| slots.get(&key).cloned())
        {
            return slot;
        }
        let events = self.events.clone();
        let tenant_of_slot = tenant.clone();
        // A slot for a provider removed a moment ago is never started (`start_instance`
        // finds no factory); its metric labels may stay empty.
        let (domain, name) = self
            .registered(index)
            .map(|r| (r.descriptor().domain.clone(), r.descriptor().name.clone()))
            .unwrap_or_default();
        metrics::circuit_state(tenant.as_str(), &domain, &name, false);
        let circuit: CircuitObserver = Arc::new(move |state| {
            let open = state == CircuitState::Open;
            metrics::circuit_state(tenant_of_slot.as_str(), &domain, &name, open);
            let event = if open {
                LifecycleEvent::CircuitOpened
            } else {
                LifecycleEvent::CircuitClosed
            };
            events.emit(&tenant_of_slot, index, event, json!({}));
        });
        match self.slots.write() {
            Ok(mut slots) => slots
                .entry(key)
                .or_insert_with(|| Arc::new(Slot::new(&self.resilience, Some(circuit))))
                .clone(),
            // A poisoned map only means another thread panicked mid-insert; a fresh slot is safe.
            Err(_) => Arc::new(Slot::new(&self.resilience, Some(circuit))),
        }
    }

    /// The tenant-bound client an in-process engine's instance gets
    /// ([`StartContext::client`]); plugins and remote providers get none.
    fn client_for(
        self: &Arc<Self>,
        tenant: &TenantId,
        registered: &Registered,
    ) -> Option<Arc<dyn ProviderClient>> {
        registered.factory.in_process().then(|| {
            Arc::new(RuntimeClient::for_provider(
                self,
                tenant.clone(),
                &registered.id(),
            )) as Arc<dyn ProviderClient>
        })
    }

    pub(crate) async fn start_instance(
        self: &Arc<Self>,
        tenant: &TenantId,
        index: usize,
    ) -> Result<(Arc<dyn switchyard_spi::Provider>, i64), String> {
        let registered = self
            .registered(index)
            .ok_or("the provider was removed by the platform operator")?;
        let d = registered.descriptor();
        let (config, version) = self
            .store
            .current_config(tenant, &d.domain, &d.name)
            .await
            .map_err(|e| e.to_string())?
            .map(|c| (c.values, c.version))
            .unwrap_or_else(|| (json!({}), 0));
        let (config, fingerprint) = self
            .secrets
            .resolve_config_as(Owner::Tenant(tenant, &self.secret_scope), &config)
            .await
            .map_err(|e| e.to_string())?;
        let provider = registered
            .factory
            .start(StartContext {
                tenant: tenant.clone(),
                config,
                client: self.client_for(tenant, &registered),
            })
            .await
            .map_err(|e| e.detail)?;
        self.slot(tenant, index).remember_secrets(fingerprint);
        self.emit(tenant, index, LifecycleEvent::Started, json!({}));
        Ok((provider, version))
    }

    async fn lease(self: &Arc<Self>, tenant: &TenantId, index: usize) -> Result<Lease, Problem> {
        let slot = self.slot(tenant, index);
        let id = || {
            self.registered(index)
                .map(|r| r.id())
                .unwrap_or_else(|| "the provider".into())
        };
        slot.ensure_running(|| self.start_instance(tenant, index))
            .await
            .map_err(|why| match why {
                NotRunning::HeldStopped => Problem::new(
                    ErrorCode::Conflict,
                    format!(
                        "{} is stopped by an admin of this tenant; POST /providers/{}/start to run it again",
                        id(),
                        id()
                    ),
                ),
                NotRunning::StartFailed(reason) => Problem::new(
                    ErrorCode::ProviderUnavailable,
                    format!("{} is not running: {reason}", id()),
                ),
            })
    }

    /// Starts the slot if it may run, and reports its status either way.
    async fn status_of(
        self: &Arc<Self>,
        tenant: &TenantId,
        index: usize,
    ) -> (Lifecycle, Option<String>) {
        let slot = self.slot(tenant, index);
        let _ = self.lease(tenant, index).await;
        let status = slot.status();
        (status.lifecycle, status.reason)
    }

    /// `GET /providers`: every provider with its status for this tenant. Listing starts the
    /// tenant's instances (cheap, and it makes the status shown a real one).
    pub async fn catalog(self: &Arc<Self>, tenant: &TenantId) -> Value {
        // The catalog still answers when the certifications cannot be read; it just shows none.
        let certifications = self.store.certifications().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "certifications could not be read");
            Vec::new()
        });
        let mut providers = Vec::new();
        let registry = self.registry();
        for (index, registered) in registry.iter() {
            let d = registered.descriptor();
            let (status, reason) = self.status_of(tenant, index).await;
            let mut entry = json!({
                "domain": d.domain, "name": d.name, "version": d.version, "summary": d.summary,
                "status": status, "capabilities": d.capabilities,
                "actions": d.actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            });
            if let Some(c) = certifications
                .iter()
                .find(|c| c.domain == d.domain && c.name == d.name && c.version == d.version)
            {
                entry["certification"] =
                    json!({"level": c.certification, "certified_at": c.certified_at});
            }
            add_reason(&mut entry, reason);
            providers.push(entry);
        }
        json!({ "providers": providers })
    }

    pub async fn describe(
        self: &Arc<Self>,
        tenant: &TenantId,
        domain: &str,
        name: &str,
    ) -> Result<Value, Problem> {
        let (index, registered) = self.find_registered(domain, name)?;
        let d = registered.descriptor();
        let (status, reason) = self.status_of(tenant, index).await;
        let config = self
            .store
            .current_config(tenant, domain, name)
            .await
            .map_err(store_problem)?;
        let mut body = json!({
            "domain": d.domain, "name": d.name, "version": d.version, "summary": d.summary,
            "status": status, "capabilities": d.capabilities, "config_schema": d.config_schema,
            "actions": d.actions,
            // References as written; a literal credential stored before they were refused is masked.
            "config": config.map(|c| json!({"version": c.version, "values": masked(&d.config_schema, &c.values), "updated_at": c.updated_at})),
        });
        add_reason(&mut body, reason);
        Ok(body)
    }

    pub async fn health(
        self: &Arc<Self>,
        tenant: &TenantId,
        domain: &str,
        name: &str,
    ) -> Result<Value, Problem> {
        let (index, registered) = self.find_registered(domain, name)?;
        let provider = registered.id();
        let started = Instant::now();
        let leased = self.lease(tenant, index).await;
        let status = self.slot(tenant, index).status();
        let health = match leased {
            Ok(lease) => {
                match tokio::time::timeout(self.resilience.call_timeout, lease.provider.health())
                    .await
                {
                    Ok(health) => serde_json::to_value(health).unwrap_or_default(),
                    Err(_) => {
                        json!({"status": "down", "dependencies": [{"name": "health", "status": "down", "detail": "health check timed out"}]})
                    }
                }
            }
            Err(_) => json!({"status": "down", "dependencies": []}),
        };
        let mut body = json!({
            "provider": provider,
            "status": health["status"],
            "lifecycle": status.lifecycle,
            "circuit": self.slot(tenant, index).resilience.circuit(),
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
            "dependencies": health["dependencies"],
        });
        add_reason(&mut body, status.reason);
        let now = health["status"].as_str().unwrap_or("down");
        if let Some(previous) = self.slot(tenant, index).note_health(now) {
            self.emit(
                tenant,
                index,
                LifecycleEvent::HealthChanged,
                json!({"previous": previous, "status": now}),
            );
        }
        Ok(body)
    }

    pub async fn start(
        self: &Arc<Self>,
        tenant: &TenantId,
        domain: &str,
        name: &str,
    ) -> Result<Value, Problem> {
        let index = self.find(domain, name)?;
        self.slot(tenant, index).release_hold();
        self.lifecycle_answer(tenant, index).await
    }

    pub async fn stop(
        self: &Arc<Self>,
        tenant: &TenantId,
        domain: &str,
        name: &str,
    ) -> Result<Value, Problem> {
        let index = self.find(domain, name)?;
        self.slot(tenant, index).stop().await;
        self.emit(tenant, index, LifecycleEvent::Stopped, json!({}));
        self.lifecycle_answer(tenant, index).await
    }

    async fn lifecycle_answer(
        self: &Arc<Self>,
        tenant: &TenantId,
        index: usize,
    ) -> Result<Value, Problem> {
        let (status, reason) = self.status_of(tenant, index).await;
        let provider = self.registered_or_gone(index)?.id();
        let mut body = json!({"provider": provider, "status": status});
        add_reason(&mut body, reason);
        Ok(body)
    }

    /// Runs one action: params checked against the action's schema, then the call on the
    /// tenant's instance under the call timeout.
    pub async fn invoke(
        self: &Arc<Self>,
        ctx: &CallContext,
        domain: &str,
        name: &str,
        action: &str,
        params: Value,
        payload: Option<Bytes>,
    ) -> Result<Value, Problem> {
        let (index, registered, params) = self.checked(domain, name, action, params)?;
        // For debugging a tenant's calls; the log writer hides secrets and PII fields in it.
        tracing::debug!(target: "switchyard::invoke", tenant = %ctx.tenant, request_id = %ctx.request_id, provider = %registered.id(), action, params = %params, "invoke");
        let lease = self.lease(&ctx.tenant, index).await?;
        let call = Invocation {
            action: action.to_owned(),
            params,
            payload,
        };
        let slot = self.slot(&ctx.tenant, index);
        let what = format!("{}/{action}", registered.id());
        let d = registered.descriptor();
        let measured =
            metrics::ProviderCall::begin(ctx.tenant.as_str(), &d.domain, &d.name, action);
        // The provider span covers retries and the resilience around them; each attempt on
        // the instance (which talks to the backend) is a child span of its own.
        let attempts = slot.resilience.call(&what, || {
            measured.attempt();
            trace::in_span(
                "provider.backend",
                trace::Kind::Client,
                Vec::new,
                lease.provider.invoke(ctx, call.clone()),
            )
        });
        let result = trace::in_span(
            "provider.call",
            trace::Kind::Internal,
            || {
                vec![
                    trace::attr("switchyard.tenant", ctx.tenant.as_str()),
                    trace::attr("switchyard.provider", what.clone()),
                ]
            },
            attempts,
        )
        .await
        .map_err(provider_problem);
        let circuit_open = slot.resilience.circuit() == CircuitState::Open;
        measured.finish(result.as_ref().err().map(|p| p.code.as_str()), circuit_open);
        result
    }

    /// The provider `domain/name` and `params` as its `action` takes them: checked against the
    /// action's params schema, `5.0` read as `5` where an integer is asked for.
    fn checked(
        &self,
        domain: &str,
        name: &str,
        action: &str,
        params: Value,
    ) -> Result<(usize, Arc<Registered>, Value), Problem> {
        let (index, registered) = self.find_registered(domain, name)?;
        let validators = registered.actions.get(action).ok_or_else(|| {
            let known: Vec<&str> = registered
                .descriptor()
                .actions
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            Problem::new(
                ErrorCode::ActionNotFound,
                format!(
                    "{} has no action {action:?}; it has {}",
                    registered.id(),
                    known.join(", ")
                ),
            )
        })?;
        let params = validators.params.with_integers(params);
        let errors = validators.params.check(&params);
        if !errors.is_empty() {
            return Err(Problem::new(
                ErrorCode::ParamsInvalid,
                format!("params for {}/{action} are invalid", registered.id()),
            )
            .with_errors(errors));
        }
        Ok((index, registered, params))
    }

    /// [`Self::invoke`] answered in parts as the provider makes them ([`Provider::stream`]).
    /// Nothing is retried: a stream cannot be replayed to its reader, and a caller that wants
    /// another try (an AI router's fallback) makes it itself. The instance stays leased until
    /// the stream ends or is dropped, so a reconfigure waits for it like for any call.
    ///
    /// [`Provider::stream`]: switchyard_spi::Provider::stream
    pub async fn stream(
        self: &Arc<Self>,
        ctx: &CallContext,
        domain: &str,
        name: &str,
        action: &str,
        params: Value,
    ) -> Result<ValueStream, Problem> {
        use futures_util::StreamExt;
        let (index, registered, params) = self.checked(domain, name, action, params)?;
        let lease = self.lease(&ctx.tenant, index).await?;
        let call = Invocation {
            action: action.to_owned(),
            params,
            payload: None,
        };
        let d = registered.descriptor();
        let measured =
            metrics::ProviderCall::begin(ctx.tenant.as_str(), &d.domain, &d.name, action);
        measured.attempt();
        let opened = lease.provider.stream(ctx, call).await;
        measured.finish(opened.as_ref().err().map(|e| e.code.as_str()), false);
        let items = opened.map_err(provider_problem)?;
        // The lease rides along with the items and is released with the stream.
        Ok(Box::pin(items.map(move |item| {
            let _held = &lease;
            item.map_err(provider_problem)
        })))
    }
}

/// A status body names its reason only when there is one (failed, or stopped by an admin).
fn add_reason(body: &mut Value, reason: Option<String>) {
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
}

fn provider_problem(e: ProviderError) -> Problem {
    Problem::new(e.code, e.detail)
        .with_errors(e.errors)
        .with_retryable(e.retryable)
}

pub(crate) fn store_problem(e: StoreError) -> Problem {
    tracing::error!(error = %e, "platform store failed");
    Problem::new(
        ErrorCode::Internal,
        "the platform store failed; see the server log",
    )
    .with_retryable(true)
}
