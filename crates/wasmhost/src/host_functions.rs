//! Host functions an embedder offers to guests.
//!
//! A [`HostFunctions`] set has a name and holds functions for core modules
//! (by import module and name), for components (by interface and function)
//! and for Extism plugins (in `extism:host/user`, bytes in and bytes out).
//! Register a set once with [`crate::Runtime::add_host_functions`]; a guest
//! sees it only when its capabilities name it
//! ([`crate::Capabilities::with_host_functions`]), so granting stays one set
//! at a time and nothing is offered by default.
//!
//! A host function that returns an error stops the guest: the call fails
//! with a `trap` whose message is the host's message.
//!
//! Async host functions are awaited on the caller's executor when the
//! guest runs through the async API (`Module::call_async` and friends: the
//! guest waits on its fiber, the executor thread is free meanwhile). Through
//! the blocking API they are waited for in place: on the caller's tokio
//! runtime when there is a multi-threaded one (through `block_in_place`),
//! otherwise on a small runtime of wasmhost's own.
//!
//! ```
//! use wasmhost::{Capabilities, HostFunctions, Runtime, RuntimeConfig, Source, Value, ValueType};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! rt.add_host_functions(
//!     HostFunctions::new("demo")
//!         .core("demo", "add", |a: i32, b: i32| a + b)
//!         .core_async("demo", "slow_double", &[ValueType::I64], &[ValueType::I64], |args| async move {
//!             let Value::I64(x) = args[0] else { return Err("expected an i64".to_string()) };
//!             Ok(vec![Value::I64(2 * x)])
//!         }),
//! )?;
//! let m = rt
//!     .load(&Source::Bytes(br#"(module
//!         (import "demo" "add" (func $add (param i32 i32) (result i32)))
//!         (import "demo" "slow_double" (func $d (param i64) (result i64)))
//!         (func (export "f") (param i32) (result i64)
//!           local.get 0 i32.const 1 call $add i64.extend_i32_s call $d))"#.to_vec()))?
//!     .with_capabilities(Capabilities::none().with_host_functions("demo"));
//! assert_eq!(m.invoke("f", &[Value::I32(20)])?.value, vec![Value::I64(42)]);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::{ComponentNamedList, Lift, Lower};
use wasmtime::{Caller, IntoFunc};

use crate::call::{Value, ValueType};
use crate::error::Result;
use crate::exec::{Exec, block_on};
use crate::state::HostState;

/// Adds one core function to a linker of the given flavour (see [`Exec`]).
type CoreInstall =
    Arc<dyn Fn(&mut wasmtime::Linker<HostState>, Exec) -> wasmtime::Result<()> + Send + Sync>;
/// Adds one component function to a linker of the given flavour.
type ComponentInstall = Arc<
    dyn Fn(&mut wasmtime::component::Linker<HostState>, Exec) -> wasmtime::Result<()> + Send + Sync,
>;

/// A named set of host functions. Build it with the builder methods, then
/// register it with [`crate::Runtime::add_host_functions`].
#[derive(Clone)]
pub struct HostFunctions {
    name: String,
    /// `(module, name)` of each core function, for listings.
    core_names: Vec<(String, String)>,
    core: Vec<CoreInstall>,
    /// `(interface, name)` of each component function.
    component_names: Vec<(String, String)>,
    component: Vec<ComponentInstall>,
}

impl std::fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostFunctions")
            .field("name", &self.name)
            .field("core", &self.core_names)
            .field("component", &self.component_names)
            .finish()
    }
}

impl HostFunctions {
    /// An empty set called `name` (the name capabilities grant it by).
    pub fn new(name: impl Into<String>) -> Self {
        HostFunctions {
            name: name.into(),
            core_names: Vec::new(),
            core: Vec::new(),
            component_names: Vec::new(),
            component: Vec::new(),
        }
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Core functions in the set, as `(module, name)`.
    pub fn core_functions(&self) -> &[(String, String)] {
        &self.core_names
    }

    /// Component functions in the set, as `(interface, name)`.
    pub fn component_functions(&self) -> &[(String, String)] {
        &self.component_names
    }

    /// A typed function for core modules importing `(module, name)`.
    ///
    /// `func` is any closure wasmtime's `Linker::func_wrap` accepts: plain
    /// numeric parameters and results (`|a: i32, b: i32| a + b`), optionally
    /// a first `Caller<'_, HostState>` parameter to reach the guest's
    /// exports (its memory), and a `wasmtime::Result<_>` return to fail.
    pub fn core<Params, Args>(
        mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<HostState, Params, Args> + Clone,
    ) -> Self {
        let (m, n) = (module.to_string(), name.to_string());
        self.core_names.push((m.clone(), n.clone()));
        self.core.push(Arc::new(move |linker, _| {
            linker.func_wrap(&m, &n, func.clone())?;
            Ok(())
        }));
        self
    }

    /// An async function for core modules importing `(module, name)`, with
    /// the given numeric signature. The future's error becomes the trap's
    /// message.
    pub fn core_async<F, Fut>(
        mut self,
        module: &str,
        name: &str,
        params: &[ValueType],
        results: &[ValueType],
        func: F,
    ) -> Self
    where
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Vec<Value>, String>> + Send + 'static,
    {
        let (m, n) = (module.to_string(), name.to_string());
        let params: Vec<wasmtime::ValType> = params.iter().map(|t| t.to_wasm()).collect();
        let result_types: Vec<ValueType> = results.to_vec();
        let results_ty: Vec<wasmtime::ValType> = results.iter().map(|t| t.to_wasm()).collect();
        let func = Arc::new(func);
        self.core_names.push((m.clone(), n.clone()));
        self.core.push(Arc::new(move |linker, exec| {
            let ty = wasmtime::FuncType::new(
                linker.engine(),
                params.iter().cloned(),
                results_ty.iter().cloned(),
            );
            let call = AsyncCore {
                func: func.clone(),
                what: Arc::from(format!("{m}::{n}")),
                result_types: Arc::from(result_types.as_slice()),
            };
            match exec {
                Exec::Sync => linker.func_new(&m, &n, ty, move |_caller, args, out| {
                    let fut = call.start(args)?;
                    call.finish(block_on(fut), out)
                })?,
                Exec::Async => linker.func_new_async(&m, &n, ty, move |_caller, args, out| {
                    let call = call.clone();
                    Box::new(async move {
                        let fut = call.start(args)?;
                        call.finish(fut.await, out)
                    })
                })?,
            };
            Ok(())
        }));
        self
    }

    /// A typed function for components importing `interface` (for example
    /// `wasmhost:example/host@0.1.0`, or an empty string for a function
    /// imported at the root), with WIT types mapped the way wasmtime's
    /// bindgen maps them: `|(name,): (String,)| Ok((format!("hi {name}"),))`.
    pub fn component<Params, Results, F>(mut self, interface: &str, name: &str, func: F) -> Self
    where
        Params: ComponentNamedList + Lift + 'static,
        Results: ComponentNamedList + Lower + 'static,
        F: Fn(Params) -> std::result::Result<Results, String> + Send + Sync + 'static,
    {
        let (i, n) = (interface.to_string(), name.to_string());
        let func = Arc::new(func);
        self.component_names.push((i.clone(), n.clone()));
        self.component.push(Arc::new(move |linker, _| {
            let func = func.clone();
            let what = format!("{i}#{n}");
            let wrapped = move |_store: wasmtime::StoreContextMut<'_, HostState>,
                                params: Params| {
                func(params)
                    .map_err(|e| wasmtime::Error::msg(format!("host function `{what}`: {e}")))
            };
            if i.is_empty() {
                linker.root().func_wrap(&n, wrapped)?;
            } else {
                linker.instance(&i)?.func_wrap(&n, wrapped)?;
            }
            Ok(())
        }));
        self
    }

    /// Like [`HostFunctions::component`], for an async function: awaited
    /// on the caller's executor by the async API, waited for in place by
    /// the blocking one.
    pub fn component_async<Params, Results, F, Fut>(
        mut self,
        interface: &str,
        name: &str,
        func: F,
    ) -> Self
    where
        Params: ComponentNamedList + Lift + Send + 'static,
        Results: ComponentNamedList + Lower + Send + 'static,
        F: Fn(Params) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Results, String>> + Send + 'static,
    {
        let (i, n) = (interface.to_string(), name.to_string());
        let func = Arc::new(func);
        self.component_names.push((i.clone(), n.clone()));
        self.component.push(Arc::new(move |linker, exec| {
            let func = func.clone();
            let what: Arc<str> = Arc::from(format!("{i}#{n}"));
            let fail =
                move |e: String| wasmtime::Error::msg(format!("host function `{what}`: {e}"));
            let mut instance = if i.is_empty() {
                linker.root()
            } else {
                linker.instance(&i)?
            };
            match exec {
                Exec::Sync => instance.func_wrap(
                    &n,
                    move |_store: wasmtime::StoreContextMut<'_, HostState>, params: Params| {
                        block_on(func(params)).map_err(&fail)
                    },
                )?,
                Exec::Async => instance.func_wrap_async(
                    &n,
                    move |_store: wasmtime::StoreContextMut<'_, HostState>, params: Params| {
                        let fut = func(params);
                        let fail = fail.clone();
                        Box::new(async move { fut.await.map_err(fail) })
                    },
                )?,
            }
            Ok(())
        }));
        self
    }

    /// A function for Extism plugins, imported from `extism:host/user` as
    /// `name(i64) -> i64`: the guest passes its input as an Extism memory
    /// block and gets the output back as one (the PDKs' `host_fn` does
    /// this).
    pub fn extism<F>(mut self, name: &str, func: F) -> Self
    where
        F: Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync + 'static,
    {
        let n = name.to_string();
        let func = Arc::new(func);
        self.core_names
            .push((crate::kernel::extism::USER_MODULE.to_string(), n.clone()));
        self.core.push(Arc::new(move |linker, _| {
            let func = func.clone();
            let what = n.clone();
            linker.func_wrap(
                crate::kernel::extism::USER_MODULE,
                &n,
                move |mut caller: Caller<'_, HostState>, offset: i64| -> wasmtime::Result<i64> {
                    crate::kernel::extism::user_call(&mut caller, &what, offset, &*func)
                },
            )?;
            Ok(())
        }));
        self
    }

    /// Like [`HostFunctions::extism`], for an async function: awaited on
    /// the caller's executor by the async API, waited for in place by the
    /// blocking one.
    pub fn extism_async<F, Fut>(mut self, name: &str, func: F) -> Self
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Vec<u8>, String>> + Send + 'static,
    {
        let n = name.to_string();
        let func = Arc::new(func);
        self.core_names
            .push((crate::kernel::extism::USER_MODULE.to_string(), n.clone()));
        self.core.push(Arc::new(move |linker, exec| {
            let func = func.clone();
            let what: Arc<str> = Arc::from(n.as_str());
            match exec {
                Exec::Sync => linker.func_wrap(
                    crate::kernel::extism::USER_MODULE,
                    &n,
                    move |mut caller: Caller<'_, HostState>,
                          offset: i64|
                          -> wasmtime::Result<i64> {
                        use crate::kernel::extism::{user_input, user_output};
                        let input = user_input(&mut caller, &what, offset)?;
                        let output = block_on(func(input)).map_err(|e| {
                            wasmtime::Error::msg(format!("host function `{what}`: {e}"))
                        })?;
                        user_output(&mut caller, &output)
                    },
                )?,
                Exec::Async => linker.func_wrap_async(
                    crate::kernel::extism::USER_MODULE,
                    &n,
                    move |mut caller: Caller<'_, HostState>, (offset,): (i64,)| {
                        let func = func.clone();
                        let what = what.clone();
                        Box::new(async move {
                            let input =
                                crate::kernel::extism::user_input(&mut caller, &what, offset)?;
                            let output = func(input).await.map_err(|e| {
                                wasmtime::Error::msg(format!("host function `{what}`: {e}"))
                            })?;
                            crate::kernel::extism::user_output(&mut caller, &output)
                        })
                    },
                )?,
            };
            Ok(())
        }));
        self
    }

    /// Adds the set to a pair of linkers of the flavour `exec`.
    pub(crate) fn install(
        &self,
        core: &mut wasmtime::Linker<HostState>,
        component: &mut wasmtime::component::Linker<HostState>,
        exec: Exec,
    ) -> Result<()> {
        for f in &self.core {
            f(core, exec).map_err(|e| {
                crate::Error::bad_input(format!("host functions `{}`: {e:#}", self.name))
            })?;
        }
        for f in &self.component {
            f(component, exec).map_err(|e| {
                crate::Error::bad_input(format!("host functions `{}`: {e:#}", self.name))
            })?;
        }
        Ok(())
    }
}

/// The shared part of an async core host function: converting the guest's
/// arguments, and checking and storing the future's results.
struct AsyncCore<F> {
    func: Arc<F>,
    what: Arc<str>,
    result_types: Arc<[ValueType]>,
}

impl<F> Clone for AsyncCore<F> {
    fn clone(&self) -> Self {
        AsyncCore {
            func: self.func.clone(),
            what: self.what.clone(),
            result_types: self.result_types.clone(),
        }
    }
}

impl<F, Fut> AsyncCore<F>
where
    F: Fn(Vec<Value>) -> Fut,
    Fut: Future<Output = std::result::Result<Vec<Value>, String>>,
{
    fn start(&self, args: &[wasmtime::Val]) -> wasmtime::Result<Fut> {
        let args = args
            .iter()
            .map(|v| {
                Value::from_wasm(v).ok_or_else(|| wasmtime::Error::msg("non-numeric argument"))
            })
            .collect::<wasmtime::Result<Vec<_>>>()?;
        Ok((self.func)(args))
    }

    fn finish(
        &self,
        values: std::result::Result<Vec<Value>, String>,
        out: &mut [wasmtime::Val],
    ) -> wasmtime::Result<()> {
        let what = &self.what;
        let values =
            values.map_err(|e| wasmtime::Error::msg(format!("host function `{what}`: {e}")))?;
        let types: Vec<ValueType> = values.iter().map(Value::ty).collect();
        if *types != *self.result_types {
            return Err(wasmtime::Error::msg(format!(
                "host function `{what}` returned values of types {types:?}, its signature says {:?}",
                self.result_types
            )));
        }
        for (slot, v) in out.iter_mut().zip(values) {
            *slot = v.to_wasm();
        }
        Ok(())
    }
}
