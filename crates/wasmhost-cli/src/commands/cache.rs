//! `wasmhost cache ls|stats|clear`: the on-disk compiled-module cache.
//!
//! A command-line process compiles or loads what it runs and exits, so what
//! lasts between commands is the disk cache: one directory per engine
//! fingerprint (wasmtime version and compile settings), one checksummed
//! artifact per module digest, and a `stats.json` summing each module's
//! loads, calls, errors and compile time over every command that used it
//! (written by `Runtime::persist_stats` at the end of each command).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand};
use wasmhost::Error;

use crate::options::StateOptions;

#[derive(Debug, Args)]
pub struct CacheCommand {
    #[command(subcommand)]
    action: CacheAction,

    #[command(flatten)]
    state: StateOptions,
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// List the compiled modules on disk: digest, size, loads, calls, errors,
    /// compile time, age, engine.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Count and size of the cache, per engine fingerprint.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every compiled module (they are recompiled when next used).
    Clear,
}

struct Artifact {
    stats: wasmhost::DiskStats,
    engine: String,
    digest: String,
    bytes: u64,
    modified: Option<SystemTime>,
    path: PathBuf,
}

fn artifacts(cache: &Path) -> anyhow::Result<Vec<Artifact>> {
    let mut out = Vec::new();
    let engines = match std::fs::read_dir(cache) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(Error::internal(format!("cannot read `{}`: {e}", cache.display())).into());
        }
    };
    for engine in engines.flatten().filter(|e| e.path().is_dir()) {
        let stats = wasmhost::read_disk_stats(&engine.path());
        for f in std::fs::read_dir(engine.path())?.flatten() {
            let path = f.path();
            if path.extension().is_none_or(|e| e != "cwasm") {
                continue;
            }
            let meta = f.metadata()?;
            let digest = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(Artifact {
                stats: stats.get(&digest).cloned().unwrap_or_default(),
                engine: engine.file_name().to_string_lossy().into_owned(),
                digest: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: meta.len(),
                modified: meta.modified().ok(),
                path,
            });
        }
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.modified));
    Ok(out)
}

fn age(t: Option<SystemTime>) -> String {
    t.and_then(|t| t.elapsed().ok())
        .map(|d| {
            humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
                + " ago"
        })
        .unwrap_or_else(|| "-".into())
}

impl CacheCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let cache = self.state.state_root()?.join("cache");
        let all = artifacts(&cache)?;
        match self.action {
            CacheAction::Ls { json } => {
                if json {
                    let rows: Vec<_> = all
                        .iter()
                        .map(|a| serde_json::json!({"digest": format!("sha256:{}", a.digest), "bytes": a.bytes,
                            "engine": a.engine, "path": a.path, "wasm_bytes": a.stats.wasm_bytes,
                            "loads": a.stats.loads, "calls": a.stats.calls, "errors": a.stats.errors,
                            "compile_time_us": a.stats.compile_time_us}))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else if all.is_empty() {
                    eprintln!("no compiled modules in {}", cache.display());
                } else {
                    println!(
                        "{:<19}  {:>10}  {:>10}  {:>6}  {:>6}  {:>6}  {:>10}  {:<16}  ENGINE",
                        "DIGEST", "BYTES", "WASM", "LOADS", "CALLS", "ERRORS", "COMPILE", "WRITTEN"
                    );
                    for a in &all {
                        let short = a.digest.get(..12).unwrap_or(&a.digest);
                        let s = &a.stats;
                        let compile = if s.compile_time_us > 0 {
                            format!("{:.1}ms", s.compile_time_us as f64 / 1000.0)
                        } else {
                            "-".into()
                        };
                        println!(
                            "sha256:{short}  {:>10}  {:>10}  {:>6}  {:>6}  {:>6}  {:>10}  {:<16}  {}",
                            a.bytes,
                            s.wasm_bytes,
                            s.loads,
                            s.calls,
                            s.errors,
                            compile,
                            age(a.modified),
                            a.engine
                        );
                    }
                }
            }
            CacheAction::Stats { json } => {
                let mut per: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
                for a in &all {
                    let e = per.entry(a.engine.as_str()).or_default();
                    e.0 += 1;
                    e.1 += a.bytes;
                }
                let total: u64 = all.iter().map(|a| a.bytes).sum();
                if json {
                    let engines: Vec<_> = per
                        .iter()
                        .map(|(k, (n, b))| serde_json::json!({"engine": k, "modules": n, "bytes": b}))
                        .collect();
                    let out = serde_json::json!({"dir": cache, "modules": all.len(), "bytes": total, "engines": engines});
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    println!("cache:   {}", cache.display());
                    println!("modules: {}", all.len());
                    println!("bytes:   {total}");
                    for (k, (n, b)) in &per {
                        println!("  {k}: {n} modules, {b} bytes");
                    }
                }
            }
            CacheAction::Clear => {
                for a in &all {
                    std::fs::remove_file(&a.path).map_err(|e| {
                        Error::internal(format!("cannot remove `{}`: {e}", a.path.display()))
                    })?;
                    // The artifact's integrity record goes with it.
                    let _ = std::fs::remove_file(a.path.with_extension("meta"));
                }
                // The index of module files by path names digests that are gone now.
                let _ = std::fs::remove_file(cache.join("paths.json"));
                println!(
                    "removed {} compiled modules from {}",
                    all.len(),
                    cache.display()
                );
            }
        }
        Ok(0)
    }
}
