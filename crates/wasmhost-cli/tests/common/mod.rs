//! Paths to the guests, shared by the CLI's test binaries.

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A WAT guest's source path.
pub fn wat(name: &str) -> String {
    root()
        .join("guests/wat")
        .join(format!("{name}.wat"))
        .display()
        .to_string()
}

/// A built Rust guest's path; panics with instructions when it is missing.
pub fn built(file: &str) -> String {
    let p = root().join("target/guests/out").join(file);
    assert!(
        p.exists(),
        "{} missing: run scripts/build-guests.sh",
        p.display()
    );
    p.display().to_string()
}
