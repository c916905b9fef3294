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

use std::path::PathBuf;

use wasmtime::component::Linker as ComponentLinker;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::GrantKey;
use crate::call::{CallOptions, Output, Stdin};
use crate::error::{Error, HostAbort, Result};
use crate::sandbox::HostState;

/// The WASI interface version wasmtime-wasi 48 defines; used to shadow
/// ungranted interfaces in the component linker.
const P2_VERSION: &str = "0.2.12";

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
    pub fn new() -> Self {
        Wasi::default()
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

    /// A context builder with these grants and the call's stdio.
    pub(crate) fn builder(&self, opts: &CallOptions) -> Result<(WasiCtxBuilder, Captures)> {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.args).envs(&self.env);
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
        match &opts.stdin {
            Stdin::Empty => {}
            Stdin::Bytes(bytes) => {
                b.stdin(MemoryInputPipe::new(bytes.clone()));
            }
            Stdin::Inherit => {
                b.inherit_stdin();
            }
        }
        let mut captures = Captures::default();
        match opts.stdout {
            Output::Discard => {}
            Output::Inherit => {
                b.inherit_stdout();
            }
            Output::Capture { limit } => {
                // One byte of headroom tells "exactly at the limit" from "past it".
                let pipe = MemoryOutputPipe::new(limit.saturating_add(1));
                b.stdout(pipe.clone());
                captures.stdout = Some((pipe, limit));
            }
        }
        match opts.stderr {
            Output::Discard => {}
            Output::Inherit => {
                b.inherit_stderr();
            }
            Output::Capture { limit } => {
                let pipe = MemoryOutputPipe::new(limit.saturating_add(1));
                b.stderr(pipe.clone());
                captures.stderr = Some((pipe, limit));
            }
        }
        Ok((b, captures))
    }
}

/// Captured output pipes of one call, with their limits.
#[derive(Default)]
pub(crate) struct Captures {
    pub(crate) stdout: Option<(MemoryOutputPipe, usize)>,
    pub(crate) stderr: Option<(MemoryOutputPipe, usize)>,
}

impl Captures {
    /// What the guest wrote to stdout and stderr so far (copies; for the
    /// error path, while the store still holds the pipes).
    pub(crate) fn take(&self) -> (Vec<u8>, Vec<u8>) {
        let read = |c: &Option<(MemoryOutputPipe, usize)>| match c {
            Some((pipe, limit)) => {
                let mut bytes = pipe.contents().to_vec();
                bytes.truncate(*limit);
                bytes
            }
            None => Vec::new(),
        };
        (read(&self.stdout), read(&self.stderr))
    }

    /// An error if the guest wrote more than a capture limit allows: its
    /// output would otherwise be silently cut short.
    pub(crate) fn overflow(&self) -> Option<Error> {
        let over = |c: &Option<(MemoryOutputPipe, usize)>| {
            c.as_ref().and_then(|(pipe, limit)| {
                let len = pipe.contents().len();
                (len > *limit).then_some(*limit)
            })
        };
        over(&self.stdout)
            .map(|l| (l, "stdout"))
            .or_else(|| over(&self.stderr).map(|l| (l, "stderr")))
            .map(|(limit, stream)| overflow_error(limit, stream))
    }

    /// The captured output, taken without copying once the store (which
    /// holds the other handles to the pipes) has been dropped; an error if a
    /// stream went past its limit.
    pub(crate) fn into_outputs(self) -> Result<(Vec<u8>, Vec<u8>)> {
        fn one(c: Option<(MemoryOutputPipe, usize)>, stream: &str) -> Result<Vec<u8>> {
            let Some((pipe, limit)) = c else {
                return Ok(Vec::new());
            };
            // Still shared only if the store were alive: never lose output silently.
            let bytes: Vec<u8> = pipe.try_into_inner().map(Into::into).ok_or_else(|| {
                Error::internal(format!("captured {stream} is still in use after the call"))
            })?;
            if bytes.len() > limit {
                return Err(overflow_error(limit, stream));
            }
            Ok(bytes)
        }
        Ok((one(self.stdout, "stdout")?, one(self.stderr, "stderr")?))
    }
}

fn overflow_error(limit: usize, stream: &str) -> Error {
    Error::MemoryLimit {
        message: format!("the guest wrote more than the {limit}-byte capture limit to {stream}"),
    }
}

fn denied(capability: &str, what: &str) -> wasmtime::Error {
    wasmtime::Error::new(HostAbort(Error::CapabilityDenied {
        capability: capability.to_string(),
        detail: format!("the guest called `{what}`"),
    }))
}

/// Adds WASI p1 to the core linker and p2 to the component linker, then
/// shadows the clock and random functions that `key` does not grant.
pub(crate) fn add_to_linkers(
    core: &mut wasmtime::Linker<HostState>,
    component: &mut ComponentLinker<HostState>,
    key: &GrantKey,
) -> Result<()> {
    use super::link_setup;
    wasmtime_wasi::p1::add_to_linker_sync(core, HostState::wasi_p1).map_err(link_setup)?;
    wasmtime_wasi::p2::add_to_linker_sync(component).map_err(link_setup)?;
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

fn deny_p2(
    linker: &mut ComponentLinker<HostState>,
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
