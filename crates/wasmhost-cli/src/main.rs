//! The `wasmhost` command-line tool: glue between clap and the library.
//!
//! Each subcommand lives in `commands/<name>.rs` as a clap struct with
//! `execute(self)`. Errors from the library keep their stable code; `main`
//! prints them as `error[code]: message` and maps the code to an exit status
//! (see [`exit_status`]).

mod commands;
mod options;
mod progress;

use std::process::ExitCode;

use clap::Parser;
use wasmhost::ErrorCode;

/// Exit statuses, one per error code. Documented in `wasmhost --help` and the README.
pub(crate) fn exit_status(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::BadInput => 64,
        ErrorCode::InvalidModule => 65,
        ErrorCode::NotFound => 66,
        ErrorCode::LinkError => 67,
        ErrorCode::CapabilityDenied => 68,
        ErrorCode::Overloaded => 69,
        ErrorCode::Unavailable => 77,
        ErrorCode::Internal => 70,
        ErrorCode::Corrupt => 74,
        ErrorCode::SnapshotMismatch => 76,
        ErrorCode::MemoryLimit => 71,
        ErrorCode::OutOfFuel => 72,
        ErrorCode::StackOverflow => 73,
        ErrorCode::Timeout => 124,
        ErrorCode::Trap => 134,
        ErrorCode::GuestError => 75,
        // `exit` carries the guest's own status; see `commands::run`.
        ErrorCode::Exit => 1,
        _ => 1,
    }
}

const EXIT_CODES: &str = "\
EXIT STATUS:
  0    success
  N    a WASI command's own exit status (error[exit])
  2    command-line usage error
  64   bad_input          65   invalid_module     66   not_found
  67   link_error         68   capability_denied  69   overloaded
  70   internal
  71   memory_limit       72   out_of_fuel        73   stack_overflow
  74   corrupt            75   guest_error        76   snapshot_mismatch
  77   unavailable (a registry or store unreachable, a full disk, a state
       directory another process holds)
  124  timeout            134  trap

ENVIRONMENT:
  WASMHOST_STATE          state directory (compiled-module cache, default store); same as --state
  WASMHOST_STORE          module store URL; same as --store
  WASMHOST_STORE_OPTIONS  KEY=VALUE,… settings of a cloud store (timeout, max_retries, …);
                          same as --store-option
  WASMHOST_LOG            log filter, e.g. `debug` or `wasmhost=trace` (default: warn)";

/// Run WebAssembly safely and fast: fresh sandbox per call, limits on memory,
/// fuel and time, and no capability unless granted.
#[derive(Debug, Parser)]
#[command(name = "wasmhost", version, about, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Guest log lines go to stderr through tracing, except for the commands
    // that print a call's log lines themselves (filtered by --log-level).
    let default_filter = if cli.command.prints_guest_logs() {
        "warn,wasmhost::guest=off"
    } else {
        "warn,wasmhost::guest=trace"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();

    if cli.command.dies_of_a_closed_stdout() {
        default_sigpipe();
    }

    match cli.command.execute() {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            let (code, status) = match err.downcast_ref::<wasmhost::Error>() {
                Some(wasmhost::Error::Exit { code, .. }) => (
                    ErrorCode::Exit,
                    u8::try_from(*code).ok().filter(|c| *c != 0).unwrap_or(1),
                ),
                Some(e) => (e.code(), exit_status(e.code())),
                None => (ErrorCode::Internal, exit_status(ErrorCode::Internal)),
            };
            // Like `wasmtime run`, a command's own non-zero exit is not
            // reported as a host error: its status is passed on as is.
            if code != ErrorCode::Exit {
                eprintln!("error[{code}]: {err:#}");
            }
            ExitCode::from(status)
        }
    }
}

/// Restores SIGPIPE's default action (the process ends, as a Unix filter
/// does), which Rust's runtime sets to ignored: a write to a closed pipe
/// would otherwise make `println!` panic. Sockets are unaffected (Rust and
/// tokio send with `MSG_NOSIGNAL`).
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any other thread exists;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
