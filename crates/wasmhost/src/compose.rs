//! Components linked to components: a component's imported interface
//! provided by another component's exported one (`Module::link` with two
//! components; `--link INTERFACE=PROVIDER` on the command line), as `wac
//! plug` and wasmCloud compose them — but at run time, with the two kept
//! apart.
//!
//! The consumer's linker gets one dynamic host function (`func_new`, or
//! `func_new_async` for the async flavour) per function of the interface
//! it imports. Each forwards its arguments, as component `Val`s, to the
//! same function of the provider's export, in the provider's *own*
//! sandbox: its own wasmtime `Store`, limiter, fuel and deadline, WASI
//! context and grants, made from the provider's [`Spec`](crate::sandbox)
//! the first time the consumer calls into it and kept, in the consumer's
//! `HostState`, for as long as the consumer's store lives (a fresh call:
//! that call; a kept `Instance`: until it is dropped or restarted). Every
//! interface linked to the same provider (same digest and name) reaches the
//! same provider instance, so its interfaces share state as `wac plug`'s
//! would. Each call into the provider gets the provider's fuel and
//! timeout afresh (as a call of its own), and ends by the consumer's
//! deadline at the latest; its memory limit holds for the instance. A provider that fails stops the consumer with the provider's
//! error (its own code: `memory_limit`, `timeout`, `trap`, …).
//!
//! Checked when linked, before anything runs ([`check`]): the consumer
//! imports the interface (`bad_input` otherwise), the provider exports it
//! and every function the consumer imports from it, with the same types
//! (`link_error` naming the interface or each mismatch otherwise).
//! Interfaces that pass resources (or futures, streams, error contexts) are
//! refused (`link_error`): a resource handle belongs to one store and
//! cannot be handed to another. Values cross by copy, so nothing of one
//! instance's memory is reachable from the other.
//!
//! Wasmtime's rules hold: the consumer's store is only borrowed by the host
//! function while the provider runs in another store (no reentrancy into
//! the consumer), and each store counts its own fuel and epoch deadline.

use std::any::Any;
use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, Linker, Val};

use crate::capabilities::wasi::Output;
use crate::error::{Error, Result, abort};
use crate::exec::{Exec, run_sync};
use crate::sandbox::{Handle, Pre, Sandbox};
use crate::state::HostState;

/// Makes the provider's sandbox and pre-linked code, for a consumer run by
/// `Exec`, with the given stdout and stderr.
pub(crate) type Start =
    Arc<dyn Fn(Exec, Output, Output) -> Result<(Sandbox, Pre)> + Send + Sync + 'static>;

/// One interface of a consumer provided by a component: checked, and ready
/// to be defined in the consumer's linker.
#[derive(Clone)]
pub(crate) struct Provided {
    /// The consumer's import, as the component names it
    /// (`wasmhost:example/console@0.1.0`).
    pub(crate) import: String,
    /// The provider's functions, by the name the consumer imports them
    /// under, as indexes valid in every instance of the provider.
    funcs: Vec<(String, ComponentExportIndex)>,
    /// Which provider instance of the consumer's store serves it: interfaces
    /// linked to the same provider share one.
    pub(crate) slot: usize,
    /// The provider's name, for messages.
    pub(crate) provider: Arc<str>,
    /// Makes the provider's sandbox.
    pub(crate) start: Start,
}

/// Checks that `provider` can provide `interface` to `consumer` and finds
/// what the link needs: the consumer's import of that name (the name as
/// given, or without its `@version`), the provider's export of the same
/// interface, each function the consumer imports from it, exported with the
/// same type, and no resources. `slot` and `start` are the provider
/// instance the interface is served by (see [`Provided`]).
pub(crate) fn check(
    consumer: &Component,
    consumer_name: &str,
    interface: &str,
    provider: &Component,
    provider_name: &Arc<str>,
    slot: usize,
    start: Start,
) -> Result<Provided> {
    let engine = consumer.engine();
    let unversioned = |n: &str| n.split('@').next().unwrap_or(n).to_string();
    let matches = |name: &str| name == interface || unversioned(name) == interface;
    let imports: Vec<(String, ComponentItem)> = consumer
        .component_type()
        .imports(engine)
        .map(|(n, i)| (n.to_string(), i.ty))
        .collect();
    let Some((import, item)) = imports.iter().find(|(n, _)| matches(n)) else {
        let names: Vec<&str> = imports.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Error::bad_input(format!(
            "--link {interface}: component {consumer_name} imports no interface `{interface}` \
             (its imports: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let ComponentItem::ComponentInstance(wanted) = item else {
        return Err(Error::bad_input(format!(
            "--link {interface}: `{import}` of component {consumer_name} is not an interface"
        )));
    };
    let link_error = |detail: String| Error::Link {
        missing: Vec::new(),
        detail: Some(format!(
            "component {provider_name} cannot provide `{import}` to {consumer_name}: {detail}"
        )),
    };
    // The provider's export: the same name, or the same interface at
    // another version.
    let exports: Vec<(String, ComponentItem)> = provider
        .component_type()
        .exports(engine)
        .map(|(n, i)| (n.to_string(), i.ty))
        .collect();
    let found = exports.iter().find(|(n, _)| n == import).or_else(|| {
        exports
            .iter()
            .find(|(n, _)| unversioned(n) == unversioned(import))
    });
    let Some((export, ComponentItem::ComponentInstance(offered))) = found else {
        let names: Vec<&str> = exports
            .iter()
            .filter(|(_, i)| matches!(i, ComponentItem::ComponentInstance(_)))
            .map(|(n, _)| n.as_str())
            .collect();
        return Err(link_error(format!(
            "it does not export that interface (it exports {})",
            if names.is_empty() {
                "no interface".to_string()
            } else {
                format!("interfaces {}", names.join(", "))
            }
        )));
    };
    let offered_funcs = funcs_of(offered, engine);
    let mut problems = Vec::new();
    let mut funcs = Vec::new();
    for (name, item) in wanted.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(want) => {
                if let Some(why) = unsupported(&want) {
                    problems.push(format!("function `{name}` passes {why}"));
                    continue;
                }
                match offered_funcs.iter().find(|(n, _)| n == name) {
                    None => problems.push(format!("function `{name}` is not exported")),
                    Some((_, have)) if !same_type(&want, have) => problems.push(format!(
                        "function `{name}`: type mismatch: imported as `{}`, exported as `{}`",
                        crate::convention::component::signature(&want),
                        crate::convention::component::signature(have)
                    )),
                    Some(_) => {
                        let index = provider
                            .get_export_index(None, export.as_str())
                            .and_then(|i| provider.get_export_index(Some(&i), name))
                            .ok_or_else(|| {
                                Error::internal(format!("export `{export}#{name}` has no index"))
                            })?;
                        funcs.push((name.to_string(), index));
                    }
                }
            }
            ComponentItem::Resource(_) => problems.push(format!(
                "it passes resource `{name}`, and a resource cannot cross between two \
                 components' stores"
            )),
            ComponentItem::Type(_) => {}
            _ => problems.push(format!("`{name}` is not a function")),
        }
    }
    if !problems.is_empty() {
        return Err(link_error(problems.join("; ")));
    }
    Ok(Provided {
        import: import.clone(),
        funcs,
        slot,
        provider: provider_name.clone(),
        start,
    })
}

/// The functions of an exported interface.
fn funcs_of(inst: &ComponentInstance, engine: &wasmtime::Engine) -> Vec<(String, ComponentFunc)> {
    inst.exports(engine)
        .filter_map(|(n, i)| match i.ty {
            ComponentItem::ComponentFunc(f) => Some((n.to_string(), f)),
            _ => None,
        })
        .collect()
}

/// Whether two functions take and return the same types (wasmtime's
/// structural equality of component types; parameter names aside).
fn same_type(a: &ComponentFunc, b: &ComponentFunc) -> bool {
    a.async_() == b.async_()
        && a.params().len() == b.params().len()
        && a.params().zip(b.params()).all(|((_, x), (_, y))| x == y)
        && a.results().len() == b.results().len()
        && a.results().zip(b.results()).all(|(x, y)| x == y)
}

/// What a function passes that cannot cross stores, if anything.
fn unsupported(f: &ComponentFunc) -> Option<&'static str> {
    if f.async_() {
        return Some("values asynchronously (an async function)");
    }
    f.params()
        .map(|(_, t)| t)
        .chain(f.results())
        .find_map(|t| unsupported_type(&t))
}

fn unsupported_type(t: &Type) -> Option<&'static str> {
    match t {
        Type::Own(_) | Type::Borrow(_) => {
            Some("a resource, which cannot cross between two components' stores")
        }
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            Some("a future, stream or error context, which cannot cross between stores")
        }
        Type::List(l) => unsupported_type(&l.ty()),
        Type::Option(o) => unsupported_type(&o.ty()),
        Type::Result(r) => r
            .ok()
            .and_then(|t| unsupported_type(&t))
            .or_else(|| r.err().and_then(|t| unsupported_type(&t))),
        Type::Tuple(t) => t.types().find_map(|t| unsupported_type(&t)),
        Type::Record(r) => r.fields().find_map(|f| unsupported_type(&f.ty)),
        Type::Variant(v) => v
            .cases()
            .find_map(|c| c.ty.as_ref().and_then(unsupported_type)),
        _ => None,
    }
}

/// Defines every provided interface in the consumer's `linker` (a copy of
/// the grant shape's), for stores run by `exec`.
pub(crate) fn define(
    linker: &mut Linker<HostState>,
    provided: &[Provided],
    exec: Exec,
) -> Result<()> {
    let failed = |e: wasmtime::Error| Error::Link {
        missing: Vec::new(),
        detail: Some(format!("{e:#}")),
    };
    for p in provided {
        let mut instance = linker.instance(&p.import).map_err(failed)?;
        for (name, index) in &p.funcs {
            let target = Arc::new(Target {
                provided: p.clone(),
                index: *index,
                function: format!("{}#{name}", p.import),
            });
            match exec {
                Exec::Sync => instance.func_new(name, move |mut store, _, params, results| {
                    run_sync(std::pin::pin!(forward(
                        store.data_mut(),
                        &target,
                        params,
                        results,
                        Exec::Sync
                    )))
                }),
                Exec::Async => {
                    instance.func_new_async(name, move |mut store, _, params, results| {
                        let target = target.clone();
                        Box::new(async move {
                            forward(store.data_mut(), &target, params, results, Exec::Async).await
                        })
                    })
                }
            }
            .map_err(failed)?;
        }
    }
    Ok(())
}

/// One provided function.
struct Target {
    provided: Provided,
    index: ComponentExportIndex,
    /// `interface#function`, for messages.
    function: String,
}

/// The provider instances of one consumer store, by slot, made on first
/// use (kept in `HostState::links`).
#[derive(Default)]
struct Providers {
    live: Vec<Option<Live>>,
}

/// A provider's sandbox and instance.
struct Live {
    sb: Sandbox,
    instance: wasmtime::component::Instance,
}

/// Calls the provider's function with the consumer's arguments, in the
/// provider's sandbox (instantiated on first use). A failure of the
/// provider stops the consumer with the provider's error.
async fn forward(
    state: &mut HostState,
    target: &Target,
    params: &[Val],
    results: &mut [Val],
    exec: Exec,
) -> wasmtime::Result<()> {
    let (stdout, stderr) = state.link_stdio;
    let cap = state.deadline;
    let providers = state
        .links
        .get_or_insert_with(|| Box::new(Providers::default()) as Box<dyn Any + Send>)
        .downcast_mut::<Providers>()
        .ok_or_else(|| {
            abort(Error::internal(
                "the store's linked providers are of another type",
            ))
        })?;
    let slot = target.provided.slot;
    if providers.live.len() <= slot {
        providers.live.resize_with(slot + 1, || None);
    }
    let live = match &mut providers.live[slot] {
        Some(live) => live,
        empty => {
            let (mut sb, pre) = (target.provided.start)(exec, stdout, stderr).map_err(abort)?;
            let instance = match sb.instantiate(&pre, None).await.map_err(abort)? {
                Handle::Component(i) => i,
                Handle::Core(_) => {
                    return Err(abort(Error::internal(
                        "a provider instantiated as a core module",
                    )));
                }
            };
            empty.insert(Live { sb, instance })
        }
    };
    let func = live
        .instance
        .get_func(&mut live.sb.store, target.index)
        .ok_or_else(|| {
            abort(Error::internal(format!(
                "function `{}` of {} is gone",
                target.function, target.provided.provider
            )))
        })?;
    // Each call into the provider gets its fuel and timeout afresh, and
    // ends by the consumer's deadline at the latest.
    live.sb.begin_within(cap).map_err(abort)?;
    match live.sb.call_component(func, params, results).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!(
                provider = %target.provided.provider,
                function = %target.function,
                "a linked component failed: {e}"
            );
            // A wasm instance that failed is not entered again.
            providers_drop(state, slot);
            Err(abort(e))
        }
    }
}

/// Forgets a provider instance (the next call makes a fresh one).
fn providers_drop(state: &mut HostState, slot: usize) {
    if let Some(p) = state
        .links
        .as_mut()
        .and_then(|l| l.downcast_mut::<Providers>())
        && let Some(live) = p.live.get_mut(slot)
    {
        *live = None;
    }
}
