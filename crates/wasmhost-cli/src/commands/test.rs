//! `wasmhost test`: one call, with its result and what it cost.

use clap::Args;
use wasmhost::{CallOptions, Capabilities, Convention, Error, Stdin, Wasi};

use crate::options::{LimitOptions, Loaded, StateOptions, describe_stats, load, resolve};

#[derive(Debug, Args)]
#[command(after_help = "\
FUNCTION `_start` runs the module as a WASI command with INPUT on stdin. \
Any other FUNCTION is a numeric export called with INPUT as a JSON array of \
numbers (or one number), unless a manifest forces another calling \
convention: then INPUT is the function's input as `wasmhost call` takes it. \
A manifest's limits and grants apply. Fuel is always metered here so that \
it can be reported.

EXAMPLES:
  wasmhost test math.wasm add --input '[1, 2]'
  wasmhost test app:v1 _start --input 'hello'")]
pub struct TestCommand {
    /// A module file, manifest, `-`, or store reference.
    #[arg(value_name = "MODULE|REF")]
    module: String,

    /// The function to call.
    #[arg(value_name = "FUNCTION")]
    function: String,

    /// The input: numbers as JSON for a numeric export, stdin text for `_start`.
    #[arg(long, value_name = "INPUT", default_value = "")]
    input: String,

    /// Print JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    state: StateOptions,
}

fn numbers(input: &str) -> wasmhost::Result<Vec<String>> {
    if input.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_str(input)
        .map_err(|e| Error::bad_input(format!("--input is not JSON: {e}")))?;
    let items = match v {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|x| match x {
            serde_json::Value::Number(n) => Ok(n.to_string()),
            other => Err(Error::bad_input(format!(
                "--input: `{other}` is not a number"
            ))),
        })
        .collect()
}

impl TestCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        let mut res = resolve(&self.module, &self.state, None)?;
        if !res.configured() {
            // A plain module runs as a command with its name as argv[0].
            res.capabilities = Capabilities::none().with_wasi(Wasi::new().arg(res.name.clone()));
        }
        let Loaded {
            rt,
            module,
            convention,
            ..
        } = load(res, &self.limits, &self.state, true)?;
        let outcome = match convention {
            _ if self.function == "_start" => {
                let opts =
                    CallOptions::default().stdin(Stdin::bytes(self.input.clone().into_bytes()));
                module
                    .run(&opts)
                    .map(|out| (String::new(), out.stats, out.stdout))
            }
            // A convention the manifest forces: data in, data out.
            Some(c) if c != Convention::Numeric => {
                let opts = CallOptions::default().convention(c);
                module
                    .call_with(&self.function, self.input.as_bytes(), &opts)
                    .map(|out| {
                        let text = String::from_utf8_lossy(&out.value.bytes()).into_owned();
                        (text, out.stats, out.stdout)
                    })
            }
            _ => numbers(&self.input).and_then(|args| {
                let out = module.invoke_text(&self.function, &args, &CallOptions::default())?;
                let values: Vec<String> = out.value.iter().map(|v| v.to_string()).collect();
                Ok((values.join(" "), out.stats, out.stdout))
            }),
        };
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
