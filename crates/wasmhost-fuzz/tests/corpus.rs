//! Replays every committed fuzz input through its harness: the minimized
//! corpora (`fuzz/corpus/TARGET/`) and the inputs of fixed crashes
//! (`fuzz/regressions/TARGET/`), so each crash the fuzzers found stays
//! fixed in `cargo test`.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty: seed it (scripts/fuzz.sh {target})"
    );
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("{target}: {}", path.display());
        assert!(wasmhost_fuzz::run(target, &data), "unknown target {target}");
    }
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    for target in wasmhost_fuzz::TARGETS {
        let file = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        assert!(file.exists(), "{} is missing", file.display());
    }
}

#[test]
fn module_bytes() {
    replay("module_bytes");
}

#[test]
fn module_smith() {
    replay("module_smith");
}

#[test]
fn manifest_toml() {
    replay("manifest_toml");
}

#[test]
fn manifest_extism() {
    replay("manifest_extism");
}

#[test]
fn manifest_packet() {
    replay("manifest_packet");
}

#[test]
fn component_args() {
    replay("component_args");
}

#[test]
fn reference() {
    replay("reference");
}

#[test]
fn http_api() {
    replay("http_api");
}
