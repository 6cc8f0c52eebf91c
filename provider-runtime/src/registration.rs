//! Remote providers registered while serving: `POST /providers/register` with a manifest (the
//! same JSON `SWITCHYARD_REMOTE_PROVIDERS` names at start-up, see [`crate::remote`]),
//! `DELETE /providers/register/{domain}/{name}`, `GET /providers/register`. The platform
//! operator's routes, never a tenant's ([`crate::http::operator`], docs/adr/0022).
//!
//! A manifest is listed only after its domain's `core` conformance level passed against the
//! service it names, so a tenant never finds a provider in the catalog that breaks the
//! contract. Registrations are kept in the platform store: [`Runtime::restore_registrations`]
//! registers them again when the process starts (without running the checks again: the
//! service may well start after the runtime, and health polling says when it is down). Changes are ordered by one lock (a registration runs the checks while holding
//! it, so two operators registering the same name cannot both win); requests never take it:
//! they read the registry the runtime swaps whole once a change is decided.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use switchyard_conformance::Subject;
use switchyard_conformance::{Level, Report};
use switchyard_contracts::{ErrorCode, FieldError, Problem, TenantId};

use crate::lifecycle::Slot;
use crate::registry::{Origin, Registered};
use crate::remote::RemoteFactory;
use crate::runtime::{Runtime, store_problem};
use crate::store::StoreError;

/// The providers an operator registered, by `domain/name`, with the lock that orders changes.
#[derive(Default)]
pub(crate) struct Registrations {
    changes: tokio::sync::Mutex<()>,
    listed: RwLock<BTreeMap<String, Registration>>,
}

/// One registration as `GET /providers/register` shows it.
#[derive(Clone)]
struct Registration {
    /// As the operator sent it: its token is a `secret://` reference, never the secret.
    manifest: Value,
    certification: String,
    registered_at: String,
}

impl Registration {
    fn to_json(&self, provider: &str) -> Value {
        json!({
            "provider": provider,
            "version": self.manifest.get("version"),
            "certification": self.certification,
            "registered_at": self.registered_at,
            "manifest": self.manifest,
        })
    }
}

impl Runtime {
    /// Registers the remote provider `manifest` describes, once its domain's core conformance
    /// checks pass against it; answers the registration. Refused: a manifest the runtime
    /// cannot use (`manifest_invalid`), a `(domain, name)` already registered (`conflict`), a
    /// provider failing a core check (`conformance_failed`, each failing check named).
    pub async fn register_remote(&self, manifest: Value) -> Result<Value, Problem> {
        let factory = RemoteFactory::from_manifest(&manifest, self.secrets.clone())
            .map_err(|e| Problem::new(ErrorCode::ManifestInvalid, e.to_string()))?;
        let registered = Registered::compile(Arc::new(factory), Origin::Operator)
            .map_err(|e| Problem::new(ErrorCode::ManifestInvalid, e.to_string()))?;
        let id = registered.id();
        let domain = registered.descriptor().domain.clone();
        let core: Vec<_> = switchyard_conformance::suite(&domain)
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::ManifestInvalid,
                    format!(
                        "the {domain} domain has no conformance suite, so {id} cannot be certified; \
                         suites exist for: {}",
                        switchyard_conformance::DOMAINS.join(", ")
                    ),
                )
            })?
            .into_iter()
            .filter(|check| check.level == Level::Core)
            .collect();
        let _change = self.registrations.changes.lock().await;
        if self
            .registry()
            .index_of(&domain, &registered.descriptor().name)
            .is_some()
        {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!("{id} is already registered; DELETE /providers/register/{id} first"),
            ));
        }
        let factory = registered.factory.clone();
        let report = switchyard_conformance::run(|| Subject::new(factory.clone()), core).await;
        if !report.levels.contains(&Level::Core.label()) {
            return Err(refused(&id, &report));
        }
        let name = registered.descriptor().name.clone();
        let registered_at = self
            .store
            .save_registration(&domain, &name, &manifest.to_string(), &report.certification)
            .await
            .map_err(store_problem)?;
        let registration = Registration {
            manifest,
            certification: report.certification.clone(),
            registered_at,
        };
        self.record(&registered, &report).await;
        let mut next = (*self.registry()).clone();
        next.add(registered)
            .map_err(|e| Problem::new(ErrorCode::Conflict, e.to_string()))?;
        self.registry.store(Arc::new(next));
        self.refresh_openapi();
        let answer = registration.to_json(&id);
        self.listed().insert(id.clone(), registration);
        tracing::info!(provider = %id, certification = %report.certification, "remote provider registered");
        Ok(answer)
    }

    /// Unlists a provider an operator registered and stops every tenant's instance of it
    /// (each drained first, as an admin stop drains). A provider of the process's own
    /// configuration is refused with `conflict`: only a restart without it removes it.
    pub async fn unregister(&self, domain: &str, name: &str) -> Result<Value, Problem> {
        let id = format!("{domain}/{name}");
        let _change = self.registrations.changes.lock().await;
        let registry = self.registry();
        let Some(index) = registry.index_of(domain, name) else {
            // A stored registration whose manifest no longer loads is not listed; removing it
            // is still the operator's way to be rid of it.
            if self
                .store
                .delete_registration(domain, name)
                .await
                .map_err(store_problem)?
            {
                self.listed().remove(&id);
                return Ok(json!({"provider": id, "removed": true, "instances_stopped": 0}));
            }
            return Err(Problem::new(
                ErrorCode::ProviderNotFound,
                format!("no provider {id}; GET /providers/register lists the registered ones"),
            ));
        };
        if registry.get(index).map(|r| r.origin) != Some(Origin::Operator) {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!(
                    "{id} is part of this process's configuration (built in, or named at start-up); \
                     only providers registered with POST /providers/register can be removed"
                ),
            ));
        }
        self.store
            .delete_registration(domain, name)
            .await
            .map_err(store_problem)?;
        let mut next = (*registry).clone();
        next.remove(index);
        self.registry.store(Arc::new(next));
        self.refresh_openapi();
        let slots = self.take_slots(index);
        let stopped = slots.len();
        for slot in slots {
            slot.stop().await;
        }
        self.listed().remove(&id);
        tracing::info!(provider = %id, stopped, "remote provider removed");
        Ok(json!({"provider": id, "removed": true, "instances_stopped": stopped}))
    }

    /// Registers again what operators registered before this process started, and answers
    /// how many. A stored manifest the runtime can no longer use (a name now built in, a
    /// setting this build refuses) is skipped with an error in the log, so one bad row never
    /// stops the platform; `DELETE` removes it.
    pub async fn restore_registrations(&self) -> Result<usize, StoreError> {
        let stored = self.store.registrations().await?;
        let _change = self.registrations.changes.lock().await;
        let mut next = (*self.registry()).clone();
        let mut restored = 0;
        for row in stored {
            let id = format!("{}/{}", row.domain, row.name);
            let registered = serde_json::from_str::<Value>(&row.manifest)
                .map_err(|e| e.to_string())
                .and_then(|manifest| {
                    let factory = RemoteFactory::from_manifest(&manifest, self.secrets.clone())
                        .map_err(|e| e.to_string())?;
                    let registered = Registered::compile(Arc::new(factory), Origin::Operator)
                        .map_err(|e| e.to_string())?;
                    next.add(registered).map_err(|e| e.to_string())?;
                    Ok(manifest)
                });
            match registered {
                Ok(manifest) => {
                    let registration = Registration {
                        manifest,
                        certification: row.certification,
                        registered_at: row.registered_at,
                    };
                    self.listed().insert(id, registration);
                    restored += 1;
                }
                Err(why) => {
                    tracing::error!(provider = %id, error = %why, "a registered remote provider could not be registered again; DELETE /providers/register/{id} removes it");
                }
            }
        }
        self.registry.store(Arc::new(next));
        self.refresh_openapi();
        Ok(restored)
    }

    /// `GET /providers/register`: every provider an operator registered.
    pub fn registrations(&self) -> Value {
        let listed = self.listed();
        let registrations: Vec<Value> = listed
            .iter()
            .map(|(id, registration)| registration.to_json(id))
            .collect();
        json!({ "registrations": registrations })
    }

    /// `GET /providers/register/{domain}/{name}`.
    pub fn registration(&self, domain: &str, name: &str) -> Result<Value, Problem> {
        let id = format!("{domain}/{name}");
        self.listed()
            .get(&id)
            .map(|registration| registration.to_json(&id))
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::ProviderNotFound,
                    format!("{id} is not registered; GET /providers/register lists them"),
                )
            })
    }

    /// The certification shows in the catalog like one `switchyard conformance` recorded; a
    /// store that cannot write it costs the catalog that line, not the registration.
    async fn record(&self, registered: &Registered, report: &Report) {
        let d = registered.descriptor();
        let whole = serde_json::to_string(report).unwrap_or_default();
        if let Err(e) = self
            .store
            .record_certification(
                &d.domain,
                &d.name,
                &d.version,
                &report.certification,
                &whole,
            )
            .await
        {
            tracing::warn!(provider = %registered.id(), error = %e, "certification not recorded");
        }
    }

    /// Removes every tenant's slot of the provider at `index` from the map, so no later
    /// request finds one.
    fn take_slots(&self, index: usize) -> Vec<Arc<Slot>> {
        let Ok(mut slots) = self.slots.write() else {
            return Vec::new();
        };
        let keys: Vec<(TenantId, usize)> =
            slots.keys().filter(|(_, i)| *i == index).cloned().collect();
        keys.iter().filter_map(|key| slots.remove(key)).collect()
    }

    fn listed(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Registration>> {
        // A poisoned map only means a thread panicked mid-insert; the map itself is whole.
        self.registrations
            .listed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `conformance_failed`, naming each failing core check and why it failed.
fn refused(id: &str, report: &Report) -> Problem {
    let failing: Vec<FieldError> = report
        .checks
        .iter()
        .filter(|check| !check.passed && !check.skipped)
        .map(|check| FieldError {
            pointer: format!("/checks/{}", check.name),
            detail: check.detail.clone().unwrap_or_default(),
        })
        .collect();
    Problem::new(
        ErrorCode::ConformanceFailed,
        format!(
            "{id} failed {} of the {} core conformance checks of its domain; it was not registered",
            failing.len(),
            report.checks.len()
        ),
    )
    .with_errors(failing)
}
