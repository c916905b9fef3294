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
//! Every method has an `*_async` twin. An instance made with
//! [`Module::instantiate_async`](crate::Module::instantiate_async) runs its
//! guest through wasmtime's async API (see [`Module::invoke_async`](crate::Module::invoke_async)); one made with
//! [`Module::instantiate`](crate::Module::instantiate) runs it on the
//! calling thread. Either kind answers both kinds of method: the blocking
//! methods of an async instance wait in place, the async methods of a
//! blocking instance run the guest without yielding.
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
use crate::exec::{Exec, drive, run_sync};
use crate::module::Module;
use crate::sandbox::{Handle, Sandbox};
use crate::snapshot::Snapshot;

/// One call on the live sandbox: readies it (starting over when needed),
/// runs `$body` (a future using `$sb` and `$handle`), settles its output and
/// records it. A macro rather than a function taking a closure: the body's
/// future borrows the sandbox, and must stay `Send`.
macro_rules! on_live {
    ($self:ident, $function:expr, |$sb:ident, $handle:ident| $body:expr) => {{
        let started = Instant::now();
        let result = match $self.ready().await {
            Ok(($sb, $handle)) => {
                let r = $body.await;
                Self::settle($sb, r)
            }
            Err(e) => Err(e),
        };
        $self.after($function, started, result).await
    }};
}

/// A module instance kept alive between calls. Not `Clone`: one instance,
/// one owner; calls take `&mut self`, so they never overlap.
pub struct Instance {
    module: Module,
    opts: CallOptions,
    pub(crate) exec: Exec,
    live: Option<(Sandbox, Handle)>,
    restarts: u64,
    /// Set while a call runs; still set at the next call when the last
    /// one's future was dropped mid-call (the guest stopped wherever it
    /// was, so its state may be half-updated).
    calling: bool,
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
    pub(crate) async fn new(
        module: &Module,
        opts: &CallOptions,
        exec: Exec,
        from: Option<&Snapshot>,
    ) -> Result<Self> {
        if let Some(snapshot) = from {
            snapshot.check_module(module.digest())?;
        }
        let mut instance = Instance {
            module: module.clone(),
            opts: opts.clone(),
            exec,
            live: None,
            restarts: 0,
            calling: false,
        };
        let (mut sb, handle) = instance.instantiate().await?;
        if let Some(snapshot) = from {
            crate::snapshot::restore(&mut sb, &handle, module.digest(), snapshot)?;
        }
        instance.live = Some((sb, handle));
        Ok(instance)
    }

    /// A fresh live sandbox. (Takes `&mut self` although it changes
    /// nothing: an `Instance` is not `Sync`, so a future holding `&self`
    /// would not be `Send`.)
    async fn instantiate(&mut self) -> Result<(Sandbox, Handle)> {
        let pre = self.module.pre_for(&self.opts, self.exec)?;
        let mut sb = Sandbox::new(self.module.spec(), &self.opts, self.exec)?;
        sb.keep();
        let handle = sb.instantiate(&pre, None).await?;
        sb.captures.discard_output();
        Ok((sb, handle))
    }

    /// The module this is an instance of.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Sets an Extism plugin variable (what the plugin reads with `var_get`).
    pub fn set_var(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Result<()> {
        if self.live.is_none() {
            let exec = self.exec;
            let live = drive(exec, self.instantiate())?;
            self.live = Some(live);
        }
        let (sb, _) = self
            .live
            .as_mut()
            .ok_or_else(|| Error::internal("instance vanished"))?;
        sb.store.data_mut().plugin.set_var(key.into(), value.into())
    }

    /// An Extism plugin variable, as the plugin last set it.
    pub fn var(&self, key: &str) -> Option<&[u8]> {
        self.live
            .as_ref()
            .and_then(|(sb, _)| sb.store.data().plugin.var(key))
    }

    /// A snapshot of the instance's whole state: memories, mutable
    /// globals, Extism vars (see [`crate::snapshot`]). `bad_input` for a
    /// component. After an abandoned call, the instance starts over first:
    /// a half-updated state is never saved.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        let exec = self.exec;
        drive(exec, self.snapshot_async())
    }

    /// [`Instance::snapshot`] for async code.
    pub async fn snapshot_async(&mut self) -> Result<Snapshot> {
        let digest = self.module.digest();
        let (sb, handle) = self.live_sandbox(false).await?;
        crate::snapshot::capture(sb, &handle, digest)
    }

    /// Replaces the instance's state by `snapshot`'s: a fresh instantiation
    /// of the module (nothing is recompiled) with the saved memories,
    /// globals and vars written back. `snapshot_mismatch` when the
    /// snapshot is of another module; on any failure the instance keeps
    /// the state it had.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let exec = self.exec;
        drive(exec, self.restore_async(snapshot))
    }

    /// [`Instance::restore`] for async code.
    pub async fn restore_async(&mut self, snapshot: &Snapshot) -> Result<()> {
        let digest = self.module.digest();
        snapshot.check_module(digest)?;
        let (mut sb, handle) = self.instantiate().await?;
        crate::snapshot::restore(&mut sb, &handle, digest, snapshot)?;
        self.live = Some((sb, handle));
        self.calling = false;
        Ok(())
    }

    /// The live sandbox: started over when the last call was abandoned
    /// mid-way (its future dropped), instantiated when there is none.
    /// `calling` says whether a call starts on it now.
    async fn live_sandbox(&mut self, calling: bool) -> Result<(&mut Sandbox, Handle)> {
        if std::mem::replace(&mut self.calling, calling) {
            self.start_over().await;
        }
        if self.live.is_none() {
            self.live = Some(self.instantiate().await?);
        }
        let (sb, handle) = self
            .live
            .as_mut()
            .ok_or_else(|| Error::internal("instance vanished"))?;
        Ok((sb, *handle))
    }

    /// How many times a failed call made the instance start over.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The live sandbox, re-instantiated (keeping plugin vars) after a
    /// failure, with a fresh budget for the next call.
    async fn ready(&mut self) -> Result<(&mut Sandbox, Handle)> {
        let (sb, handle) = self.live_sandbox(true).await?;
        sb.begin()?;
        Ok((sb, handle))
    }

    /// Replaces a live sandbox whose state may be half-updated by a fresh
    /// instantiation. The plugin's vars live on the host: they carry over.
    /// If instantiating fails, the next call tries again (without them).
    async fn start_over(&mut self) {
        let Some((mut sb, _)) = self.live.take() else {
            return;
        };
        self.restarts += 1;
        let vars = sb.store.data_mut().plugin.take_vars();
        drop(sb);
        if let Ok(mut fresh) = self.instantiate().await {
            fresh.0.store.data_mut().plugin.set_vars(vars);
            self.live = Some(fresh);
        }
    }

    /// Ends a call on the live sandbox: its outcome, or its output
    /// discarded after a failure (it must not show up in the next call).
    fn settle<T>(sb: &mut Sandbox, result: Result<T>) -> Result<Outcome<T>> {
        match result {
            Ok(value) => sb.outcome(value),
            Err(e) => {
                sb.captures.discard_output();
                Err(e)
            }
        }
    }

    /// After a call: starts over after failures inside the guest, records
    /// the call.
    async fn after<T>(
        &mut self,
        function: &str,
        started: Instant,
        result: Result<Outcome<T>>,
    ) -> Result<Outcome<T>> {
        self.calling = false;
        if let Err(e) = &result
            && breaks_instance(e)
        {
            self.start_over().await;
        }
        crate::module::record(&self.module, function, started, &result);
        result
    }

    /// Calls `function` with `input` through the module's calling
    /// convention (detected, or the one the instance's options force).
    pub fn call(&mut self, function: &str, input: impl AsRef<[u8]>) -> Result<Outcome<Data>> {
        let convention = self.convention(function)?;
        self.call_as(convention, function, input)
    }

    /// [`Instance::call`] through the async API.
    pub async fn call_async(
        &mut self,
        function: &str,
        input: impl AsRef<[u8]>,
    ) -> Result<Outcome<Data>> {
        let convention = self.convention(function)?;
        self.call_as_async(convention, function, input.as_ref())
            .await
    }

    fn convention(&self, function: &str) -> Result<Convention> {
        match self.opts.convention {
            Some(c) => Ok(c),
            None => {
                let compiled = &self.module.compiled;
                convention::detect(
                    &compiled.code,
                    &compiled.traits,
                    &self.module.name,
                    function,
                )
            }
        }
    }

    /// Calls `function` through `convention`.
    pub fn call_as(
        &mut self,
        convention: Convention,
        function: &str,
        input: impl AsRef<[u8]>,
    ) -> Result<Outcome<Data>> {
        let input = input.as_ref();
        let exec = self.exec;
        drive(exec, self.call_as_async(convention, function, input))
    }

    /// [`Instance::call_as`] through the async API.
    pub async fn call_as_async(
        &mut self,
        convention: Convention,
        function: &str,
        input: &[u8],
    ) -> Result<Outcome<Data>> {
        let args = self.opts.args;
        // The body borrows the sandbox out of `self`; the traits come from
        // a handle of their own.
        let compiled = self.module.compiled.clone();
        on_live!(self, function, |sb, handle| convention::call_in(
            sb,
            handle,
            &compiled.traits,
            convention,
            function,
            input,
            args
        ))
    }

    /// Calls a numeric export.
    pub fn invoke(&mut self, function: &str, args: &[Value]) -> Result<Outcome<Vec<Value>>> {
        let exec = self.exec;
        drive(exec, self.invoke_async(function, args))
    }

    /// [`Instance::invoke`] through the async API.
    pub async fn invoke_async(
        &mut self,
        function: &str,
        args: &[Value],
    ) -> Result<Outcome<Vec<Value>>> {
        on_live!(self, function, |sb, handle| crate::sandbox::invoke_in(
            sb, handle, function, args
        ))
    }

    /// Raw memory transfer (see [`crate::convention::raw`]).
    pub fn call_raw(
        &mut self,
        function: &str,
        input: &[u8],
        extra: &[Value],
    ) -> Result<Outcome<Vec<u8>>> {
        let exec = self.exec;
        drive(exec, self.call_raw_async(function, input, extra))
    }

    /// [`Instance::call_raw`] through the async API.
    pub async fn call_raw_async(
        &mut self,
        function: &str,
        input: &[u8],
        extra: &[Value],
    ) -> Result<Outcome<Vec<u8>>> {
        let compiled = self.module.compiled.clone();
        on_live!(self, function, |sb, handle| convention::raw::call(
            sb,
            handle,
            &compiled.traits,
            function,
            input,
            extra
        ))
    }

    /// One message of the async process mode (see [`crate::process`]).
    pub(crate) async fn message_in(
        &mut self,
        export: &str,
        message: bytes::Bytes,
    ) -> Result<Outcome<Vec<u8>>> {
        on_live!(self, export, |sb, handle| {
            crate::convention::process::message_in(sb, handle, export, message)
        })
        .map(crate::convention::process::into_reply)
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

/// The constructors of [`Instance`] are [`Module`]'s, written here so that
/// `module.rs` does not depend on this file.
impl Module {
    /// An instance that stays alive between calls: memory, globals and
    /// plugin variables persist (see [`crate::Instance`]).
    pub fn instantiate(&self, opts: &CallOptions) -> Result<crate::Instance> {
        run_sync(std::pin::pin!(Instance::new(self, opts, Exec::Sync, None)))
    }

    /// An [`Instance`](crate::Instance) whose calls run through the async
    /// API: its `*_async` methods run the guest on the caller's executor.
    /// (Its blocking methods still work, waiting in place.)
    pub async fn instantiate_async(&self, opts: &CallOptions) -> Result<crate::Instance> {
        Instance::new(self, opts, Exec::Async, None).await
    }

    /// An instance resumed from `snapshot` (see [`crate::Instance::restore`]).
    pub fn instantiate_from(
        &self,
        opts: &CallOptions,
        snapshot: &Snapshot,
    ) -> Result<crate::Instance> {
        run_sync(std::pin::pin!(Instance::new(
            self,
            opts,
            Exec::Sync,
            Some(snapshot)
        )))
    }

    /// [`Module::instantiate_from`] through the async API.
    pub async fn instantiate_from_async(
        &self,
        opts: &CallOptions,
        snapshot: &Snapshot,
    ) -> Result<crate::Instance> {
        Instance::new(self, opts, Exec::Async, Some(snapshot)).await
    }
}
