//! The "packet" manifest: JSON carrying base64 modules.
//!
//! ```json
//! {
//!   "name": "my-packet",
//!   "sourceContent": [
//!     {"origin": "local", "format": "wasm", "lrl": "agent.wasm",
//!      "worldVersion": "v1", "contentB64": "AGFzbQEAAAA="}
//!   ]
//! }
//! ```
//!
//! Each entry of `sourceContent` must have `format` `"wasm"` and a
//! `worldVersion` this host supports ([`SUPPORTED_WORLD_VERSIONS`]); its
//! `contentB64` is decoded and validated as a module. Anything else is a
//! `bad_input` error naming the field (`sourceContent[0].worldVersion`) and
//! the supported values. Fields this host does not use are ignored.

use base64::Engine as _;
use serde::Deserialize;
use wasmhost::{Error, ModuleKind, Result};

/// Module formats a packet entry may declare.
pub const SUPPORTED_FORMATS: &[&str] = &["wasm"];
/// WIT world versions this host supports.
pub const SUPPORTED_WORLD_VERSIONS: &[&str] = &["v1"];

/// A parsed packet manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Packet {
    /// The packet's `name`, if it has one.
    pub name: Option<String>,
    /// Its modules, in order, decoded and validated.
    pub modules: Vec<PacketModule>,
}

/// One decoded module of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PacketModule {
    /// `origin` as given.
    pub origin: Option<String>,
    /// `lrl` (the module's locator) as given.
    pub lrl: Option<String>,
    /// `worldVersion`.
    pub world_version: String,
    /// The wasm binary.
    pub wasm: Vec<u8>,
    /// Core module or component.
    pub kind: ModuleKind,
}

#[derive(Deserialize)]
struct RawPacket {
    name: Option<String>,
    #[serde(rename = "sourceContent")]
    source_content: Option<Vec<RawEntry>>,
}

#[derive(Deserialize)]
struct RawEntry {
    origin: Option<String>,
    format: Option<String>,
    lrl: Option<String>,
    #[serde(rename = "worldVersion")]
    world_version: Option<String>,
    #[serde(rename = "contentB64")]
    content_b64: Option<String>,
}

fn supported(list: &[&str]) -> String {
    list.iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Packet {
    /// Parses and validates a packet from JSON text.
    pub fn from_json(text: &str) -> Result<Packet> {
        let raw: RawPacket = serde_json::from_str(text)
            .map_err(|e| Error::bad_input(format!("packet manifest is not valid JSON: {e}")))?;
        let entries = raw.source_content.ok_or_else(|| {
            Error::bad_input("packet manifest: `sourceContent` is missing (an array of modules)")
        })?;
        if entries.is_empty() {
            return Err(Error::bad_input(
                "packet manifest: `sourceContent` is empty; it needs at least one module",
            ));
        }
        let mut modules = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let field = |f: &str| format!("sourceContent[{i}].{f}");
            let format = e.format.ok_or_else(|| {
                Error::bad_input(format!(
                    "packet manifest: `{}` is missing (supported: {})",
                    field("format"),
                    supported(SUPPORTED_FORMATS)
                ))
            })?;
            if !SUPPORTED_FORMATS.contains(&format.as_str()) {
                return Err(Error::bad_input(format!(
                    "packet manifest: `{}` is \"{format}\", which this host does not support (supported: {})",
                    field("format"),
                    supported(SUPPORTED_FORMATS)
                )));
            }
            let world_version = e.world_version.ok_or_else(|| {
                Error::bad_input(format!(
                    "packet manifest: `{}` is missing (supported: {})",
                    field("worldVersion"),
                    supported(SUPPORTED_WORLD_VERSIONS)
                ))
            })?;
            if !SUPPORTED_WORLD_VERSIONS.contains(&world_version.as_str()) {
                return Err(Error::bad_input(format!(
                    "packet manifest: `{}` is \"{world_version}\", which this host does not support (supported: {})",
                    field("worldVersion"),
                    supported(SUPPORTED_WORLD_VERSIONS)
                )));
            }
            let b64 = e.content_b64.ok_or_else(|| {
                Error::bad_input(format!(
                    "packet manifest: `{}` is missing (the module, base64-encoded)",
                    field("contentB64")
                ))
            })?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|err| {
                    Error::bad_input(format!(
                        "packet manifest: `{}` is not valid base64: {err}",
                        field("contentB64")
                    ))
                })?;
            let (wasm, kind) = wasmhost::normalize(bytes).map_err(|err| match err {
                Error::InvalidModule { message, offset } => Error::InvalidModule {
                    message: format!("{}: {message}", field("contentB64")),
                    offset,
                },
                other => other,
            })?;
            modules.push(PacketModule {
                origin: e.origin,
                lrl: e.lrl,
                world_version,
                wasm,
                kind,
            });
        }
        Ok(Packet {
            name: raw.name,
            modules,
        })
    }

    /// The packet's one module; `bad_input` when it carries several.
    pub fn single(&self) -> Result<&PacketModule> {
        match self.modules.as_slice() {
            [one] => Ok(one),
            many => Err(Error::bad_input(format!(
                "packet manifest has {} modules; name one by its index",
                many.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn packet(format: &str, world: &str, content: &str) -> String {
        format!(
            r#"{{"name": "p", "extra": true, "sourceContent": [{{"origin": "local", "format": "{format}",
                "lrl": "agent.wasm", "worldVersion": "{world}", "contentB64": "{content}"}}]}}"#
        )
    }

    #[test]
    fn a_good_packet_decodes() {
        let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
        let p = Packet::from_json(&packet("wasm", "v1", &b64(&wasm))).unwrap();
        assert_eq!(p.name.as_deref(), Some("p"));
        let m = p.single().unwrap();
        assert_eq!(m.wasm, wasm);
        assert_eq!(m.kind, ModuleKind::Core);
        assert_eq!(m.lrl.as_deref(), Some("agent.wasm"));
    }

    #[test]
    fn bad_packets_name_the_field_and_the_supported_values() {
        let wasm = b64(&wat::parse_str("(module)").unwrap());
        let cases = [
            (
                packet("wasm", "v1", "not base64!"),
                "sourceContent[0].contentB64",
                "base64",
            ),
            (
                packet("wasm", "v2", &wasm),
                "sourceContent[0].worldVersion",
                "\"v1\"",
            ),
            (
                packet("js", "v1", &wasm),
                "sourceContent[0].format",
                "\"wasm\"",
            ),
            (
                r#"{"sourceContent": []}"#.to_string(),
                "sourceContent",
                "at least one",
            ),
            (r#"{"name": 1}"#.to_string(), "", "JSON"),
            (r#"{}"#.to_string(), "sourceContent", "missing"),
        ];
        for (json, field, supported) in cases {
            let err = Packet::from_json(&json).unwrap_err();
            assert_eq!(err.code(), wasmhost::ErrorCode::BadInput, "{json}");
            let msg = err.to_string();
            assert!(
                msg.contains(field) && msg.contains(supported),
                "{json}: {msg}"
            );
        }
        // Valid base64 that is not a module.
        let err = Packet::from_json(&packet("wasm", "v1", &b64(b"hello"))).unwrap_err();
        assert_eq!(err.code(), wasmhost::ErrorCode::InvalidModule);
        assert!(
            err.to_string().contains("sourceContent[0].contentB64"),
            "{err}"
        );
    }
}
