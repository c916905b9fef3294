//! The `log` capability: `wasmhost::log(level: i32, ptr: i32, len: i32)`.
//!
//! A core module that imports `("wasmhost", "log")` may write UTF-8 log lines
//! from its exported `memory`. Levels: 0 trace, 1 debug, 2 info, 3 warn,
//! 4 error (anything else is info). Each line is recorded in the call's
//! [`crate::Outcome::logs`] and emitted as a `tracing` event with target
//! `wasmhost::guest`. A call keeps at most [`MAX_RECORDS`] lines of at most
//! [`MAX_LINE`] bytes; more are counted and dropped, so a chatty guest cannot
//! exhaust host memory. A pointer outside the guest's memory is a trap.

use wasmtime::{Caller, Extern};

use crate::error::Result;

/// Most log lines kept per call.
pub const MAX_RECORDS: usize = 1000;
/// Longest log line kept, in bytes (longer lines are truncated).
pub const MAX_LINE: usize = 64 * 1024;

/// Severity of a guest log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Level 0.
    Trace,
    /// Level 1.
    Debug,
    /// Level 2 (and any unknown level).
    Info,
    /// Level 3.
    Warn,
    /// Level 4.
    Error,
}

impl LogLevel {
    fn from_i32(level: i32) -> Self {
        match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }

    /// Lower-case name of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line a guest logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its level.
    pub level: LogLevel,
    /// Its text (invalid UTF-8 replaced).
    pub message: String,
}

/// The log lines of one call.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    records: Vec<LogRecord>,
    dropped: u64,
}

impl LogBuffer {
    pub(crate) fn push(&mut self, record: LogRecord) {
        match record.level {
            LogLevel::Trace => tracing::trace!(target: "wasmhost::guest", "{}", record.message),
            LogLevel::Debug => tracing::debug!(target: "wasmhost::guest", "{}", record.message),
            LogLevel::Info => tracing::info!(target: "wasmhost::guest", "{}", record.message),
            LogLevel::Warn => tracing::warn!(target: "wasmhost::guest", "{}", record.message),
            LogLevel::Error => tracing::error!(target: "wasmhost::guest", "{}", record.message),
        }
        if self.records.len() < MAX_RECORDS {
            self.records.push(record);
        } else {
            self.dropped += 1;
        }
    }

    /// The lines kept so far, with one more saying how many were dropped
    /// if any were; the buffer starts over empty.
    pub(crate) fn take(&mut self) -> Vec<LogRecord> {
        let mut logs = std::mem::take(&mut self.records);
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            logs.push(LogRecord {
                level: LogLevel::Warn,
                message: format!(
                    "{dropped} more log lines were dropped (at most {MAX_RECORDS} are kept per call)"
                ),
            });
        }
        logs
    }
}

/// What the log capability needs of a store's data: the call's log lines.
pub(crate) trait LogHost: 'static {
    /// The call's [`LogBuffer`].
    fn logs(&mut self) -> &mut LogBuffer;
}

/// Adds `wasmhost::log` to a core linker.
pub(crate) fn add_to_linker<T: LogHost>(linker: &mut wasmtime::Linker<T>) -> Result<()> {
    linker
        .func_wrap(
            "wasmhost",
            "log",
            |mut caller: Caller<'_, T>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<()> {
                let Some(Extern::Memory(mem)) = caller.get_export("memory") else {
                    return Err(wasmtime::Error::msg(
                        "wasmhost::log needs the guest to export its memory as `memory`",
                    ));
                };
                let (start, len) = (ptr as u32 as usize, len as u32 as usize);
                let data = mem.data(&caller);
                let bytes = start
                    .checked_add(len)
                    .and_then(|end| data.get(start..end))
                    .ok_or_else(|| {
                        wasmtime::Error::msg(format!(
                            "wasmhost::log: bytes {start}..{} are outside the guest's {}-byte memory",
                            start as u64 + len as u64,
                            data.len()
                        ))
                    })?;
                let kept = &bytes[..bytes.len().min(MAX_LINE)];
                let message = String::from_utf8_lossy(kept).into_owned();
                caller.data_mut().logs().push(LogRecord {
                    level: LogLevel::from_i32(level),
                    message,
                });
                Ok(())
            },
        )
        .map_err(super::link_setup)?;
    Ok(())
}
