//! Extism plug-in used by the wasmhost tests and benchmarks.
//!
//! Built for `wasm32-unknown-unknown` by `scripts/build-guests.sh` into
//! `target/guests/out/extism-plugin.wasm`. Every export is an Extism plug-in
//! function (`() -> i32`, input and output through the `extism:host/env`
//! kernel); see guests/README.md for what each one does exactly.
//!
//! Edition 2021: the `#[plugin_fn]`/`#[host_fn]` macros of extism-pdk 1.x emit
//! `#[no_mangle]` and plain `extern` blocks, which edition 2024 rejects.

use extism_pdk::*;
use serde::Serialize;

/// The vowel set used by `count_vowels` when the config has no `vowels` key.
const DEFAULT_VOWELS: &str = "aeiouAEIOU";

#[host_fn("extism:host/user")]
extern "ExtismHost" {
    /// Provided by the host: returns its input reversed (or whatever the host likes).
    fn reverse(input: String) -> String;
}

/// Reads a `u64` stored as a decimal string in the var `key`; 0 when unset.
fn read_u64_var(key: &str) -> Result<u64, Error> {
    match var::get::<String>(key)? {
        None => Ok(0),
        Some(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|e| Error::msg(format!("var {key:?} is not a decimal u64 ({s:?}): {e}"))),
    }
}

#[derive(Serialize, ToBytes)]
#[encoding(Json)]
pub struct VowelCount {
    pub count: u64,
    pub total: u64,
    pub vowels: String,
}

/// Counts the characters of `input` that occur in the config key `vowels`
/// (default "aeiouAEIOU"), adds the count to the var `total` (a decimal string),
/// and returns `{"count": n, "total": t, "vowels": "<set used>"}`.
#[plugin_fn]
pub fn count_vowels(input: String) -> FnResult<VowelCount> {
    let vowels = config::get("vowels")?.unwrap_or_else(|| DEFAULT_VOWELS.to_string());
    let count = input.chars().filter(|c| vowels.contains(*c)).count() as u64;
    let total = read_u64_var("total")?.wrapping_add(count);
    var::set("total", total.to_string())?;
    Ok(VowelCount {
        count,
        total,
        vowels,
    })
}

/// Reads the var `count` (decimal string, 0 if unset), adds 1, stores it back
/// and returns the new value as a decimal string. The input is ignored.
#[plugin_fn]
pub fn counter(_input: String) -> FnResult<String> {
    let n = read_u64_var("count")?.wrapping_add(1);
    let s = n.to_string();
    var::set("count", &s)?;
    Ok(s)
}

/// Returns the input bytes unchanged (benchmarks).
#[plugin_fn]
pub fn echo(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(input)
}

/// Calls the host function `extism:host/user.reverse` with the input and
/// returns `"host said: " + <its result>`.
#[plugin_fn]
pub fn reverse_via_host(input: String) -> FnResult<String> {
    let reversed = unsafe { reverse(input)? };
    Ok(format!("host said: {reversed}"))
}

#[derive(Serialize, ToBytes)]
#[encoding(Json)]
pub struct HttpResult {
    pub status: u16,
    pub body: String,
}

/// GETs the URL given as input through the host's `http_request` and returns
/// `{"status": <u16>, "body": "<body as UTF-8, invalid bytes replaced by U+FFFD>"}`.
#[plugin_fn]
pub fn http_get(url: String) -> FnResult<HttpResult> {
    let res = http::request::<()>(&HttpRequest::new(url), None)?;
    let status = res.status_code();
    let body = String::from_utf8_lossy(&res.body()).into_owned();
    Ok(HttpResult { status, body })
}

/// Always fails: the host sees the error message `guest refused: <input>`
/// (set with `error_set`) and the export returns -1 (the PDK's default
/// return code for an error converted with `.into()`).
#[plugin_fn]
pub fn fail(input: String) -> FnResult<String> {
    Err(Error::msg(format!("guest refused: {input}")).into())
}

/// Never returns: an infinite loop (timeouts, epoch interruption, fuel).
#[plugin_fn]
pub fn spin(_input: String) -> FnResult<String> {
    loop {
        std::hint::black_box(());
    }
}

/// Logs the input with `info!`, `warn!` and `error!` (in that order) and
/// returns "logged". The PDK's macros skip a message whose level is below the
/// host's `get_log_level()`.
#[plugin_fn]
pub fn log_it(input: String) -> FnResult<String> {
    info!("{input}");
    warn!("{input}");
    error!("{input}");
    Ok("logged".to_string())
}

/// Writes past the end of a kernel memory block: allocates an 8-byte block
/// with the raw `extism::alloc(8)`, fills it with `store_u64(off, ...)` (in
/// bounds), then calls `store_u64(off + 64, 0xDEAD_BEEF_DEAD_BEEF)`, which
/// writes bytes `off+64 .. off+72`, 56 bytes past the block's end. If the host
/// lets that pass, the block (8 bytes, "overflow" padded with 0) is the output.
#[plugin_fn]
pub fn overflow(_input: ()) -> FnResult<Memory> {
    unsafe {
        let off = extism::alloc(8);
        extism::store_u64(off, u64::from_le_bytes(*b"overflow"));
        extism::store_u64(off + 64, 0xDEAD_BEEF_DEAD_BEEF);
        Ok(Memory(MemoryHandle {
            offset: off,
            length: 8,
        }))
    }
}
