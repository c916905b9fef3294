//! `wasmhost run`: run a WASI command, or `--invoke` one numeric export.
//!
//! Follows `wasmtime run`: `wasmhost run [OPTIONS] MODULE [ARGS...]`. The
//! command gets WASI stdio (inherited) and exactly the args given; env
//! entries, directories, clocks, random and log only when asked for.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wasmhost::{CallOptions, Capabilities, Limits, Runtime};

use crate::options::{LimitOptions, StateOptions, module_arg};

/// Capabilities that can be granted with --grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Grant {
    /// WASI wall and monotonic clocks.
    Clocks,
    /// WASI random numbers.
    Random,
    /// The `wasmhost::log(level, ptr, len)` host function.
    Log,
}

#[derive(Debug, Args)]
#[command(after_help = "\
A module that imports anything not granted fails before any of its code runs \
(error[link_error], listing every missing import). A guest that calls an \
ungranted clock or random function stops with error[capability_denied].

EXAMPLES:
  wasmhost run app.wasm arg1 arg2 < input.txt
  wasmhost run --dir ./data::/data --env LANG=C --grant clocks,random app.wasm
  wasmhost run --invoke add math.wat 1 2
  wasmhost run --fuel 1000000 --max-memory 16MiB --timeout 500ms untrusted.wasm")]
pub struct RunCommand {
    /// Module to run: a .wasm binary, WAT text, `-` for stdin, a manifest
    /// (.toml, or a packet .json), or a store reference (name[:tag], sha256:…).
    #[arg(value_name = "MODULE")]
    module: String,

    /// Arguments: for a command, its argv after the program name; with
    /// --invoke, the function's numeric arguments.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,

    /// Call this exported function with ARGS as numbers and print its results, one per line.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,

    /// Preopen a host directory read-write, at GUEST (default: the same path).
    #[arg(long, value_name = "HOST[::GUEST]")]
    dir: Vec<String>,

    /// Preopen a host directory read-only, at GUEST (default: the same path).
    #[arg(long, value_name = "HOST[::GUEST]")]
    dir_ro: Vec<String>,

    /// Give the guest an environment variable; NAME alone passes the host's value.
    #[arg(long, value_name = "NAME[=VAL]")]
    env: Vec<String>,

    /// Grant more capabilities (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CAP")]
    grant: Vec<Grant>,

    /// Print time, fuel and peak memory of the call on stderr.
    #[arg(long)]
    stats: bool,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    state: StateOptions,
}

fn split_dir(spec: &str) -> (PathBuf, String) {
    match spec.split_once("::") {
        Some((host, guest)) => (PathBuf::from(host), guest.to_string()),
        None => (PathBuf::from(spec), spec.to_string()),
    }
}

impl RunCommand {
    /// The manifest's grants (if any) plus those on the command line.
    fn capabilities(&self, program: &str, base: Capabilities) -> anyhow::Result<Capabilities> {
        let mut wasi = base.wasi.clone().unwrap_or_default();
        wasi.clocks |= self.grant.contains(&Grant::Clocks);
        wasi.random |= self.grant.contains(&Grant::Random);
        if self.invoke.is_none() && (!self.args.is_empty() || wasi.args.is_empty()) {
            wasi.args = std::iter::once(program.to_string())
                .chain(self.args.iter().cloned())
                .collect();
        }
        for e in &self.env {
            let (name, value) = match e.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (
                    e.clone(),
                    std::env::var(e).with_context(|| {
                        format!("--env {e}: the host has no variable `{e}` to pass on")
                    })?,
                ),
            };
            anyhow::ensure!(
                !name.is_empty(),
                wasmhost::Error::bad_input(format!("--env `{e}`: empty name"))
            );
            wasi = wasi.env(name, value);
        }
        for (spec, ro) in self
            .dir
            .iter()
            .map(|d| (d, false))
            .chain(self.dir_ro.iter().map(|d| (d, true)))
        {
            let (host, guest) = split_dir(spec);
            wasi = wasi.dir(host, guest, ro);
        }
        Ok(Capabilities::none()
            .with_wasi(wasi)
            .with_log(base.log || self.grant.contains(&Grant::Log)))
    }

    pub fn execute(self) -> anyhow::Result<u8> {
        let arg = module_arg(&self.module, &self.state)?;
        let (base_limits, base_caps, entry) = match &arg.manifest {
            Some(m) => (m.limits.clone(), m.capabilities.clone(), m.function.clone()),
            None => (Limits::default(), Capabilities::none(), None),
        };
        let limits = self.limits.apply(base_limits);
        let caps = self.capabilities(&arg.display, base_caps)?;
        let config = self
            .limits
            .runtime_config(&self.state, limits.fuel.is_some())?;
        let rt = Runtime::new(config)?;
        let module = rt
            .load_bytes(arg.bytes)?
            .with_capabilities(caps)
            .with_limits(limits)
            .with_name(&arg.display);
        let mut opts = CallOptions::default().inherit_stdio();
        if self.module == "-" {
            // The module came in on stdin; the guest gets none.
            opts = opts.stdin(wasmhost::Stdin::Empty);
        }
        let result = match self.invoke.as_ref().or(entry.as_ref()) {
            Some(name) => module
                .invoke_text(name, &self.args, &opts)
                .map(|out| (out.stats, out.value)),
            None => module.run(&opts).map(|out| (out.stats, Vec::new())),
        };
        crate::options::persist_stats(&rt, &module);
        let (stats, values) = result?;
        let mut stdout = std::io::stdout().lock();
        for v in &values {
            writeln!(stdout, "{v}")?;
        }
        if self.stats {
            eprintln!("{}", crate::options::describe_stats(&stats));
        }
        Ok(0)
    }
}
