//! `wasmhost run`: run a WASI command, or `--invoke` one numeric export, or
//! serve messages in a process mode (`--mode sync|async`).
//!
//! Follows `wasmtime run`: `wasmhost run [OPTIONS] MODULE [ARGS...]`. The
//! command gets WASI stdio (inherited), clocks and random, and exactly the
//! args given; env entries, directories and log only when asked for, and
//! `--deny clocks,random` takes those two away. Everything after MODULE is
//! the guest's, flags included, as with `wasmtime run`.
//!
//! With `--mode`, the messages are the lines of wasmhost's own stdin: each
//! goes to the guest as its whole stdin (without the newline) and the
//! guest's stdout is printed as the reply (see `wasmhost::process`).

use std::io::{BufRead, Write};

use clap::{Args, ValueEnum};
use wasmhost::{CallOptions, Capabilities, Error, Module, Output};

use crate::options::{
    GrantOptions, LimitOptions, LinkOptions, Loaded, StateOptions, load, resolve,
};

#[derive(Debug, Args)]
#[command(after_help = "\
Options go before MODULE: as with `wasmtime run`, everything after MODULE is \
the guest's (`wasmhost run app.wasm --fuel 5` passes `--fuel 5` to app.wasm).

The guest gets WASI: stdio, clocks and random numbers (as wasmtime, Spin and \
Extism give them), and exactly the arguments, environment entries and \
directories given. --deny clocks,random takes clocks or random away for a \
deterministic run; a guest that uses them then stops with \
error[capability_denied]. A module that imports anything not granted fails \
before any of its code runs (error[link_error], listing every missing import).

Coming from wasmtime: the same flags, with no --grant (`--dir HOST::GUEST`, \
`--env NAME=VAL`, arguments after MODULE). wasi-testsuite's preview 1 programs \
pass run this way, and Go programs (GOOS=wasip1) run as they do under wasmtime.

EXAMPLES:
  wasmhost run app.wasm arg1 arg2 < input.txt
  wasmhost run --dir ./data::/data --env LANG=C app.wasm
  echo hello | wasmhost run echo.wasm                        # Go/TinyGo: clocks and random included
  wasmhost run --dir ./fs-tests.dir::/ --env ERRNO_MODE_UNIX=1 fd_readdir.wasm   # a wasi-testsuite program
  wasmhost run --deny clocks,random app.wasm                 # deterministic: no clocks, no random
  wasmhost run --invoke add math.wat 1 2
  wasmhost run oci://ghcr.io/acme/hello:v1         # pulled into the store by digest, then run
  wasmhost run --fuel 1000000 --max-memory 16MiB --timeout 500ms untrusted.wasm
  printf 'a\\nb\\n' | wasmhost run --mode sync app.wasm          # two fresh runs, one per line
  printf 'a\\nb\\n' | wasmhost run --mode async reactor.wasm     # `poll` twice, same instance
  wasmhost run --mode async --export echo reactor.wasm < messages.txt
  wasmhost run --link wasmhost:example/console=provider.wasm \\
      --link wasmhost:example/events=provider.wasm consumer.wasm a b

LINKED COMPONENTS (--link INTERFACE=PROVIDER):
  A component's imported interface is provided by another component's export of that interface (as `wac plug` composes them), each in its own sandbox: the provider gets its own limits and grants (a provider manifest's, else the default limits and WASI: stdio, clocks, random), and a failure in it (say error[memory_limit]) stops the run with its code. Interfaces linked to the same PROVIDER share one instance of it. Its stdout and stderr are inherited. A provider that does not export the interface, or exports it with other types, is error[link_error]; so is an import that nothing provides.

PROCESS MODES (--mode):
  Messages are read from wasmhost's stdin, one per line (newline-delimited; \
the newline, and a carriage return before it, are not part of the message). \
Each message is the guest's whole stdin; its stdout is the reply, printed \
followed by a newline unless it ends with one. The guest's stderr is inherited.
  sync   each message runs the command (`_start`) in a fresh instance; a \
non-zero exit fails that message.
  async  one instance serves every message (a reactor's `_initialize` runs, \
`_start` does not): each message calls the export of --export (default `poll`), \
which takes no arguments and returns nothing; memory and globals persist. After \
a trap the next message gets a fresh instance.
  A failed message prints error[code]: ... on stderr and the next message is \
read. The exit status is 0 if every message succeeded, else that of the last \
failure.")]
pub struct RunCommand {
    /// MODULE, then ARGS. MODULE is the module to run: a .wasm binary, WAT
    /// text, `-` for stdin, a manifest (.toml, or an Extism or packet
    /// .json), a store reference (name[:tag], sha256:…) or
    /// oci://REGISTRY/REPOSITORY:TAG (pulled from the registry into the
    /// store by digest). ARGS, everything
    /// after MODULE (flags included, as with `wasmtime run`), are for a
    /// command its argv after the program name, and with --invoke the
    /// function's numeric arguments.
    #[arg(
        value_name = "MODULE [ARGS]...",
        trailing_var_arg = true,
        required = true
    )]
    module_and_args: Vec<String>,

    /// Call this exported function with ARGS as numbers and print its results, one per line.
    #[arg(long, value_name = "NAME", conflicts_with = "mode")]
    invoke: Option<String>,

    /// Serve messages read from stdin, one per line: `sync` runs the command
    /// once per message, `async` calls --export of one kept instance per
    /// message (see PROCESS MODES below).
    #[arg(long, value_enum, value_name = "MODE")]
    mode: Option<Mode>,

    /// With --mode async: the export each message calls [default: poll].
    #[arg(long, value_name = "NAME", requires = "mode")]
    export: Option<String>,

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

/// A process mode (see `wasmhost::process`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// A fresh instance per message, running `_start`.
    Sync,
    /// One kept instance, an export called per message.
    Async,
}

impl RunCommand {
    /// MODULE.
    fn module(&self) -> &str {
        self.module_and_args.first().map_or("", String::as_str)
    }

    /// ARGS: everything after MODULE.
    fn args(&self) -> &[String] {
        self.module_and_args.get(1..).unwrap_or_default()
    }

    /// The manifest's grants (if any) plus those on the command line.
    fn capabilities(&self, program: &str, base: Capabilities) -> anyhow::Result<Capabilities> {
        let mut wasi = self.grants.wasi(base.wasi.clone())?;
        let args = self.args();
        if self.invoke.is_none() && (!args.is_empty() || wasi.args.is_empty()) {
            wasi.args = std::iter::once(program.to_string())
                .chain(args.iter().cloned())
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
        let mut res = resolve(self.module(), &self.state, None)?;
        res.capabilities = self.capabilities(&res.name, res.capabilities.clone())?;
        self.links.apply(&mut res, &self.state)?;
        let Loaded {
            rt,
            module,
            function,
            convention,
        } = load(res, &self.limits, &self.state, false)?;
        // A manifest's entry function, unless it runs a WASI command.
        let entry = function.filter(|_| convention != Some(wasmhost::Convention::Process));
        if let Some(mode) = self.mode {
            let result = self.serve(mode, &module);
            crate::options::persist_stats(&rt, &module);
            return result;
        }
        let mut opts = CallOptions::default().inherit_stdio();
        if self.module() == "-" {
            // The module came in on stdin; the guest gets none.
            opts = opts.stdin(wasmhost::Stdin::Empty);
        }
        let result = match self.invoke.as_ref().or(entry.as_ref()) {
            Some(name) => module
                .invoke_text(name, self.args(), &opts)
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

impl RunCommand {
    /// Process mode: one message per line of stdin, one reply per message.
    fn serve(&self, mode: Mode, module: &Module) -> anyhow::Result<u8> {
        if self.module() == "-" {
            return Err(Error::bad_input(
                "with --mode, stdin carries the messages: MODULE cannot be `-`",
            )
            .into());
        }
        if mode == Mode::Sync && self.export.is_some() {
            return Err(Error::bad_input("--export goes with --mode async").into());
        }
        let opts = CallOptions::default()
            .stdout(Output::default())
            .stderr(Output::Inherit);
        let export = self.export.as_deref().unwrap_or(wasmhost::POLL);
        let mut instance = match mode {
            Mode::Async => Some(module.instantiate(&opts)?),
            Mode::Sync => None,
        };
        let mut input = std::io::stdin().lock();
        let mut stdout = std::io::stdout().lock();
        let mut status = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let message = message_of(&line);
            let result = match &mut instance {
                Some(instance) => instance.message(export, message.to_vec()),
                None => module.process_sync(message.to_vec(), &opts),
            };
            match result {
                Ok(out) => {
                    stdout.write_all(&out.value)?;
                    if !out.value.ends_with(b"\n") {
                        stdout.write_all(b"\n")?;
                    }
                    stdout.flush()?;
                    if self.stats {
                        eprintln!("{}", crate::options::describe_stats(&out.stats));
                    }
                }
                Err(e) => {
                    eprintln!("error[{}]: {e}", e.code());
                    status = match &e {
                        Error::Exit { code, .. } => {
                            u8::try_from(*code).ok().filter(|c| *c != 0).unwrap_or(1)
                        }
                        _ => crate::exit_status(e.code()),
                    };
                }
            }
        }
        Ok(status)
    }
}

/// A line of input without its newline (and a carriage return before it).
fn message_of(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
