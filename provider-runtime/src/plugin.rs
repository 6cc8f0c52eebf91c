//! Provider plugins: engines shipped as shared libraries and loaded with `libloading`
//! through the C ABI of `switchyard-plugin-abi` (docs/adr/0018).
//!
//! - The ABI version is read before anything else; another version is refused with an
//!   error that says which version the library speaks and which one this runtime speaks.
//! - The plugin side catches every panic (`export_plugin!`), and each call runs on a blocking
//!   thread, so a failing plugin answers `provider_failed` and the async runtime serving every
//!   other provider is never stalled or unwound.
//! - The library is copied to a private file before `dlopen`: replacing the original (a new
//!   build) never pulls the code from under running calls, and the runtime notices the new
//!   file on the next instance start — a new tenant, a reconfigure, an admin start — and loads
//!   it (hot swap). Instances keep the library they were started with; a library is unloaded
//!   (`dlclose`) once the factory moved on and its last instance stopped.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use base64::Engine as _;
use libloading::Library;
use serde_json::{Value, json};
use switchyard_plugin_abi::{ABI_VERSION, Buffer, ENTRY_SYMBOL, PluginV1, VERSION_SYMBOL};
use switchyard_spi::{
    CallContext, DependencyHealth, Health, HealthStatus, Invocation, Provider, ProviderDescriptor,
    ProviderError, ProviderFactory, StartContext,
};

use crate::foreign;

/// Why a library was not loaded; names the file and never guesses.
#[derive(Debug, thiserror::Error)]
#[error("plugin {path}: {message}")]
pub struct PluginLoadError {
    pub path: String,
    pub message: String,
}

/// One loaded library: its function table and the descriptor it gave.
pub struct PluginLibrary {
    table: *const PluginV1,
    descriptor: ProviderDescriptor,
    /// Keeps the code mapped while the table is used; dropped last (`dlclose`).
    _library: Library,
}

// SAFETY: the table is immutable static data of the library, which stays loaded as long as
// this value lives; the ABI requires its functions to be callable from any thread.
unsafe impl Send for PluginLibrary {}
// SAFETY: as above; nothing here is mutated after load.
unsafe impl Sync for PluginLibrary {}

impl PluginLibrary {
    /// Loads `path` (through a private copy), checks its ABI version and reads its descriptor.
    pub fn load(path: &Path) -> Result<PluginLibrary, PluginLoadError> {
        let fail = |message: String| PluginLoadError {
            path: path.display().to_string(),
            message,
        };
        let copy = private_copy(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        // SAFETY: loading runs the library's initialisers; a plugin is code the operator
        // chose to run, like the binary itself.
        let library = unsafe { Library::new(&copy) };
        // The mapping stays valid after unlink; the copy is not needed once loaded.
        let _ = std::fs::remove_file(&copy);
        let library = library.map_err(|e| fail(format!("cannot load it: {e}")))?;
        // SAFETY: the symbol's type is fixed by every ABI version: `extern "C" fn() -> u32`.
        let version = unsafe {
            library
                .get::<unsafe extern "C" fn() -> u32>(VERSION_SYMBOL)
                .map_err(|_| {
                    fail("it exports no switchyard_plugin_abi_version: not a Switchyard provider plugin".into())
                })?()
        };
        if version != ABI_VERSION {
            return Err(fail(format!(
                "it was built for plugin ABI version {version}, but this runtime speaks version \
                 {ABI_VERSION}; rebuild it against the switchyard-plugin-abi of this release"
            )));
        }
        // SAFETY: ABI version 1 defines this symbol as `extern "C" fn() -> *const PluginV1`.
        let table = unsafe {
            library
                .get::<unsafe extern "C" fn() -> *const PluginV1>(ENTRY_SYMBOL)
                .map_err(|_| fail("it exports no switchyard_plugin_v1 table".into()))?()
        };
        if table.is_null() {
            return Err(fail("its function table is null".into()));
        }
        // SAFETY: checked non-null; the library stays loaded for the call. `descriptor`
        // takes no arguments.
        let descriptor = answer(unsafe { &*table }, "the plugin", |t| unsafe {
            (t.descriptor)()
        })
        .map_err(|e| fail(format!("its descriptor call failed: {}", e.detail)))?;
        Ok(PluginLibrary {
            table,
            descriptor: foreign::descriptor(&descriptor).map_err(|e| fail(e.to_string()))?,
            _library: library,
        })
    }

    pub fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn table(&self) -> &PluginV1 {
        // SAFETY: checked non-null at load; valid while the library is loaded (while `self` lives).
        unsafe { &*self.table }
    }

    fn answer(&self, call: impl FnOnce(&PluginV1) -> Buffer) -> Result<Value, ProviderError> {
        let who = format!("plugin {}/{}", self.descriptor.domain, self.descriptor.name);
        answer(self.table(), &who, call)
    }
}

/// Calls into `table` and reads its JSON answer, freeing the buffer with the plugin's own
/// `free`.
fn answer(
    table: &PluginV1,
    who: &str,
    call: impl FnOnce(&PluginV1) -> Buffer,
) -> Result<Value, ProviderError> {
    let buffer = call(table);
    // SAFETY: a buffer the table just returned, read before it is freed.
    let answer = serde_json::from_slice::<Value>(unsafe { buffer.as_slice() });
    // SAFETY: handed back to the library that made it, once.
    unsafe { (table.free)(buffer) };
    let answer =
        answer.map_err(|e| foreign::failed(format!("{who} answered invalid JSON: {e}")))?;
    match (answer.get("ok"), answer.get("error")) {
        (Some(ok), None) => Ok(ok.clone()),
        (None, Some(error)) => Err(foreign::error(error, who)),
        _ => Err(foreign::failed(format!(
            "{who} answered neither {{\"ok\"}} nor {{\"error\"}}"
        ))),
    }
}

/// Copies the library to a file of its own, so the original can be replaced at any time.
fn private_copy(path: &Path) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join("switchyard-plugins");
    std::fs::create_dir_all(&dir)?;
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin.so".into());
    let copy = dir.join(format!(
        "{}-{}-{file}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::copy(path, &copy)?;
    Ok(copy)
}

/// The registered engine: the library currently in use, and where it comes from.
pub struct PluginFactory {
    source: PathBuf,
    /// The descriptor of the first load: the registry compiled its schemas once, so a new
    /// library must keep them (only its version may change).
    descriptor: ProviderDescriptor,
    current: ArcSwap<PluginLibrary>,
    /// Modification time of `source` when `current` was loaded.
    loaded_at: Mutex<Option<SystemTime>>,
}

impl PluginFactory {
    pub fn load(source: &Path) -> Result<PluginFactory, PluginLoadError> {
        let modified = modified(source);
        let library = PluginLibrary::load(source)?;
        Ok(PluginFactory {
            source: source.to_owned(),
            descriptor: library.descriptor().clone(),
            current: ArcSwap::from_pointee(library),
            loaded_at: Mutex::new(modified),
        })
    }

    /// The library to start new instances with: the current one, or the file's new build
    /// when it changed and keeps the contract. A new build that fails to load or changes the
    /// contract is logged and the current library stays.
    fn library(&self) -> Arc<PluginLibrary> {
        let now = modified(&self.source);
        let Ok(mut loaded_at) = self.loaded_at.lock() else {
            return self.current.load_full();
        };
        if now.is_none() || now == *loaded_at {
            return self.current.load_full();
        }
        let id = format!("{}/{}", self.descriptor.domain, self.descriptor.name);
        match PluginLibrary::load(&self.source) {
            Ok(next) if same_contract(next.descriptor(), &self.descriptor) => {
                tracing::info!(provider = %id, version = %next.descriptor().version, "plugin library swapped");
                self.current.store(Arc::new(next));
            }
            Ok(next) => {
                tracing::warn!(provider = %id, found = %format!("{}/{}", next.descriptor().domain, next.descriptor().name), "new plugin build changes the contract; restart the runtime to take it; the running library stays");
            }
            Err(e) => {
                tracing::warn!(provider = %id, error = %e, "new plugin build refused; the running library stays")
            }
        }
        *loaded_at = now;
        self.current.load_full()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A new build may change its version and summary; anything the registry compiled or a caller
/// relies on must stay.
fn same_contract(next: &ProviderDescriptor, first: &ProviderDescriptor) -> bool {
    next.domain == first.domain
        && next.name == first.name
        && next.actions == first.actions
        && next.config_schema == first.config_schema
        && next.capabilities == first.capabilities
}

#[async_trait]
impl ProviderFactory for PluginFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    /// No tenant client: a client cannot cross the C ABI, and the library is not ours to trust with one.
    fn in_process(&self) -> bool {
        false
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let library = self.library();
        let request = json!({"tenant": ctx.tenant.as_str(), "config": ctx.config}).to_string();
        let started = blocking(library.clone(), move |library| {
            let mut instance: *mut c_void = std::ptr::null_mut();
            library
                .answer(|t| {
                    // SAFETY: the request bytes and the out slot live for the call.
                    unsafe { (t.start)(request.as_ptr(), request.len(), &mut instance) }
                })
                .map(|_| Handle(instance))
        })
        .await?;
        if started.0.is_null() {
            return Err(foreign::failed(
                "the plugin reported a start but gave no instance",
            ));
        }
        Ok(Arc::new(PluginProvider {
            library,
            instance: started,
        }))
    }
}

/// An instance made by the plugin's `start`.
struct Handle(*mut c_void);

// SAFETY: the ABI requires instances to be `Send + Sync` (the plugin-side traits demand it).
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

/// One tenant's instance inside a plugin.
struct PluginProvider {
    library: Arc<PluginLibrary>,
    instance: Handle,
}

impl PluginProvider {
    fn pointer(&self) -> usize {
        self.instance.0 as usize
    }
}

/// Runs a plugin call on a blocking thread: a slow or stuck plugin holds that thread, never an
/// async worker that serves other providers.
async fn blocking<T: Send + 'static>(
    library: Arc<PluginLibrary>,
    f: impl FnOnce(&PluginLibrary) -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(move || f(&library))
        .await
        .map_err(|e| foreign::failed(format!("the plugin call did not complete: {e}")))?
}

#[async_trait]
impl Provider for PluginProvider {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let mut request = json!({
            "tenant": ctx.tenant.as_str(), "request_id": ctx.request_id, "subject": ctx.subject,
            "action": call.action, "params": call.params,
        });
        if let Some(payload) = &call.payload {
            request["payload_base64"] =
                json!(base64::engine::general_purpose::STANDARD.encode(payload));
        }
        let request = request.to_string();
        let instance = self.pointer();
        blocking(self.library.clone(), move |library| {
            library.answer(|t| {
                // SAFETY: a live instance of this library (stopped only on drop) and request
                // bytes that live for the call.
                unsafe { (t.invoke)(instance as *const c_void, request.as_ptr(), request.len()) }
            })
        })
        .await
    }

    async fn health(&self) -> Health {
        let instance = self.pointer();
        let answered = blocking(self.library.clone(), move |library| {
            // SAFETY: a live instance of this library.
            library.answer(|t| unsafe { (t.health)(instance as *const c_void) })
        })
        .await;
        let d = self.library.descriptor();
        let plugin = DependencyHealth {
            name: "plugin".into(),
            status: HealthStatus::Up,
            detail: Some(format!(
                "{}/{} {} (plugin ABI {ABI_VERSION})",
                d.domain, d.name, d.version
            )),
        };
        match answered.map(serde_json::from_value::<Health>) {
            Ok(Ok(mut health)) => {
                health.dependencies.insert(0, plugin);
                health
            }
            Ok(Err(e)) => Health::from_dependencies(vec![DependencyHealth {
                status: HealthStatus::Down,
                detail: Some(format!("the plugin answered an invalid health: {e}")),
                ..plugin
            }]),
            Err(e) => Health::from_dependencies(vec![DependencyHealth {
                status: HealthStatus::Down,
                detail: Some(e.detail),
                ..plugin
            }]),
        }
    }
}

impl Drop for PluginProvider {
    /// Releases the instance inside the plugin; the library itself is unloaded when its last
    /// holder (the factory or an instance) goes.
    fn drop(&mut self) {
        // SAFETY: made by this library's `start`, released only here, once.
        unsafe { (self.library.table().stop)(self.instance.0) };
    }
}

/// Libraries named by `SWITCHYARD_PLUGINS` (paths separated like `PATH`), in order.
pub fn configured() -> Vec<PathBuf> {
    std::env::var_os("SWITCHYARD_PLUGINS")
        .map(|paths| {
            std::env::split_paths(&paths)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}
