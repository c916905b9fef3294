//! The one error taxonomy of wasmhost.
//!
//! Every failure the library, the CLI and the HTTP API report is an [`Error`]
//! whose [`Error::code`] is one of a fixed set of stable, snake_case
//! [`ErrorCode`]s. Codes never change meaning; new ones may be added.
//!
//! ```
//! use wasmhost::{Error, ErrorCode};
//! let err = Error::bad_input("fuel must be a positive integer");
//! assert_eq!(err.code(), ErrorCode::BadInput);
//! assert_eq!(err.code().as_str(), "bad_input");
//! ```

use std::fmt;
use std::time::Duration;

/// A `Result` whose error is a wasmhost [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable machine-readable error codes.
///
/// The string form ([`ErrorCode::as_str`]) is what the CLI prints as
/// `error[code]` and what the HTTP API returns in its JSON errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The bytes are not a valid WebAssembly module, component or WAT text.
    InvalidModule,
    /// The module imports something that was not granted or does not exist.
    LinkError,
    /// The guest used a capability that exists but was not granted.
    CapabilityDenied,
    /// The call ran past its wall-clock timeout.
    Timeout,
    /// The call consumed all the fuel it was given.
    OutOfFuel,
    /// The guest tried to grow memory (or a table, or instance count) past its limit.
    MemoryLimit,
    /// The guest exhausted its wasm stack.
    StackOverflow,
    /// The guest trapped (unreachable, division by zero, out-of-bounds access…).
    Trap,
    /// A WASI command exited with a non-zero status.
    Exit,
    /// The guest reported a failure of its own (an Extism plugin's error,
    /// an AssemblyScript `abort`).
    GuestError,
    /// A module, file or export that was asked for does not exist.
    NotFound,
    /// The caller's input was malformed (arguments, options, sizes…).
    BadInput,
    /// Stored bytes do not match their digest (corrupted at rest or in transit).
    Corrupt,
    /// A snapshot was taken of another module than the one it was given
    /// to (see [`crate::Snapshot`]).
    SnapshotMismatch,
    /// The host is at capacity (every pooled instance slot or async fiber
    /// stack is in use): nothing is wrong with the call, try again later.
    Overloaded,
    /// Something the host needed could not be used: a remote service (an
    /// OCI registry, a cloud module store) that could not be reached or did not
    /// answer as one, a full disk, a state directory another process
    /// holds. Nothing is wrong with the input and nothing was applied: try
    /// again later.
    Unavailable,
    /// The host itself failed (I/O on the state directory, engine setup).
    Internal,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::InvalidModule,
        ErrorCode::LinkError,
        ErrorCode::CapabilityDenied,
        ErrorCode::Timeout,
        ErrorCode::OutOfFuel,
        ErrorCode::MemoryLimit,
        ErrorCode::StackOverflow,
        ErrorCode::Trap,
        ErrorCode::Exit,
        ErrorCode::GuestError,
        ErrorCode::NotFound,
        ErrorCode::BadInput,
        ErrorCode::Corrupt,
        ErrorCode::SnapshotMismatch,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The stable snake_case name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidModule => "invalid_module",
            ErrorCode::LinkError => "link_error",
            ErrorCode::CapabilityDenied => "capability_denied",
            ErrorCode::Timeout => "timeout",
            ErrorCode::OutOfFuel => "out_of_fuel",
            ErrorCode::MemoryLimit => "memory_limit",
            ErrorCode::StackOverflow => "stack_overflow",
            ErrorCode::Trap => "trap",
            ErrorCode::Exit => "exit",
            ErrorCode::GuestError => "guest_error",
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadInput => "bad_input",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::SnapshotMismatch => "snapshot_mismatch",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One import a module needs that the host does not provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingImport {
    /// Import module (core) or instance (component) name.
    pub module: String,
    /// Item name; empty for a whole missing component instance.
    pub name: String,
    /// The kind of item, e.g. `func`, `memory`, `instance`.
    pub kind: String,
}

impl fmt::Display for MissingImport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{} `{}`", self.kind, self.module)
        } else {
            write!(f, "{} `{}::{}`", self.kind, self.module, self.name)
        }
    }
}

/// Every error wasmhost reports. See [`Error::code`] for the stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a valid module: the validator's message and, when known, the byte offset.
    #[error("invalid module: {message}{}", offset.map(|o| format!(" (at byte offset {o:#x})")).unwrap_or_default())]
    InvalidModule {
        /// What the validator or parser said.
        message: String,
        /// Byte offset into the module where the problem was found.
        offset: Option<usize>,
    },

    /// Imports that nothing granted provides; lists every one of them.
    #[error("{}", link_message(missing, detail))]
    Link {
        /// Every import that could not be satisfied.
        missing: Vec<MissingImport>,
        /// Extra detail from the linker (for example a type mismatch).
        detail: Option<String>,
    },

    /// The guest called into a capability that was not granted.
    #[error("capability denied: `{capability}` was not granted ({detail})")]
    CapabilityDenied {
        /// The capability's name, e.g. `clocks` or `random`.
        capability: String,
        /// What the guest tried to do.
        detail: String,
    },

    /// The wall-clock deadline passed.
    #[error("timeout: the call did not finish within {}", humanize(*limit))]
    Timeout {
        /// The configured deadline.
        limit: Duration,
    },

    /// Loading a module (waiting for a compile slot, then compiling) took
    /// longer than [`crate::CompileConfig::timeout`].
    #[error("timeout: compiling the module took longer than {}", humanize(*limit))]
    CompileTimeout {
        /// The configured compile deadline.
        limit: Duration,
    },

    /// The guest used up its fuel.
    #[error("out of fuel: the call consumed all {limit} units of fuel")]
    OutOfFuel {
        /// The fuel the call started with.
        limit: u64,
    },

    /// A memory, table or instance limit was hit.
    #[error("memory limit: {message}")]
    MemoryLimit {
        /// What was exceeded, with the numbers.
        message: String,
    },

    /// The guest ran out of wasm stack.
    #[error(
        "stack overflow: the guest exhausted its {max_stack}-byte wasm stack{}",
        backtrace_suffix(backtrace)
    )]
    StackOverflow {
        /// The configured maximum stack in bytes.
        max_stack: usize,
        /// Wasm backtrace, when available.
        backtrace: Option<String>,
    },

    /// Any other trap, with its trap code and wasm backtrace.
    #[error("trap: {message}{}", backtrace_suffix(backtrace))]
    Trap {
        /// Wasmtime's trap code name (e.g. `UnreachableCodeReached`), if the trap has one.
        trap_code: Option<String>,
        /// Human-readable description.
        message: String,
        /// Wasm backtrace, when available.
        backtrace: Option<String>,
    },

    /// A WASI command exited with a non-zero status.
    #[error("exit: the guest exited with status {code}{}", stderr_suffix(stderr))]
    Exit {
        /// The exit status the guest gave to `proc_exit` / `wasi:cli/exit`.
        code: i32,
        /// Captured standard output (empty when not captured).
        stdout: Vec<u8>,
        /// Captured standard error (empty when not captured).
        stderr: Vec<u8>,
    },

    /// The guest itself reported a failure: an Extism plugin set an error
    /// or returned non-zero, an AssemblyScript module called `abort`.
    #[error("guest error: {message}")]
    Guest {
        /// The guest's own message.
        message: String,
        /// The status the guest returned (an Extism plugin's return code), if any.
        status: Option<i32>,
    },

    /// Something asked for does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was not found.
        what: String,
    },

    /// The caller's input was malformed.
    #[error("bad input: {message}")]
    BadInput {
        /// What is wrong and what would be right.
        message: String,
    },

    /// Stored bytes do not match their digest; they were not used.
    #[error(
        "corrupt: {what} does not match its digest {expected} (found {actual}); it was not used"
    )]
    Corrupt {
        /// What was read (a path or reference).
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest of what was actually read.
        actual: String,
    },

    /// Stored data (a snapshot, an actor record) fails its own checks; it
    /// was not used.
    #[error("corrupt: {what}: {message}; it was not used")]
    CorruptData {
        /// What was read.
        what: String,
        /// What is wrong with it.
        message: String,
    },

    /// A snapshot of one module given to another.
    #[error(
        "snapshot_mismatch: the snapshot is of module {found}, not of {expected}{}",
        hint.as_deref().map(|h| format!(": {h}")).unwrap_or_default()
    )]
    SnapshotMismatch {
        /// The digest of the module it was given to.
        expected: String,
        /// The digest of the module it was taken of.
        found: String,
        /// What the caller can do about it.
        hint: Option<String>,
    },

    /// The host is at capacity.
    #[error("overloaded: {message}")]
    Overloaded {
        /// What ran out.
        message: String,
    },

    /// Something the host needed could not be used (see
    /// [`ErrorCode::Unavailable`]).
    #[error("unavailable: {message}")]
    Unavailable {
        /// What could not be reached, and why.
        message: String,
    },

    /// The host itself failed.
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

impl Error {
    /// The `link_error` of a component a linker could not pre-link
    /// (wasmtime's `err`): every import whose name starts with none of the
    /// `provided` prefixes (`"wasi:io/"`, say) is listed as missing. For
    /// embedders linking components on a [`crate::Runtime`]'s engine
    /// themselves (the server's wasi:http worker does), so that they report
    /// it as the library does.
    pub fn unlinked_component(
        component: &wasmtime::component::Component,
        provided: &[&str],
        err: wasmtime::Error,
    ) -> Self {
        let missing = component
            .component_type()
            .imports(component.engine())
            .filter(|(name, _)| !provided.iter().any(|p| name.starts_with(p)))
            .map(|(name, _)| MissingImport {
                module: name.to_string(),
                name: String::new(),
                kind: "instance".to_string(),
            })
            .collect();
        Error::Link {
            missing,
            detail: Some(format!("{err:#}")),
        }
    }

    /// The error a wasmtime failure of a guest call stands for, judged
    /// against the call's limits and the limiter of its store: `timeout`,
    /// `out_of_fuel`, `stack_overflow`, `memory_limit`, `overloaded` (a full
    /// instance pool), `exit` (without captured output), a host function's
    /// own error, or else `trap`. Embedders that drive wasmtime themselves
    /// on a [`crate::Runtime`]'s engine (the server's wasi:http worker does)
    /// use it to report failures exactly as the library does.
    pub fn from_wasmtime(
        err: wasmtime::Error,
        limiter: &crate::limits::Limiter,
        limits: &crate::Limits,
        max_wasm_stack: usize,
    ) -> Error {
        use wasmtime::{Trap, WasmBacktrace};
        let backtrace = err.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string());
        let err = match err.downcast::<HostAbort>() {
            Ok(HostAbort(e)) => return e,
            Err(err) => err,
        };
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return Error::Exit {
                code: exit.0,
                stdout: Vec::new(),
                stderr: Vec::new(),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                return Error::Timeout {
                    limit: limits.timeout.unwrap_or_default(),
                };
            }
            Some(Trap::OutOfFuel) => {
                return Error::OutOfFuel {
                    limit: limits.fuel.unwrap_or(u64::MAX),
                };
            }
            Some(Trap::StackOverflow) => {
                return Error::StackOverflow {
                    max_stack: max_wasm_stack,
                    backtrace,
                };
            }
            _ => {}
        }
        if let Some(full) = err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return Error::Overloaded {
                message: format!(
                    "{full}: every pooled slot is in use (RuntimeConfig::pool sizes the pool)"
                ),
            };
        }
        // The first line of the chain without the backtrace context.
        let message = match err.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => err.root_cause().to_string(),
        };
        if let Some(denied) = limiter.denied() {
            return Error::MemoryLimit {
                message: format!("{denied} (the guest then stopped: {message})"),
            };
        }
        // Counts checked by wasmtime itself against `ResourceLimiter::instances`
        // (and tables/memories) at instantiation.
        if message.starts_with("resource limit exceeded") {
            return Error::MemoryLimit {
                message: format!("{message} (limit: {} instances)", limits.max_instances),
            };
        }
        Error::Trap {
            trap_code: err.downcast_ref::<Trap>().map(|t| format!("{t:?}")),
            message,
            backtrace,
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_millis() >= 1 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}µs", d.as_micros())
    }
}

fn backtrace_suffix(bt: &Option<String>) -> String {
    match bt {
        Some(bt) if !bt.trim().is_empty() => format!("\n{}", bt.trim_end()),
        _ => String::new(),
    }
}

fn stderr_suffix(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim_end();
    if text.is_empty() {
        String::new()
    } else {
        // Keep the tail: it is where a failing program says why.
        let tail: String = if text.chars().count() > 2000 {
            let skip = text.chars().count() - 2000;
            format!("…{}", text.chars().skip(skip).collect::<String>())
        } else {
            text.to_string()
        };
        format!("; stderr:\n{tail}")
    }
}

fn link_message(missing: &[MissingImport], detail: &Option<String>) -> String {
    let mut msg = String::from("link error: ");
    if missing.is_empty() {
        msg.push_str(
            detail
                .as_deref()
                .unwrap_or("the module could not be linked"),
        );
        return msg;
    }
    msg.push_str(&format!(
        "{} import(s) not granted or not provided by the host: ",
        missing.len()
    ));
    let names: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
    msg.push_str(&names.join(", "));
    if let Some(detail) = detail {
        msg.push_str(&format!(" ({detail})"));
    }
    msg
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidModule { .. } => ErrorCode::InvalidModule,
            Error::Link { .. } => ErrorCode::LinkError,
            Error::CapabilityDenied { .. } => ErrorCode::CapabilityDenied,
            Error::Timeout { .. } | Error::CompileTimeout { .. } => ErrorCode::Timeout,
            Error::OutOfFuel { .. } => ErrorCode::OutOfFuel,
            Error::MemoryLimit { .. } => ErrorCode::MemoryLimit,
            Error::StackOverflow { .. } => ErrorCode::StackOverflow,
            Error::Trap { .. } => ErrorCode::Trap,
            Error::Exit { .. } => ErrorCode::Exit,
            Error::Guest { .. } => ErrorCode::GuestError,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::BadInput { .. } => ErrorCode::BadInput,
            Error::Corrupt { .. } | Error::CorruptData { .. } => ErrorCode::Corrupt,
            Error::SnapshotMismatch { .. } => ErrorCode::SnapshotMismatch,
            Error::Overloaded { .. } => ErrorCode::Overloaded,
            Error::Unavailable { .. } => ErrorCode::Unavailable,
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// Shorthand for [`Error::BadInput`].
    pub fn bad_input(message: impl Into<String>) -> Self {
        Error::BadInput {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Guest`] without a status.
    pub fn guest(message: impl Into<String>) -> Self {
        Error::Guest {
            message: message.into(),
            status: None,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::CorruptData`].
    pub fn corrupt(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::CorruptData {
            what: what.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::InvalidModule`].
    pub fn invalid_module(message: impl Into<String>, offset: Option<usize>) -> Self {
        Error::InvalidModule {
            message: message.into(),
            offset,
        }
    }
}

/// Raised inside host functions to stop the guest with a specific wasmhost
/// error. It travels through wasmtime as the trap's error payload and is
/// turned back into the [`Error`] it carries when the call returns.
#[derive(Debug)]
pub(crate) struct HostAbort(pub(crate) Error);

impl fmt::Display for HostAbort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for HostAbort {}

/// The wasmtime error a host function returns to stop the guest with `e`
/// (see [`HostAbort`]).
pub(crate) fn abort(e: Error) -> wasmtime::Error {
    wasmtime::Error::new(HostAbort(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn link_error_lists_every_import() {
        let err = Error::Link {
            missing: vec![
                MissingImport {
                    module: "env".into(),
                    name: "a".into(),
                    kind: "func".into(),
                },
                MissingImport {
                    module: "env".into(),
                    name: "b".into(),
                    kind: "func".into(),
                },
            ],
            detail: None,
        };
        let msg = err.to_string();
        assert!(msg.contains("env::a") && msg.contains("env::b"), "{msg}");
        assert_eq!(err.code(), ErrorCode::LinkError);
    }

    #[test]
    fn exit_error_keeps_tail_of_stderr() {
        let err = Error::Exit {
            code: 3,
            stdout: vec![],
            stderr: b"boom\n".to_vec(),
        };
        assert_eq!(
            err.to_string(),
            "exit: the guest exited with status 3; stderr:\nboom"
        );
    }

    #[test]
    fn timeout_message_is_human() {
        let err = Error::Timeout {
            limit: Duration::from_millis(500),
        };
        assert_eq!(
            err.to_string(),
            "timeout: the call did not finish within 500ms"
        );
    }
}
