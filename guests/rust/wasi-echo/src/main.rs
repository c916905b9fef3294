//! `wasi-echo`: a multi-purpose WASI guest for the wasmhost tests and benchmarks.
//!
//! The same source is built for two targets by `scripts/build-guests.sh`:
//! - `wasm32-wasip1` -> a core module exporting `_start` (`wasi-echo.wasm`);
//! - `wasm32-wasip2` -> a component exporting `wasi:cli/run` (`wasi-echo.component.wasm`).
//!
//! The behaviour is chosen by argv[1] (argv[0] is the program name):
//!
//! | command              | behaviour                                                        |
//! |----------------------|------------------------------------------------------------------|
//! | `echo` / no args     | copy stdin to stdout until EOF, exit 0                            |
//! | `args`               | print argv[1..] one per line on stdout                             |
//! | `env`                | print `NAME=VALUE` for every env var, sorted by name               |
//! | `write PATH CONTENT` | write CONTENT to PATH, print `wrote PATH`; on error exit 3         |
//! | `read PATH`          | print the file's contents on stdout; on error exit 3               |
//! | `ls PATH`            | print the directory's entry names, sorted, one per line; on error exit 3 |
//! | `random-bytes N`     | fill an N-byte buffer from WASI random (`getrandom`), print `got N`; a refusal traps |
//! | `open-many PATH N`   | open PATH up to N times, keeping each open; print how many opened, exit 0 |
//! | `exit N`             | print `exiting with N` on stderr, exit with code N                 |
//! | `time`               | print whole seconds since UNIX_EPOCH (needs WASI clocks)           |
//! | `random`             | print a `u64` hash of "x" from a fresh `RandomState` (WASI random) |
//! | `panic`              | `panic!("guest panicked on purpose")`                              |
//! | `alloc MIB`          | allocate MIB MiB, touch every 4096th byte, print `allocated MIB MiB` |
//! | `stderr TEXT`        | print TEXT on stderr, exit 0                                       |
//! | `flood MIB`          | write MIB MiB of `x` to stdout in 64 KiB chunks; on error exit 4   |
//! | anything else        | print `unknown command: X` on stderr, exit 2                       |
//!
//! A known command with missing or malformed arguments prints `usage: ...` on
//! stderr and exits 2.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Exit code for an unknown command or bad usage.
const EXIT_USAGE: i32 = 2;
/// Exit code for an I/O error in `read` / `write`.
const EXIT_IO: i32 = 3;
/// Exit code for a write error in `flood`.
const EXIT_FLOOD: i32 = 4;

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn main() {
    let argv: Vec<String> = std::env::args_os().map(lossy).collect();
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let command = args.get(1).copied().unwrap_or("echo");
    let rest = args.get(2..).unwrap_or(&[]);

    let code = match command {
        "echo" => echo(),
        "args" => {
            let mut out = io::stdout().lock();
            for arg in args.iter().skip(1) {
                // Errors on stdout are not interesting for this command.
                let _ = writeln!(out, "{arg}");
            }
            0
        }
        "env" => {
            let mut vars: Vec<(String, String)> = std::env::vars_os()
                .map(|(k, v)| (lossy(k), lossy(v)))
                .collect();
            vars.sort();
            let mut out = io::stdout().lock();
            for (name, value) in vars {
                let _ = writeln!(out, "{name}={value}");
            }
            0
        }
        "write" => match rest {
            [path, content, ..] => match std::fs::write(path, content) {
                Ok(()) => {
                    println!("wrote {path}");
                    0
                }
                Err(e) => io_error(&e),
            },
            _ => usage("write PATH CONTENT"),
        },
        "read" => match rest {
            [path, ..] => match std::fs::read(path) {
                Ok(bytes) => {
                    let _ = io::stdout().lock().write_all(&bytes);
                    0
                }
                Err(e) => io_error(&e),
            },
            _ => usage("read PATH"),
        },
        "ls" => match rest {
            [path, ..] => match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut names: Vec<String> = entries
                        .filter_map(Result::ok)
                        .map(|e| lossy(e.file_name()))
                        .collect();
                    names.sort();
                    let mut out = io::stdout().lock();
                    for name in names {
                        let _ = writeln!(out, "{name}");
                    }
                    0
                }
                Err(e) => io_error(&e),
            },
            _ => usage("ls PATH"),
        },
        "random-bytes" => match rest.first().map(|n| n.parse::<usize>()) {
            Some(Ok(n)) => {
                let mut buf = vec![0u8; n];
                // One `random_get` / `get-random-bytes` call for the whole buffer.
                random_fill(&mut buf);
                std::hint::black_box(&buf);
                println!("got {n}");
                0
            }
            _ => usage("random-bytes N"),
        },
        "open-many" => match rest {
            [path, n, ..] => match n.parse::<usize>() {
                Ok(n) => {
                    let mut open = Vec::new();
                    for _ in 0..n {
                        match std::fs::File::open(path) {
                            Ok(f) => open.push(f),
                            Err(_) => break,
                        }
                    }
                    println!("{}", open.len());
                    0
                }
                Err(_) => usage("open-many PATH N"),
            },
            _ => usage("open-many PATH N"),
        },
        "exit" => match rest.first().map(|n| n.parse::<i32>()) {
            Some(Ok(n)) => {
                eprintln!("exiting with {n}");
                n
            }
            _ => usage("exit N"),
        },
        "time" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock is before UNIX_EPOCH");
            println!("{}", now.as_secs());
            0
        }
        "random" => {
            // RandomState::new() seeds itself from the WASI random source.
            let hash: u64 = RandomState::new().hash_one("x");
            println!("{hash}");
            0
        }
        "panic" => panic!("guest panicked on purpose"),
        "alloc" => match rest.first().map(|n| n.parse::<usize>()) {
            Some(Ok(mib)) => alloc(mib),
            _ => usage("alloc MIB"),
        },
        "stderr" => match rest {
            [text, ..] => {
                eprintln!("{text}");
                0
            }
            _ => usage("stderr TEXT"),
        },
        "flood" => match rest.first().map(|n| n.parse::<usize>()) {
            Some(Ok(mib)) => flood(mib),
            _ => usage("flood MIB"),
        },
        other => {
            eprintln!("unknown command: {other}");
            EXIT_USAGE
        }
    };
    exit(code);
}

/// Fills `buf` with one WASI random call: `random_get` on preview 1,
/// `get-random-bytes` on preview 2 (the host refuses a request over its
/// limit with a trap). Returns how many bytes it filled.
#[cfg(target_env = "p1")]
fn random_fill(buf: &mut [u8]) -> usize {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn random_get(buf: *mut u8, len: usize) -> u16;
    }
    // SAFETY: the buffer is valid for writes of its length.
    let errno = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(errno, 0, "random_get failed with errno {errno}");
    buf.len()
}

#[cfg(not(target_env = "p1"))]
fn random_fill(buf: &mut [u8]) -> usize {
    let bytes = wasip2::random::random::get_random_bytes(buf.len() as u64);
    buf.copy_from_slice(&bytes);
    buf.len()
}

/// Flushes stdout/stderr and exits; returns normally for code 0 so that the
/// guest ends the way an ordinary `main` does.
fn exit(code: i32) {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    if code != 0 {
        std::process::exit(code);
    }
}

fn lossy(s: OsString) -> String {
    s.into_string()
        .unwrap_or_else(|s| s.to_string_lossy().into_owned())
}

fn usage(text: &str) -> i32 {
    eprintln!("usage: {text}");
    EXIT_USAGE
}

fn io_error(e: &io::Error) -> i32 {
    eprintln!("error: {:?}: {e}", e.kind());
    EXIT_IO
}

/// Copies stdin to stdout until EOF. Write errors (e.g. a closed stdout) end
/// the copy quietly; the exit code stays 0.
fn echo() -> i32 {
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = stdout.flush();
    0
}

/// Allocates `mib` MiB and writes to every 4096th byte so that the pages are
/// really committed. An allocation failure aborts (traps) the guest after std
/// prints `memory allocation of N bytes failed` on stderr.
fn alloc(mib: usize) -> i32 {
    let len = mib.checked_mul(MIB).expect("size overflows usize");
    let mut v: Vec<u8> = vec![0u8; len];
    let mut i = 0;
    while i < len {
        v[i] = (i / 4096) as u8 | 1;
        i += 4096;
    }
    std::hint::black_box(&v);
    println!("allocated {mib} MiB");
    0
}

/// Writes `mib` MiB of `x` to stdout in 64 KiB chunks.
fn flood(mib: usize) -> i32 {
    let chunk = vec![b'x'; CHUNK];
    let total = mib.checked_mul(MIB).expect("size overflows usize");
    let mut stdout = io::stdout().lock();
    let mut written = 0;
    while written < total {
        let n = CHUNK.min(total - written);
        if let Err(e) = stdout.write_all(&chunk[..n]) {
            eprintln!("error: {:?}: {e}", e.kind());
            return EXIT_FLOOD;
        }
        written += n;
    }
    if let Err(e) = stdout.flush() {
        eprintln!("error: {:?}: {e}", e.kind());
        return EXIT_FLOOD;
    }
    0
}
