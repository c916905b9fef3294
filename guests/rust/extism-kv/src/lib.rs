//! Extism plug-in that keeps state in wasmhost's key-value capability, for
//! the wasmhost tests.
//!
//! Built for `wasm32-unknown-unknown` by `scripts/build-guests.sh` into
//! `target/guests/out/extism-kv.wasm`. It imports `kv_get`, `kv_set` and
//! `kv_delete` from `extism:host/user`, which wasmhost provides when the
//! key-value capability is granted; see guests/README.md.
//!
//! A separate plug-in from `extism-plugin`, so that one keeps running on hosts
//! (Extism itself, in the benchmarks) that do not provide these functions.
//!
//! Edition 2021: the `#[plugin_fn]`/`#[host_fn]` macros of extism-pdk 1.x emit
//! `#[no_mangle]` and plain `extern` blocks, which edition 2024 rejects.

use extism_pdk::*;

#[host_fn("extism:host/user")]
extern "ExtismHost" {
    /// The value of `key`; empty when absent.
    fn kv_get(key: String) -> Vec<u8>;
    /// Sets `key` to `value`, durably.
    fn kv_set(key: String, value: Vec<u8>);
    /// Deletes `key`.
    fn kv_delete(key: String);
}

/// Reads `count` (a decimal string, 0 when absent), adds 1, writes it back
/// and returns the new value as a decimal string. The input is ignored.
#[plugin_fn]
pub fn kv_counter(_input: ()) -> FnResult<String> {
    let old = unsafe { kv_get("count".to_string())? };
    let old = String::from_utf8(old)?;
    let n = if old.is_empty() {
        0
    } else {
        old.parse::<u64>()
            .map_err(|e| Error::msg(format!("`count` is not a decimal u64 ({old:?}): {e}")))?
    };
    let s = n.wrapping_add(1).to_string();
    unsafe { kv_set("count".to_string(), s.clone().into_bytes())? };
    Ok(s)
}

/// Returns the value of the key given as input (empty when absent).
#[plugin_fn]
pub fn kv_read(key: String) -> FnResult<Vec<u8>> {
    Ok(unsafe { kv_get(key)? })
}

/// Stores the input under the key `value`.
#[plugin_fn]
pub fn kv_store(value: Vec<u8>) -> FnResult<()> {
    unsafe { kv_set("value".to_string(), value)? };
    Ok(())
}

/// Deletes the key given as input.
#[plugin_fn]
pub fn kv_remove(key: String) -> FnResult<()> {
    unsafe { kv_delete(key)? };
    Ok(())
}
