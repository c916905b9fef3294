//! A compiled module as the caches hold it: its [`Code`], what its imports
//! and exports announce ([`Traits`]), its counters, and its pre-linked
//! `InstancePre`s, one per grant shape and [`Exec`] flavour.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::capabilities::GrantKey;
use crate::code::{Code, Digest, ModuleKind};
use crate::convention::Traits;
use crate::error::Result;
use crate::exec::Exec;
use crate::linking::Linkers;
use crate::sandbox::Pre;

/// Per-module counters, kept as long as the module is cached.
#[derive(Debug, Default)]
pub(crate) struct ModuleCounters {
    pub(crate) loads: AtomicU64,
    pub(crate) calls: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// (loads, calls, errors) already added to the disk stats file.
    pub(crate) persisted: Mutex<(u64, u64, u64)>,
}

/// A compiled module as the caches hold it.
pub(crate) struct Compiled {
    pub(crate) digest: Digest,
    pub(crate) code: Code,
    pub(crate) wasm_bytes: u64,
    pub(crate) compiled_bytes: u64,
    pub(crate) compile_time: Duration,
    /// Whether this process compiled it (rather than loading it from disk).
    pub(crate) compiled_here: bool,
    pub(crate) counters: ModuleCounters,
    /// A WASI reactor: a core module exporting `_initialize`, which must run
    /// once after instantiation before any other export is called.
    pub(crate) reactor: bool,
    /// The calling conventions the module's imports and exports announce.
    pub(crate) traits: Traits,
    pres: Mutex<HashMap<(GrantKey, Exec), Pre>>,
}

impl Compiled {
    pub(crate) fn new(
        digest: Digest,
        code: Code,
        wasm_bytes: u64,
        compile_time: Duration,
        compiled_here: bool,
    ) -> Self {
        let range = match &code {
            Code::Core(m) => m.image_range(),
            Code::Component(c) => c.image_range(),
        };
        let compiled_bytes = (range.end as usize).saturating_sub(range.start as usize) as u64;
        let reactor = matches!(&code, Code::Core(m)
            if matches!(m.get_export("_initialize"), Some(wasmtime::ExternType::Func(f))
                if f.params().len() == 0 && f.results().len() == 0));
        let traits = Traits::of(&code);
        Compiled {
            reactor,
            traits,
            digest,
            code,
            wasm_bytes,
            compiled_bytes,
            compile_time,
            compiled_here,
            counters: ModuleCounters::default(),
            pres: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn kind(&self) -> ModuleKind {
        match self.code {
            Code::Core(_) => ModuleKind::Core,
            Code::Component(_) => ModuleKind::Component,
        }
    }

    pub(crate) fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match &self.code {
            Code::Core(m) => m.serialize(),
            Code::Component(c) => c.serialize(),
        }
    }

    /// The `InstancePre` for `key` and `exec`, linking on first use.
    /// `linkers` gives the runtime's linkers of a grant shape and flavour.
    pub(crate) fn pre(
        &self,
        key: GrantKey,
        exec: Exec,
        linkers: impl FnOnce(GrantKey, Exec) -> Result<Arc<Linkers>>,
    ) -> Result<Pre> {
        let key = (key, exec);
        if let Some(pre) = self
            .pres
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(pre.clone());
        }
        let linkers = linkers(key.0.clone(), exec)?;
        let pre = match &self.code {
            Code::Core(m) => Pre::Core(linkers.link_core(m)?),
            Code::Component(c) => Pre::Component(linkers.link_component(c)?),
        };
        self.pres
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, pre.clone());
        Ok(pre)
    }
}
