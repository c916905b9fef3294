//! cargo-fuzz target `reference`: see `wasmhost_fuzz::run` for its harness.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wasmhost_fuzz::run("reference", data);
});
