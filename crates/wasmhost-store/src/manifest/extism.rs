//! The Extism manifest: the JSON document Extism SDKs give a plugin
//! (<https://extism.org/docs/concepts/manifest>), read as a third manifest
//! format beside wasmhost's TOML manifest and packets.
//!
//! ```json
//! {
//!   "wasm": [{"path": "plugin.wasm", "name": "main", "hash": "<sha256 hex>"}],
//!   "memory": {"max_pages": 16, "max_http_response_bytes": 1048576, "max_var_bytes": 1024},
//!   "config": {"key": "value"},
//!   "allowed_hosts": ["example.com", "*.example.org"],
//!   "allowed_paths": {"data": "/data", "ro:assets": "/assets"},
//!   "timeout_ms": 1000
//! }
//! ```
//!
//! It resolves into the same [`Resolved`] as a wasmhost manifest (with the
//! Extism calling convention), so [`super::fetch_modules`] fetches and
//! checks its modules like any other:
//!
//! * `wasm` holds one module or several. Each is a `path`, `data` (base64,
//!   padding optional) or `url` (with optional `method` and `headers`;
//!   fetched only from hosts the resolver allows, see [`crate::fetch`]).
//!   A path is read as Extism reads it: absolute as it is; relative, in the
//!   manifest's directory (or, for a manifest file, in the current
//!   directory when only that has it). `hash` (64 hex digits, optionally
//!   `sha256:`-prefixed) is the digest of the bytes as read, checked before
//!   they are validated or compiled.
//! * With several modules, the main one is the module named `main` (a
//!   module without a `name` is named `main`), else the last; every other
//!   one is linked to it under its name, as Extism links them: an import
//!   `(import "NAME" "f" …)` reaches export `f` of the module named NAME
//!   ([`wasmhost::Module::link`]); NAME may be `extism:host/user`, to give a
//!   plugin its host functions in wasm.
//! * `memory.max_pages` (64 KiB pages) and `timeout_ms` become [`Limits`];
//!   `config`, `allowed_hosts` (with `memory.max_http_response_bytes`) and
//!   `allowed_paths` become [`Capabilities`] — a non-empty `allowed_paths`
//!   grants WASI (stdio, clocks and random, as Extism's `wasi: true` does)
//!   with those directories (read-write, read-only when the host path starts
//!   with `ro:`; host paths are found as module paths are).
//! * `memory.max_var_bytes` is recorded ([`Resolved::max_var_bytes`]); the
//!   var store is fixed at 1 MiB, so a smaller bound is not enforced yet.
//!
//! As in Extism (whose serde types deny unknown fields), an unknown field
//! anywhere is an error, and so is a value of the wrong type; `null` stands
//! for "not given" where Extism's field is optional. Every error is
//! `bad_input` naming the field (`wasm[0].data`, `memory.max_pages`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use wasmhost::{Capabilities, Convention, Digest, Error, Http, Limits, Preopen, Result, Wasi};

use super::native::{DigestOf, LinkedSource, ModuleSource, Resolved, check_host};
use super::read_manifest;
use crate::fetch::UrlSource;

/// How error messages name this format.
const KIND: &str = "Extism manifest";

/// The top-level fields of an Extism manifest.
pub const FIELDS: &[&str] = &[
    "wasm",
    "memory",
    "config",
    "allowed_hosts",
    "allowed_paths",
    "timeout_ms",
];
/// The fields of a `wasm` entry.
pub const WASM_FIELDS: &[&str] = &["path", "data", "url", "headers", "method", "name", "hash"];
/// The fields of `memory`.
pub const MEMORY_FIELDS: &[&str] = &["max_pages", "max_http_response_bytes", "max_var_bytes"];

/// Bytes in one wasm page (`memory.max_pages` counts these).
pub const PAGE_BYTES: u64 = 65536;

/// Standard base64 alphabet, with or without padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One entry of an Extism manifest's `wasm`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtismModule {
    /// [`ModuleSource::File`] for `path`, [`ModuleSource::Bytes`] for
    /// `data`, [`ModuleSource::Url`] for `url`.
    pub source: ModuleSource,
    /// `name`: what the other modules import it by (the main module's is
    /// `main`, or none).
    pub name: Option<String>,
    /// `hash`: the sha256 of the module's bytes as read.
    pub hash: Option<Digest>,
}

/// A parsed and checked Extism manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtismManifest {
    /// The manifest file, when it was read from one (named in errors).
    pub path: Option<PathBuf>,
    /// Every entry of `wasm`, in order.
    pub modules: Vec<ExtismModule>,
    /// The index in [`ExtismManifest::modules`] of the main module: the
    /// one named `main`, else the last. The others are linked to it by
    /// their names.
    pub main: usize,
    /// The main module's source (see [`ExtismModule::source`]).
    pub source: ModuleSource,
    /// The main module's name.
    pub name: Option<String>,
    /// The main module's hash.
    pub hash: Option<Digest>,
    /// `memory.max_pages`: 64 KiB pages of linear memory.
    pub max_pages: Option<u32>,
    /// `memory.max_http_response_bytes`.
    pub max_http_response_bytes: Option<u64>,
    /// `memory.max_var_bytes` (recorded; not enforced below 1 MiB yet).
    pub max_var_bytes: Option<u64>,
    /// `config`: values the guest reads with `config_get`.
    pub config: BTreeMap<String, String>,
    /// `allowed_hosts`: host patterns outbound HTTP may reach (none if empty).
    pub allowed_hosts: Vec<String>,
    /// `allowed_paths`: preopened directories, host paths resolved against
    /// the manifest's directory.
    pub allowed_paths: Vec<Preopen>,
    /// `timeout_ms`: the wall-clock timeout of a call.
    pub timeout: Option<Duration>,
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("{KIND}: {msg}"))
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a JSON value is, for "is a …; expected …" messages.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, v: &Value, expected: &str) -> Error {
    bad(format!("`{field}` is {}; expected {expected}", type_of(v)))
}

/// Refuses fields not in `known`.
fn known_fields(obj: &Map<String, Value>, known: &[&str], within: &str) -> Result<()> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(bad(format!(
            "unknown field `{within}{k}` (known: {})",
            list(known)
        ))),
    }
}

/// An optional field: absent and `null` are both "not given".
fn opt<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str, field: &str) -> Result<Option<&'a str>> {
    match opt(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(field, v, "a string")),
    }
}

fn opt_u64(obj: &Map<String, Value>, key: &str, field: &str, what: &str) -> Result<Option<u64>> {
    match opt(obj, key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| match v {
            Value::Number(n) => bad(format!(
                "`{field}` = {n} is not {what} (a whole number, 0 or more)"
            )),
            _ => wrong_type(field, v, what),
        }),
    }
}

impl ExtismManifest {
    /// Parses and checks an Extism manifest from JSON text. `base_dir` is
    /// the manifest's directory: `path` sources and `allowed_paths` host
    /// directories are relative to it and may not leave it.
    pub fn from_json(text: &str, base_dir: &Path) -> Result<ExtismManifest> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| bad(format_args!("not valid JSON: {e}")))?;
        Self::from_value(&value, base_dir, Paths::ManifestDir)
    }

    /// Reads an Extism manifest file. Absolute paths in it are taken as
    /// they are; a relative path is taken in the manifest's directory, or,
    /// when nothing is there, in the current directory (where Extism takes
    /// it).
    pub fn load(path: &Path) -> Result<ExtismManifest> {
        let text = read_manifest(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let value: Value =
            serde_json::from_str(&text).map_err(|e| bad(format_args!("not valid JSON: {e}")))?;
        let mut m = Self::from_value(&value, base, Paths::ManifestDirThenCwd)?;
        m.path = Some(path.to_path_buf());
        Ok(m)
    }

    /// Checks an Extism manifest already parsed as JSON (see
    /// [`ExtismManifest::from_json`] and [`ExtismManifest::load`] for
    /// `paths`).
    pub(crate) fn from_value(
        value: &Value,
        base_dir: &Path,
        paths: Paths,
    ) -> Result<ExtismManifest> {
        let Value::Object(top) = value else {
            return Err(bad(format_args!(
                "the document is {}; expected an object with `wasm`",
                type_of(value)
            )));
        };
        known_fields(top, FIELDS, "")?;

        // wasm: one module, or several linked by name.
        let entries = match top.get("wasm") {
            None => {
                return Err(bad(
                    "`wasm` is missing (an array of modules: {\"path\": …}, {\"data\": …} or {\"url\": …})",
                ));
            }
            Some(Value::Array(a)) => a,
            Some(v) => return Err(wrong_type("wasm", v, "an array of modules")),
        };
        if entries.is_empty() {
            return Err(bad("`wasm` is empty; give at least one module"));
        }
        let modules = entries
            .iter()
            .enumerate()
            .map(|(i, e)| wasm_entry(i, e, base_dir, paths))
            .collect::<Result<Vec<_>>>()?;
        let main = main_index(&modules)?;
        let ExtismModule { source, name, hash } = modules[main].clone();
        // memory
        let (mut max_pages, mut max_http_response_bytes, mut max_var_bytes) = (None, None, None);
        match top.get("memory") {
            None => {}
            Some(Value::Object(mem)) => {
                known_fields(mem, MEMORY_FIELDS, "memory.")?;
                max_pages = opt_u64(mem, "max_pages", "memory.max_pages", "a page count")?
                    .map(|n| {
                        u32::try_from(n).map_err(|_| {
                            bad(format_args!(
                                "`memory.max_pages` = {n} is too large (at most {} pages of 64 KiB)",
                                u32::MAX
                            ))
                        })
                    })
                    .transpose()?;
                max_http_response_bytes = opt_u64(
                    mem,
                    "max_http_response_bytes",
                    "memory.max_http_response_bytes",
                    "a byte count",
                )?;
                max_var_bytes =
                    opt_u64(mem, "max_var_bytes", "memory.max_var_bytes", "a byte count")?;
            }
            Some(v) => {
                return Err(wrong_type(
                    "memory",
                    v,
                    &format!("an object with {}", list(MEMORY_FIELDS)),
                ));
            }
        }

        // config
        let mut config = BTreeMap::new();
        match top.get("config") {
            None => {}
            Some(Value::Object(c)) => {
                for (k, v) in c {
                    match v {
                        Value::String(s) => {
                            config.insert(k.clone(), s.clone());
                        }
                        _ => {
                            return Err(wrong_type(
                                &format!("config.{k}"),
                                v,
                                "a string (config values are strings)",
                            ));
                        }
                    }
                }
            }
            Some(v) => return Err(wrong_type("config", v, "an object of strings")),
        }

        // allowed_hosts
        let mut allowed_hosts = Vec::new();
        match opt(top, "allowed_hosts") {
            None => {}
            Some(Value::Array(hosts)) => {
                for (i, h) in hosts.iter().enumerate() {
                    let field = format!("allowed_hosts[{i}]");
                    let Value::String(h) = h else {
                        return Err(wrong_type(&field, h, "a host name string"));
                    };
                    check_host(h, KIND, &field)?;
                    allowed_hosts.push(h.clone());
                }
            }
            Some(v) => {
                return Err(wrong_type("allowed_hosts", v, "an array of host names"));
            }
        }

        // allowed_paths
        let mut allowed_paths = Vec::new();
        match opt(top, "allowed_paths") {
            None => {}
            Some(Value::Object(dirs)) => {
                // In key order, as Extism (a BTreeMap) does.
                let entries: BTreeMap<_, _> = dirs.iter().collect();
                for (host, guest) in entries {
                    let Value::String(guest) = guest else {
                        return Err(wrong_type(
                            &format!("allowed_paths.{host}"),
                            guest,
                            "a string (the path the guest sees)",
                        ));
                    };
                    let (rel, read_only) = match host.strip_prefix("ro:") {
                        Some(rest) => (rest, true),
                        None => (host.as_str(), false),
                    };
                    let host = locate(base_dir, rel, paths);
                    allowed_paths.push(Preopen {
                        host,
                        guest: guest.clone(),
                        read_only,
                    });
                }
            }
            Some(v) => {
                return Err(wrong_type(
                    "allowed_paths",
                    v,
                    "an object mapping host directories to guest paths",
                ));
            }
        }

        let timeout =
            opt_u64(top, "timeout_ms", "timeout_ms", "milliseconds")?.map(Duration::from_millis);

        Ok(ExtismManifest {
            path: None,
            modules,
            main,
            source,
            name,
            hash,
            max_pages,
            max_http_response_bytes,
            max_var_bytes,
            config,
            allowed_hosts,
            allowed_paths,
            timeout,
        })
    }

    /// The WASI grant for `allowed_paths`: `Some` with the directories (and
    /// stdio, clocks and random: [`Wasi::standard`]) when there are any. (A
    /// module that imports WASI without any needs a WASI grant of its own,
    /// `call --wasi`; that is the caller's decision.)
    pub fn wasi(&self) -> Option<Wasi> {
        if self.allowed_paths.is_empty() {
            return None;
        }
        Some(self.allowed_paths.iter().fold(Wasi::standard(), |w, p| {
            w.dir(p.host.clone(), p.guest.clone(), p.read_only)
        }))
    }

    /// Turns the manifest into runtime settings: the Extism calling
    /// convention, `defaults` with the manifest's memory and timeout, and
    /// its config, HTTP hosts and directories as capabilities.
    pub fn resolve(&self, defaults: &Limits) -> Resolved {
        let mut limits = defaults.clone();
        if let Some(pages) = self.max_pages {
            limits = limits.max_memory_bytes(u64::from(pages) * PAGE_BYTES);
        }
        if let Some(t) = self.timeout {
            limits = limits.timeout(Some(t));
        }

        let mut capabilities = Capabilities::none();
        for (k, v) in &self.config {
            capabilities = capabilities.with_config(k, v);
        }
        if !self.allowed_hosts.is_empty() {
            let mut http = Http::allow(self.allowed_hosts.iter().cloned());
            if let Some(n) = self.max_http_response_bytes {
                http = http.max_response_bytes(n);
            }
            capabilities = capabilities.with_http(http);
        }
        if let Some(wasi) = self.wasi() {
            capabilities = capabilities.with_wasi(wasi);
        }

        let label = |i: usize| match &self.path {
            Some(p) => format!("module `wasm[{i}]` of Extism manifest `{}`", p.display()),
            None => format!("module `wasm[{i}]` of the Extism manifest"),
        };
        let module_label = label(self.main);
        let linked = self
            .modules
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.main)
            .map(|(i, m)| LinkedSource {
                // Not the main one, so named (a nameless one would be `main`).
                name: m.name.clone().unwrap_or_else(|| MAIN.to_string()),
                source: m.source.clone(),
                sha256: m.hash,
                label: label(i),
            })
            .collect();
        Resolved {
            source: self.source.clone(),
            sha256: self.hash,
            convention: Some(Convention::Extism),
            function: None,
            snapshots: None,
            limits,
            capabilities,
            allowed_hosts: self.allowed_hosts.clone(),
            key_value: false,
            config: self.config.clone(),
            sha256_of: DigestOf::Source,
            module_label,
            max_var_bytes: self.max_var_bytes,
            linked,
            links: Vec::new(),
        }
    }
}

/// How an Extism manifest's relative paths are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paths {
    /// In the manifest's directory (text given without a file: nothing of
    /// the file system is looked at).
    ManifestDir,
    /// In the manifest's directory, else in the current directory when
    /// only that has it (a manifest file given by the operator: Extism
    /// itself reads paths from the current directory).
    ManifestDirThenCwd,
}

/// Where the path `p` of a manifest in `base` points: absolute paths as
/// they are, relative ones as `paths` says.
fn locate(base: &Path, p: &str, paths: Paths) -> PathBuf {
    let given = Path::new(p);
    if given.is_absolute() {
        return given.to_path_buf();
    }
    let in_dir = base.join(given);
    if paths == Paths::ManifestDirThenCwd && !in_dir.exists() && given.exists() {
        return std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
    }
    in_dir
}

/// One entry of `wasm`, the `i`th.
fn wasm_entry(i: usize, entry: &Value, base_dir: &Path, paths: Paths) -> Result<ExtismModule> {
    let field = |k: &str| format!("wasm[{i}].{k}");
    let Value::Object(w) = entry else {
        return Err(wrong_type(
            &format!("wasm[{i}]"),
            entry,
            "an object with `path`, `data` or `url`",
        ));
    };
    known_fields(w, WASM_FIELDS, &format!("wasm[{i}]."))?;
    let given: Vec<&str> = ["path", "data", "url"]
        .into_iter()
        .filter(|k| w.contains_key(*k))
        .collect();
    let string = |k: &str, what: &str| match &w[k] {
        Value::String(s) => Ok(s.as_str()),
        v => Err(wrong_type(&field(k), v, what)),
    };
    let source = match given.as_slice() {
        ["path"] => ModuleSource::File(locate(base_dir, string("path", "a string")?, paths)),
        ["data"] => ModuleSource::Bytes(
            BASE64
                .decode(string("data", "a base64 string")?.trim())
                .map_err(|e| bad(format_args!("`{}` is not valid base64: {e}", field("data"))))?,
        ),
        ["url"] => {
            let url = string("url", "a URL string")?;
            crate::fetch::host_of(url).map_err(|e| bad(format_args!("`{}`: {e}", field("url"))))?;
            let mut src = UrlSource::new(url)?;
            if let Some(m) = opt_str(w, "method", &field("method"))? {
                src = src.method(m);
            }
            match opt(w, "headers") {
                None => {}
                Some(Value::Object(h)) => {
                    for (k, v) in h {
                        let Value::String(v) = v else {
                            return Err(wrong_type(
                                &format!("{}.{k}", field("headers")),
                                v,
                                "a string",
                            ));
                        };
                        src = src.header(k, v);
                    }
                }
                Some(v) => return Err(wrong_type(&field("headers"), v, "an object of strings")),
            }
            ModuleSource::Url(src)
        }
        [] => {
            return Err(bad(format_args!(
                "`wasm[{i}]` needs one of `path`, `data` or `url`"
            )));
        }
        several => {
            return Err(bad(format_args!(
                "`wasm[{i}]` has {}; give exactly one of `path`, `data` or `url`",
                list(several).replace(", ", " and ")
            )));
        }
    };
    if !matches!(source, ModuleSource::Url(_)) {
        for k in ["headers", "method"] {
            if w.contains_key(k) {
                return Err(bad(format_args!("`{}` only goes with `url`", field(k))));
            }
        }
    }
    let name = opt_str(w, "name", &field("name"))?.map(str::to_string);
    let hash = opt_str(w, "hash", &field("hash"))?
        .map(|h| {
            h.trim().parse::<Digest>().map_err(|_| {
                bad(format_args!(
                    "`{}` = \"{h}\" is not a sha256 digest (64 hex digits, optionally prefixed `sha256:`)",
                    field("hash")
                ))
            })
        })
        .transpose()?;
    Ok(ExtismModule { source, name, hash })
}

/// Which module is the main one, as Extism chooses it: the only one; else
/// the first named `main` (a module without a name is named `main`); else
/// the last, whatever its name. Every other module is linked under its
/// name, and two modules may not share one.
fn main_index(modules: &[ExtismModule]) -> Result<usize> {
    if modules.len() == 1 {
        return Ok(0);
    }
    let name = |m: &ExtismModule| m.name.clone().unwrap_or_else(|| MAIN.to_string());
    let main = modules
        .iter()
        .position(|m| name(m) == MAIN)
        .unwrap_or(modules.len() - 1);
    let mut seen = std::collections::BTreeSet::new();
    for (i, m) in modules.iter().enumerate() {
        let n = if i == main { MAIN.to_string() } else { name(m) };
        if !seen.insert(n.clone()) {
            return Err(bad(format_args!(
                "two modules of `wasm` are named `{n}` (`wasm[{i}]` is the second; a module \
                 without a `name` is named `main`): with several modules, each is linked \
                 under its own name"
            )));
        }
    }
    Ok(main)
}

/// The name of Extism's main module.
const MAIN: &str = "main";

/// Whether a parsed JSON document is an Extism manifest (an object with
/// `wasm`).
pub(crate) fn looks_like(value: &Value) -> bool {
    value.as_object().is_some_and(|o| o.contains_key("wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ExtismManifest> {
        ExtismManifest::from_json(json, Path::new("/srv/plugins"))
    }

    #[test]
    fn a_full_manifest_maps_onto_limits_and_capabilities() {
        let m = parse(
            r#"{
              "wasm": [{"path": "plugin.wasm", "name": "main",
                        "hash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}],
              "memory": {"max_pages": 16, "max_http_response_bytes": 1048576, "max_var_bytes": 1024},
              "config": {"greeting": "hi"},
              "allowed_hosts": ["example.com", "*.example.org"],
              "allowed_paths": {"data": "/data", "ro:assets/img": "/img"},
              "timeout_ms": 1500
            }"#,
        )
        .unwrap();
        assert_eq!(m.name.as_deref(), Some("main"));
        let r = m.resolve(&Limits::default());
        assert_eq!(
            r.source,
            ModuleSource::File(PathBuf::from("/srv/plugins/plugin.wasm"))
        );
        assert_eq!(r.convention, Some(Convention::Extism));
        assert_eq!(r.sha256_of, DigestOf::Source);
        assert_eq!(
            r.sha256.map(|d| d.hex()).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(r.limits.max_memory_bytes, 16 * 65536);
        assert_eq!(r.limits.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(r.limits.fuel, Limits::default().fuel, "defaults kept");
        assert_eq!(
            r.capabilities.config.get("greeting").map(String::as_str),
            Some("hi")
        );
        assert_eq!(r.config.get("greeting").map(String::as_str), Some("hi"));
        let http = r.capabilities.http.as_ref().unwrap();
        assert_eq!(http.allowed_hosts, ["example.com", "*.example.org"]);
        assert_eq!(http.max_response_bytes, 1048576);
        assert!(http.allows("api.example.org") && !http.allows("example.net"));
        assert_eq!(r.allowed_hosts, ["example.com", "*.example.org"]);
        let wasi = r.capabilities.wasi.as_ref().unwrap();
        assert_eq!(
            wasi.dirs,
            [
                Preopen {
                    host: PathBuf::from("/srv/plugins/data"),
                    guest: "/data".into(),
                    read_only: false,
                },
                Preopen {
                    host: PathBuf::from("/srv/plugins/assets/img"),
                    guest: "/img".into(),
                    read_only: true,
                },
            ]
        );
        // WASI as Extism's `wasi: true` gives it: clocks and random come with it.
        assert!(wasi.args.is_empty() && wasi.env.is_empty() && wasi.clocks && wasi.random);
        assert!(!r.capabilities.log && r.capabilities.host.is_empty());
        assert_eq!(r.max_var_bytes, Some(1024));
        assert!(r.module_label.contains("wasm[0]"), "{}", r.module_label);
    }

    #[test]
    fn a_bare_manifest_grants_nothing() {
        let m = parse(r#"{"wasm": [{"data": "AGFzbQEAAAA="}]}"#).unwrap();
        let r = m.resolve(&Limits::default());
        assert_eq!(r.source, ModuleSource::Bytes(b"\0asm\x01\0\0\0".to_vec()));
        assert_eq!(r.capabilities, Capabilities::none());
        assert_eq!(r.limits, Limits::default());
        assert_eq!(r.sha256, None);
        assert_eq!(r.max_var_bytes, None);
        // null is "not given" where Extism's field is optional; empty
        // allowed_hosts grants no HTTP.
        let m = parse(
            r#"{"wasm": [{"data": "AGFzbQEAAAA=", "hash": null, "name": null}],
                "memory": {"max_pages": null}, "allowed_hosts": [], "allowed_paths": null,
                "timeout_ms": null}"#,
        )
        .unwrap();
        assert_eq!(
            m.resolve(&Limits::default()).capabilities,
            Capabilities::none()
        );
    }

    #[test]
    fn data_is_base64_with_or_without_padding() {
        let wasm = b"\0asm\x01\0\0\0";
        let padded = base64::engine::general_purpose::STANDARD.encode(wasm);
        let unpadded = padded.trim_end_matches('=');
        assert_ne!(padded, unpadded);
        for d in [padded.as_str(), unpadded] {
            let m = parse(&format!(r#"{{"wasm": [{{"data": "{d}"}}]}}"#)).unwrap();
            assert_eq!(m.source, ModuleSource::Bytes(wasm.to_vec()), "{d}");
        }
    }

    #[test]
    fn hashes_may_carry_the_sha256_prefix() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        for h in [hex.to_string(), format!("sha256:{hex}")] {
            let m = parse(&format!(
                r#"{{"wasm": [{{"path": "p.wasm", "hash": "{h}"}}]}}"#
            ))
            .unwrap();
            assert_eq!(m.hash.map(|d| d.hex()).as_deref(), Some(hex));
        }
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let cases: &[(&str, &[&str])] = &[
            // Not JSON, not an object.
            ("{", &["not valid JSON"]),
            ("[1]", &["an array", "object with `wasm`"]),
            // Unknown fields, with the known ones listed.
            (
                r#"{"wasm": [{"path": "a.wasm"}], "modules": 1}"#,
                &["unknown field `modules`", "`allowed_paths`", "`timeout_ms`"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm", "hahs": "x"}]}"#,
                &["unknown field `wasm[0].hahs`", "`hash`"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "memory": {"max_bytes": 1}}"#,
                &["unknown field `memory.max_bytes`", "`max_pages`"],
            ),
            // The module.
            (r#"{}"#, &["`wasm` is missing"]),
            (
                r#"{"wasm": {"path": "a.wasm"}}"#,
                &["`wasm` is an object", "array"],
            ),
            (r#"{"wasm": []}"#, &["`wasm` is empty"]),
            (
                r#"{"wasm": [{"path": "a.wasm"}, {"path": "b.wasm"}]}"#,
                &[
                    "two modules of `wasm` are named `main`",
                    "`wasm[1]` is the second",
                    "without a `name` is named `main`",
                ],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm", "name": "lib"}, {"path": "b.wasm", "name": "lib"}, {"path": "c.wasm"}]}"#,
                &["two modules of `wasm` are named `lib`"],
            ),
            (
                r#"{"wasm": [{"url": "ftp://example.com/p.wasm"}]}"#,
                &["`wasm[0].url`", "only http and https"],
            ),
            (
                r#"{"wasm": [{"url": "https://example.com/p.wasm", "headers": {"a": 1}}]}"#,
                &["`wasm[0].headers.a` is a number"],
            ),
            (r#"{"wasm": ["a.wasm"]}"#, &["`wasm[0]` is a string"]),
            (
                r#"{"wasm": [{"name": "main"}]}"#,
                &["`wasm[0]` needs one of `path`, `data` or `url`"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm", "data": "AGFzbQEAAAA="}]}"#,
                &["`path` and `data`", "exactly one"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm", "method": "GET"}]}"#,
                &["`wasm[0].method` only goes with `url`"],
            ),
            (
                r#"{"wasm": [{"path": 7}]}"#,
                &["`wasm[0].path` is a number", "a string"],
            ),
            (
                r#"{"wasm": [{"data": "AGFzbQEAAAA="}, {"path": 7, "name": "main"}]}"#,
                &["`wasm[1].path` is a number"],
            ),
            (
                r#"{"wasm": [{"data": "not base64!"}]}"#,
                &["`wasm[0].data` is not valid base64"],
            ),
            (
                r#"{"wasm": [{"data": {"ptr": 1, "len": 2}}]}"#,
                &["`wasm[0].data` is an object", "base64 string"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm", "hash": "abc"}]}"#,
                &[
                    "`wasm[0].hash` = \"abc\" is not a sha256 digest",
                    "64 hex digits",
                ],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm", "hash": 1}]}"#,
                &["`wasm[0].hash` is a number"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm", "name": true}]}"#,
                &["`wasm[0].name` is a boolean"],
            ),
            // Memory and timeout.
            (
                r#"{"wasm": [{"path": "a.wasm"}], "memory": {"max_pages": "16"}}"#,
                &["`memory.max_pages` is a string", "page count"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "memory": {"max_pages": -1}}"#,
                &["`memory.max_pages` = -1", "whole number"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "memory": {"max_pages": 4294967296}}"#,
                &["`memory.max_pages` = 4294967296 is too large"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "memory": {"max_http_response_bytes": 1.5}}"#,
                &["`memory.max_http_response_bytes` = 1.5"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "memory": 16}"#,
                &["`memory` is a number", "`max_pages`"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "timeout_ms": "1s"}"#,
                &["`timeout_ms` is a string", "milliseconds"],
            ),
            // Capabilities.
            (
                r#"{"wasm": [{"path": "a.wasm"}], "config": {"n": 1}}"#,
                &["`config.n` is a number", "strings"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "config": null}"#,
                &["`config` is null"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "allowed_hosts": "example.com"}"#,
                &["`allowed_hosts` is a string", "array"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "allowed_hosts": [1]}"#,
                &["`allowed_hosts[0]` is a number"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "allowed_hosts": ["ok.com", "https://x.com/"]}"#,
                &["`allowed_hosts[1]` = \"https://x.com/\" is not a host name"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "allowed_paths": ["data"]}"#,
                &["`allowed_paths` is an array", "object"],
            ),
            (
                r#"{"wasm": [{"path": "a.wasm"}], "allowed_paths": {"data": 1}}"#,
                &["`allowed_paths.data` is a number"],
            ),
        ];
        for (json, needles) in cases {
            let err = parse(json).unwrap_err();
            assert_eq!(err.code(), wasmhost::ErrorCode::BadInput, "{json}");
            let msg = err.to_string();
            assert!(msg.contains("Extism manifest: "), "{json}: {msg}");
            for n in *needles {
                assert!(msg.contains(n), "{json}: {msg}\n  does not contain: {n}");
            }
        }
    }

    #[test]
    fn paths_are_read_as_extism_reads_them() {
        // Relative: in the manifest's directory, `..` included; absolute:
        // as they are (Extism refuses neither).
        let m = parse(
            r#"{"wasm": [{"path": "../b.wasm"}],
                "allowed_paths": {"ro:./d/../e": "/e", "/var/data": "/data"}}"#,
        )
        .unwrap();
        assert_eq!(
            m.source,
            ModuleSource::File(PathBuf::from("/srv/plugins/../b.wasm"))
        );
        assert_eq!(
            (
                m.allowed_paths[0].host.as_path(),
                m.allowed_paths[0].read_only
            ),
            (Path::new("/var/data"), false)
        );
        assert_eq!(
            (
                m.allowed_paths[1].host.as_path(),
                m.allowed_paths[1].read_only
            ),
            (Path::new("/srv/plugins/./d/../e"), true)
        );
        let m = parse(r#"{"wasm": [{"path": "/opt/plugins/p.wasm"}]}"#).unwrap();
        assert_eq!(
            m.source,
            ModuleSource::File(PathBuf::from("/opt/plugins/p.wasm"))
        );
    }

    #[test]
    fn several_modules_pick_main_and_link_the_others_by_name() {
        // Named `main`: that one, wherever it is.
        let m = parse(
            r#"{"wasm": [{"path": "main.wasm", "name": "main"},
                         {"data": "AGFzbQEAAAA=", "name": "lib", "hash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]}"#,
        )
        .unwrap();
        assert_eq!((m.main, m.name.as_deref()), (0, Some("main")));
        let r = m.resolve(&Limits::default());
        assert_eq!(
            r.source,
            ModuleSource::File(PathBuf::from("/srv/plugins/main.wasm"))
        );
        assert_eq!(r.linked.len(), 1);
        assert_eq!(r.linked[0].name, "lib");
        assert_eq!(
            r.linked[0].source,
            ModuleSource::Bytes(b"\0asm\x01\0\0\0".to_vec())
        );
        assert!(r.linked[0].sha256.is_some());
        assert!(
            r.linked[0].label.contains("wasm[1]"),
            "{}",
            r.linked[0].label
        );
        // No `main`: the last one, which may go unnamed.
        let m = parse(
            r#"{"wasm": [{"path": "a.wasm", "name": "a"}, {"url": "https://example.com/p.wasm",
                         "method": "POST", "headers": {"Authorization": "Bearer x"}}]}"#,
        )
        .unwrap();
        assert_eq!(m.main, 1);
        let ModuleSource::Url(u) = &m.source else {
            panic!("{:?}", m.source)
        };
        assert_eq!(
            (u.url.as_str(), u.method.as_deref()),
            ("https://example.com/p.wasm", Some("POST"))
        );
        assert_eq!(
            u.headers.get("Authorization").map(String::as_str),
            Some("Bearer x")
        );
        let r = m.resolve(&Limits::default());
        assert_eq!(r.linked[0].name, "a");
        assert!(r.module_label.contains("wasm[1]"), "{}", r.module_label);
        // A module without a name is `main`, even when it comes first; the
        // last one is main only when no other is, whatever its name.
        let m =
            parse(r#"{"wasm": [{"path": "m.wasm"}, {"path": "l.wasm", "name": "lib"}]}"#).unwrap();
        assert_eq!(m.main, 0);
        assert_eq!(m.resolve(&Limits::default()).linked[0].name, "lib");
        let m = parse(
            r#"{"wasm": [{"path": "u.wasm", "name": "extism:host/user"},
                         {"path": "r.wasm", "name": "reflect"}]}"#,
        )
        .unwrap();
        assert_eq!(m.main, 1);
        assert_eq!(
            m.resolve(&Limits::default()).linked[0].name,
            "extism:host/user"
        );
    }
}
