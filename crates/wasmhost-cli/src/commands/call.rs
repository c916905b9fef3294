//! `wasmhost call`: call one function with data in and data out, through
//! whichever calling convention the module speaks.
//!
//! The convention is detected (component, Extism plugin, AssemblyScript
//! string export, raw transfer, numeric) unless `--abi` forces one; a
//! module that fits none gets an error saying why each did not fit.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::Args;
use wasmhost::{ArgsFormat, CallOptions, Capabilities, Convention, Data, Error, Http};

use crate::options::{GrantOptions, LimitOptions, Loaded, StateOptions, load, resolve};

#[derive(Debug, Args)]
#[command(
    override_usage = "wasmhost call [OPTIONS] MODULE FUNCTION [INPUT]\n       wasmhost call [OPTIONS] -m MANIFEST.json FUNCTION [INPUT]",
    after_help = "\
INPUT is the function's input: bytes for an Extism plugin or a raw function, \
a string for an AssemblyScript export, JSON arguments for a component \
([arg1, arg2], {\"name\": value}, or the one argument itself; --wave for WAVE \
text) and a JSON number or array for a numeric function. `-` reads it from \
stdin; --input-file from a file; no input is empty input.

The result goes to stdout: bytes as they are, text and JSON as text, numbers \
one per line. Log lines of the guest go to stderr.

EXAMPLES:
  wasmhost call plugin.wasm count_vowels 'Hello, World!'
  wasmhost call --config vowels=aeiou --allow-host api.example.com plugin.wasm fetch
  wasmhost call -m manifest.json count_vowels - < input.txt
  wasmhost call counter.wasm increment 5
  wasmhost call --wasi shapes.wasm add-points '[{\"x\":1,\"y\":2},{\"x\":3,\"y\":4}]'
  wasmhost call --wasi --wave shapes.wasm add-points '{x: 1, y: 2}, {x: 3, y: 4}'
  wasmhost call math.wat add '[1, 2]'"
)]
pub struct CallCommand {
    /// MODULE FUNCTION [INPUT] (FUNCTION [INPUT] with -m). MODULE is a
    /// .wasm binary, WAT text, a manifest (.toml, Extism or packet .json)
    /// a store reference (name[:tag], sha256:…) or
    /// oci://REGISTRY/REPOSITORY:TAG (pulled into the store by digest).
    #[arg(value_name = "ARGS", num_args = 1..=3, required = true, allow_hyphen_values = true)]
    args: Vec<String>,

    /// An Extism manifest (JSON) naming the module, its config, allowed
    /// hosts and paths, memory and timeout.
    #[arg(short = 'm', long, value_name = "MANIFEST")]
    manifest: Option<PathBuf>,

    /// The input, given inline.
    #[arg(long, value_name = "DATA", conflicts_with = "input_file")]
    input: Option<String>,

    /// Read the input from a file.
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,

    /// Force a calling convention instead of detecting it.
    #[arg(long, value_name = "ABI", value_parser = parse_convention)]
    abi: Option<Convention>,

    /// A component's arguments are WAVE text (as `wasmtime run --invoke` takes them), not JSON.
    #[arg(long)]
    wave: bool,

    /// Configuration the plugin may read (Extism `config_get`); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    config: Vec<String>,

    /// Let the plugin make HTTP requests to HOST (glob patterns like *.example.com); repeatable.
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,

    /// Set a plugin variable before the call (Extism `var_get`); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    var: Vec<String>,

    /// Grant WASI standard I/O (plugins built for wasm32-wasip1, components using std).
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

fn key_value<'a>(flag: &str, spec: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    match spec.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(Error::bad_input(format!("--{flag} `{spec}`: expected KEY=VALUE")).into()),
    }
}

impl CallCommand {
    /// (module, function, inline input) from the positional arguments.
    fn positionals(&self) -> anyhow::Result<(String, String, Option<String>)> {
        let mut args = self.args.iter().cloned();
        let module = match &self.manifest {
            Some(m) => m.to_string_lossy().into_owned(),
            None => args.next().unwrap_or_default(),
        };
        let Some(function) = args.next() else {
            return Err(Error::bad_input(if self.manifest.is_some() {
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

    fn read_input(&self, inline: Option<String>, module: &str) -> anyhow::Result<Vec<u8>> {
        let given = [
            inline.is_some(),
            self.input.is_some(),
            self.input_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(
                Error::bad_input("give the input one way: INPUT, --input or --input-file").into(),
            );
        }
        if let Some(path) = &self.input_file {
            return std::fs::read(path).map_err(|e| {
                Error::bad_input(format!("--input-file `{}`: {e}", path.display())).into()
            });
        }
        match inline.or_else(|| self.input.clone()) {
            Some(s) if s == "-" => {
                if module == "-" {
                    return Err(Error::bad_input(
                        "the module and the input cannot both come from stdin",
                    )
                    .into());
                }
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                    Error::bad_input(format!("cannot read the input from stdin: {e}"))
                })?;
                Ok(buf)
            }
            Some(s) => Ok(s.into_bytes()),
            None => Ok(Vec::new()),
        }
    }

    fn capabilities(&self, base: Capabilities) -> anyhow::Result<Capabilities> {
        let mut caps = base;
        for spec in &self.config {
            let (k, v) = key_value("config", spec)?;
            caps = caps.with_config(k, v);
        }
        if !self.allow_host.is_empty() {
            let mut hosts = caps
                .http
                .as_ref()
                .map(|h| h.allowed_hosts.clone())
                .unwrap_or_default();
            hosts.extend(self.allow_host.iter().cloned());
            let max = caps
                .http
                .as_ref()
                .map(|h| h.max_response_bytes)
                .unwrap_or(wasmhost::capabilities::http::DEFAULT_MAX_RESPONSE_BYTES);
            caps = caps.with_http(Http::allow(hosts).max_response_bytes(max));
        }
        if self.wasi || self.grants.any_wasi() || caps.wasi.is_some() {
            let wasi = self.grants.wasi(caps.wasi.clone().unwrap_or_default())?;
            caps = caps.with_wasi(wasi);
        }
        let log = caps.log || self.grants.log();
        let trap = caps.trap_unknown_imports || self.grants.trap_unknown_imports;
        Ok(caps.with_log(log).with_trap_unknown_imports(trap))
    }

    pub fn execute(self) -> anyhow::Result<u8> {
        let (module_ref, function, inline) = self.positionals()?;
        let mut res = resolve(&module_ref, &self.state, None)?;
        let input = self.read_input(inline, &module_ref)?;
        res.capabilities = self.capabilities(res.capabilities.clone())?;
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
        let result = if self.var.is_empty() {
            module.call_with(&function, &input, &opts)
        } else {
            (|| {
                let mut instance = module.instantiate(&opts)?;
                for spec in &self.var {
                    let (k, v) = key_value("var", spec)?;
                    instance.set_var(k, v.as_bytes())?;
                }
                Ok::<_, anyhow::Error>(instance.call(&function, &input)?)
            })()
            .map_err(|e| match e.downcast::<Error>() {
                Ok(e) => e,
                Err(e) => Error::internal(e.to_string()),
            })
        };
        crate::options::persist_stats(&rt, &module);
        let out = result?;
        for log in &out.logs {
            eprintln!("[{}] {}", log.level.as_str(), log.message);
        }
        std::io::stderr().write_all(&out.stderr)?;
        std::io::stdout().write_all(&out.stdout)?;
        print_data(&out.value)?;
        if self.stats {
            eprintln!("{}", crate::options::describe_stats(&out.stats));
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
