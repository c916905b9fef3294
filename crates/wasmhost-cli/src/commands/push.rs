//! `wasmhost push`: put a module into the store under `name[:tag]`, or
//! publish it to an OCI registry.

use clap::Args;
use wasmhost::Error;
use wasmhost_store::oci::OciReference;
use wasmhost_store::{Reference, Resolution};

use crate::options::{RegistryOptions, StateOptions, block_on, resolve};
use crate::progress::with_spinner;

#[derive(Debug, Args)]
#[command(after_help = "\
The module is validated before it is stored (WAT is stored as its binary). \
The blob is written before the name, so an interrupted push leaves the old \
state or the new one, never a name pointing at a missing blob.

A TARGET whose first part is a registry host (it has a `.` or a `:port`, or \
is `localhost`), or that starts with oci://, is published to that OCI \
registry as a wasm artifact (oci-wasm's layout: one `application/wasm` \
layer and an `application/vnd.wasm.config.v0+json` config, as wkg and \
wasmCloud push them). Registries on loopback are reached over plain HTTP; \
others over HTTPS unless --insecure. Credentials as for `wasmhost pull`. It \
prints the layer's digest (the module's sha256) and the manifest's, which \
other clients see too (`skopeo inspect --raw docker://REF | sha256sum`).

EXAMPLES:
  wasmhost push app.wasm app:v1
  wasmhost push wasmhost.toml app          # the module a manifest names
  wasmhost --store s3://bucket/modules push app.wasm app:v1
  wasmhost push app.wasm ghcr.io/acme/app:v1
  wasmhost push app:v1 127.0.0.1:5000/acme/app:v1   # a stored module to a registry
  echo \"$TOKEN\" | wasmhost push -u me --password-stdin app.wasm registry.example.com/app:v1
  wasmhost push app.wasm localhost:5000/acme/app:v1 && skopeo copy --src-tls-verify=false docker://localhost:5000/acme/app:v1 dir:app")]
pub struct PushCommand {
    /// A module file, a manifest (.toml or packet .json), `-` for stdin, or
    /// a reference to a module already in the store.
    #[arg(value_name = "FILE|MANIFEST")]
    source: String,

    /// Name and tag to store it under (tag `latest` when omitted), or
    /// REGISTRY/REPOSITORY:TAG (or oci://…) to publish it to a registry.
    #[arg(value_name = "NAME[:TAG]|REGISTRY/REPO:TAG")]
    target: String,

    #[command(flatten)]
    registry: RegistryOptions,

    #[command(flatten)]
    state: StateOptions,
}

impl PushCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        if OciReference::looks_like(&self.target) {
            return self.push_to_registry();
        }
        let (name, tag) = match self.target.parse::<Reference>()? {
            Reference::Name { name, tag } => (name, tag),
            Reference::Digest(_) => {
                return Err(Error::bad_input(
                    "push needs NAME[:TAG] to store the module under, not a digest",
                )
                .into());
            }
        };
        let res = self.resolve_one()?;
        let store = self.state.open_store()?;
        let entry = with_spinner(&format!("pushing {name}:{tag}"), || {
            block_on(store.push(res.bytes, &name, &tag))
        })??;
        println!(
            "pushed {}:{} {} ({} bytes, {})",
            entry.name,
            entry.tag,
            entry.digest,
            entry.size,
            entry.kind.as_str()
        );
        Ok(0)
    }

    /// The source resolved to one module: a manifest linking several is
    /// refused, since a store name (or a registry tag) holds one module.
    fn resolve_one(&self) -> anyhow::Result<Resolution> {
        let res = resolve(&self.source, &self.state, None)?;
        if !res.linked.is_empty() {
            let names: Vec<&str> = res.linked.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::bad_input(format!(
                "`{}` links several modules ({} and the main one); a store name or registry \
                 tag holds one module: push each module on its own, and keep the manifest to \
                 run them",
                self.source,
                names.join(", ")
            ))
            .into());
        }
        if !res.links.is_empty() {
            let names: Vec<&str> = res.links.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::bad_input(format!(
                "`{}` links components to its interfaces ({}); a store name or registry tag \
                 holds one module: push each component on its own, and keep the manifest to \
                 run them",
                self.source,
                names.join(", ")
            ))
            .into());
        }
        Ok(res)
    }

    fn push_to_registry(&self) -> anyhow::Result<u8> {
        let target: OciReference = self.target.parse()?;
        if self.source == "-" && self.registry.password_stdin {
            return Err(Error::bad_input(
                "the module and the password cannot both come from stdin",
            )
            .into());
        }
        let registry = self.registry.registry()?;
        let res = self.resolve_one()?;
        let pushed = block_on(registry.push(res.bytes, &target))??;
        println!(
            "pushed {target} {} ({} bytes, {}); manifest {}",
            pushed.digest,
            pushed.size,
            pushed.kind.as_str(),
            pushed.manifest_digest
        );
        Ok(0)
    }
}
