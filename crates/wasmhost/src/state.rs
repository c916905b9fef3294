//! The store's data type, [`HostState`]: composed in this one place from
//! the state each capability and each convention's host code keeps.
//!
//! Every piece owns its state and links itself into a linker of any type
//! that gives it access (the `*Host` traits, as wasmtime-wasi's
//! `WasiView`): WASI ([`WasiHost`], and `WasiView` itself), key-value
//! ([`KvHost`]), log ([`LogHost`]), the Extism kernel ([`ExtismHost`],
//! whose [`PluginState`] holds config, vars and the HTTP grant). This file
//! implements those traits for [`HostState`]; it is the only one that knows
//! them all. Adding a capability with state is a field here and one `impl`.

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::capabilities::kv::{KeyValue, KvCtx, KvHost};
use crate::capabilities::log::{LogBuffer, LogHost};
use crate::capabilities::wasi::{Output, WasiHost, WasiState};
use crate::kernel::extism::{ExtismHost, PluginState};
use crate::limits::{Limiter, Limits};

/// The host side of one sandbox (one wasmtime `Store`): limits, the WASI
/// context if granted, the guest's log lines and the state of the calling
/// conventions. Host functions registered with
/// [`crate::HostFunctions::core`] may take a `wasmtime::Caller<'_, HostState>`
/// to reach the guest's exports; its contents are private.
pub struct HostState {
    pub(crate) limiter: Limiter,
    pub(crate) wasi: WasiState,
    /// The store's resources (WASI p2 streams, key-value buckets).
    pub(crate) table: ResourceTable,
    pub(crate) logs: LogBuffer,
    pub(crate) plugin: PluginState,
    /// The call's key-value grant, if any.
    pub(crate) kv: Option<KeyValue>,
    /// When the current call must stop: checked at every epoch tick by
    /// stores driven asynchronously (synchronous ones count ticks instead),
    /// and what bounds an Extism plugin's HTTP request.
    pub(crate) deadline: Option<Instant>,
    /// When the current call started (async stores yield once it has run
    /// for a tick).
    pub(crate) started: Instant,
    /// The instances of the components linked to this one (`compose.rs`),
    /// each in its own store, made when first called.
    pub(crate) links: Option<Box<dyn std::any::Any + Send>>,
    /// The stdout and stderr those instances get: the host's own where
    /// this store's are inherited, else none.
    pub(crate) link_stdio: (Output, Output),
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState").finish_non_exhaustive()
    }
}

impl HostState {
    /// A state with nothing granted, used to enumerate linker definitions.
    pub(crate) fn empty() -> Self {
        Self::empty_at(Instant::now())
    }

    /// A state with nothing granted, its call started at `now`.
    pub(crate) fn empty_at(now: Instant) -> Self {
        HostState {
            limiter: Limiter::new(&Limits::default()),
            wasi: WasiState::default(),
            table: ResourceTable::new(),
            logs: LogBuffer::default(),
            plugin: PluginState::default(),
            kv: None,
            deadline: None,
            started: now,
            links: None,
            link_stdio: (Output::Discard, Output::Discard),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.p2(&mut self.table)
    }
}

impl WasiHost for HostState {
    fn wasi_p1(&mut self) -> &mut WasiP1Ctx {
        self.wasi.p1()
    }
}

impl LogHost for HostState {
    fn logs(&mut self) -> &mut LogBuffer {
        &mut self.logs
    }
}

impl KvHost for HostState {
    fn kv(&self) -> Option<&KeyValue> {
        self.kv.as_ref()
    }

    fn kv_ctx(&mut self) -> KvCtx<'_> {
        KvCtx {
            kv: self.kv.as_ref(),
            table: &mut self.table,
        }
    }
}

impl ExtismHost for HostState {
    fn plugin(&mut self) -> &mut PluginState {
        &mut self.plugin
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}
