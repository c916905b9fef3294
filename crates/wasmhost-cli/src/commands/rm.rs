//! `wasmhost rm`: remove a tag, or a blob no tag points at.

use clap::Args;
use wasmhost_store::Reference;

use crate::options::{StateOptions, block_on};

#[derive(Debug, Args)]
pub struct RmCommand {
    /// name:tag removes that tag; sha256:… removes the module itself (refused
    /// while tags still point at it).
    #[arg(value_name = "REF")]
    reference: String,

    #[command(flatten)]
    state: StateOptions,
}

impl RmCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let reference: Reference = self.reference.parse()?;
        let store = self.state.open_store()?;
        let removed = block_on(store.remove(&reference))??;
        println!("removed {removed}");
        Ok(0)
    }
}
