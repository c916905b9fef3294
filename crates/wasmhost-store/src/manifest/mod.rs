//! Module manifests: files that name a module and say how to run it.
//!
//! * [`native`] — wasmhost's own TOML manifest (module source, calling
//!   convention, limits, capabilities), with a JSON schema in
//!   `docs/manifest.schema.json`.
//! * [`packet`] — the "packet" JSON format carrying base64 modules.
//!
//! [`load`] reads either, telling them apart by extension (`.toml`,
//! `.json`); [`module_bytes`] fetches a resolved manifest's module and checks
//! its digest when the manifest gives one.

pub mod native;
pub mod packet;

use std::path::Path;

use wasmhost::{Digest, Error, Result};

pub use self::native::{Convention, Manifest, ModuleSource, Resolved};
pub use self::packet::Packet;

use crate::ModuleStore;

/// Any manifest wasmhost reads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyManifest {
    /// wasmhost's TOML manifest.
    Native(Box<Manifest>),
    /// A packet.
    Packet(Packet),
}

/// Whether `path` names a manifest (by extension) rather than a module.
pub fn is_manifest_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("toml") | Some("json")
    )
}

/// Reads a manifest, choosing the format by extension.
pub fn load(path: &Path) -> Result<AnyManifest> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Ok(AnyManifest::Native(Box::new(Manifest::load(path)?))),
        Some("json") => {
            let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Error::not_found(format!("manifest `{}`", path.display()))
                }
                _ => Error::bad_input(format!("cannot read manifest `{}`: {e}", path.display())),
            })?;
            Ok(AnyManifest::Packet(Packet::from_json(&text)?))
        }
        _ => Err(Error::bad_input(format!(
            "`{}` is not a manifest: use a .toml (wasmhost) or .json (packet) file",
            path.display()
        ))),
    }
}

/// The wasm bytes of a resolved manifest's module, checked against the
/// manifest's `sha256` when it has one (a mismatch is `corrupt`).
pub async fn module_bytes(resolved: &Resolved, store: &ModuleStore) -> Result<Vec<u8>> {
    let raw = match &resolved.source {
        ModuleSource::File(p) => std::fs::read(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found(format!(
                "module file `{}` named by the manifest",
                p.display()
            )),
            _ => Error::bad_input(format!("cannot read `{}`: {e}", p.display())),
        })?,
        ModuleSource::Store(r) => store.fetch(r).await?.1.to_vec(),
        ModuleSource::Bytes(b) => b.clone(),
    };
    let (wasm, _) = wasmhost::normalize(raw)?;
    if let Some(expected) = resolved.sha256 {
        let actual = Digest::of(&wasm);
        if actual != expected {
            return Err(Error::Corrupt {
                what: "the manifest's module".into(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(wasm)
}
