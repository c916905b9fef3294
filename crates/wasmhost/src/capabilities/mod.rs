//! Capabilities: what a guest may touch. Nothing is granted by default.
//!
//! A [`Capabilities`] value lists the grants of a module (or of one call).
//! Each capability lives in its own file and owns its state, its linker
//! wiring and its tests:
//!
//! * [`wasi`] — WASI preview 1 (core modules) and preview 2 (components):
//!   stdio, args, env entries named one by one, preopened directories,
//!   clocks and random (each granted separately).
//! * [`log`] — the `wasmhost::log(level, ptr, len)` host function.
//! * [`http`] — outgoing HTTP requests (the Extism `http_request`), to the
//!   hosts of an allow-list only.
//! * [`kv`] — durable key-value state in a namespace of the guest's own
//!   (`wasmhost:kv` for core modules, `kv_get`/`kv_set`/`kv_delete` for
//!   Extism plugins, `wasi:keyvalue/store` for components), in a redb
//!   [`KvStore`].
//! * host functions an embedder registers with the runtime
//!   ([`crate::Runtime::add_host_functions`]), granted set by set by name
//!   ([`crate::HostFunctions`]; they live above the store's data type, which
//!   their functions take, in the crate's `host_functions.rs`).
//!
//! Plugin configuration (the Extism `config_get`) travels with the grants
//! too: it is what the guest may read.
//!
//! Each capability owns its state and links itself, through a `*Host`
//! trait, into a linker of whatever store data type implements it (as
//! wasmtime-wasi does with `WasiView`): none of these files knows the
//! store's data type, which is composed from their states in `state.rs`.
//!
//! Linking depends only on *which* capabilities are granted (the
//! `GrantKey`), not on their values (which args, which directories), so
//! one linker and one `InstancePre` per module serve every call with the
//! same grant shape.
//!
//! ```
//! use wasmhost::{Capabilities, Wasi};
//! let caps = Capabilities::none()
//!     .with_wasi(Wasi::new().arg("prog").env("LANG", "C").clocks(true))
//!     .with_log(true);
//! assert!(caps.wasi.is_some() && caps.log);
//! ```

pub mod http;
pub mod kv;
pub mod log;
pub mod wasi;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use self::http::Http;
pub use self::kv::{KeyValue, KvBatch, KvEntry, KvStore};
pub use self::log::{LogLevel, LogRecord};
pub use self::wasi::{Preopen, Wasi};

/// The grants of a module or a call. [`Capabilities::none`] is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// WASI, if granted, with its own finer grants.
    pub wasi: Option<Wasi>,
    /// The `wasmhost::log` host function.
    pub log: bool,
    /// Outgoing HTTP, to the allowed hosts only (shared: every call's
    /// sandbox refers to it without copying the host list).
    pub http: Option<Arc<Http>>,
    /// Durable key-value state, in the grant's namespace only.
    pub key_value: Option<KeyValue>,
    /// Configuration the guest may read (Extism `config_get`).
    pub config: Arc<BTreeMap<String, String>>,
    /// Names of host-function sets registered with the runtime.
    pub host: BTreeSet<String>,
    /// Link imports nothing grants to functions that trap when called
    /// (`wasmtime run -W unknown-imports-trap`), instead of refusing the
    /// module with `link_error`. The guest then fails only if it calls one.
    pub trap_unknown_imports: bool,
}

impl Capabilities {
    /// No capabilities at all: the guest can compute and nothing else.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Grants WASI with the given settings.
    pub fn with_wasi(mut self, wasi: Wasi) -> Self {
        self.wasi = Some(wasi);
        self
    }

    /// Grants (or revokes) the log host function.
    pub fn with_log(mut self, on: bool) -> Self {
        self.log = on;
        self
    }

    /// Grants outgoing HTTP to the hosts of `http`.
    pub fn with_http(mut self, http: Http) -> Self {
        self.http = Some(Arc::new(http));
        self
    }

    /// Grants key-value state in the namespace of `kv`.
    pub fn with_key_value(mut self, kv: KeyValue) -> Self {
        self.key_value = Some(kv);
        self
    }

    /// Sets one configuration entry the guest may read.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).insert(key.into(), value.into());
        self
    }

    /// Grants the host-function set registered under `name`.
    pub fn with_host_functions(mut self, name: impl Into<String>) -> Self {
        self.host.insert(name.into());
        self
    }

    /// Links ungranted imports as trapping functions (see
    /// [`Capabilities::trap_unknown_imports`]).
    pub fn with_trap_unknown_imports(mut self, on: bool) -> Self {
        self.trap_unknown_imports = on;
        self
    }

    /// Whether `other` links the same way (same [`GrantKey`]), without
    /// building either key: calls compare their grants to the module's.
    pub(crate) fn same_shape(&self, other: &Capabilities) -> bool {
        self.bits() == other.bits() && self.host == other.host
    }

    /// The linking shape of these grants.
    pub(crate) fn key(&self) -> GrantKey {
        GrantKey {
            bits: self.bits(),
            host: self.host.iter().cloned().collect(),
        }
    }

    fn bits(&self) -> u8 {
        let mut bits = 0;
        if let Some(w) = &self.wasi {
            bits |= GrantKey::WASI;
            if w.clocks {
                bits |= GrantKey::CLOCKS;
            }
            if w.random {
                bits |= GrantKey::RANDOM;
            }
        }
        if self.log {
            bits |= GrantKey::LOG;
        }
        if self.trap_unknown_imports {
            bits |= GrantKey::TRAP_UNKNOWN;
        }
        if self.key_value.is_some() {
            bits |= GrantKey::KV;
        }
        bits
    }
}

/// Which capabilities are linked: the key of the linker and `InstancePre`
/// caches. Only the shape counts (which grants), not their values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GrantKey {
    bits: u8,
    /// Granted host-function sets, sorted.
    pub(crate) host: Vec<String>,
}

impl GrantKey {
    const WASI: u8 = 1;
    const CLOCKS: u8 = 2;
    const RANDOM: u8 = 4;
    const LOG: u8 = 8;
    const TRAP_UNKNOWN: u8 = 16;
    const KV: u8 = 32;

    pub(crate) fn wasi(&self) -> bool {
        self.bits & Self::WASI != 0
    }
    pub(crate) fn clocks(&self) -> bool {
        self.bits & Self::CLOCKS != 0
    }
    pub(crate) fn random(&self) -> bool {
        self.bits & Self::RANDOM != 0
    }
    pub(crate) fn log(&self) -> bool {
        self.bits & Self::LOG != 0
    }
    pub(crate) fn trap_unknown(&self) -> bool {
        self.bits & Self::TRAP_UNKNOWN != 0
    }
    pub(crate) fn kv(&self) -> bool {
        self.bits & Self::KV != 0
    }
}

/// Turns a linker-building failure into an internal error.
pub(crate) fn link_setup(e: wasmtime::Error) -> crate::Error {
    crate::Error::internal(format!("cannot set up host functions: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_reflects_only_the_grant_shape() {
        let a = Capabilities::none().with_wasi(Wasi::new().arg("a"));
        let b = Capabilities::none().with_wasi(Wasi::new().arg("b").env("X", "1"));
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), Capabilities::none().key());
        let h = Capabilities::none().with_host_functions("kv");
        assert_ne!(h.key(), Capabilities::none().key());
        assert_eq!(
            Capabilities::none().with_config("a", "b").key(),
            Capabilities::none().key()
        );
        let c = Capabilities::none().with_wasi(Wasi::new().clocks(true));
        assert!(c.key().clocks() && !c.key().random() && c.key().wasi());
        assert!(Capabilities::none().with_log(true).key().log());
        assert!(a.same_shape(&b) && !a.same_shape(&Capabilities::none()));
        assert!(!h.same_shape(&Capabilities::none()));
        let store = KvStore::memory();
        let kv = |ns: &str| Capabilities::none().with_key_value(KeyValue::new(store.clone(), ns));
        assert_eq!(kv("a").key(), kv("b").key());
        assert!(kv("a").key().kv() && !Capabilities::none().key().kv());
    }
}
