//! `wasmhost inspect`: what a module is, imports, exports, and (for a store
//! reference) the tags that point at it.

use clap::Args;
use wasmhost::{Digest, Runtime};
use wasmhost_store::Provenance;

use crate::options::{LimitOptions, StateOptions, block_on, resolve};
use crate::progress::with_spinner;

#[derive(Debug, Args)]
#[command(after_help = "\
Options go anywhere, before or after MODULE.

EXAMPLES:
  wasmhost inspect plugin.wasm
  wasmhost inspect app:v1 --json
  wasmhost inspect manifest.json --allow-url-host github.com")]
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
        let res = resolve(&self.module, &self.state, None)?;
        // Modules a manifest links to the main one by name: name, digest, size.
        let linked: Vec<(String, Digest, usize)> = res
            .linked
            .iter()
            .map(|(name, bytes)| (name.clone(), Digest::of(bytes), bytes.len()))
            .collect();
        // Components providing its interfaces: interface, provider, digest.
        let links: Vec<(String, String, Digest)> = res
            .links
            .iter()
            .map(|(interface, p)| {
                let (wasm, _) = wasmhost::normalize(p.bytes.clone())?;
                Ok((interface.clone(), p.name.clone(), Digest::of(&wasm)))
            })
            .collect::<wasmhost::Result<_>>()?;
        let (wasm, kind) = wasmhost::normalize(res.bytes)?;
        let digest = Digest::of(&wasm);
        let size = wasm.len();
        // Tags, when the module came from the store.
        let tags: Vec<String> = match &res.from {
            Provenance::Store(r) => {
                let store = self.state.open_store()?;
                block_on(store.inspect(r))??
                    .tags
                    .into_iter()
                    .map(|(n, t)| format!("{n}:{t}"))
                    .collect()
            }
            _ => Vec::new(),
        };
        let rt = Runtime::new(LimitOptions::default().runtime_config(&self.state, false)?)?;
        let wit = match kind {
            wasmhost::ModuleKind::Component => Some(wasmhost::convention::component::wit(&wasm)?),
            _ => None,
        };
        let module = with_spinner("compiling", || rt.load_bytes(wasm))?;
        let imports = module.imports();
        let exports = module.exports();
        // Each exported function with the conventions it can be called through.
        let functions: Vec<(String, String, Vec<&'static str>)> = module
            .functions()
            .into_iter()
            .map(|(name, sig)| {
                let fits = module
                    .conventions(&name)
                    .into_iter()
                    .filter(|(_, verdict)| verdict.is_ok())
                    .map(|(c, _)| c.as_str())
                    .collect();
                (name, sig, fits)
            })
            .collect();
        let mut conventions: Vec<&str> = Vec::new();
        for (_, _, fits) in &functions {
            for c in fits {
                if !conventions.contains(c) {
                    conventions.push(c);
                }
            }
        }
        if exports
            .iter()
            .any(|e| e.name == "_start" || e.name.starts_with("wasi:cli/run"))
        {
            conventions.push("wasi-command");
        }
        if self.json {
            let item = |i: &wasmhost::ItemInfo| serde_json::json!({"module": i.module, "name": i.name, "type": i.ty});
            let out = serde_json::json!({
                "digest": digest.to_string(), "size": size, "kind": kind.as_str(), "tags": tags,
                "imports": imports.iter().map(item).collect::<Vec<_>>(),
                "exports": exports.iter().map(item).collect::<Vec<_>>(),
                "conventions": conventions,
                "functions": functions.iter().map(|(n, s, c)| serde_json::json!({"name": n, "signature": s, "conventions": c})).collect::<Vec<_>>(),
                "wit": wit,
                "linked": linked.iter().map(|(n, d, size)| serde_json::json!({"name": n, "digest": d.to_string(), "size": size})).collect::<Vec<_>>(),
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
        for (name, digest, size) in &linked {
            println!("linked:  {name}  {digest}  {size} bytes");
        }
        for (interface, provider, digest) in &links {
            println!("link:    {interface}  provided by {provider}  {digest}");
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
        println!(
            "conventions: {}",
            if conventions.is_empty() {
                "none (no function fits any calling convention)".to_string()
            } else {
                conventions.join(", ")
            }
        );
        if !functions.is_empty() {
            println!("functions (callable with `wasmhost call MODULE FUNCTION`):");
            for (name, sig, fits) in &functions {
                let fits = if fits.is_empty() {
                    "no convention".to_string()
                } else {
                    fits.join(", ")
                };
                println!("  {name}  {sig}  [{fits}]");
            }
        }
        if let Some(wit) = wit {
            println!("world:");
            for line in wit.lines() {
                println!("  {line}");
            }
        }
        Ok(0)
    }
}
