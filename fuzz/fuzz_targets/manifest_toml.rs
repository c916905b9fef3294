//! cargo-fuzz target `manifest_toml`: see `wasmhost_fuzz::run` for its harness.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wasmhost_fuzz::run("manifest_toml", data);
});
