//! Fuzz harnesses for wasmhost, and differential runs against wasmtime.
//!
//! Each harness is an ordinary function taking the fuzzer's bytes: it feeds
//! them to one of wasmhost's parsers or call paths and panics only when an
//! invariant breaks (a panic inside wasmhost, an error without the code the
//! input deserves, a malformed API answer). The same functions are used
//! three ways:
//!
//! * `fuzz/fuzz_targets/*.rs` wraps each in `libfuzzer_sys::fuzz_target!`
//!   (`scripts/fuzz.sh TARGET [SECONDS]`, `scripts/fuzz.sh --ci`);
//! * `tests/corpus.rs` replays every committed input of `fuzz/corpus/` and
//!   `fuzz/regressions/` through them in `cargo test`;
//! * [`differential`] compares wasmhost's `invoke` with raw wasmtime on
//!   `wasm-smith` modules (`tests/differential.rs`, `scripts/differential.sh`).
//!
//! | target | harness |
//! |---|---|
//! | `module_bytes` | [`module::bytes`] |
//! | `module_smith` | [`module::smith`] |
//! | `manifest_toml` | [`manifest::toml`] |
//! | `manifest_extism` | [`manifest::extism`] |
//! | `manifest_packet` | [`manifest::packet`] |
//! | `component_args` | [`args::component_args`] |
//! | `reference` | [`reference::references`] |
//! | `http_api` | [`http::api`] |

pub mod args;
pub mod differential;
pub mod http;
pub mod manifest;
pub mod module;
pub mod reference;

use wasmhost::{Error, ErrorCode};

/// Every fuzz target, by the name of its file in `fuzz/fuzz_targets/`.
pub const TARGETS: [&str; 8] = [
    "module_bytes",
    "module_smith",
    "manifest_toml",
    "manifest_extism",
    "manifest_packet",
    "component_args",
    "reference",
    "http_api",
];

/// Runs the harness of `target` on `data`; `false` for an unknown target.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "module_bytes" => module::bytes(data),
        "module_smith" => module::smith(data),
        "manifest_toml" => manifest::toml(data),
        "manifest_extism" => manifest::extism(data),
        "manifest_packet" => manifest::packet(data),
        "component_args" => args::component_args(data),
        "reference" => reference::references(data),
        "http_api" => http::api(data),
        _ => return false,
    }
    true
}

/// Panics unless `err` has one of the `allowed` codes and says something.
/// An error the input caused must never be reported as `internal` (a host
/// failure), and every error explains itself.
#[track_caller]
pub fn expect_code(what: &str, err: &Error, allowed: &[ErrorCode]) {
    assert!(
        allowed.contains(&err.code()),
        "{what}: unexpected error code `{}` (allowed: {:?}): {err}",
        err.code().as_str(),
        allowed.iter().map(|c| c.as_str()).collect::<Vec<_>>()
    );
    assert!(
        !err.to_string().trim().is_empty(),
        "{what}: an error with an empty message ({})",
        err.code().as_str()
    );
}
