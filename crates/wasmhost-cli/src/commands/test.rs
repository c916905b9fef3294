//! `wasmhost test`: one call, with its result and what it cost.

use clap::Args;
use wasmhost::{CallOptions, Capabilities, Data, Stdin, Wasi};

use crate::options::{
    InputOptions, LimitOptions, Loaded, StateOptions, describe_stats, load, resolve,
    with_user_imports_trapped,
};

#[derive(Debug, Args)]
#[command(
    override_usage = "wasmhost test [OPTIONS] MODULE FUNCTION [INPUT] [OPTIONS]",
    after_help = "\
FUNCTION `_start` runs the module as a WASI command with the input on stdin. \
Any other FUNCTION is called as `wasmhost call` calls it: through the calling \
convention the module speaks (or its manifest forces), with the input in the \
same forms: INPUT, --input/-i, --input-file, or `-`/--stdin for stdin (a JSON \
number or array for a numeric export, bytes for an Extism plugin, a string \
for AssemblyScript, JSON arguments for a component). A manifest's limits and \
grants apply. Fuel is always metered here so that it can be reported. \
Options go anywhere, before MODULE or after FUNCTION.

EXAMPLES:
  wasmhost test math.wasm add '[1, 2]'
  wasmhost test code.wasm count_vowels --input aei
  wasmhost test app:v1 _start --input 'hello' --json"
)]
pub struct TestCommand {
    /// A module file, manifest, `-`, or store reference.
    #[arg(value_name = "MODULE|REF")]
    module: String,

    /// The function to call.
    #[arg(value_name = "FUNCTION")]
    function: String,

    /// The input, inline; `-` reads stdin.
    #[arg(value_name = "INPUT", allow_negative_numbers = true)]
    inline: Option<String>,

    #[command(flatten)]
    input: InputOptions,

    /// Print JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    state: StateOptions,
}

/// A call's result as one line of text: numbers separated by spaces,
/// anything else as text.
fn result_text(data: &Data) -> String {
    match data {
        Data::Numbers(values) => values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        other => String::from_utf8_lossy(&other.bytes()).into_owned(),
    }
}

impl TestCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let mut res = resolve(&self.module, &self.state, None)?;
        let input = self.input.read(self.inline.clone(), &self.module)?;
        if !res.configured() {
            // A plain module runs as a command with its name as argv[0].
            res.capabilities =
                Capabilities::none().with_wasi(Wasi::standard().arg(res.name.clone()));
        }
        let Loaded {
            rt,
            module,
            convention,
            ..
        } = load(res, &self.limits, &self.state, true)?;
        let (module, outcome) = with_user_imports_trapped(module, |module| {
            if self.function == "_start" {
                let opts = CallOptions::default().stdin(Stdin::bytes(input.clone()));
                return module
                    .run(&opts)
                    .map(|out| (String::new(), out.stats, out.stdout));
            }
            let mut opts = CallOptions::default();
            if let Some(c) = convention {
                opts = opts.convention(c);
            }
            module
                .call_with(&self.function, &input, &opts)
                .map(|out| (result_text(&out.value), out.stats, out.stdout))
        });
        crate::options::persist_stats(&rt, &module);
        let (result, stats, stdout) = outcome?;
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        let m = module.stats();
        if self.json {
            let out = serde_json::json!({
                "result": result, "stdout": stdout,
                "time_us": stats.duration.as_micros() as u64, "fuel": stats.fuel_consumed,
                "peak_memory_bytes": stats.peak_memory_bytes,
                "module": {"digest": m.digest.to_string(), "compile_time_us": m.compile_time.as_micros() as u64,
                           "loads": m.loads, "calls": m.calls, "errors": m.errors},
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            if self.function == "_start" {
                print!("{stdout}");
            } else {
                println!("result: {result}");
            }
            println!("{}", describe_stats(&stats));
            println!("compile: {:?} (digest {})", m.compile_time, m.digest);
        }
        Ok(0)
    }
}
