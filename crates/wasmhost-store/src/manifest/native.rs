//! wasmhost's own manifest: a TOML file that says which module to run, how
//! to call it, with what limits and what capabilities.
//!
//! ```toml
//! [module]
//! path = "app.wasm"            # or: store = "app:v1" / "sha256:…" / "oci://ghcr.io/acme/app:v1", or: base64 = "AGFzbQ…"
//! sha256 = "…"                 # optional, verified before the module is used
//!
//! [call]
//! convention = "wasi-command"  # auto | numeric | wasi-command | extism | assemblyscript | component
//! function = "run"
//!
//! [limits]
//! max_memory = "64MiB"
//! timeout = "500ms"
//! fuel = 1_000_000
//!
//! [capabilities]
//! log = true
//! allowed_hosts = ["api.example.com"]
//! config = { greeting = "hi" }
//!
//! [capabilities.wasi]
//! args = ["app", "--verbose"]
//! env = { LANG = "C" }
//! dirs = [{ host = "data", guest = "/data", read_only = true }]
//! random = false               # clocks and random come with WASI; false takes one away
//!
//! [actor]
//! snapshots = "every-message"  # every-message | on-passivation | never
//!
//! [[link]]                     # a component's imported interface, provided by another component
//! interface = "wasmhost:example/console"
//! path = "provider.toml"       # or: store = "provider:v1" / "oci://…"; a manifest gives the provider its own limits and grants
//! ```
//!
//! The JSON schema is `docs/manifest.schema.json` (generated from these
//! types by [`schema_json`]; a test keeps the committed copy current).
//! Paths are relative to the manifest's directory and may not leave it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wasmhost::{
    Capabilities, Convention, Digest, Error, Http, Limits, Result, SnapshotPolicy, Wasi,
};

use crate::Reference;
use crate::fetch::UrlSource;

/// A wasmhost manifest, as written in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// Which module.
    pub module: ModuleSpec,
    /// How to call it.
    #[serde(default)]
    pub call: CallSpec,
    /// Default limits of its calls.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// What it may touch. Nothing unless listed.
    #[serde(default)]
    pub capabilities: CapabilitiesSpec,
    /// How it runs as an actor.
    #[serde(default)]
    pub actor: ActorSection,
    /// Interfaces the module (a component) imports that other components
    /// provide, each in its own sandbox with its own limits and grants
    /// (`[[link]]`; `--link INTERFACE=PROVIDER` on the command line).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<LinkSpec>,
}

/// `[[link]]`: one imported interface and the component that provides it:
/// exactly one of `path` and `store`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The interface, as the module imports it (`wasmhost:example/console`,
    /// with or without `@version`).
    pub interface: String,
    /// The provider: a component file or a manifest (which gives it its
    /// own limits and grants), relative to this manifest's directory. A
    /// component file gets the default limits and WASI (stdio, clocks,
    /// random), nothing else.
    pub path: Option<String>,
    /// The provider as a store reference (`name[:tag]`, `sha256:…`) or
    /// `oci://REGISTRY/REPOSITORY[:TAG|@sha256:…]`.
    pub store: Option<String>,
}

/// `[actor]`: settings of the module's actors (`wasmhost actor send`,
/// actor routes of `wasmhost serve`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorSection {
    /// When an actor's state (memory, globals, Extism vars) is saved:
    /// `every-message` (with each message, atomically; the default),
    /// `on-passivation` (when idle and at shutdown) or `never`.
    #[serde(default, with = "policy_serde")]
    #[schemars(with = "Option<PolicyName>")]
    pub snapshots: Option<SnapshotPolicy>,
}

/// The names of the snapshot policies, for the schema.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum PolicyName {
    EveryMessage,
    OnPassivation,
    Never,
}

mod policy_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use wasmhost::SnapshotPolicy;

    pub fn serialize<S: Serializer>(p: &Option<SnapshotPolicy>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_some(p.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SnapshotPolicy>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|n| n.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Where the module comes from: exactly one of `path`, `store`, `base64`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleSpec {
    /// A file, relative to the manifest's directory.
    pub path: Option<String>,
    /// A store reference: `name[:tag]` or `sha256:<hex>`; or a module in an
    /// OCI registry, `oci://REGISTRY/REPOSITORY[:TAG|@sha256:…]`, pulled
    /// into the store by digest.
    pub store: Option<String>,
    /// The module itself, base64-encoded.
    pub base64: Option<String>,
    /// Expected sha256 of the wasm bytes (hex, optionally `sha256:`-prefixed).
    pub sha256: Option<String>,
}

/// The calling convention and entry function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// How data crosses the boundary.
    #[serde(default, with = "convention_serde")]
    #[schemars(with = "ConventionName")]
    pub convention: Option<Convention>,
    /// The function to call (not used by `wasi-command`).
    pub function: Option<String>,
}

/// The manifest's names of the calling conventions (`[call] convention`),
/// each with the [`Convention`] it forces (`None`: detected) and what it
/// means. `wasi-command` is [`Convention::Process`]; `raw` is not offered.
pub const CONVENTION_NAMES: [(&str, Option<Convention>, &str); 6] = [
    (
        "auto",
        None,
        "Picked from the module's imports and exports.",
    ),
    (
        "numeric",
        Some(Convention::Numeric),
        "Numeric arguments and results.",
    ),
    (
        "wasi-command",
        Some(Convention::Process),
        "A WASI command: stdin in, stdout out.",
    ),
    ("extism", Some(Convention::Extism), "The Extism plugin ABI."),
    (
        "assemblyscript",
        Some(Convention::AssemblyScript),
        "AssemblyScript string exports.",
    ),
    (
        "component",
        Some(Convention::Component),
        "A component called through its WIT types.",
    ),
];

/// The manifest's name of a convention (`auto` for none); `None` for one a
/// manifest cannot name.
pub fn convention_name(convention: Option<Convention>) -> Option<&'static str> {
    CONVENTION_NAMES
        .iter()
        .find(|(_, c, _)| *c == convention)
        .map(|(name, _, _)| *name)
}

/// `[call] convention` as text: the names of [`CONVENTION_NAMES`].
mod convention_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use wasmhost::Convention;

    use super::CONVENTION_NAMES;

    pub fn serialize<S: Serializer>(c: &Option<Convention>, s: S) -> Result<S::Ok, S::Error> {
        match super::convention_name(*c) {
            Some(name) => s.serialize_str(name),
            None => Err(serde::ser::Error::custom(format!(
                "a manifest cannot name the calling convention `{}`",
                c.map(Convention::as_str).unwrap_or("auto")
            ))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Convention>, D::Error> {
        let text = String::deserialize(d)?;
        match CONVENTION_NAMES.iter().find(|(name, _, _)| *name == text) {
            Some((_, c, _)) => Ok(*c),
            None => {
                let names: Vec<String> = CONVENTION_NAMES
                    .iter()
                    .map(|(name, _, _)| format!("`{name}`"))
                    .collect();
                Err(serde::de::Error::custom(format!(
                    "unknown variant `{text}`, expected one of {}",
                    names.join(", ")
                )))
            }
        }
    }
}

/// The JSON schema of `[call] convention`: one of [`CONVENTION_NAMES`].
struct ConventionName;

impl JsonSchema for ConventionName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Convention".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one_of: Vec<serde_json::Value> = CONVENTION_NAMES
            .iter()
            .map(|(name, _, doc)| {
                serde_json::json!({"description": doc, "type": "string", "const": name})
            })
            .collect();
        schemars::json_schema!({
            "description": "How data crosses the boundary.",
            "oneOf": one_of,
        })
    }
}

/// A size: bytes as a number, or text like `"64MiB"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    /// A byte count.
    Bytes(u64),
    /// `64MiB`, `1GiB`, `512KiB`, …
    Text(String),
}

/// Limits; anything left out keeps the runtime's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Total linear memory.
    pub max_memory: Option<Size>,
    /// Wall-clock timeout, e.g. `"500ms"`, `"30s"`, or `"none"`.
    pub timeout: Option<String>,
    /// Fuel per call (needs fuel metering).
    pub fuel: Option<u64>,
    /// Elements per table.
    pub max_table_elements: Option<u64>,
    /// Core instances per call.
    pub max_instances: Option<u32>,
    /// Host resources (open files, streams, wasi:http fields) a call may
    /// hold at once.
    pub max_host_resources: Option<usize>,
    /// Bytes one WASI random call may ask for, e.g. `"1MiB"`.
    pub max_random_bytes: Option<Size>,
    /// Bytes a guest may pass to the host in one host call, e.g. `"64MiB"`.
    pub max_hostcall_bytes: Option<Size>,
}

/// Capabilities; nothing is granted unless listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSpec {
    /// The `wasmhost::log` host function.
    #[serde(default)]
    pub log: bool,
    /// WASI, with its own grants.
    pub wasi: Option<WasiSpec>,
    /// Hosts outbound HTTP may reach (for conventions with an HTTP capability).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Durable key-value state (for conventions with a key-value capability).
    #[serde(default)]
    pub key_value: bool,
    /// Configuration values the guest may read.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// WASI grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WasiSpec {
    /// Arguments, program name first.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment entries.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Preopened directories.
    #[serde(default)]
    pub dirs: Vec<DirSpec>,
    /// Wall and monotonic clocks: part of WASI unless set to false (a
    /// guest that reads them then stops with `capability_denied`).
    #[serde(default = "yes")]
    pub clocks: bool,
    /// Random numbers: part of WASI unless set to false, like `clocks`.
    #[serde(default = "yes")]
    pub random: bool,
}

/// A preopened directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirSpec {
    /// Host directory, relative to the manifest's directory.
    pub host: String,
    /// Path the guest sees.
    pub guest: String,
    /// Read-only unless set to false.
    #[serde(default = "yes")]
    pub read_only: bool,
}

fn yes() -> bool {
    true
}

/// Where a resolved manifest's module bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModuleSource {
    /// A file (for a wasmhost manifest, already checked to be inside the
    /// manifest's directory).
    File(PathBuf),
    /// A store reference.
    Store(Reference),
    /// A module in an OCI registry (the resolver pulls it into the store
    /// and reads it from there).
    Oci(crate::oci::OciReference),
    /// The bytes themselves.
    Bytes(Vec<u8>),
    /// A URL (Extism manifests), fetched from allowed hosts only (see
    /// [`crate::fetch`]).
    Url(UrlSource),
}

/// A module linked by name to a manifest's main module (an Extism
/// manifest's other named modules; see [`wasmhost::Module::link`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkedSource {
    /// The name the other modules import it by.
    pub name: String,
    /// Where its bytes are.
    pub source: ModuleSource,
    /// The digest they must have (of the bytes as read), if given.
    pub sha256: Option<Digest>,
    /// How messages name it.
    pub label: String,
}

/// A manifest turned into what the runtime needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Resolved {
    /// Where the module is.
    pub source: ModuleSource,
    /// The digest the module must have, if the manifest gave one.
    pub sha256: Option<Digest>,
    /// The calling convention the manifest forces; `None` detects it.
    pub convention: Option<Convention>,
    /// The entry function.
    pub function: Option<String>,
    /// The snapshot policy of its actors (`[actor] snapshots`).
    pub snapshots: Option<SnapshotPolicy>,
    /// Limits for its calls.
    pub limits: Limits,
    /// Capabilities for its calls: every grant of the manifest (its
    /// configuration and allowed hosts included), but key-value state,
    /// which needs a store (see [`crate::resolve`]).
    pub capabilities: Capabilities,
    /// Hosts outbound HTTP may reach (also in `capabilities.http`).
    pub allowed_hosts: Vec<String>,
    /// Whether durable key-value state is granted.
    pub key_value: bool,
    /// Configuration values (also in `capabilities.config`).
    pub config: BTreeMap<String, String>,
    /// What [`Resolved::sha256`] is the digest of.
    pub sha256_of: DigestOf,
    /// How messages name the module (`the manifest's module`, or for an
    /// Extism manifest the entry and the file).
    pub module_label: String,
    /// The Extism manifest's `memory.max_var_bytes`, when given. wasmhost's
    /// Extism var store is fixed at 1 MiB; a smaller value is recorded here
    /// and not enforced yet.
    pub max_var_bytes: Option<u64>,
    /// Modules linked to the main one by name (an Extism manifest's other
    /// modules), in the manifest's order.
    pub linked: Vec<LinkedSource>,
    /// Components providing the module's imported interfaces (`[[link]]`),
    /// resolved by the resolver like any MODULE.
    pub links: Vec<ComponentLink>,
}

/// An interface provided by a component (see [`LinkSpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentLink {
    /// The imported interface.
    pub interface: String,
    /// The provider: a MODULE argument (a path already checked to be
    /// inside the manifest's directory, or a reference).
    pub module: String,
    /// Whether `module` is a file of the host.
    pub is_path: bool,
}

/// What a manifest's digest covers. Either way it is checked before the
/// module is validated or compiled (for WAT text under [`DigestOf::Wasm`],
/// right after the text is converted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestOf {
    /// The wasm binary, WAT text being converted first (wasmhost manifests:
    /// the digest the store would give it).
    #[default]
    Wasm,
    /// The bytes exactly as read from the file or decoded from base64
    /// (Extism manifests: what Extism hashes).
    Source,
}

/// The manifest's JSON schema, pretty-printed.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// A path inside `base`: relative, without `..` that climbs out of it.
/// `kind` starts the error message (`manifest`, `Extism manifest`) and
/// `field` names the offending field.
pub(crate) fn inside(base: &Path, rel: &str, kind: &str, field: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let mut depth: i32 = 0;
    for c in p.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(Error::bad_input(format!(
                        "{kind}: `{field}` = \"{rel}\" leaves the manifest's directory"
                    )));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::bad_input(format!(
                    "{kind}: `{field}` = \"{rel}\" must be relative to the manifest's directory"
                )));
            }
        }
    }
    Ok(base.join(p))
}

/// Refuses an allowed-host entry that is not a host name or pattern
/// ([`Http::check_pattern`], the library's one rule).
pub(crate) fn check_host(h: &str, kind: &str, field: &str) -> Result<()> {
    Http::check_pattern(h).map_err(|why| {
        Error::bad_input(format!(
            "{kind}: `{field}` = \"{h}\" is not a host name (like `api.example.com` or `*.example.com`): {why}"
        ))
    })
}

fn parse_size(s: &Size, field: &str) -> Result<u64> {
    match s {
        Size::Bytes(n) => Ok(*n),
        Size::Text(t) => t
            .trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|e| {
                Error::bad_input(format!(
                    "manifest: `{field}` = \"{t}\" is not a size (try \"64MiB\"): {e}"
                ))
            }),
    }
}

fn parse_timeout(t: &str) -> Result<Option<Duration>> {
    if matches!(t.trim(), "none" | "off") {
        return Ok(None);
    }
    humantime::parse_duration(t.trim()).map(Some).map_err(|e| {
        Error::bad_input(format!(
            "manifest: `limits.timeout` = \"{t}\" is not a duration (try \"500ms\" or \"none\"): {e}"
        ))
    })
}

impl Manifest {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Manifest> {
        toml::from_str(text)
            .map_err(|e| Error::bad_input(format!("manifest: {}", e.to_string().trim_end())))
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::not_found(format!("manifest `{}`", path.display()))
            }
            _ => Error::bad_input(format!("cannot read manifest `{}`: {e}", path.display())),
        })?;
        Manifest::from_toml(&text)
    }

    /// Checks the manifest and turns it into runtime settings. Relative
    /// paths are resolved against `base` (the manifest's directory);
    /// `defaults` are the limits for anything the manifest leaves out.
    pub fn resolve(&self, base: &Path, defaults: &Limits) -> Result<Resolved> {
        let m = &self.module;
        let source = match (&m.path, &m.store, &m.base64) {
            (Some(p), None, None) => {
                ModuleSource::File(inside(base, p, "manifest", "module.path")?)
            }
            (None, Some(r), None) if r.starts_with(crate::oci::SCHEME) => {
                ModuleSource::Oci(r.parse()?)
            }
            (None, Some(r), None) => ModuleSource::Store(r.parse()?),
            (None, None, Some(b)) => ModuleSource::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .map_err(|e| {
                        Error::bad_input(format!(
                            "manifest: `module.base64` is not valid base64: {e}"
                        ))
                    })?,
            ),
            _ => {
                return Err(Error::bad_input(
                    "manifest: `[module]` needs exactly one of `path`, `store` or `base64`",
                ));
            }
        };
        let sha256 = m.sha256.as_deref().map(str::parse::<Digest>).transpose()?;

        let l = &self.limits;
        let mut limits = defaults.clone();
        if let Some(s) = &l.max_memory {
            limits = limits.max_memory_bytes(parse_size(s, "limits.max_memory")?);
        }
        if let Some(t) = &l.timeout {
            limits = limits.timeout(parse_timeout(t)?);
        }
        if let Some(f) = l.fuel {
            limits = limits.fuel(Some(f));
        }
        if let Some(n) = l.max_table_elements {
            limits = limits.max_table_elements(n);
        }
        if let Some(n) = l.max_instances {
            limits = limits.max_instances(n);
        }
        if let Some(n) = l.max_host_resources {
            limits = limits.max_host_resources(n);
        }
        if let Some(s) = &l.max_random_bytes {
            limits = limits.max_random_bytes(parse_size(s, "limits.max_random_bytes")?);
        }
        if let Some(s) = &l.max_hostcall_bytes {
            limits = limits.max_hostcall_bytes(parse_size(s, "limits.max_hostcall_bytes")?);
        }

        let c = &self.capabilities;
        let mut capabilities = Capabilities::none().with_log(c.log);
        if let Some(w) = &c.wasi {
            let mut wasi = Wasi::new()
                .args(w.args.iter().cloned())
                .clocks(w.clocks)
                .random(w.random);
            for (k, v) in &w.env {
                wasi = wasi.env(k, v);
            }
            for (i, d) in w.dirs.iter().enumerate() {
                let host = inside(
                    base,
                    &d.host,
                    "manifest",
                    &format!("capabilities.wasi.dirs[{i}].host"),
                )?;
                wasi = wasi.dir(host, d.guest.clone(), d.read_only);
            }
            capabilities = capabilities.with_wasi(wasi);
        }
        for (i, h) in c.allowed_hosts.iter().enumerate() {
            check_host(h, "manifest", &format!("capabilities.allowed_hosts[{i}]"))?;
        }
        if !c.allowed_hosts.is_empty() {
            capabilities = capabilities.with_http(Http::allow(c.allowed_hosts.iter().cloned()));
        }
        for (k, v) in &c.config {
            capabilities = capabilities.with_config(k, v);
        }
        Ok(Resolved {
            source,
            sha256,
            convention: self.call.convention,
            function: self.call.function.clone(),
            snapshots: self.actor.snapshots,
            limits,
            capabilities,
            allowed_hosts: c.allowed_hosts.clone(),
            key_value: c.key_value,
            config: c.config.clone(),
            sha256_of: DigestOf::Wasm,
            module_label: "the manifest's module".into(),
            max_var_bytes: None,
            linked: Vec::new(),
            links: self
                .link
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let module = match (&l.path, &l.store) {
                        (Some(p), None) => {
                            let path = inside(base, p, "manifest", &format!("link[{i}].path"))?;
                            return Ok(ComponentLink {
                                interface: l.interface.clone(),
                                module: path.to_string_lossy().into_owned(),
                                is_path: true,
                            });
                        }
                        (None, Some(r)) => r.clone(),
                        _ => {
                            return Err(Error::bad_input(format!(
                                "manifest: `[[link]]` {} (`{}`) needs exactly one of `path` or `store`",
                                i + 1,
                                l.interface
                            )));
                        }
                    };
                    Ok(ComponentLink {
                        interface: l.interface.clone(),
                        module,
                        is_path: false,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[module]
path = "app.wasm"
sha256 = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

[call]
convention = "wasi-command"

[limits]
max_memory = "64MiB"
timeout = "500ms"
fuel = 1000

[capabilities]
log = true
allowed_hosts = ["api.example.com"]
config = { greeting = "hi" }

[capabilities.wasi]
args = ["app", "-v"]
env = { LANG = "C" }
dirs = [{ host = "data", guest = "/data" }]
random = false
"#;

    #[test]
    fn a_full_manifest_resolves() {
        let m = Manifest::from_toml(FULL).unwrap();
        let r = m
            .resolve(Path::new("/srv/app"), &Limits::default())
            .unwrap();
        assert_eq!(
            r.source,
            ModuleSource::File(PathBuf::from("/srv/app/app.wasm"))
        );
        assert_eq!(r.convention, Some(Convention::Process));
        assert_eq!(r.limits.max_memory_bytes, 64 << 20);
        assert_eq!(r.limits.timeout, Some(Duration::from_millis(500)));
        assert_eq!(r.limits.fuel, Some(1000));
        assert!(r.capabilities.log);
        let wasi = r.capabilities.wasi.as_ref().unwrap();
        assert_eq!(wasi.args, ["app", "-v"]);
        assert_eq!(wasi.env, [("LANG".to_string(), "C".to_string())]);
        assert_eq!(wasi.dirs[0].host, PathBuf::from("/srv/app/data"));
        assert!(
            wasi.dirs[0].read_only,
            "directories are read-only unless said otherwise"
        );
        // Clocks come with WASI; random was taken away.
        assert!(wasi.clocks && !wasi.random);
        assert_eq!(r.allowed_hosts, ["api.example.com"]);
        assert_eq!(r.config.get("greeting").map(String::as_str), Some("hi"));
        // Config and hosts are grants like the others.
        assert_eq!(
            r.capabilities.config.get("greeting").map(String::as_str),
            Some("hi")
        );
        let http = r.capabilities.http.as_ref().unwrap();
        assert!(http.allows("api.example.com") && !http.allows("example.com"));
        assert!(r.sha256.is_some());
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let m = Manifest::from_toml("[module]\nstore = \"app:v1\"\n").unwrap();
        let r = m.resolve(Path::new("."), &Limits::default()).unwrap();
        assert_eq!(r.capabilities, Capabilities::none());
        assert_eq!(r.limits, Limits::default());
        assert!(matches!(r.source, ModuleSource::Store(_)));
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let cases = [
            ("[module]\npath = \"a\"\nstore = \"b\"\n", "exactly one of"),
            ("[module]\n", "exactly one of"),
            (
                "[module]\npath = \"../../etc/passwd\"\n",
                "leaves the manifest's directory",
            ),
            ("[module]\npath = \"/etc/passwd\"\n", "must be relative"),
            ("[module]\nbase64 = \"!!!\"\n", "not valid base64"),
            (
                "[module]\npath = \"a\"\n[limits]\nmax_memory = \"lots\"\n",
                "not a size",
            ),
            (
                "[module]\npath = \"a\"\n[limits]\ntimeout = \"soon\"\n",
                "not a duration",
            ),
            (
                "[module]\npath = \"a\"\n[call]\nconvention = \"magic\"\n",
                "unknown variant",
            ),
            ("[module]\npath = \"a\"\nextra = 1\n", "unknown field"),
            ("[module]\nstore = \"Bad Name\"\n", "name"),
            ("[module]\npath = \"a\"\nsha256 = \"xyz\"\n", "sha256"),
            (
                "[module]\npath = \"a\"\n[capabilities]\nallowed_hosts = [\"http://x/y\"]\n",
                "not a host name",
            ),
        ];
        for (text, needle) in cases {
            let err = Manifest::from_toml(text)
                .and_then(|m| m.resolve(Path::new("/base"), &Limits::default()))
                .unwrap_err();
            assert_eq!(err.code(), wasmhost::ErrorCode::BadInput, "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn dot_dot_inside_the_directory_is_fine() {
        let m = Manifest::from_toml("[module]\npath = \"a/../b.wasm\"\n").unwrap();
        assert!(m.resolve(Path::new("/base"), &Limits::default()).is_ok());
    }

    #[test]
    fn host_call_limits_are_read() {
        let m = Manifest::from_toml(
            "[module]\npath = \"m.wasm\"\n[limits]\nmax_host_resources = 5\n\
             max_random_bytes = \"4KiB\"\nmax_hostcall_bytes = 1024\n",
        )
        .unwrap();
        let r = m.resolve(Path::new("/base"), &Limits::default()).unwrap();
        assert_eq!(r.limits.max_host_resources, 5);
        assert_eq!(r.limits.max_random_bytes, 4096);
        assert_eq!(r.limits.max_hostcall_bytes, 1024);
    }

    #[test]
    fn committed_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/manifest.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != schema_json() {
            if std::env::var_os("WASMHOST_UPDATE_SCHEMA").is_some() {
                std::fs::write(&path, schema_json()).unwrap();
            } else {
                panic!(
                    "docs/manifest.schema.json is out of date; regenerate with \
                     WASMHOST_UPDATE_SCHEMA=1 cargo test -p wasmhost-store committed_schema"
                );
            }
        }
    }
}
