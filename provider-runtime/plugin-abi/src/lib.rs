//! The plugin ABI: how the runtime and a provider library (`.so`) talk across `dlopen`.
//!
//! Rust has no stable ABI, so the boundary is plain C: a library exports two symbols,
//! - [`VERSION_SYMBOL`] → `extern "C" fn() -> u32`, the [`ABI_VERSION`] it was built for. It is
//!   read first and never changes shape, so a runtime can refuse a library of another ABI
//!   with a clear error before touching anything else;
//! - [`ENTRY_SYMBOL`] → `extern "C" fn() -> *const PluginV1`, the function table.
//!
//! Everything that crosses is JSON bytes (requests in, [`Buffer`]s out), so the contract's
//! own types (descriptors, params, results, errors) need no `#[repr(C)]` twin. A buffer made
//! by the plugin is given back to the plugin's [`PluginV1::free`]: each side frees only what
//! its own allocator made.
//!
//! Plugin authors do not touch any of this: they implement [`Plugin`] and [`Instance`] and
//! call [`export_plugin!`], which also guarantees that no panic crosses the boundary (a
//! panic becomes a `provider_failed` error). See `docs/write-a-provider.md` and
//! `docs/adr/0018-provider-plugins-and-remote-providers.md`.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Value, json};

/// The ABI this crate speaks. Bumped on any change of [`PluginV1`] or of the JSON messages.
pub const ABI_VERSION: u32 = 1;

/// `extern "C" fn() -> u32`: the ABI version the library was built for.
pub const VERSION_SYMBOL: &[u8] = b"switchyard_plugin_abi_version\0";

/// `extern "C" fn() -> *const PluginV1`: the function table of ABI version 1.
pub const ENTRY_SYMBOL: &[u8] = b"switchyard_plugin_v1\0";

/// Bytes owned by the side that made them; the receiver reads them and hands them back to
/// the maker's `free`.
#[repr(C)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    pub fn from_vec(bytes: Vec<u8>) -> Buffer {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Buffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    fn from_json(value: &Value) -> Buffer {
        Buffer::from_vec(value.to_string().into_bytes())
    }

    /// # Safety
    /// `self` must come from [`Buffer::from_vec`] in this same library, and be used once.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        // SAFETY: the caller guarantees the parts come from a Vec of this allocator.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// # Safety
    /// `self` must be a live buffer (not yet freed).
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: a live buffer points at `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The function table of ABI version 1. Every answer is a JSON [`Buffer`] holding either
/// `{"ok": …}` or `{"error": {"code", "detail", "retryable"?, "errors"?: [{"pointer", "detail"}]}}`.
#[repr(C)]
pub struct PluginV1 {
    /// `{"ok": descriptor}`: `domain`, `name`, `version`, `summary`, `capabilities`,
    /// `config_schema`, and optionally `actions` (a known domain's actions come from the
    /// contract when omitted).
    pub descriptor: unsafe extern "C" fn() -> Buffer,
    /// Request `{"tenant", "config"}`. On `{"ok": null}` `*instance` is the new instance.
    pub start:
        unsafe extern "C" fn(request: *const u8, len: usize, instance: *mut *mut c_void) -> Buffer,
    /// Request `{"tenant", "request_id", "subject", "action", "params"}` → `{"ok": result}`.
    pub invoke:
        unsafe extern "C" fn(instance: *const c_void, request: *const u8, len: usize) -> Buffer,
    /// `{"ok": {"status", "dependencies"}}`.
    pub health: unsafe extern "C" fn(instance: *const c_void) -> Buffer,
    /// Releases an instance; it is never used again.
    pub stop: unsafe extern "C" fn(instance: *mut c_void),
    /// Frees a buffer this table returned.
    pub free: unsafe extern "C" fn(buffer: Buffer),
}

/// An error as a plugin reports it; `code` is one of the contract's stable codes
/// (`contracts/src/problem.rs`), anything else reaches the caller as `provider_failed`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginError {
    pub code: String,
    pub detail: String,
    /// `None`: the code's default.
    pub retryable: Option<bool>,
    /// `(pointer, detail)` per invalid field, pointers into params or config.
    pub errors: Vec<(String, String)>,
}

impl PluginError {
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        PluginError {
            code: code.to_owned(),
            detail: detail.into(),
            retryable: None,
            errors: Vec::new(),
        }
    }

    /// An error about one field, pointed at with a JSON pointer.
    pub fn field(code: &str, pointer: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        PluginError {
            errors: vec![(pointer.to_owned(), detail.clone())],
            ..PluginError::new(code, detail)
        }
    }

    fn to_json(&self) -> Value {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|(pointer, detail)| json!({"pointer": pointer, "detail": detail}))
            .collect();
        let mut error = json!({"code": self.code, "detail": self.detail, "errors": errors});
        if let Some(retryable) = self.retryable {
            error["retryable"] = json!(retryable);
        }
        json!({ "error": error })
    }
}

/// One call, as the runtime hands it over: params already valid against the action's schema.
#[derive(Debug, Clone)]
pub struct Call {
    pub tenant: String,
    pub request_id: String,
    pub action: String,
    pub params: Value,
}

/// The engine: created once when the runtime loads the library; owns engine-wide state so a
/// tenant's reconfigure (a new instance) keeps its data, exactly like an in-tree
/// `ProviderFactory`.
pub trait Plugin: Send + Sync + Sized + 'static {
    type Instance: Instance;

    fn new() -> Self;

    /// The descriptor as JSON (see [`PluginV1::descriptor`]).
    fn descriptor(&self) -> Value;

    /// One tenant's instance; `config` is already valid against the config schema.
    fn start(&self, tenant: &str, config: Value) -> Result<Self::Instance, PluginError>;
}

/// One tenant's instance. It must keep to its tenant: the runtime hands every instance only
/// its own tenant's calls, and the conformance suite checks the plugin isolates shared state.
pub trait Instance: Send + Sync + 'static {
    fn invoke(&self, call: Call) -> Result<Value, PluginError>;

    /// `{"status": "up"|"degraded"|"down", "dependencies": [...]}`.
    fn health(&self) -> Value {
        json!({"status": "up", "dependencies": []})
    }
}

/// Ties an exported table to one [`Plugin`] type; implemented by [`export_plugin!`].
pub trait Exported {
    type P: Plugin;
    fn plugin() -> &'static Self::P;
}

/// Runs `f`, turning a panic into a `provider_failed` answer so it never unwinds into the host.
fn guarded(f: impl FnOnce() -> Value) -> Buffer {
    let answer = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        PluginError::new("provider_failed", format!("the plugin panicked: {message}")).to_json()
    });
    Buffer::from_json(&answer)
}

fn answer(result: Result<Value, PluginError>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(e) => e.to_json(),
    }
}

/// # Safety
/// `ptr` must point at `len` readable bytes for the duration of the call.
unsafe fn request(ptr: *const u8, len: usize) -> Result<Value, PluginError> {
    if ptr.is_null() {
        return Err(PluginError::new("provider_failed", "null request"));
    }
    // SAFETY: guaranteed by the caller (the host passes its own live bytes).
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    serde_json::from_slice(bytes)
        .map_err(|e| PluginError::new("provider_failed", format!("request is not JSON: {e}")))
}

fn text(request: &Value, field: &str) -> String {
    request[field].as_str().unwrap_or_default().to_owned()
}

/// # Safety
/// Called by the host through [`PluginV1::descriptor`].
pub unsafe extern "C" fn descriptor<E: Exported>() -> Buffer {
    guarded(|| json!({ "ok": E::plugin().descriptor() }))
}

/// # Safety
/// Called by the host through [`PluginV1::start`] with a live request and a writable out slot.
pub unsafe extern "C" fn start<E: Exported>(
    ptr: *const u8,
    len: usize,
    instance: *mut *mut c_void,
) -> Buffer {
    guarded(|| {
        // SAFETY: the host's request bytes live for the call.
        let started = unsafe { request(ptr, len) }.and_then(|request| {
            let config = request.get("config").cloned().unwrap_or(json!({}));
            E::plugin().start(&text(&request, "tenant"), config)
        });
        match started {
            Ok(started) if !instance.is_null() => {
                let boxed: Box<<E::P as Plugin>::Instance> = Box::new(started);
                // SAFETY: the host passes a writable slot for the handle.
                unsafe { *instance = Box::into_raw(boxed).cast() };
                json!({ "ok": null })
            }
            Ok(_) => PluginError::new("provider_failed", "null instance slot").to_json(),
            Err(e) => e.to_json(),
        }
    })
}

/// # Safety
/// `instance` must come from [`start`] of the same table and not be stopped yet.
pub unsafe extern "C" fn invoke<E: Exported>(
    instance: *const c_void,
    ptr: *const u8,
    len: usize,
) -> Buffer {
    guarded(|| {
        // SAFETY: the host passes a live handle this table made and its own request bytes.
        let instance = unsafe { &*instance.cast::<<E::P as Plugin>::Instance>() };
        let result = unsafe { request(ptr, len) }.and_then(|request| {
            instance.invoke(Call {
                tenant: text(&request, "tenant"),
                request_id: text(&request, "request_id"),
                action: text(&request, "action"),
                params: request.get("params").cloned().unwrap_or(json!({})),
            })
        });
        answer(result)
    })
}

/// # Safety
/// As for [`invoke`].
pub unsafe extern "C" fn health<E: Exported>(instance: *const c_void) -> Buffer {
    guarded(|| {
        // SAFETY: a live handle made by this table.
        let instance = unsafe { &*instance.cast::<<E::P as Plugin>::Instance>() };
        json!({ "ok": instance.health() })
    })
}

/// # Safety
/// `instance` must come from [`start`] of the same table; it is freed here, once.
pub unsafe extern "C" fn stop<E: Exported>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // A panicking Drop must not unwind into the host either; the instance is gone either way.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: made by Box::into_raw in `start`, freed only here.
        drop(unsafe { Box::from_raw(instance.cast::<<E::P as Plugin>::Instance>()) });
    }));
}

/// # Safety
/// `buffer` must come from this table and be freed once.
pub unsafe extern "C" fn free(buffer: Buffer) {
    // SAFETY: made by Buffer::from_vec in this library.
    drop(unsafe { buffer.into_vec() });
}

/// Exports a [`Plugin`] type as a provider library: the version symbol and the table.
///
/// ```
/// use serde_json::{Value, json};
/// use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError};
///
/// struct Echo;
///
/// impl Plugin for Echo {
///     type Instance = Echo;
///     fn new() -> Self {
///         Echo
///     }
///     fn descriptor(&self) -> Value {
///         json!({"domain": "echo", "name": "echo", "version": "1", "actions": [
///             {"name": "echo", "summary": "Answers its params.", "params": {}, "result": {}}]})
///     }
///     fn start(&self, _tenant: &str, _config: Value) -> Result<Echo, PluginError> {
///         Ok(Echo)
///     }
/// }
///
/// impl Instance for Echo {
///     fn invoke(&self, call: Call) -> Result<Value, PluginError> {
///         Ok(call.params)
///     }
/// }
///
/// switchyard_plugin_abi::export_plugin!(Echo);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        struct __SwitchyardExported;

        impl $crate::Exported for __SwitchyardExported {
            type P = $plugin;
            fn plugin() -> &'static $plugin {
                static PLUGIN: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();
                PLUGIN.get_or_init(<$plugin as $crate::Plugin>::new)
            }
        }

        static __SWITCHYARD_TABLE: $crate::PluginV1 = $crate::PluginV1 {
            descriptor: $crate::descriptor::<__SwitchyardExported>,
            start: $crate::start::<__SwitchyardExported>,
            invoke: $crate::invoke::<__SwitchyardExported>,
            health: $crate::health::<__SwitchyardExported>,
            stop: $crate::stop::<__SwitchyardExported>,
            free: $crate::free,
        };

        /// The plugin ABI this library was built for; read by the runtime before anything else.
        #[unsafe(no_mangle)]
        pub extern "C" fn switchyard_plugin_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        /// The function table of ABI version 1.
        #[unsafe(no_mangle)]
        pub extern "C" fn switchyard_plugin_v1() -> *const $crate::PluginV1 {
            &__SWITCHYARD_TABLE
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(buffer: Buffer) -> Value {
        // SAFETY: made by this library just now, read and freed once.
        let bytes = unsafe { buffer.into_vec() };
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_panic_becomes_a_provider_failed_answer() {
        let answer = read(guarded(|| panic!("boom {}", 42)));
        assert_eq!(answer["error"]["code"], "provider_failed");
        assert_eq!(answer["error"]["detail"], "the plugin panicked: boom 42");
    }

    #[test]
    fn errors_keep_their_code_pointers_and_retryable() {
        let mut e = PluginError::field("payload_too_large", "/value", "too big");
        e.retryable = Some(false);
        let refused = read(guarded(|| answer(Err(e))));
        assert_eq!(
            refused,
            json!({"error": {"code": "payload_too_large", "detail": "too big", "retryable": false,
                             "errors": [{"pointer": "/value", "detail": "too big"}]}})
        );
        assert_eq!(read(guarded(|| answer(Ok(json!(1))))), json!({"ok": 1}));
    }
}
