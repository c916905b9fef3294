//! The Extism kernel: the host side of the Extism plugin ABI, which
//! plugins built with any Extism PDK import from `extism:host/env`.
//!
//! * **memory** — a second address space the host keeps for the plugin
//!   ("kernel memory"): `alloc`, `free`, `length`, `length_unsafe`,
//!   `load_u8`, `load_u64`, `store_u8`, `store_u64`. Offsets are 64-bit and
//!   0 means "none". Every store must fall inside a live block: a guest
//!   writing past the end of a block stops with a `trap` naming the offset.
//!   Kernel memory counts against the call's memory limit.
//! * **input and output** — `input_length`, `input_load_u8`,
//!   `input_load_u64`, `input_offset`, `output_set`, `error_set`,
//!   `error_get`.
//! * **config and vars** — `config_get` reads the granted configuration
//!   ([`crate::Capabilities::with_config`]); `var_get`/`var_set` keep
//!   values across calls on one [`crate::Instance`] (a fresh sandbox starts
//!   without any), at most [`MAX_VAR_BYTES`] in all.
//! * **HTTP** — `http_request` (with `http_status_code` and
//!   `http_headers`) to the hosts granted by [`crate::capabilities::Http`].
//! * **logging** — `log_trace`, `log_debug`, `log_info`, `log_warn`,
//!   `log_error`, `get_log_level`: lines go to the call's
//!   [`crate::Outcome::logs`], through the log capability's buffer.
//! * **key-value** — with the key-value grant, `kv_get`, `kv_set` and
//!   `kv_delete` in `extism:host/user`, on the grant of
//!   [`crate::capabilities::kv`].
//!
//! Config, vars and the HTTP grant are reached only through this ABI, so
//! their state is part of the kernel's [`PluginState`]. The kernel reaches
//! the rest of a store's data through [`ExtismHost`], and links into any
//! store whose data implements it. As in Extism, the built-in host
//! functions take ownership of the blocks passed to them (the key of
//! `config_get`, the request of `http_request`); user host functions
//! ([`crate::HostFunctions::extism`]) do not.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wasmtime::Caller;

use crate::capabilities::http::{self, Http};
use crate::capabilities::kv::{DEFAULT_BUCKET, KvHost, grant};
use crate::capabilities::log::LogHost;
use crate::capabilities::{Capabilities, LogLevel, LogRecord, link_setup};
use crate::error::{Error, HostAbort, Result, abort};
use crate::limits::Limits;

/// What the Extism kernel needs of a store's data: its own
/// [`PluginState`], the log lines, the key-value grant and the call's
/// deadline (which bounds `http_request`).
pub(crate) trait ExtismHost: LogHost + KvHost {
    /// The kernel's state.
    fn plugin(&mut self) -> &mut PluginState;
    /// When the current call must stop.
    fn deadline(&self) -> Option<Instant>;
}

/// The import module of the Extism kernel and built-in host functions.
pub const ENV_MODULE: &str = "extism:host/env";
/// The import module of user host functions.
pub const USER_MODULE: &str = "extism:host/user";
/// Most bytes all of one instance's vars may hold (keys and values), as in Extism.
pub const MAX_VAR_BYTES: usize = 1 << 20;

/// The first offset handed out: never 0 (which means "none"), 8-aligned.
const BASE: u64 = 8;

#[derive(Debug, Clone, Copy)]
struct Block {
    len: u64,
    cap: u64,
    free: bool,
}

/// The plugin's kernel memory: a byte arena with blocks, reset per call.
#[derive(Debug, Default)]
pub(crate) struct Kernel {
    mem: Vec<u8>,
    blocks: BTreeMap<u64, Block>,
    /// Free blocks by (capacity, offset), for best-fit reuse.
    free: BTreeSet<(u64, u64)>,
    /// The live block the last store went to: stores are mostly sequential.
    last: (u64, u64),
    limit: u64,
    input: Bytes,
    input_offset: u64,
    output: Option<(u64, u64)>,
    error: u64,
}

fn trap(message: String) -> wasmtime::Error {
    abort(Error::Trap {
        trap_code: None,
        message,
        backtrace: None,
    })
}

impl Kernel {
    pub(crate) fn reset(&mut self, input: Bytes) {
        // A call that used a lot leaves a lot reserved; give it back.
        if self.mem.capacity() > 1 << 20 {
            self.mem = Vec::new();
        } else {
            self.mem.clear();
        }
        self.blocks.clear();
        self.free.clear();
        self.last = (0, 0);
        self.input = input;
        self.input_offset = 0;
        self.output = None;
        self.error = 0;
    }

    fn alloc(&mut self, n: u64) -> wasmtime::Result<u64> {
        if n == 0 {
            return Ok(0);
        }
        if let Some(&(cap, offset)) = self.free.range((n, 0)..).next() {
            self.free.remove(&(cap, offset));
            self.blocks.insert(
                offset,
                Block {
                    len: n,
                    cap,
                    free: false,
                },
            );
            let start = (offset - BASE) as usize;
            self.mem[start..start + n as usize].fill(0);
            return Ok(offset);
        }
        let cap = n.div_ceil(8) * 8;
        let start = self.mem.len() as u64;
        let end = start.saturating_add(cap);
        if end > self.limit {
            return Err(abort(Error::MemoryLimit {
                message: format!(
                    "Extism kernel memory: allocating {n} bytes would exceed the limit of {} bytes",
                    self.limit
                ),
            }));
        }
        self.mem.resize(end as usize, 0);
        let offset = start + BASE;
        self.blocks.insert(
            offset,
            Block {
                len: n,
                cap,
                free: false,
            },
        );
        Ok(offset)
    }

    fn free(&mut self, offset: u64) {
        let Some(block) = self.blocks.get_mut(&offset) else {
            return;
        };
        if block.free {
            return;
        }
        block.free = true;
        let cap = block.cap;
        if self.last.0 == offset {
            self.last = (0, 0);
        }
        if offset - BASE + cap == self.mem.len() as u64 {
            // The last block: give its bytes back to the arena.
            self.blocks.remove(&offset);
            self.mem.truncate((offset - BASE) as usize);
        } else {
            self.free.insert((cap, offset));
        }
    }

    /// The length of the live block starting at `offset`, or 0.
    fn length(&self, offset: u64) -> u64 {
        match self.blocks.get(&offset) {
            Some(b) if !b.free => b.len,
            _ => 0,
        }
    }

    /// The bytes of the live block at `offset`.
    fn block(&self, offset: u64, what: &str) -> wasmtime::Result<&[u8]> {
        match self.blocks.get(&offset) {
            Some(b) if !b.free => {
                let start = (offset - BASE) as usize;
                Ok(&self.mem[start..start + b.len as usize])
            }
            _ => Err(trap(format!(
                "Extism: {what}: offset {offset} is not the start of an allocated block"
            ))),
        }
    }

    fn load<const N: usize>(&self, offset: u64) -> wasmtime::Result<[u8; N]> {
        offset
            .checked_sub(BASE)
            .and_then(|i| {
                let i = usize::try_from(i).ok()?;
                self.mem.get(i..i.checked_add(N)?)
            })
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| {
                trap(format!(
                    "Extism: the guest read {N} byte(s) at offset {offset}, outside its {}-byte kernel memory",
                    self.mem.len()
                ))
            })
    }

    /// Writes `N` bytes (a fixed size, so the copy is a plain store, not a
    /// `memcpy` call: the PDKs write 8 bytes per host call).
    #[inline]
    fn store<const N: usize>(&mut self, offset: u64, bytes: [u8; N]) -> wasmtime::Result<()> {
        let end = offset.saturating_add(N as u64);
        if offset >= self.last.0 && end <= self.last.1 {
            let i = (offset - BASE) as usize;
            if let Some(dst) = self.mem.get_mut(i..i + N) {
                dst.copy_from_slice(&bytes);
                return Ok(());
            }
        }
        self.store_slow(offset, &bytes)
    }

    /// A store outside the block of the previous one: find its block.
    #[inline(never)]
    fn store_slow(&mut self, offset: u64, bytes: &[u8]) -> wasmtime::Result<()> {
        let n = bytes.len() as u64;
        let end = offset.saturating_add(n);
        let block = self
            .blocks
            .range(..=offset)
            .next_back()
            .filter(|(start, b)| !b.free && end <= **start + b.len);
        match block {
            Some((start, b)) => self.last = (*start, *start + b.len),
            None => {
                return Err(trap(format!(
                    "Extism: the guest wrote {n} byte(s) at offset {offset}, outside any allocated block \
                     (past the end of a block, or into freed memory)"
                )));
            }
        }
        let i = (offset - BASE) as usize;
        self.mem[i..i + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    fn input_load<const N: usize>(&self, offset: u64) -> wasmtime::Result<[u8; N]> {
        usize::try_from(offset)
            .ok()
            .and_then(|i| self.input.get(i..i.checked_add(N)?))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| {
                trap(format!(
                    "Extism: the guest read {N} byte(s) of input at {offset}, past its {}-byte end",
                    self.input.len()
                ))
            })
    }

    /// A new block holding `bytes`.
    fn put(&mut self, bytes: &[u8]) -> wasmtime::Result<u64> {
        let offset = self.alloc(bytes.len() as u64)?;
        if offset != 0 {
            let i = (offset - BASE) as usize;
            self.mem[i..i + bytes.len()].copy_from_slice(bytes);
        }
        Ok(offset)
    }

    /// Takes a block passed to the host (the host owns it now): its bytes.
    fn take(&mut self, offset: u64, what: &str) -> wasmtime::Result<Vec<u8>> {
        let bytes = self.block(offset, what)?.to_vec();
        self.free(offset);
        Ok(bytes)
    }

    fn take_string(&mut self, offset: u64, what: &str) -> wasmtime::Result<String> {
        String::from_utf8(self.take(offset, what)?)
            .map_err(|_| trap(format!("Extism: {what} is not UTF-8 text")))
    }

    /// The plugin's error message, if it set one.
    pub(crate) fn error_message(&self) -> Option<String> {
        if self.error == 0 {
            return None;
        }
        Some(match self.block(self.error, "error") {
            Ok(b) => String::from_utf8_lossy(b).into_owned(),
            Err(_) => format!("(the plugin set an error at invalid offset {})", self.error),
        })
    }

    /// The output the plugin set.
    pub(crate) fn output(&self) -> Result<Bytes> {
        let Some((offset, len)) = self.output else {
            return Ok(Bytes::new());
        };
        if len == 0 {
            return Ok(Bytes::new());
        }
        offset
            .checked_sub(BASE)
            .and_then(|i| {
                let i = usize::try_from(i).ok()?;
                self.mem.get(i..i.checked_add(usize::try_from(len).ok()?)?)
            })
            .map(Bytes::copy_from_slice)
            .ok_or_else(|| Error::Trap {
                trap_code: None,
                message: format!(
                    "Extism: the output ({len} bytes at offset {offset}) lies outside the plugin's {}-byte kernel memory",
                    self.mem.len()
                ),
                backtrace: None,
            })
    }
}

/// Everything the Extism host functions keep for one sandbox.
#[derive(Debug, Default)]
pub(crate) struct PluginState {
    pub(crate) kernel: Kernel,
    vars: BTreeMap<String, Vec<u8>>,
    config: Arc<BTreeMap<String, String>>,
    http: Option<Arc<Http>>,
    http_status: u16,
    http_headers: BTreeMap<String, String>,
}

impl PluginState {
    pub(crate) fn new(caps: &Capabilities, limits: &Limits) -> Self {
        PluginState {
            kernel: Kernel {
                limit: limits.max_memory_bytes,
                ..Kernel::default()
            },
            config: caps.config.clone(),
            http: caps.http.clone(),
            ..PluginState::default()
        }
    }

    /// The vars, for a snapshot.
    pub(crate) fn vars(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.vars
    }

    /// Vars survive a re-created instance (see [`crate::Instance`]).
    pub(crate) fn take_vars(&mut self) -> BTreeMap<String, Vec<u8>> {
        std::mem::take(&mut self.vars)
    }

    pub(crate) fn set_vars(&mut self, vars: BTreeMap<String, Vec<u8>>) {
        self.vars = vars;
    }

    pub(crate) fn set_var(&mut self, key: String, value: Vec<u8>) -> Result<()> {
        check_var_room(&self.vars, &key, value.len()).map_err(|e| {
            match e.downcast::<HostAbort>() {
                Ok(HostAbort(e)) => e,
                Err(e) => Error::internal(e.to_string()),
            }
        })?;
        self.vars.insert(key, value);
        Ok(())
    }

    pub(crate) fn var(&self, key: &str) -> Option<&[u8]> {
        self.vars.get(key).map(Vec::as_slice)
    }
}

/// Whether `key` may be set to a value of `len` bytes within [`MAX_VAR_BYTES`].
fn check_var_room(vars: &BTreeMap<String, Vec<u8>>, key: &str, len: usize) -> wasmtime::Result<()> {
    let used: usize = vars
        .iter()
        .filter(|(name, _)| name.as_str() != key)
        .map(|(name, val)| name.len() + val.len())
        .sum();
    if used + key.len() + len > MAX_VAR_BYTES {
        return Err(abort(Error::MemoryLimit {
            message: format!(
                "Extism vars: setting `{key}` ({len} bytes) would exceed the {MAX_VAR_BYTES}-byte var store"
            ),
        }));
    }
    Ok(())
}

/// Runs a user host function: reads the guest's input block, calls `func`,
/// returns a new block with its output.
pub(crate) fn user_call<T: ExtismHost>(
    caller: &mut Caller<'_, T>,
    name: &str,
    offset: i64,
    func: &ExtismFn,
) -> wasmtime::Result<i64> {
    let input = user_input(caller, name, offset)?;
    let output =
        func(&input).map_err(|e| wasmtime::Error::msg(format!("host function `{name}`: {e}")))?;
    user_output(caller, &output)
}

/// The input block of a user host function. Unlike the built-in
/// functions, user functions leave the input block to the guest (the PDKs
/// free it themselves).
pub(crate) fn user_input<T: ExtismHost>(
    caller: &mut Caller<'_, T>,
    name: &str,
    offset: i64,
) -> wasmtime::Result<Vec<u8>> {
    if offset == 0 {
        return Ok(Vec::new());
    }
    Ok(kernel(caller)
        .block(
            offset as u64,
            &format!("the input of host function `{name}`"),
        )?
        .to_vec())
}

/// A new block holding a user host function's output.
pub(crate) fn user_output<T: ExtismHost>(
    caller: &mut Caller<'_, T>,
    output: &[u8],
) -> wasmtime::Result<i64> {
    Ok(kernel(caller).put(output)? as i64)
}

/// The bytes of the block at `offset` that the guest passed to a user host
/// function (offset 0 is empty). The block stays the guest's.
pub(crate) fn block_bytes<T: ExtismHost>(
    caller: &mut Caller<'_, T>,
    offset: i64,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    if offset == 0 {
        return Ok(Vec::new());
    }
    Ok(kernel(caller).block(offset as u64, what)?.to_vec())
}

/// A new block holding `bytes`, for a user host function to return
/// (0 when `bytes` is empty).
pub(crate) fn new_block<T: ExtismHost>(
    caller: &mut Caller<'_, T>,
    bytes: &[u8],
) -> wasmtime::Result<i64> {
    Ok(kernel(caller).put(bytes)? as i64)
}

/// A user host function for Extism plugins: bytes in, bytes out.
pub(crate) type ExtismFn = dyn Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync;

type C<'a, T> = Caller<'a, T>;

fn kernel<'a, T: ExtismHost>(c: &'a mut C<'_, T>) -> &'a mut Kernel {
    &mut c.data_mut().plugin().kernel
}

/// Adds `extism:host/env` to a core linker.
pub(crate) fn add_to_linker<T: ExtismHost>(
    linker: &mut wasmtime::Linker<T>,
    kv: bool,
) -> Result<()> {
    let m = ENV_MODULE;
    linker
        .func_wrap(
            m,
            "alloc",
            |mut c: C<'_, T>, n: i64| -> wasmtime::Result<i64> {
                Ok(kernel(&mut c).alloc(n as u64)? as i64)
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "free", |mut c: C<'_, T>, o: i64| {
            kernel(&mut c).free(o as u64)
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "length", |mut c: C<'_, T>, o: i64| {
            kernel(&mut c).length(o as u64) as i64
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "length_unsafe", |mut c: C<'_, T>, o: i64| {
            kernel(&mut c).length(o as u64) as i64
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "load_u8",
            |mut c: C<'_, T>, o: i64| -> wasmtime::Result<i32> {
                Ok(i32::from(kernel(&mut c).load::<1>(o as u64)?[0]))
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "load_u64",
            |mut c: C<'_, T>, o: i64| -> wasmtime::Result<i64> {
                Ok(i64::from_le_bytes(kernel(&mut c).load::<8>(o as u64)?))
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "store_u8", |mut c: C<'_, T>, o: i64, v: i32| {
            kernel(&mut c).store(o as u64, [v as u8])
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "store_u64", |mut c: C<'_, T>, o: i64, v: i64| {
            kernel(&mut c).store(o as u64, v.to_le_bytes())
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "input_length", |mut c: C<'_, T>| {
            kernel(&mut c).input.len() as i64
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "input_load_u8",
            |mut c: C<'_, T>, o: i64| -> wasmtime::Result<i32> {
                Ok(i32::from(kernel(&mut c).input_load::<1>(o as u64)?[0]))
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "input_load_u64",
            |mut c: C<'_, T>, o: i64| -> wasmtime::Result<i64> {
                Ok(i64::from_le_bytes(
                    kernel(&mut c).input_load::<8>(o as u64)?,
                ))
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "input_offset",
            |mut c: C<'_, T>| -> wasmtime::Result<i64> {
                let k = kernel(&mut c);
                if k.input_offset == 0 && !k.input.is_empty() {
                    let input = k.input.clone();
                    k.input_offset = k.put(&input)?;
                }
                Ok(k.input_offset as i64)
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "output_set", |mut c: C<'_, T>, o: i64, len: i64| {
            kernel(&mut c).output = Some((o as u64, len as u64));
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "error_set", |mut c: C<'_, T>, o: i64| {
            kernel(&mut c).error = o as u64;
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "error_get", |mut c: C<'_, T>| {
            kernel(&mut c).error as i64
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "reset", |mut c: C<'_, T>| {
            let input = kernel(&mut c).input.clone();
            kernel(&mut c).reset(input);
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "config_get",
            |mut c: C<'_, T>, o: i64| -> wasmtime::Result<i64> {
                let state = &mut c.data_mut().plugin();
                let key = state.kernel.take_string(o as u64, "config key")?;
                match state.config.get(&key).cloned() {
                    Some(v) => Ok(state.kernel.put(v.as_bytes())? as i64),
                    None => Ok(0),
                }
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "var_get",
            |mut c: C<'_, T>, o: i64| -> wasmtime::Result<i64> {
                let state = &mut c.data_mut().plugin();
                let key = state.kernel.take_string(o as u64, "var key")?;
                match state.vars.get(&key) {
                    Some(v) => {
                        let v = v.clone();
                        Ok(state.kernel.put(&v)? as i64)
                    }
                    None => Ok(0),
                }
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "var_set",
            |mut c: C<'_, T>, k: i64, v: i64| -> wasmtime::Result<()> {
                let state = &mut c.data_mut().plugin();
                let key = state.kernel.take_string(k as u64, "var key")?;
                if v == 0 {
                    state.vars.remove(&key);
                    return Ok(());
                }
                let value = state.kernel.take(v as u64, "var value")?;
                check_var_room(&state.vars, &key, value.len())?;
                state.vars.insert(key, value);
                Ok(())
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "http_request", |mut c: C<'_, T>, req: i64, body: i64| -> wasmtime::Result<i64> {
            // The request is bounded by what is left of the call's time.
            let deadline = c.data().deadline();
            let state = &mut c.data_mut().plugin();
            let raw = state.kernel.take(req as u64, "HTTP request")?;
            let request: http::Request = serde_json::from_slice(&raw).map_err(|e| {
                trap(format!("Extism: the HTTP request is not valid JSON ({{\"url\", \"method\", \"headers\"}}): {e}"))
            })?;
            let body = if body == 0 {
                None
            } else {
                Some(state.kernel.take(body as u64, "HTTP request body")?)
            };
            state.http_status = 0;
            state.http_headers.clear();
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let response =
                http::send(state.http.as_deref(), &request, body.as_deref(), timeout).map_err(abort)?;
            state.http_status = response.status;
            state.http_headers = response.headers;
            Ok(state.kernel.put(&response.body)? as i64)
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(m, "http_status_code", |mut c: C<'_, T>| {
            i32::from(c.data_mut().plugin().http_status)
        })
        .map_err(link_setup)?;
    linker
        .func_wrap(
            m,
            "http_headers",
            |mut c: C<'_, T>| -> wasmtime::Result<i64> {
                let state = &mut c.data_mut().plugin();
                let json = serde_json::to_vec(&state.http_headers)
                    .map_err(|e| trap(format!("Extism: HTTP headers: {e}")))?;
                Ok(state.kernel.put(&json)? as i64)
            },
        )
        .map_err(link_setup)?;
    for (name, level) in [
        ("log_trace", LogLevel::Trace),
        ("log_debug", LogLevel::Debug),
        ("log_info", LogLevel::Info),
        ("log_warn", LogLevel::Warn),
        ("log_error", LogLevel::Error),
    ] {
        linker
            .func_wrap(
                m,
                name,
                move |mut c: C<'_, T>, o: i64| -> wasmtime::Result<()> {
                    let bytes = c.data_mut().plugin().kernel.take(o as u64, "log message")?;
                    let kept = &bytes[..bytes.len().min(crate::capabilities::log::MAX_LINE)];
                    let message = String::from_utf8_lossy(kept).into_owned();
                    c.data_mut().logs().push(LogRecord { level, message });
                    Ok(())
                },
            )
            .map_err(link_setup)?;
    }
    // Every level is kept (the call's log buffer bounds the count).
    linker
        .func_wrap(m, "get_log_level", || 0i32)
        .map_err(link_setup)?;
    if kv {
        let user = USER_MODULE;
        linker
            .func_wrap(user, "kv_get", kv_get::<T>)
            .map_err(link_setup)?;
        linker
            .func_wrap(user, "kv_set", kv_set::<T>)
            .map_err(link_setup)?;
        linker
            .func_wrap(user, "kv_delete", kv_delete::<T>)
            .map_err(link_setup)?;
    }
    Ok(())
}

// ----- key-value: extism:host/user kv_* -----------------------------------

fn kv_get<T: ExtismHost>(mut caller: C<'_, T>, key: i64) -> wasmtime::Result<i64> {
    let key = block_bytes(&mut caller, key, "the key of kv_get")?;
    let kv = grant(caller.data())?;
    kv.check_key("key", key.len()).map_err(abort)?;
    match kv.get_in(DEFAULT_BUCKET, &key).map_err(abort)? {
        None => Ok(0),
        Some(value) => new_block(&mut caller, &value),
    }
}

fn kv_set<T: ExtismHost>(mut caller: C<'_, T>, key: i64, value: i64) -> wasmtime::Result<()> {
    let key = block_bytes(&mut caller, key, "the key of kv_set")?;
    let value = block_bytes(&mut caller, value, "the value of kv_set")?;
    let kv = grant(caller.data())?;
    kv.check_key("key", key.len()).map_err(abort)?;
    kv.check_value(value.len()).map_err(abort)?;
    kv.set_in(DEFAULT_BUCKET, &key, &value).map_err(abort)
}

fn kv_delete<T: ExtismHost>(mut caller: C<'_, T>, key: i64) -> wasmtime::Result<()> {
    let key = block_bytes(&mut caller, key, "the key of kv_delete")?;
    let kv = grant(caller.data())?;
    kv.check_key("key", key.len()).map_err(abort)?;
    kv.delete_in(DEFAULT_BUCKET, &key).map_err(abort)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Kernel {
        Kernel {
            limit: 1 << 20,
            ..Kernel::default()
        }
    }

    #[test]
    fn blocks_are_allocated_stored_and_freed() {
        let mut k = kernel();
        let a = k.alloc(5).unwrap();
        assert_ne!(a, 0);
        assert_eq!(k.length(a), 5);
        k.store(a, *b"hello").unwrap();
        assert_eq!(k.block(a, "t").unwrap(), b"hello");
        // Past the end of the block: refused, and the message says where.
        let e = k.store(a + 3, [0; 8]).unwrap_err();
        assert!(
            format!("{e}").contains("outside any allocated block"),
            "{e}"
        );
        let b = k.alloc(16).unwrap();
        k.free(a);
        assert_eq!(k.length(a), 0);
        assert!(k.store(a, *b"x").is_err(), "freed memory is not writable");
        // Best fit reuses the freed block, zeroed.
        let c = k.alloc(3).unwrap();
        assert_eq!(c, a);
        assert_eq!(k.block(c, "t").unwrap(), &[0, 0, 0]);
        k.free(b);
        assert_eq!(
            k.mem.len() as u64,
            b - BASE,
            "the last block returns to the arena"
        );
        assert_eq!(k.alloc(0).unwrap(), 0);
    }

    #[test]
    fn kernel_memory_is_bounded() {
        let mut k = Kernel {
            limit: 64,
            ..Kernel::default()
        };
        k.alloc(60).unwrap();
        let e = k.alloc(8).unwrap_err();
        let e = e.downcast::<HostAbort>().unwrap().0;
        assert_eq!(e.code(), crate::ErrorCode::MemoryLimit);
    }

    #[test]
    fn loads_and_input_are_bounds_checked() {
        let mut k = kernel();
        k.reset(Bytes::from_static(b"0123456789"));
        assert_eq!(&k.input_load::<8>(0).unwrap(), b"01234567");
        assert!(k.input_load::<8>(3).is_err());
        assert_eq!(k.input_load::<1>(9).unwrap(), [b'9']);
        let a = k.put(b"abcdefgh").unwrap();
        assert_eq!(&k.load::<8>(a).unwrap(), b"abcdefgh");
        assert!(k.load::<8>(a + 1).is_err());
        assert!(k.load::<1>(0).is_err());
        k.output = Some((a, 8));
        assert_eq!(&k.output().unwrap()[..], b"abcdefgh");
        k.output = Some((a, 9));
        assert!(k.output().is_err());
    }
}
