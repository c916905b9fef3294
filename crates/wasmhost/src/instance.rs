//! [`Instance`]: a module instantiated once and called many times.
//!
//! Where [`crate::Module::call`] gives every call a fresh sandbox, an
//! instance keeps its store: linear memory, globals and an Extism plugin's
//! vars persist from one call to the next, and instances never share any
//! of it. Each call gets the limits' full budget again (fuel, timeout).
//!
//! After a call that failed inside the guest (a trap, a timeout, running
//! out of fuel or memory), the instance's memory may be half-updated, so
//! the next call starts from a fresh instantiation: memory and globals are
//! lost then, an Extism plugin's vars (kept by the host) are not.
//! [`Instance::restarts`] counts how often that happened.
//!
//! Each call reports the output of that call alone: captured stdout and
//! stderr start every call empty (what a reactor's `_initialize` writes is
//! not reported). [`Instance::message`] — the async process mode, see
//! [`crate::process`] — also gives each call its own stdin.
//!
//! ```
//! use wasmhost::{CallOptions, Runtime, RuntimeConfig, Source};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let m = rt.load(&Source::Bytes(br#"(module (global $n (mut i32) (i32.const 0))
//!     (func (export "next") (result i32)
//!       global.get $n i32.const 1 i32.add global.set $n global.get $n))"#.to_vec()))?;
//! let mut counter = m.instantiate(&CallOptions::default())?;
//! assert_eq!(counter.call("next", "")?.value.integer()?, 1);
//! assert_eq!(counter.call("next", "")?.value.integer()?, 2);
//! assert_eq!(m.call("next", "")?.value.integer()?, 1, "a fresh sandbox starts over");
//! # Ok(()) }
//! ```

use std::time::Instant;

use crate::call::{CallOptions, Outcome, Value};
use crate::convention::{self, Convention, Data};
use crate::error::{Error, ErrorCode, Result};
use crate::module::Module;
use crate::sandbox::{Handle, Sandbox};

/// A module instance kept alive between calls. Not `Clone`: one instance,
/// one owner; calls take `&mut self`, so they never overlap.
pub struct Instance {
    module: Module,
    opts: CallOptions,
    live: Option<(Sandbox, Handle)>,
    restarts: u64,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("module", &self.module)
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}

impl Instance {
    pub(crate) fn new(module: &Module, opts: &CallOptions) -> Result<Self> {
        let mut instance = Instance {
            module: module.clone(),
            opts: opts.clone(),
            live: None,
            restarts: 0,
        };
        instance.live = Some(instance.instantiate()?);
        Ok(instance)
    }

    fn instantiate(&self) -> Result<(Sandbox, Handle)> {
        let pre = self.module.pre_for(&self.opts)?;
        let mut sb = Sandbox::new(&self.module, &self.opts)?;
        sb.keep();
        let handle = sb.instantiate(&pre, None)?;
        sb.captures.discard_output();
        Ok((sb, handle))
    }

    /// The module this is an instance of.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Sets an Extism plugin variable (what the plugin reads with `var_get`).
    pub fn set_var(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Result<()> {
        let (sb, _) = match &mut self.live {
            Some(live) => live,
            None => self.live.insert(self.instantiate()?),
        };
        sb.store.data_mut().plugin.set_var(key.into(), value.into())
    }

    /// An Extism plugin variable, as the plugin last set it.
    pub fn var(&self, key: &str) -> Option<&[u8]> {
        self.live
            .as_ref()
            .and_then(|(sb, _)| sb.store.data().plugin.var(key))
    }

    /// How many times a failed call made the instance start over.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The live sandbox, re-instantiated (keeping plugin vars) after a
    /// failure.
    fn ready(&mut self) -> Result<&mut (Sandbox, Handle)> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        let live = self
            .live
            .as_mut()
            .ok_or_else(|| Error::internal("instance vanished"))?;
        live.0.begin()?;
        Ok(live)
    }

    /// Runs `f` on the live sandbox, recording the call and starting over
    /// after failures inside the guest.
    pub(crate) fn with<T>(
        &mut self,
        function: &str,
        f: impl FnOnce(&mut Sandbox, Handle) -> Result<T>,
    ) -> Result<Outcome<T>> {
        let started = Instant::now();
        let result = (|| {
            let (sb, handle) = self.ready()?;
            match f(sb, *handle) {
                Ok(value) => sb.outcome(value),
                Err(e) => {
                    // Output of a failed call must not show up in the next one.
                    sb.captures.discard_output();
                    Err(e)
                }
            }
        })();
        if let Err(e) = &result
            && breaks_instance(e)
            && let Some((mut sb, _)) = self.live.take()
        {
            self.restarts += 1;
            // The plugin's vars live on the host: they survive the restart.
            let vars = sb.store.data_mut().plugin.take_vars();
            match self.instantiate() {
                Ok(mut fresh) => {
                    fresh.0.store.data_mut().plugin.set_vars(vars);
                    self.live = Some(fresh);
                }
                Err(_) => self.live = None,
            }
        }
        crate::sandbox::record(
            &self.module.compiled,
            &self.module.name,
            function,
            started,
            &result,
        );
        result
    }

    /// Calls `function` with `input` through the module's calling
    /// convention (detected, or the one the instance's options force).
    pub fn call(&mut self, function: &str, input: impl AsRef<[u8]>) -> Result<Outcome<Data>> {
        let convention = match self.opts.convention {
            Some(c) => c,
            None => convention::detect(&self.module, function)?,
        };
        self.call_as(convention, function, input)
    }

    /// Calls `function` through `convention`.
    pub fn call_as(
        &mut self,
        convention: Convention,
        function: &str,
        input: impl AsRef<[u8]>,
    ) -> Result<Outcome<Data>> {
        if convention == Convention::Process {
            let message = bytes::Bytes::copy_from_slice(input.as_ref());
            return self
                .message(function, message)
                .map(|out| out.map(|stdout| Data::Bytes(stdout.into())));
        }
        let args = self.opts.args;
        let input = input.as_ref();
        self.with(function, |sb, handle| {
            convention::call_in(sb, handle, convention, function, input, args)
        })
    }

    /// Calls a numeric export.
    pub fn invoke(&mut self, function: &str, args: &[Value]) -> Result<Outcome<Vec<Value>>> {
        self.with(function, |sb, handle| {
            crate::sandbox::invoke_in(sb, handle, function, args)
        })
    }

    /// Raw memory transfer (see [`crate::convention::raw`]).
    pub fn call_raw(
        &mut self,
        function: &str,
        input: &[u8],
        extra: &[Value],
    ) -> Result<Outcome<Vec<u8>>> {
        self.with(function, |sb, handle| {
            convention::raw::call(sb, handle, function, input, extra)
        })
    }
}

/// Whether a failed call may have left the instance's state half-updated.
fn breaks_instance(e: &Error) -> bool {
    match e.code() {
        // Refused before the guest ran, or the guest returned normally
        // after reporting its own error.
        ErrorCode::BadInput | ErrorCode::NotFound => false,
        ErrorCode::GuestError => !matches!(
            e,
            Error::Guest {
                status: Some(_),
                ..
            }
        ),
        _ => true,
    }
}
