//! `wasmhost push`: put a module into the store under `name[:tag]`.

use clap::Args;
use wasmhost::Error;
use wasmhost_store::Reference;

use crate::options::{StateOptions, block_on, resolve};
use crate::progress::with_spinner;

#[derive(Debug, Args)]
#[command(after_help = "\
The module is validated before it is stored (WAT is stored as its binary). \
The blob is written before the name, so an interrupted push leaves the old \
state or the new one, never a name pointing at a missing blob.

EXAMPLES:
  wasmhost push app.wasm app:v1
  wasmhost push wasmhost.toml app          # the module a manifest names
  wasmhost --store s3://bucket/modules push app.wasm app:v1")]
pub struct PushCommand {
    /// A module file, a manifest (.toml or packet .json), `-` for stdin, or
    /// a reference to a module already in the store.
    #[arg(value_name = "FILE|MANIFEST")]
    source: String,

    /// Name and tag to store it under (tag `latest` when omitted).
    #[arg(value_name = "NAME[:TAG]")]
    target: String,

    #[command(flatten)]
    state: StateOptions,
}

impl PushCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let (name, tag) = match self.target.parse::<Reference>()? {
            Reference::Name { name, tag } => (name, tag),
            Reference::Digest(_) => {
                return Err(Error::bad_input(
                    "push needs NAME[:TAG] to store the module under, not a digest",
                )
                .into());
            }
        };
        let res = resolve(&self.source, &self.state, None)?;
        if !res.linked.is_empty() {
            let names: Vec<&str> = res.linked.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::bad_input(format!(
                "`{}` links several modules ({} and the main one); a store name holds one \
                 module: push each module on its own, and keep the manifest to run them",
                self.source,
                names.join(", ")
            ))
            .into());
        }
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
}
