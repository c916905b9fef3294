//! Module manifests: files that name a module and say how to run it.
//!
//! * [`native`] — wasmhost's own TOML manifest (module source, calling
//!   convention, limits, capabilities), with a JSON schema in
//!   `docs/manifest.schema.json`.
//! * [`packet`] — the "packet" JSON format carrying base64 modules.
//! * [`extism`] — the Extism manifest JSON (modules by path, base64 data
//!   or URL, linked by name when there are several; memory, timeout,
//!   config, allowed hosts and paths).
//!
//! [`load`] reads any of them, telling them apart by extension (`.toml`,
//! `.json`) and, for JSON, by content (`wasm`: Extism; `sourceContent`:
//! packet). A wasmhost or Extism manifest resolves into a [`Resolved`];
//! [`module_bytes`] (and [`fetch_modules`], for linked modules and URLs)
//! fetches its modules and checks each digest the manifest gives, before
//! anything is validated or compiled.

pub mod extism;
pub mod native;
pub mod packet;

use std::path::Path;

use wasmhost::{Digest, Error, Result};

pub use self::extism::{ExtismManifest, ExtismModule};
pub use self::native::{
    CONVENTION_NAMES, ComponentLink, DigestOf, LinkSpec, LinkedSource, Manifest, ModuleSource,
    Resolved, convention_name,
};
pub use self::packet::Packet;

use crate::ModuleStore;
use crate::fetch::UrlFetcher;

/// Any manifest wasmhost reads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyManifest {
    /// wasmhost's TOML manifest.
    Native(Box<Manifest>),
    /// A packet.
    Packet(Packet),
    /// An Extism manifest.
    Extism(Box<ExtismManifest>),
}

/// Whether `path` names a manifest (by extension) rather than a module.
pub fn is_manifest_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("toml") | Some("json")
    )
}

/// Reads a manifest, choosing the format by extension (`.toml`: wasmhost;
/// `.json`: see [`from_json`]).
pub fn load(path: &Path) -> Result<AnyManifest> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Ok(AnyManifest::Native(Box::new(Manifest::load(path)?))),
        Some("json") => {
            let text = read_manifest(path)?;
            let base = path.parent().unwrap_or(Path::new("."));
            // A manifest file's relative paths may also be in the current
            // directory, where Extism looks for them.
            parse_json(&text, base, extism::Paths::ManifestDirThenCwd).map(|m| match m {
                AnyManifest::Extism(mut e) => {
                    e.path = Some(path.to_path_buf());
                    AnyManifest::Extism(e)
                }
                other => other,
            })
        }
        _ => Err(Error::bad_input(format!(
            "`{}` is not a manifest: use a .toml (wasmhost) or .json (Extism manifest or packet) file",
            path.display()
        ))),
    }
}

/// Parses a JSON manifest, telling the formats apart by their keys: an
/// object with `wasm` is an Extism manifest (relative paths in it are
/// relative to `base_dir`), one with `sourceContent` a packet. Anything
/// else is `bad_input` saying so.
pub fn from_json(text: &str, base_dir: &Path) -> Result<AnyManifest> {
    parse_json(text, base_dir, extism::Paths::ManifestDir)
}

fn parse_json(text: &str, base_dir: &Path, paths: extism::Paths) -> Result<AnyManifest> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::bad_input(format!("JSON manifest is not valid JSON: {e}")))?;
    let packet = value
        .as_object()
        .is_some_and(|o| o.contains_key("sourceContent"));
    match (extism::looks_like(&value), packet) {
        (true, false) => Ok(AnyManifest::Extism(Box::new(ExtismManifest::from_value(
            &value, base_dir, paths,
        )?))),
        (false, true) => Ok(AnyManifest::Packet(Packet::from_json(text)?)),
        (true, true) => Err(Error::bad_input(
            "JSON manifest has both `wasm` (Extism manifest) and `sourceContent` (packet); \
             it must be one or the other",
        )),
        (false, false) => Err(Error::bad_input(
            "JSON manifest is neither an Extism manifest (an object with `wasm`) \
             nor a packet (an object with `sourceContent`)",
        )),
    }
}

/// Reads a manifest file's text: `not_found` when it is missing.
pub(crate) fn read_manifest(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found(format!("manifest `{}`", path.display())),
        _ => Error::bad_input(format!("cannot read manifest `{}`: {e}", path.display())),
    })
}

/// The wasm bytes of a resolved manifest's module, checked against the
/// manifest's `sha256` when it has one (a mismatch is `corrupt`, and the
/// bytes are never validated or compiled). The digest covers what
/// [`Resolved::sha256_of`] says: the bytes as read (Extism), or the wasm
/// binary (wasmhost manifests; WAT text is converted first, and a binary is
/// checked as read since conversion leaves it unchanged). A module named by
/// URL is refused (`capability_denied`): see [`fetch_modules`].
pub async fn module_bytes(resolved: &Resolved, store: &ModuleStore) -> Result<Vec<u8>> {
    source_bytes(
        &resolved.source,
        resolved.sha256,
        resolved.sha256_of,
        &resolved.module_label,
        store,
        &UrlFetcher::none(),
    )
    .await
}

/// The bytes of a manifest's main module (as [`module_bytes`] reads them)
/// and of each module linked to it, by name, in the manifest's order.
/// Modules named by URL are fetched through `urls` (from its allowed hosts
/// only), each checked against its hash before anything compiles it.
pub async fn fetch_modules(
    resolved: &Resolved,
    store: &ModuleStore,
    urls: &UrlFetcher,
) -> Result<(Vec<u8>, Vec<(String, Vec<u8>)>)> {
    let main = source_bytes(
        &resolved.source,
        resolved.sha256,
        resolved.sha256_of,
        &resolved.module_label,
        store,
        urls,
    )
    .await?;
    let mut linked = Vec::with_capacity(resolved.linked.len());
    for l in &resolved.linked {
        let bytes =
            source_bytes(&l.source, l.sha256, DigestOf::Source, &l.label, store, urls).await?;
        linked.push((l.name.clone(), bytes));
    }
    Ok((main, linked))
}

async fn source_bytes(
    source: &ModuleSource,
    sha256: Option<Digest>,
    sha256_of: DigestOf,
    label: &str,
    store: &ModuleStore,
    urls: &UrlFetcher,
) -> Result<Vec<u8>> {
    let raw = match source {
        ModuleSource::File(p) => std::fs::read(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found(format!(
                "module file `{}` named by the manifest ({label})",
                p.display()
            )),
            _ => Error::bad_input(format!("cannot read `{}`: {e}", p.display())),
        })?,
        ModuleSource::Store(r) => store.fetch(r).await?.1.to_vec(),
        ModuleSource::Bytes(b) => b.clone(),
        ModuleSource::Oci(r) => {
            return Err(Error::bad_input(format!(
                "{label}: `oci://{r}` must be pulled into the store first (the resolver does)"
            )));
        }
        ModuleSource::Url(u) => urls.fetch(u, label).await?,
    };
    let check = |bytes: &[u8]| {
        let Some(expected) = sha256 else {
            return Ok(());
        };
        let actual = Digest::of(bytes);
        if actual == expected {
            return Ok(());
        }
        Err(Error::Corrupt {
            what: label.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    };
    let before = sha256_of == DigestOf::Source || raw.starts_with(b"\0asm");
    if before {
        check(&raw)?;
    }
    let (wasm, _) = wasmhost::normalize(raw)?;
    if !before {
        check(&wasm)?;
    }
    Ok(wasm)
}
