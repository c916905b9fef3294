//! `wasmhost run`: run a WASI command, or `--invoke` one numeric export.
//!
//! Follows `wasmtime run`: `wasmhost run [OPTIONS] MODULE [ARGS...]`. The
//! command gets WASI stdio (inherited) and exactly the args given; env
//! entries, directories, clocks, random and log only when asked for.

use std::io::Write;

use clap::Args;
use wasmhost::{CallOptions, Capabilities, Limits, Runtime};

use crate::options::{GrantOptions, LimitOptions, StateOptions, module_arg};

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

    #[command(flatten)]
    grants: GrantOptions,

    /// Print time, fuel and peak memory of the call on stderr.
    #[arg(long)]
    stats: bool,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    state: StateOptions,
}

impl RunCommand {
    /// The manifest's grants (if any) plus those on the command line.
    fn capabilities(&self, program: &str, base: Capabilities) -> anyhow::Result<Capabilities> {
        let mut wasi = self.grants.wasi(base.wasi.clone().unwrap_or_default())?;
        if self.invoke.is_none() && (!self.args.is_empty() || wasi.args.is_empty()) {
            wasi.args = std::iter::once(program.to_string())
                .chain(self.args.iter().cloned())
                .collect();
        }
        let log = base.log || self.grants.log();
        let trap = base.trap_unknown_imports || self.grants.trap_unknown_imports;
        Ok(base
            .with_wasi(wasi)
            .with_log(log)
            .with_trap_unknown_imports(trap))
    }

    pub fn execute(self) -> anyhow::Result<u8> {
        let arg = module_arg(&self.module, &self.state)?;
        let (base_limits, base_caps, entry) = match &arg.manifest {
            Some(m) => (
                m.limits.clone(),
                crate::options::manifest_capabilities(m),
                m.function.clone(),
            ),
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
