//! `wasmhost inspect`: what a module is, imports, exports, and (for a store
//! reference) the tags that point at it.

use clap::Args;
use wasmhost::{Digest, Runtime};
use wasmhost_store::Reference;

use crate::options::{LimitOptions, StateOptions, block_on, module_arg};
use crate::progress::with_spinner;

#[derive(Debug, Args)]
pub struct InspectCommand {
    /// A module file, manifest, `-`, or store reference.
    #[arg(value_name = "MODULE|REF")]
    module: String,

    /// Print JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    state: StateOptions,
}

impl InspectCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let arg = module_arg(&self.module, &self.state)?;
        let (wasm, kind) = wasmhost::normalize(arg.bytes)?;
        let digest = Digest::of(&wasm);
        let size = wasm.len();
        // Tags, when the module came from the store.
        let tags: Vec<String> = match (
            std::path::Path::new(&self.module).exists(),
            self.module.parse::<Reference>(),
        ) {
            (false, Ok(r)) => {
                let store = self.state.open_store()?;
                block_on(store.inspect(&r))??
                    .tags
                    .into_iter()
                    .map(|(n, t)| format!("{n}:{t}"))
                    .collect()
            }
            _ => Vec::new(),
        };
        let rt = Runtime::new(LimitOptions::default().runtime_config(&self.state, false)?)?;
        let module = with_spinner("compiling", || rt.load_bytes(wasm))?;
        let imports = module.imports();
        let exports = module.exports();
        if self.json {
            let item = |i: &wasmhost::ItemInfo| serde_json::json!({"module": i.module, "name": i.name, "type": i.ty});
            let out = serde_json::json!({
                "digest": digest.to_string(), "size": size, "kind": kind.as_str(), "tags": tags,
                "imports": imports.iter().map(item).collect::<Vec<_>>(),
                "exports": exports.iter().map(item).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(0);
        }
        println!("digest:  {digest}");
        println!("size:    {size} bytes");
        println!("kind:    {}", kind.as_str());
        if !tags.is_empty() {
            println!("tags:    {}", tags.join(", "));
        }
        println!("imports: {}", if imports.is_empty() { "none" } else { "" });
        for i in &imports {
            if i.module.is_empty() {
                println!("  {}  {}", i.name, i.ty);
            } else {
                println!("  {}::{}  {}", i.module, i.name, i.ty);
            }
        }
        println!("exports: {}", if exports.is_empty() { "none" } else { "" });
        for e in &exports {
            println!("  {}  {}", e.name, e.ty);
        }
        Ok(0)
    }
}
