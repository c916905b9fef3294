//! A WASI reactor for wasmhost's async process mode: the host instantiates
//! it once (running `_initialize`), then calls one export per message with
//! the message as stdin and the reply taken from stdout.
//!
//! - `poll`: reads all of stdin, writes `#<n>: <message>` where n counts the
//!   messages `poll` has seen in this instance (state kept across messages).
//! - `echo`: copies stdin to stdout, with no state.
//! - `fail`: panics (a trap): the host must report it and start over.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// Messages `poll` has seen in this instance.
static SEEN: AtomicU64 = AtomicU64::new(0);

fn read_stdin() -> Vec<u8> {
    let mut message = Vec::new();
    std::io::stdin()
        .read_to_end(&mut message)
        .expect("read stdin");
    message
}

fn reply(parts: &[&[u8]]) {
    let mut out = std::io::stdout().lock();
    for part in parts {
        out.write_all(part).expect("write stdout");
    }
    out.flush().expect("flush stdout");
}

#[unsafe(no_mangle)]
pub extern "C" fn poll() {
    let message = read_stdin();
    let n = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    reply(&[format!("#{n}: ").as_bytes(), &message]);
}

#[unsafe(no_mangle)]
pub extern "C" fn echo() {
    let message = read_stdin();
    reply(&[&message]);
}

#[unsafe(no_mangle)]
pub extern "C" fn fail() {
    panic!("wasi-poll failed on purpose");
}
