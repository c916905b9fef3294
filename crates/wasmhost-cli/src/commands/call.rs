//! `wasmhost call`: call one function with data in and data out, through
//! whichever calling convention the module speaks.
//!
//! The convention is detected (component, Extism plugin, AssemblyScript
//! string export, raw transfer, numeric) unless `--abi` forces one; a
//! module that fits none gets an error saying why each did not fit.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use wasmhost::{ArgsFormat, CallOptions, Capabilities, Convention, Data, Error, Module};

use crate::options::{
    GrantOptions, InputOptions, LimitOptions, LinkOptions, Loaded, PluginOptions, StateOptions,
    key_value, load, resolve, with_user_imports_trapped,
};

#[derive(Debug, Args)]
#[command(
    override_usage = "wasmhost call [OPTIONS] MODULE FUNCTION [INPUT] [OPTIONS]\n       wasmhost call [OPTIONS] -m MANIFEST.json FUNCTION [INPUT] [OPTIONS]",
    after_help = "\
INPUT is the function's input: bytes for an Extism plugin or a raw function, \
a string for an AssemblyScript export, JSON arguments for a component \
([arg1, arg2], {\"name\": value}, or the one argument itself; --wave for WAVE \
text) and a JSON number or array for a numeric function. Give it as INPUT, \
--input/-i DATA, --input-file FILE, or `-`/--stdin for stdin; no input is \
empty input.

Options go anywhere: before MODULE or after FUNCTION, as Extism's CLI takes \
them (`extism call plugin.wasm count_vowels --input \"…\"`). An INPUT that \
itself starts with `-` goes after `--` or in --input.

The result goes to stdout: bytes as they are, text and JSON as text, numbers \
one per line. Log lines of the guest go to stderr (--log-level picks which).

An Extism plugin that imports host functions (extism:host/user) which the \
command line cannot provide is called anyway, with those functions linked to \
traps, as --trap-unknown-imports does (WASMHOST_LOG=info names them); a call \
that reaches one stops with error[trap].

EXAMPLES:
  wasmhost call plugin.wasm count_vowels --input 'Hello, World!'
  wasmhost call plugin.wasm count_vowels -i 'Hello, World!' --config vowels=aeiou --timeout 300
  wasmhost call https://example.com/count_vowels.wasm count_vowels --input qwertyuiop   # a URL, as Extism's CLI takes it
  wasmhost call plugin.wasm count_vowels --input 'Hello, World!' --loop 3   # totals 3, 6, 9: vars carry over
  wasmhost call plugin.wasm fetch --allow-host api.example.com --log-level info
  wasmhost call -m manifest.json count_vowels --stdin < input.txt
  wasmhost call manifest.json count_vowels -m --input hi     # -m as a switch, as in Extism's CLI
  wasmhost call counter.wasm increment 5
  wasmhost call --wasi shapes.wasm add-points '[{\"x\":1,\"y\":2},{\"x\":3,\"y\":4}]'
  wasmhost call --wasi --wave shapes.wasm add-points '{x: 1, y: 2}, {x: 3, y: 4}'
  wasmhost call math.wat add '[1, 2]'
  wasmhost call --wasi consumer.wasm greet '\"ada\"' --link wasmhost:example/console=provider.wasm \\
      --link wasmhost:example/events=provider.toml

--link INTERFACE=PROVIDER provides a component's imported interface with the interface of that name another component exports, each component in its own sandbox with its own limits and grants (a provider manifest's, else the default limits and WASI: stdio, clocks, random). The provider's stdout and stderr are not part of the call's output. A provider that does not export the interface, or exports it with other types, is error[link_error]; so is an import that nothing provides."
)]
pub struct CallCommand {
    /// MODULE: a .wasm binary, WAT text, a manifest (.toml, Extism or
    /// packet .json), a store reference (name[:tag], sha256:…) or
    /// oci://REGISTRY/REPOSITORY:TAG (pulled into the store by digest).
    /// With -m, this is FUNCTION.
    #[arg(value_name = "MODULE", allow_negative_numbers = true)]
    first: String,

    /// FUNCTION, the export to call (with -m: INPUT).
    #[arg(value_name = "FUNCTION", allow_negative_numbers = true)]
    second: Option<String>,

    /// INPUT, inline; `-` reads stdin.
    #[arg(value_name = "INPUT", allow_negative_numbers = true)]
    third: Option<String>,

    /// An Extism manifest (JSON) naming the module, its config, allowed
    /// hosts and paths, memory and timeout. Without a value (as Extism's
    /// CLI takes `-m`, a switch), MODULE must be a manifest.
    #[arg(short = 'm', long, value_name = "MANIFEST", num_args = 0..=1)]
    manifest: Option<Option<PathBuf>>,

    #[command(flatten)]
    input: InputOptions,

    /// Force a calling convention instead of detecting it.
    #[arg(long, value_name = "ABI", value_parser = parse_convention)]
    abi: Option<Convention>,

    /// A component's arguments are WAVE text (as `wasmtime run --invoke` takes them), not JSON.
    #[arg(long)]
    wave: bool,

    #[command(flatten)]
    plugin: PluginOptions,

    /// Set a plugin variable before the call (Extism `var_get`); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    var: Vec<String>,

    /// Call the function N times in one instance, as Extism's CLI does:
    /// a plugin's variables carry over from one call to the next; each
    /// result is printed on its own line.
    #[arg(long = "loop", value_name = "N", default_value_t = 1)]
    repeat: u32,

    /// Grant WASI: stdio, clocks and random (plugins built for
    /// wasm32-wasip1, components using std); --deny takes clocks or random away.
    #[arg(long)]
    wasi: bool,

    /// Grant durable key-value state, kept in STATE/kv.redb under the
    /// module's own namespace (`module:sha256:<hex>`): every call of the same
    /// module sees the same keys, no other module does. The store is opened
    /// by one process at a time.
    #[arg(long)]
    kv: bool,

    #[command(flatten)]
    grants: GrantOptions,

    #[command(flatten)]
    links: LinkOptions,

    /// Print time, fuel and peak memory of the call on stderr.
    #[arg(long)]
    stats: bool,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    state: StateOptions,
}

fn parse_convention(s: &str) -> Result<Convention, String> {
    s.parse::<Convention>().map_err(|e| e.to_string())
}

impl CallCommand {
    /// (module, function, inline input) from the positional arguments.
    fn positionals(&self) -> anyhow::Result<(String, String, Option<String>)> {
        let mut args = [Some(&self.first), self.second.as_ref(), self.third.as_ref()]
            .into_iter()
            .flatten()
            .cloned();
        let module = match &self.manifest {
            Some(Some(m)) => m.to_string_lossy().into_owned(),
            _ => args.next().unwrap_or_default(),
        };
        let Some(function) = args.next() else {
            return Err(Error::bad_input(if matches!(self.manifest, Some(Some(_))) {
                "missing FUNCTION: wasmhost call -m MANIFEST FUNCTION [INPUT]"
            } else {
                "missing FUNCTION: wasmhost call MODULE FUNCTION [INPUT]"
            })
            .into());
        };
        let input = args.next();
        if args.next().is_some() {
            return Err(Error::bad_input(
                "too many arguments: with -m, give only FUNCTION [INPUT]",
            )
            .into());
        }
        Ok((module, function, input))
    }

    fn capabilities(&self, base: Capabilities) -> anyhow::Result<Capabilities> {
        let mut caps = self.plugin.apply(base)?;
        if self.wasi || self.grants.any_wasi() || caps.wasi.is_some() {
            let wasi = self.grants.wasi(caps.wasi.clone())?;
            caps = caps.with_wasi(wasi);
        }
        let log = caps.log || self.grants.log();
        let trap = caps.trap_unknown_imports || self.grants.trap_unknown_imports;
        Ok(caps.with_log(log).with_trap_unknown_imports(trap))
    }

    pub fn execute(self) -> anyhow::Result<u8> {
        let (module_ref, function, inline) = self.positionals()?;
        let mut res = resolve(&module_ref, &self.state, None)?;
        if self.manifest.is_some() && !res.is_manifest() {
            return Err(Error::bad_input(format!(
                "-m: `{module_ref}` is not a manifest (a .json or .toml file)"
            ))
            .into());
        }
        let input = self.input.read(inline, &module_ref)?;
        res.capabilities = self.capabilities(res.capabilities.clone())?;
        self.links.apply(&mut res, &self.state)?;
        // --kv grants what a manifest's `key_value = true` does.
        res.key_value |= self.kv;
        let Loaded {
            rt,
            module,
            convention,
            ..
        } = load(res, &self.limits, &self.state, false)?;
        let mut opts = CallOptions::default();
        if let Some(c) = self.abi.or(convention) {
            opts = opts.convention(c);
        }
        if self.wave {
            opts = opts.args(ArgsFormat::Wave);
        }
        if self.repeat == 0 {
            return Err(Error::bad_input("--loop must be at least 1").into());
        }
        let call = |module: &Module| {
            if self.var.is_empty() && self.repeat == 1 {
                return module.call_with(&function, &input, &opts).map(|o| vec![o]);
            }
            (|| {
                let mut instance = module.instantiate(&opts)?;
                for spec in &self.var {
                    let (k, v) = key_value("var", spec)?;
                    instance.set_var(k, v.as_bytes())?;
                }
                let mut outs = Vec::new();
                for _ in 0..self.repeat {
                    outs.push(instance.call(&function, &input)?);
                }
                Ok::<_, anyhow::Error>(outs)
            })()
            .map_err(|e| match e.downcast::<Error>() {
                Ok(e) => e,
                Err(e) => Error::internal(e.to_string()),
            })
        };
        let (module, result) = with_user_imports_trapped(module, call);
        crate::options::persist_stats(&rt, &module);
        for out in result? {
            self.plugin.print_logs(&out.logs);
            std::io::stderr().write_all(&out.stderr)?;
            std::io::stdout().write_all(&out.stdout)?;
            print_data(&out.value)?;
            if self.repeat > 1 {
                // One result a line, as Extism's CLI prints them.
                if let Data::Bytes(b) = &out.value
                    && !b.ends_with(b"\n")
                    && !std::io::stdout().is_terminal()
                {
                    println!();
                }
            }
            if self.stats {
                eprintln!("{}", crate::options::describe_stats(&out.stats));
            }
        }
        Ok(0)
    }
}

/// Writes a result to stdout: bytes raw, text with a newline on a terminal,
/// JSON pretty-printed, numbers one per line.
pub(crate) fn print_data(data: &Data) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match data {
        Data::Bytes(b) => {
            stdout.write_all(b)?;
            if std::io::stdout().is_terminal() && !b.ends_with(b"\n") && !b.is_empty() {
                writeln!(stdout)?;
            }
        }
        Data::Text(s) => writeln!(stdout, "{s}")?,
        Data::Json(v) => writeln!(stdout, "{}", serde_json::to_string_pretty(v)?)?,
        Data::Numbers(values) => {
            for v in values {
                writeln!(stdout, "{v}")?;
            }
        }
        Data::None => {}
        other => writeln!(stdout, "{}", other.text()?)?,
    }
    Ok(())
}
