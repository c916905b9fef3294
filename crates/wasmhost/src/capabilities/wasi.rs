//! The WASI capability: preview 1 for core modules, preview 2 for components.
//!
//! Granting [`Wasi`] gives the guest standard I/O (captured or inherited per
//! call, see [`crate::CallOptions`]), exactly the args and environment
//! entries listed, and the preopened directories listed, each read-only or
//! read-write. Clocks and random numbers are separate grants: when they are
//! not granted, the functions stay linked (so ordinary programs still load)
//! but calling them stops the guest with `capability_denied`.
//!
//! Sockets are never granted by this capability: the WASI context has no
//! network access.
//!
//! Captured stdio goes through this module's own pipes (`SharedInput`,
//! `SharedOutput`): buffers shared between the WASI context and the host,
//! which the host refills (stdin) and drains (stdout, stderr) between calls,
//! so a kept instance sees each call's — each message's — streams alone.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime::component::{Linker as ComponentLinker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::GrantKey;
use crate::error::{Error, Result, abort};
use crate::exec::Exec;

/// The WASI interface version wasmtime-wasi 48 defines; used to shadow
/// ungranted interfaces in the component linker.
const P2_VERSION: &str = "0.2.12";

/// Default cap on captured stdout or stderr of one call: 16 MiB.
pub const DEFAULT_CAPTURE_LIMIT: usize = 16 << 20;

/// Standard input of a call (meaningful only when WASI is granted).
#[derive(Debug, Clone, Default)]
pub enum Stdin {
    /// Immediately at end of file.
    #[default]
    Empty,
    /// These bytes, then end of file.
    Bytes(Bytes),
    /// The host process's own standard input.
    Inherit,
}

impl Stdin {
    /// Stdin that yields `bytes` then EOF.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Stdin::Bytes(bytes.into())
    }
}

/// Where a call's stdout or stderr goes (meaningful only when WASI is granted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Thrown away.
    Discard,
    /// Kept in memory, up to `limit` bytes, and returned in the [`crate::Outcome`].
    /// A guest writing past the limit fails the call with `memory_limit`.
    Capture {
        /// Most bytes kept.
        limit: usize,
    },
    /// Written to the host process's own stream.
    Inherit,
}

impl Default for Output {
    fn default() -> Self {
        Output::Capture {
            limit: DEFAULT_CAPTURE_LIMIT,
        }
    }
}

/// WASI grants. Build with [`Wasi::new`] and the builder methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wasi {
    /// Arguments, `argv[0]` included (by convention the program name).
    pub args: Vec<String>,
    /// Environment entries, each named explicitly.
    pub env: Vec<(String, String)>,
    /// Preopened directories.
    pub dirs: Vec<Preopen>,
    /// Wall and monotonic clocks.
    pub clocks: bool,
    /// Random numbers (secure and insecure).
    pub random: bool,
}

/// A host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// Directory on the host.
    pub host: PathBuf,
    /// Path the guest sees it at.
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

impl Wasi {
    /// WASI with stdio only: no args, env, directories, clocks or random.
    /// A plugin host's default: grant the rest one by one.
    pub fn new() -> Self {
        Wasi::default()
    }

    /// WASI as wasmtime, Spin and Extism (`wasi: true`) grant it: stdio,
    /// wall and monotonic clocks, and random numbers; no args, env or
    /// directories. What `wasmhost run`, `call --wasi`, manifests and
    /// server routes give a guest that gets WASI; revoke clocks or random
    /// with [`Wasi::clocks`]/[`Wasi::random`] `(false)` for deterministic runs.
    ///
    /// ```
    /// use wasmhost::Wasi;
    /// let wasi = Wasi::standard();
    /// assert!(wasi.clocks && wasi.random && wasi.args.is_empty());
    /// assert!(!Wasi::standard().random(false).random);
    /// ```
    pub fn standard() -> Self {
        Wasi::new().clocks(true).random(true)
    }

    /// Appends an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds one environment entry.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Preopens `host` as `guest`.
    pub fn dir(
        mut self,
        host: impl Into<PathBuf>,
        guest: impl Into<String>,
        read_only: bool,
    ) -> Self {
        self.dirs.push(Preopen {
            host: host.into(),
            guest: guest.into(),
            read_only,
        });
        self
    }

    /// Grants the clocks.
    pub fn clocks(mut self, on: bool) -> Self {
        self.clocks = on;
        self
    }

    /// Grants random numbers.
    pub fn random(mut self, on: bool) -> Self {
        self.random = on;
        self
    }

    /// The WASI state of one sandbox with these grants and the call's
    /// stdio: a preview-2 context for a component, a preview-1 one for a
    /// core module, and the host's ends of the captured pipes.
    pub(crate) fn build(
        &self,
        stdin: &Stdin,
        stdout: Output,
        stderr: Output,
        component: bool,
        limits: &crate::limits::Limits,
    ) -> Result<(WasiState, Captures)> {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.args)
            .envs(&self.env)
            .max_random_size(limits.max_random_bytes);
        for d in &self.dirs {
            let perms = if d.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            if !d.host.is_dir() {
                return Err(Error::not_found(format!(
                    "directory `{}` to preopen as `{}`",
                    d.host.display(),
                    d.guest
                )));
            }
            b.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
                Error::bad_input(format!("cannot preopen `{}`: {e:#}", d.host.display()))
            })?;
        }
        let mut captures = Captures::default();
        match stdin {
            Stdin::Empty => {
                let pipe = SharedInput::default();
                b.stdin(pipe.clone());
                captures.stdin = Some(pipe);
            }
            Stdin::Bytes(bytes) => {
                let pipe = SharedInput::default();
                pipe.set(bytes.clone());
                b.stdin(pipe.clone());
                captures.stdin = Some(pipe);
            }
            Stdin::Inherit => {
                b.inherit_stdin();
            }
        }
        match stdout {
            Output::Discard => {}
            Output::Inherit => {
                b.inherit_stdout();
            }
            Output::Capture { limit } => {
                let pipe = SharedOutput::new(limit);
                b.stdout(pipe.clone());
                captures.stdout = Some(pipe);
            }
        }
        match stderr {
            Output::Discard => {}
            Output::Inherit => {
                b.inherit_stderr();
            }
            Output::Capture { limit } => {
                let pipe = SharedOutput::new(limit);
                b.stderr(pipe.clone());
                captures.stderr = Some(pipe);
            }
        }
        let state = if component {
            WasiState {
                p1: None,
                p2: Some(Box::new(b.build())),
            }
        } else {
            let mut p1 = Box::new(b.build_p1());
            // A core module's files and streams live in the p1 context's
            // own table.
            p1.ctx().table.set_max_capacity(limits.max_host_resources);
            WasiState {
                p1: Some(p1),
                p2: None,
            }
        };
        Ok((state, captures))
    }
}

/// The WASI contexts of one sandbox: none without the grant, else the
/// preview-1 context of a core module or the preview-2 one of a component.
/// Boxed: a context is some 300 bytes, and every store's data (WASI granted
/// or not) is built and moved into its store once per call.
#[derive(Default)]
pub(crate) struct WasiState {
    p1: Option<Box<WasiP1Ctx>>,
    p2: Option<Box<WasiCtx>>,
}

impl WasiState {
    /// The preview-1 context. The preview-1 functions are only linked when
    /// WASI is granted, and every store of a core module with WASI granted
    /// carries a context, so this cannot fail.
    pub(crate) fn p1(&mut self) -> &mut WasiP1Ctx {
        self.p1
            .as_mut()
            .expect("invariant: WASI p1 is linked only for stores that carry a p1 context")
    }

    /// The preview-2 context with the store's resource table (the same
    /// invariant as [`WasiState::p1`], for components).
    pub(crate) fn p2<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiCtxView<'a> {
        WasiCtxView {
            ctx: self
                .p2
                .as_mut()
                .expect("invariant: WASI p2 is linked only for stores that carry a p2 context"),
            table,
        }
    }
}

/// What the WASI capability needs of a store's data: its [`WasiState`]'s
/// preview-1 context, and (through wasmtime-wasi's own [`WasiView`]) the
/// preview-2 one.
pub(crate) trait WasiHost: WasiView + 'static {
    /// The preview-1 context (see [`WasiState::p1`]).
    fn wasi_p1(&mut self) -> &mut WasiP1Ctx;
}

/// Locks a pipe's buffer. A panic while holding the lock cannot leave the
/// buffer half-written (every update is a single call), so a poisoned lock
/// is used as is rather than turned into a host panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A guest's stdin whose contents the host sets per call: the WASI context
/// holds one handle, the host another. Reading past the bytes set is EOF.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedInput(Arc<Mutex<Bytes>>);

impl SharedInput {
    /// Replaces what is left unread with `bytes`.
    pub(crate) fn set(&self, bytes: Bytes) {
        *lock(&self.0) = bytes;
    }

    fn read_up_to(&self, size: usize) -> Bytes {
        let mut buffer = lock(&self.0);
        let size = size.min(buffer.len());
        buffer.split_to(size)
    }
}

impl IsTerminal for SharedInput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for SharedInput {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

impl InputStream for SharedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if lock(&self.0).is_empty() {
            return Err(StreamError::Closed);
        }
        Ok(self.read_up_to(size))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SharedInput {
    async fn ready(&mut self) {}
}

impl AsyncRead for SharedInput {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let read = self.read_up_to(buf.remaining());
        buf.put_slice(&read);
        Poll::Ready(Ok(()))
    }
}

/// The buffer behind a [`SharedOutput`].
#[derive(Debug, Default)]
struct OutputBuffer {
    bytes: BytesMut,
    /// The guest tried to write past the limit.
    overflowed: bool,
}

/// A captured stdout or stderr that the host drains after each call: the
/// WASI context holds one handle, the host another. A write past the limit
/// fails (the guest sees a trap or a closed stream) and is remembered, so
/// the call fails with `memory_limit` instead of losing output silently.
#[derive(Debug, Clone)]
pub(crate) struct SharedOutput {
    limit: usize,
    buffer: Arc<Mutex<OutputBuffer>>,
}

impl SharedOutput {
    pub(crate) fn new(limit: usize) -> Self {
        SharedOutput {
            limit,
            buffer: Arc::default(),
        }
    }

    /// Appends as much of `bytes` as fits; false if some did not.
    fn append(&self, bytes: &[u8]) -> bool {
        let mut buffer = lock(&self.buffer);
        let room = self.limit.saturating_sub(buffer.bytes.len());
        if bytes.len() > room {
            buffer.overflowed = true;
            return false;
        }
        buffer.bytes.extend_from_slice(bytes);
        true
    }

    /// Whether a write went past the limit since the last [`Self::take`].
    fn overflowed(&self) -> bool {
        lock(&self.buffer).overflowed
    }

    /// Everything written since the last take, leaving the pipe empty
    /// (and forgetting an overflow). No copy: the buffer is handed over.
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut buffer = lock(&self.buffer);
        buffer.overflowed = false;
        std::mem::take(&mut buffer.bytes).into()
    }
}

impl IsTerminal for SharedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SharedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for SharedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.append(&bytes) {
            Ok(())
        } else {
            Err(StreamError::trap("write beyond the capture limit"))
        }
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Never less than one byte, even when full: a stream that reports
        // "full" is waited on (or read as closed) rather than written to,
        // and a write past the limit must happen to be detected.
        let room = self.limit.saturating_sub(lock(&self.buffer).bytes.len());
        Ok(room.max(1))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SharedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for SharedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.append(buf) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(std::io::Error::other("write beyond the capture limit")))
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The stdio pipes of a sandbox that the host can reach: stdin when it is
/// not inherited, stdout and stderr when captured (with their limits).
#[derive(Default)]
pub(crate) struct Captures {
    pub(crate) stdin: Option<SharedInput>,
    pub(crate) stdout: Option<SharedOutput>,
    pub(crate) stderr: Option<SharedOutput>,
}

impl Captures {
    /// What the guest wrote to stdout and stderr since the last take,
    /// leaving both pipes empty.
    pub(crate) fn take(&self) -> (Vec<u8>, Vec<u8>) {
        let read =
            |c: &Option<SharedOutput>| c.as_ref().map(SharedOutput::take).unwrap_or_default();
        (read(&self.stdout), read(&self.stderr))
    }

    /// What the guest wrote to stdout since the last take, leaving the pipe
    /// empty (stderr stays for the call's outcome).
    pub(crate) fn take_stdout(&self) -> Vec<u8> {
        self.stdout
            .as_ref()
            .map(SharedOutput::take)
            .unwrap_or_default()
    }

    /// An error if the guest wrote more than a capture limit allows since
    /// the last take: its output would otherwise be silently cut short.
    pub(crate) fn overflow(&self) -> Option<Error> {
        let over = |c: &Option<SharedOutput>| {
            c.as_ref()
                .and_then(|pipe| pipe.overflowed().then_some(pipe.limit))
        };
        over(&self.stdout)
            .map(|l| (l, "stdout"))
            .or_else(|| over(&self.stderr).map(|l| (l, "stderr")))
            .map(|(limit, stream)| overflow_error(limit, stream))
    }

    /// Throws away unreported output (and a past overflow).
    pub(crate) fn discard_output(&self) {
        let _ = self.take();
    }

    /// The captured output of a call; an error if a stream went past its
    /// limit. The buffers are handed over, not copied.
    pub(crate) fn into_outputs(self) -> Result<(Vec<u8>, Vec<u8>)> {
        if let Some(overflow) = self.overflow() {
            return Err(overflow);
        }
        Ok(self.take())
    }
}

fn overflow_error(limit: usize, stream: &str) -> Error {
    Error::MemoryLimit {
        message: format!("the guest wrote more than the {limit}-byte capture limit to {stream}"),
    }
}

fn denied(capability: &str, what: &str) -> wasmtime::Error {
    abort(Error::CapabilityDenied {
        capability: capability.to_string(),
        detail: format!("the guest called `{what}`"),
    })
}

/// Adds WASI p1 to the core linker and p2 to the component linker (their
/// async flavour for [`Exec::Async`] linkers), then shadows the clock and
/// random functions that `key` does not grant.
pub(crate) fn add_to_linkers<T: WasiHost>(
    core: &mut wasmtime::Linker<T>,
    component: &mut ComponentLinker<T>,
    key: &GrantKey,
    exec: Exec,
) -> Result<()> {
    use super::link_setup;
    match exec {
        Exec::Sync => {
            wasmtime_wasi::p1::add_to_linker_sync(core, T::wasi_p1).map_err(link_setup)?;
            wasmtime_wasi::p2::add_to_linker_sync(component).map_err(link_setup)?;
        }
        Exec::Async => {
            wasmtime_wasi::p1::add_to_linker_async(core, T::wasi_p1).map_err(link_setup)?;
            wasmtime_wasi::p2::add_to_linker_async(component).map_err(link_setup)?;
        }
    }
    core.allow_shadowing(true);
    component.allow_shadowing(true);
    const P1: &str = "wasi_snapshot_preview1";
    if !key.clocks() {
        core.func_wrap(
            P1,
            "clock_time_get",
            |_: i32, _: i64, _: i32| -> wasmtime::Result<i32> {
                Err(denied("clocks", "clock_time_get"))
            },
        )
        .map_err(link_setup)?;
        core.func_wrap(
            P1,
            "clock_res_get",
            |_: i32, _: i32| -> wasmtime::Result<i32> { Err(denied("clocks", "clock_res_get")) },
        )
        .map_err(link_setup)?;
        deny_p2(
            component,
            "clocks",
            "wasi:clocks/wall-clock",
            &["now", "resolution"],
        )?;
        deny_p2(
            component,
            "clocks",
            "wasi:clocks/monotonic-clock",
            &[
                "now",
                "resolution",
                "subscribe-instant",
                "subscribe-duration",
            ],
        )?;
    }
    if !key.random() {
        core.func_wrap(
            P1,
            "random_get",
            |_: i32, _: i32| -> wasmtime::Result<i32> { Err(denied("random", "random_get")) },
        )
        .map_err(link_setup)?;
        deny_p2(
            component,
            "random",
            "wasi:random/random",
            &["get-random-bytes", "get-random-u64"],
        )?;
        deny_p2(
            component,
            "random",
            "wasi:random/insecure",
            &["get-insecure-random-bytes", "get-insecure-random-u64"],
        )?;
        deny_p2(
            component,
            "random",
            "wasi:random/insecure-seed",
            &["insecure-seed"],
        )?;
    }
    core.allow_shadowing(false);
    component.allow_shadowing(false);
    Ok(())
}

fn deny_p2<T: 'static>(
    linker: &mut ComponentLinker<T>,
    capability: &'static str,
    interface: &str,
    funcs: &[&'static str],
) -> Result<()> {
    use super::link_setup;
    let mut inst = linker
        .instance(&format!("{interface}@{P2_VERSION}"))
        .map_err(link_setup)?;
    for &f in funcs {
        let what = format!("{interface}#{f}");
        inst.func_new(f, move |_, _, _, _| Err(denied(capability, &what)))
            .map_err(link_setup)?;
    }
    Ok(())
}
