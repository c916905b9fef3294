//! `wasmhost pull`: copy a module out of the store into a file.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use wasmhost::Error;
use wasmhost_store::Reference;

use crate::options::{StateOptions, block_on};

#[derive(Debug, Args)]
pub struct PullCommand {
    /// The module: name[:tag] or sha256:….
    #[arg(value_name = "REF")]
    reference: String,

    /// Where to write it; `-` for stdout. Default: NAME.wasm in the current directory.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    state: StateOptions,
}

impl PullCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let reference: Reference = self.reference.parse()?;
        let store = self.state.open_store()?;
        let (digest, bytes) = block_on(store.fetch(&reference))??;
        let output = self.output.unwrap_or_else(|| match &reference {
            Reference::Name { name, .. } => {
                PathBuf::from(format!("{}.wasm", name.rsplit('/').next().unwrap_or(name)))
            }
            Reference::Digest(d) => PathBuf::from(format!("{}.wasm", d.short())),
        });
        if output.as_os_str() == "-" {
            std::io::stdout().lock().write_all(&bytes)?;
            return Ok(0);
        }
        if output.exists() && !self.force {
            return Err(Error::bad_input(format!(
                "`{}` exists; pass --force to overwrite it",
                output.display()
            ))
            .into());
        }
        std::fs::write(&output, &bytes)
            .map_err(|e| Error::bad_input(format!("cannot write `{}`: {e}", output.display())))?;
        println!("{} -> {} ({} bytes)", digest, output.display(), bytes.len());
        Ok(0)
    }
}
