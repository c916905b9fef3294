//! Embeds the dashboard's jco bundle when `scripts/build-jco.sh` has built
//! it into `assets/jco/`: sets `cfg(jco_bundle)`, under which
//! `src/dashboard.rs` includes the files. Without it the crate still builds
//! (a clean clone needs no node to `cargo build`), and the dashboard says
//! how to get the bundle when a component is run in the browser.

use std::path::Path;

/// The files `scripts/build-jco.sh` writes (see `jco/build.mjs`).
const FILES: &[&str] = &[
    "jco-bundle.js",
    "js-component-bindgen-component.core.wasm",
    "js-component-bindgen-component.core2.wasm",
];

fn main() {
    // `assets/` always exists, so cargo reruns this when `assets/jco/`
    // appears, changes or goes.
    println!("cargo::rerun-if-changed=assets");
    println!("cargo::rustc-check-cfg=cfg(jco_bundle)");
    let dir = Path::new("assets/jco");
    if FILES.iter().all(|f| dir.join(f).is_file()) {
        println!("cargo::rustc-cfg=jco_bundle");
    }
}
