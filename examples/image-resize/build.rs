//! Checks that the guest module that `src/lib.rs` embeds has been built.

use std::path::Path;

fn main() {
    let wasm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/guests/out/image-resize.wasm");
    println!("cargo:rerun-if-changed={}", wasm.display());
    println!("cargo:rerun-if-changed=build.rs");
    if !wasm.is_file() {
        eprintln!(
            "error: {} is missing: run scripts/build-guests.sh first (it builds guests/rust/image-resize for wasm32-unknown-unknown)",
            wasm.display()
        );
        std::process::exit(1);
    }
}
