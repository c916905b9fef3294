//! wasmhost: load, cache, limit and run WebAssembly modules and components.
//!
//! The embedding API in one screen:
//!
//! ```
//! use std::time::Duration;
//! use wasmhost::{Capabilities, Limits, Runtime, RuntimeConfig, Source, Value};
//! # fn main() -> wasmhost::Result<()> {
//! // One runtime per process: one engine, one compiled-module cache.
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! // Load from bytes, a file or stdin; WAT text works too.
//! let module = rt
//!     .load(&Source::Bytes(br#"(module (func (export "add") (param i32 i32) (result i32)
//!         local.get 0 local.get 1 i32.add))"#.to_vec()))?
//!     .with_limits(Limits::default().max_memory_bytes(16 << 20).timeout(Some(Duration::from_secs(1))))
//!     .with_capabilities(Capabilities::none());
//! // Every call runs in a fresh sandbox.
//! let out = module.invoke("add", &[Value::I32(2), Value::I32(3)])?;
//! assert_eq!(out.value, vec![Value::I32(5)]);
//! println!("took {:?}, peak memory {} bytes", out.stats.duration, out.stats.peak_memory_bytes);
//! # Ok(()) }
//! ```
//!
//! Failures are [`Error`]s with a stable [`ErrorCode`]. Guests get no
//! capability unless granted ([`Capabilities`]); see [`capabilities`].
#![deny(missing_docs)]

// Modules from the bottom layer up: each imports only modules declared
// before it (ARCHITECTURE.md, "Layers"; `scripts/module-graph.py --ordered`
// checks it). One layer per group, so that rustfmt keeps the order.

// How wasm runs, limits, errors, what a module is.
mod exec;

pub mod limits;

mod error;

mod code;

// Grants, each owning its state; what goes into a call and comes out.
pub mod capabilities;

mod call;

pub mod metrics;

// The conventions' host code, and the store's data composed from it all.
mod kernel;

mod state;

// A store and its calls; embedders' host functions.
mod host_functions;
mod sandbox;

// Calling conventions, and linking every piece of host code.
pub mod convention;

// Components providing other components' imports, each in its own store.
mod compose;

mod linking;

// Compiled modules, their caches, the engine and the runtime.
mod compiled;

pub mod cache;

mod compile_gate;

mod engine;

mod runtime;

// The Module handle, loading, kept instances, processes and actors.
mod module;

mod load;

pub mod snapshot;

mod instance;

pub mod process;

pub mod actor;

pub use actor::{
    ActorCommit, ActorConfig, ActorInfo, ActorRecord, ActorSpec, ActorStore, ActorSystem,
    SnapshotPolicy,
};
pub use cache::{
    CacheConfig, CacheStats, CachedModule, DiskStats, read_disk_stats, wasmtime_version,
};
pub use call::{ArgsFormat, CallOptions, CallStats, Outcome, Signature, Value, ValueType};
pub use capabilities::wasi::{DEFAULT_CAPTURE_LIMIT, Output, Stdin};
pub use capabilities::{
    Capabilities, Http, KeyValue, KvBatch, KvEntry, KvStore, LogLevel, LogRecord, Preopen, Wasi,
};
pub use code::{Digest, ItemInfo, ModuleKind, Source, normalize};
pub use compile_gate::{CompileConfig, DEFAULT_MAX_MODULE_BYTES, DEFAULT_MAX_QUEUED_COMPILES};
pub use convention::{Convention, Data};
pub use engine::{
    DEFAULT_ASYNC_STACK, DEFAULT_ASYNC_STACKS, DEFAULT_EPOCH_TICK, DEFAULT_MAX_WASM_STACK,
    DEFAULT_POOL_INSTANCES, POOL_SLOT_RESERVATION, PoolConfig, RuntimeConfig, default_state_dir,
    wasmtime_config,
};
pub use error::{Error, ErrorCode, MissingImport, Result};
pub use host_functions::HostFunctions;
pub use instance::Instance;
pub use limits::Limits;
pub use module::Module;
pub use process::POLL;
pub use runtime::Runtime;
pub use snapshot::Snapshot;
pub use state::HostState;
