//! Integration tests of the embedding API, driven with real guests: WAT
//! sources under `guests/wat/` and Rust guests built for wasm32-wasip1 and
//! wasm32-wasip2 by `scripts/build-guests.sh` (which `scripts/test.sh` runs
//! first).

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod actor;
mod adversarial;
mod assemblyscript;
mod async_calls;
mod cache;
mod calls;
mod capabilities;
mod component_links;
mod components;
mod conventions;
mod durable_actors;
mod extism;
mod host_functions;
mod kv;
mod linking;
mod matrix;
mod metrics;
mod process;
mod security;
mod snapshots;
mod wasi;

use std::path::PathBuf;

use wasmhost::{Module, Runtime, RuntimeConfig, Source};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A WAT guest's source, loaded as is (the runtime accepts WAT text).
pub fn wat(name: &str) -> Source {
    Source::file(root().join("guests/wat").join(format!("{name}.wat")))
}

/// A built Rust guest. Panics with instructions when the guests were not built.
pub fn built(file: &str) -> Source {
    let path = root().join("target/guests/out").join(file);
    assert!(
        path.exists(),
        "guest `{}` is missing: run scripts/build-guests.sh (scripts/test.sh does it for you)",
        path.display()
    );
    Source::File(path)
}

/// A runtime with default settings and no disk cache.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

/// Loads a WAT guest into a fresh default runtime.
pub fn load_wat(name: &str) -> Module {
    runtime().load(&wat(name)).expect("load guest")
}
