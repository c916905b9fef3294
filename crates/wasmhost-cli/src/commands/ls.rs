//! `wasmhost ls`: the names and tags in the store.

use clap::Args;

use crate::options::{StateOptions, block_on};

#[derive(Debug, Args)]
pub struct LsCommand {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    state: StateOptions,
}

impl LsCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let store = self.state.open_store()?;
        let entries = block_on(store.list())??;
        if self.json {
            let rows: Vec<_> = entries
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "name": e.name, "tag": e.tag, "digest": e.digest.to_string(),
                        "size": e.size, "kind": e.kind.as_str(), "updated": e.updated.to_rfc3339(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(0);
        }
        if entries.is_empty() {
            eprintln!("no modules in {}", store.location());
            return Ok(0);
        }
        let width = entries
            .iter()
            .map(|e| e.name.len() + e.tag.len() + 1)
            .max()
            .unwrap_or(4)
            .max(4);
        println!(
            "{:<width$}  {:<19}  {:>10}  {:<9}  UPDATED",
            "NAME", "DIGEST", "SIZE", "KIND"
        );
        for e in &entries {
            println!(
                "{:<width$}  sha256:{}  {:>10}  {:<9}  {}",
                format!("{}:{}", e.name, e.tag),
                e.digest.short(),
                e.size,
                e.kind.as_str(),
                e.updated.format("%Y-%m-%d %H:%M:%S")
            );
        }
        Ok(0)
    }
}
