//! The host side of the calling conventions: the functions guests of a
//! convention import, with the state they keep.
//!
//! * [`extism`] — the Extism kernel (`extism:host/env`, and the key-value
//!   functions of `extism:host/user`), with its [`extism::PluginState`];
//! * [`assemblyscript`] — AssemblyScript's `env` (`abort`, `trace`, `seed`).
//!
//! Like the capabilities, each links itself into a linker of any store
//! data type that gives it what it needs (the `*Host` traits), and imports
//! neither the sandbox nor the store's data type; [`crate::convention`]
//! links them through its table. (The process convention's host code is
//! WASI's stdio pipes, in [`crate::capabilities::wasi`].)

pub(crate) mod assemblyscript;
pub(crate) mod extism;
