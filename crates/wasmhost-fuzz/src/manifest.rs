//! The manifest parsers: wasmhost's TOML manifest, the Extism manifest JSON
//! and the packet JSON, each parsed and then resolved into run settings.
//!
//! Invariants: a bad manifest is `bad_input` (or `not_found` for a file it
//! names, `invalid_module` for a packet's module that does not validate),
//! never a panic; a wasmhost manifest's module file always stays
//! inside the manifest's directory.

use std::path::{Component, Path};

use wasmhost::{ErrorCode, Limits};
use wasmhost_store::manifest::{self, AnyManifest, Manifest, ModuleSource, Packet};

use crate::expect_code;

/// Where fuzzed manifests pretend to live (never read: nothing exists there).
const BASE: &str = "/nonexistent/wasmhost-fuzz/manifests";

const CODES: [ErrorCode; 2] = [ErrorCode::BadInput, ErrorCode::NotFound];

/// A packet carries its modules, decoded and validated as it is parsed: a
/// module that does not validate is `invalid_module`.
const PACKET_CODES: [ErrorCode; 3] = [
    ErrorCode::BadInput,
    ErrorCode::NotFound,
    ErrorCode::InvalidModule,
];

/// wasmhost's TOML manifest.
pub fn toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = match Manifest::from_toml(text) {
        Ok(m) => m,
        Err(e) => return expect_code("TOML manifest", &e, &CODES),
    };
    let base = Path::new(BASE);
    match m.resolve(base, &Limits::default()) {
        Ok(resolved) => {
            if let ModuleSource::File(p) = &resolved.source {
                assert_inside(base, p);
            }
            let _ = manifest::convention_name(resolved.convention);
        }
        Err(e) => expect_code("TOML manifest resolve", &e, &CODES),
    }
}

/// The Extism manifest JSON (and the JSON sniffing that tells it from a
/// packet).
pub fn extism(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match manifest::from_json(text, Path::new(BASE)) {
        Ok(AnyManifest::Extism(m)) => {
            let resolved = m.resolve(&Limits::default());
            let _ = (m.wasi(), resolved.limits, resolved.capabilities);
        }
        Ok(AnyManifest::Packet(p)) => {
            let _ = p.single();
        }
        Ok(_) => {}
        Err(e) => expect_code("JSON manifest", &e, &PACKET_CODES),
    }
}

/// The packet JSON format.
pub fn packet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Packet::from_json(text) {
        Ok(p) => {
            if let Err(e) = p.single() {
                expect_code("packet single", &e, &CODES);
            }
        }
        Err(e) => expect_code("packet", &e, &PACKET_CODES),
    }
}

/// Panics unless `path` is `base` joined with a relative path that never
/// climbs above it.
#[track_caller]
fn assert_inside(base: &Path, path: &Path) {
    let rel = path
        .strip_prefix(base)
        .unwrap_or_else(|_| panic!("{} is not under {}", path.display(), base.display()));
    let mut depth = 0i32;
    for c in rel.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => depth = -1,
        }
        assert!(depth >= 0, "{} leaves {}", path.display(), base.display());
    }
}
