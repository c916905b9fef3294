//! Differential runs: `wasm-smith` modules that import nothing and export
//! functions, called through wasmhost's numeric path
//! ([`wasmhost::Module::invoke`]) and through raw wasmtime with its default
//! `Config`, each call in a fresh instance on both sides.
//!
//! Results must be identical value for value; floats are compared as
//! wasmtime's own differential fuzzing does (`wasmtime-fuzzing`'s
//! `DiffValue`): any NaN equals any NaN, whatever its bits, and everything
//! else is compared bit for bit (so `-0.0` differs from `0.0`). Failures
//! must have the same trap code. The only differences allowed are the
//! limits wasmhost adds, reported by their code ([`Outcome::Limit`]):
//! memory, time, fuel, pool slots; and a stack overflow that only one side
//! hits, since their stack sizes differ (wasmhost 1 MiB, wasmtime 512 KiB).
//!
//! Every module comes from a seed ([`Differential::check`]), so any
//! mismatch is reproduced by its seed alone.

use std::collections::BTreeMap;
use std::fmt;

use arbitrary::Unstructured;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wasmhost::{Error, ErrorCode, Runtime, RuntimeConfig, Value};
use wasmtime::{Engine, Instance, Store, Trap, Val, ValType};

/// What one call ended in, on either side.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Returned these values.
    Values(Vec<Val>),
    /// Trapped with this trap code (`Trap`'s `Debug` name).
    Trap(String),
    /// The module was refused (both sides validate with wasmtime).
    Invalid(String),
    /// wasmhost stopped the call at one of its own limits.
    Limit(ErrorCode),
    /// Anything else: always a mismatch.
    Other(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Values(v) => {
                let shown: Vec<String> = v.iter().map(show).collect();
                write!(f, "values [{}]", shown.join(", "))
            }
            Outcome::Trap(t) => write!(f, "trap {t}"),
            Outcome::Invalid(m) => write!(f, "invalid module: {m}"),
            Outcome::Limit(c) => write!(f, "wasmhost limit `{}`", c.as_str()),
            Outcome::Other(m) => write!(f, "error: {m}"),
        }
    }
}

fn show(v: &Val) -> String {
    match v {
        Val::I32(x) => format!("i32 {x}"),
        Val::I64(x) => format!("i64 {x}"),
        Val::F32(b) => format!("f32 {} ({b:#010x})", f32::from_bits(*b)),
        Val::F64(b) => format!("f64 {} ({b:#018x})", f64::from_bits(*b)),
        other => format!("{other:?}"),
    }
}

/// `DiffValue`'s equality: NaNs equal whatever their payload, the rest bit
/// for bit.
pub fn same_value(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::I32(x), Val::I32(y)) => x == y,
        (Val::I64(x), Val::I64(y)) => x == y,
        (Val::F32(x), Val::F32(y)) => {
            x == y || (f32::from_bits(*x).is_nan() && f32::from_bits(*y).is_nan())
        }
        (Val::F64(x), Val::F64(y)) => {
            x == y || (f64::from_bits(*x).is_nan() && f64::from_bits(*y).is_nan())
        }
        _ => false,
    }
}

/// Counts of a run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Seeds tried.
    pub seeds: u64,
    /// Modules generated and run on both sides.
    pub modules: u64,
    /// Modules both sides refused alike.
    pub both_invalid: u64,
    /// Calls made on both sides.
    pub calls: u64,
    /// Calls that returned the same values.
    pub same_values: u64,
    /// Calls that trapped alike, by trap code.
    pub same_traps: BTreeMap<String, u64>,
    /// Calls (or instantiations) wasmhost stopped at one of its limits, by code.
    pub limits: BTreeMap<String, u64>,
    /// Calls where only one side overflowed its stack.
    pub stack_differs: u64,
    /// Exports skipped: not numeric (v128 or reference types).
    pub skipped_exports: u64,
    /// The first seed and message of each wasmhost limit hit, to explain it.
    pub limit_examples: BTreeMap<String, (u64, String)>,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seeds, {} modules ({} refused by both), {} calls: {} same values, traps {:?}, \
             wasmhost limits {:?}, {} stack-size differences, {} non-numeric exports skipped",
            self.seeds,
            self.modules,
            self.both_invalid,
            self.calls,
            self.same_values,
            self.same_traps,
            self.limits,
            self.stack_differs,
            self.skipped_exports
        )
    }
}

/// A mismatch: the seed, the call, and both outcomes.
#[derive(Debug)]
pub struct Mismatch {
    /// The seed that generates the module and arguments.
    pub seed: u64,
    /// The export (or `<instantiate>`/`<compile>`).
    pub export: String,
    /// The arguments.
    pub args: Vec<Val>,
    /// wasmhost's outcome.
    pub wasmhost: Outcome,
    /// wasmtime's outcome.
    pub wasmtime: Outcome,
    /// The module, as WAT (or its bytes' length when it does not print).
    pub wat: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self.args.iter().map(show).collect();
        write!(
            f,
            "seed {}: `{}`({}): wasmhost: {}; wasmtime: {}\nmodule:\n{}",
            self.seed,
            self.export,
            args.join(", "),
            self.wasmhost,
            self.wasmtime,
            self.wat
        )
    }
}

/// Both engines, set up once.
#[allow(missing_debug_implementations)]
pub struct Differential {
    host: Runtime,
    engine: Engine,
}

impl Differential {
    /// wasmhost with its default runtime configuration (pooling allocator,
    /// default limits); wasmtime with `Engine::default()`.
    pub fn new() -> Differential {
        let mut pool = wasmhost::PoolConfig::default();
        pool.max_instances = 8;
        let host = Runtime::new(RuntimeConfig::default().pool(Some(pool)))
            .unwrap_or_else(|e| panic!("wasmhost runtime: {e}"));
        Differential {
            host,
            engine: Engine::default(),
        }
    }

    /// The module of `seed`: `wasm-smith` with no imports, at least one
    /// export, sizes small and the proposals wasmtime enables by default;
    /// loops and calls bounded by `ensure_termination` so that raw wasmtime
    /// (no fuel, no epochs) always returns. `None` when the seed's bytes
    /// make no module.
    pub fn module(seed: u64) -> Option<Vec<u8>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = rng.random_range(256..8192);
        let mut raw = vec![0u8; len];
        rng.fill(raw.as_mut_slice());
        let mut u = Unstructured::new(&raw);
        let mut config = crate::module::smith_config(0);
        config.export_everything = rng.random_bool(0.8);
        // v128 functions cannot be called through the numeric path: keep
        // SIMD to a third of the modules so most exports are callable.
        config.simd_enabled = rng.random_bool(0.3);
        let mut m = wasm_smith::Module::new(config, &mut u).ok()?;
        m.ensure_termination(1_000).ok()?;
        Some(m.to_bytes())
    }

    /// Runs the module of `seed` on both sides, every numeric export with
    /// arguments from the seed; the first mismatch, if any.
    pub fn check(&self, seed: u64, tally: &mut Tally) -> Result<(), Box<Mismatch>> {
        tally.seeds += 1;
        let Some(wasm) = Self::module(seed) else {
            return Ok(());
        };
        self.check_module(seed, &wasm, tally)
    }

    /// Runs `wasm` on both sides, every numeric export with arguments drawn
    /// from `seed`; the first mismatch, if any.
    pub fn check_module(
        &self,
        seed: u64,
        wasm: &[u8],
        tally: &mut Tally,
    ) -> Result<(), Box<Mismatch>> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut limit_example = None;
        let mismatch = |export: &str, args: &[Val], ours: Outcome, theirs: Outcome| {
            Box::new(Mismatch {
                seed,
                export: export.to_string(),
                args: args.to_vec(),
                wasmhost: ours,
                wasmtime: theirs,
                wat: wasmprinter_or_len(wasm),
            })
        };
        let theirs = wasmtime::Module::new(&self.engine, wasm);
        let ours = self.host.load_bytes(wasm.to_vec());
        let (theirs, ours) = match (theirs, ours) {
            (Ok(t), Ok(o)) => (t, o),
            (Err(_), Err(e)) if e.code() == ErrorCode::InvalidModule => {
                tally.both_invalid += 1;
                return Ok(());
            }
            (t, o) => {
                return Err(mismatch(
                    "<compile>",
                    &[],
                    match o {
                        Ok(_) => Outcome::Values(Vec::new()),
                        Err(e) => classify(&e),
                    },
                    match t {
                        Ok(_) => Outcome::Values(Vec::new()),
                        Err(e) => Outcome::Invalid(format!("{e:#}")),
                    },
                ));
            }
        };
        tally.modules += 1;
        let exports: Vec<(String, wasmtime::FuncType)> = theirs
            .exports()
            .filter_map(|e| e.ty().func().map(|f| (e.name().to_string(), f.clone())))
            .collect();
        for (name, ty) in exports {
            if !ty.params().chain(ty.results()).all(|t| numeric(&t)) {
                tally.skipped_exports += 1;
                continue;
            }
            let args: Vec<Val> = ty.params().map(|t| arg(&mut rng, &t)).collect();
            let host_args: Vec<Value> = args.iter().filter_map(to_value).collect();
            let ours = match ours.invoke(&name, &host_args) {
                Ok(out) => Outcome::Values(out.value.iter().map(from_value).collect()),
                Err(e) => {
                    limit_example = Some(e.to_string());
                    classify(&e)
                }
            };
            let theirs = self.call_wasmtime(&theirs, &name, &ty, &args);
            tally.calls += 1;
            match (&ours, &theirs) {
                (Outcome::Values(a), Outcome::Values(b))
                    if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y)) =>
                {
                    tally.same_values += 1;
                }
                (Outcome::Trap(a), Outcome::Trap(b)) if a == b => {
                    *tally.same_traps.entry(a.clone()).or_default() += 1;
                }
                (Outcome::Limit(code), _) => {
                    *tally.limits.entry(code.as_str().to_string()).or_default() += 1;
                    tally
                        .limit_examples
                        .entry(code.as_str().to_string())
                        .or_insert_with(|| (seed, limit_example.take().unwrap_or_default()));
                }
                (Outcome::Trap(a), _) | (_, Outcome::Trap(a)) if a == "StackOverflow" => {
                    tally.stack_differs += 1;
                }
                _ => return Err(mismatch(&name, &args, ours, theirs)),
            }
        }
        Ok(())
    }

    fn call_wasmtime(
        &self,
        module: &wasmtime::Module,
        name: &str,
        ty: &wasmtime::FuncType,
        args: &[Val],
    ) -> Outcome {
        let mut store = Store::new(&self.engine, ());
        let instance = match Instance::new(&mut store, module, &[]) {
            Ok(i) => i,
            Err(e) => return wasmtime_error(e),
        };
        let Some(func) = instance.get_func(&mut store, name) else {
            return Outcome::Other(format!("no export `{name}`"));
        };
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        match func.call(&mut store, args, &mut results) {
            Ok(()) => Outcome::Values(results),
            Err(e) => wasmtime_error(e),
        }
    }
}

impl Default for Differential {
    fn default() -> Self {
        Self::new()
    }
}

fn wasmtime_error(e: wasmtime::Error) -> Outcome {
    match e.downcast_ref::<Trap>() {
        Some(t) => Outcome::Trap(format!("{t:?}")),
        None => Outcome::Other(format!("{e:#}")),
    }
}

/// wasmhost's error as an [`Outcome`]: its trap code, or the limit's code.
pub fn classify(e: &Error) -> Outcome {
    match e {
        Error::Trap {
            trap_code: Some(code),
            ..
        } => Outcome::Trap(code.clone()),
        Error::StackOverflow { .. } => Outcome::Trap("StackOverflow".to_string()),
        _ => match e.code() {
            ErrorCode::InvalidModule => Outcome::Invalid(e.to_string()),
            code @ (ErrorCode::MemoryLimit
            | ErrorCode::Timeout
            | ErrorCode::OutOfFuel
            | ErrorCode::Overloaded) => Outcome::Limit(code),
            code => Outcome::Other(format!("{}: {e}", code.as_str())),
        },
    }
}

fn numeric(t: &ValType) -> bool {
    matches!(t, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64)
}

fn to_value(v: &Val) -> Option<Value> {
    Some(match v {
        Val::I32(x) => Value::I32(*x),
        Val::I64(x) => Value::I64(*x),
        Val::F32(b) => Value::F32(f32::from_bits(*b)),
        Val::F64(b) => Value::F64(f64::from_bits(*b)),
        _ => return None,
    })
}

fn from_value(v: &Value) -> Val {
    match v {
        Value::I32(x) => Val::I32(*x),
        Value::I64(x) => Val::I64(*x),
        Value::F32(x) => Val::F32(x.to_bits()),
        Value::F64(x) => Val::F64(x.to_bits()),
    }
}

/// An argument: often an edge value (zero, ±1, extremes, signed zeros,
/// infinities, NaNs with payloads), otherwise random bits.
fn arg(rng: &mut StdRng, t: &ValType) -> Val {
    let edge = rng.random_bool(0.5);
    match t {
        ValType::I32 => Val::I32(if edge {
            [0, 1, -1, i32::MIN, i32::MAX, 8, 65536][rng.random_range(0..7)]
        } else {
            rng.random()
        }),
        ValType::I64 => Val::I64(if edge {
            [0, 1, -1, i64::MIN, i64::MAX, 8, 1 << 32][rng.random_range(0..7)]
        } else {
            rng.random()
        }),
        ValType::F32 => Val::F32(if edge {
            [
                0.0f32.to_bits(),
                (-0.0f32).to_bits(),
                f32::INFINITY.to_bits(),
                f32::NEG_INFINITY.to_bits(),
                f32::NAN.to_bits(),
                0x7fa0_0001,
                0xffc0_1234,
                1.5f32.to_bits(),
            ][rng.random_range(0..8)]
        } else {
            rng.random()
        }),
        _ => Val::F64(if edge {
            [
                0.0f64.to_bits(),
                (-0.0f64).to_bits(),
                f64::INFINITY.to_bits(),
                f64::NEG_INFINITY.to_bits(),
                f64::NAN.to_bits(),
                0x7ff4_0000_0000_0001,
                0xfff8_0000_dead_beef,
                (-2.5f64).to_bits(),
            ][rng.random_range(0..8)]
        } else {
            rng.random()
        }),
    }
}

fn wasmprinter_or_len(wasm: &[u8]) -> String {
    wasmprinter::print_bytes(wasm).unwrap_or_else(|_| format!("({} bytes)", wasm.len()))
}
