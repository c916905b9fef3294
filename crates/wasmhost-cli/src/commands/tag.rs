//! `wasmhost tag`: point another name:tag at a stored module.

use clap::Args;
use wasmhost::Error;
use wasmhost_store::Reference;

use crate::options::{StateOptions, block_on};

#[derive(Debug, Args)]
pub struct TagCommand {
    /// The module: name[:tag] or sha256:….
    #[arg(value_name = "SRC")]
    source: String,

    /// The new name and tag (tag `latest` when omitted). An existing tag moves.
    #[arg(value_name = "NAME[:TAG]")]
    target: String,

    #[command(flatten)]
    state: StateOptions,
}

impl TagCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let source: Reference = self.source.parse()?;
        let Reference::Name { name, tag } = self.target.parse::<Reference>()? else {
            return Err(Error::bad_input("the new tag must be NAME[:TAG], not a digest").into());
        };
        let store = self.state.open_store()?;
        let entry = block_on(store.tag(&source, &name, &tag))??;
        println!("{}:{} -> {}", entry.name, entry.tag, entry.digest);
        Ok(0)
    }
}
