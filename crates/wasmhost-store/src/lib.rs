//! wasmhost's module store and manifests.
//!
//! * [`ModuleStore`] — modules kept by content (sha256) with `name:tag`
//!   references, on any [`object_store`] backend chosen by URL: `file://…`
//!   (the default, under the state directory), `memory://`,
//!   `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`.
//! * [`Reference`] — `sha256:<hex>` or `name[:tag]` (tag `latest` by default).
//! * [`manifest`] — wasmhost's own TOML manifest, the Extism manifest JSON
//!   and the "packet" JSON format.
//! * [`fetch`] — modules fetched by URL from allowed hosts only.
//! * [`oci`] — OCI registries: [`oci::Registry::pull_into`] a store and
//!   [`oci::Registry::push`], in the wasm artifact layout of `oci-wasm`.
//! * [`resolve`] — the one resolver of a MODULE (file, `-`, manifest or
//!   store reference) into a [`Resolution`]: bytes, limits, grants,
//!   convention and name, used by the CLI and the server alike.
//!
//! Every error is a [`wasmhost::Error`] with a stable code.
#![deny(missing_docs)]

pub mod fetch;
pub mod manifest;
pub mod oci;
mod reference;
pub mod resolve;
mod store;

pub use reference::Reference;
pub use resolve::{
    ManifestFormat, ManifestKind, Provenance, Resolution, Resolver, Trust, compile, link_components,
};
pub use store::{
    DEFAULT_MAX_RETRIES, DEFAULT_RETRY_TIMEOUT, ModuleStore, RefEntry, Removed, StoredModule,
};
