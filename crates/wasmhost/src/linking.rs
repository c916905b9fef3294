//! Linking: the core and component linkers of one grant shape, composed
//! from every capability's and every calling convention's host code, and
//! pre-linking a module against them (reporting every missing import at
//! once).
//!
//! This is the one place that knows every piece of host code: the
//! capabilities (`crate::capabilities`) and the calling conventions'
//! host code (`crate::kernel`, through [`crate::convention::TABLE`]) link
//! themselves into a `Linker<HostState>` through their accessors, and
//! registered host-function sets are added by name.

use std::collections::{HashMap, HashSet};

use crate::capabilities::{GrantKey, kv, log, wasi};
use crate::error::{Error, MissingImport, Result};
use crate::exec::Exec;
use crate::host_functions::HostFunctions;
use crate::sandbox::LinkedPre;
use crate::state::HostState;

/// The linkers of one grant shape and [`Exec`] flavour, built once per
/// runtime, shape and flavour.
pub(crate) struct Linkers {
    pub(crate) core: wasmtime::Linker<HostState>,
    pub(crate) component: wasmtime::component::Linker<HostState>,
    /// Every `(module, name)` the core linker defines, to report all missing imports at once.
    pub(crate) core_names: HashSet<(String, String)>,
    pub(crate) key: GrantKey,
}

impl Linkers {
    pub(crate) fn build(
        engine: &wasmtime::Engine,
        key: GrantKey,
        exec: Exec,
        registered: &HashMap<String, HostFunctions>,
    ) -> Result<Self> {
        let mut core = wasmtime::Linker::new(engine);
        let mut component = wasmtime::component::Linker::new(engine);
        if key.wasi() {
            wasi::add_to_linkers(&mut core, &mut component, &key, exec)?;
        }
        if key.log() {
            log::add_to_linker(&mut core)?;
        }
        if key.kv() {
            kv::add_to_linkers(&mut core, &mut component)?;
        }
        // The host side of the calling conventions: harmless without a
        // guest that uses them, and needed by every guest that does.
        for convention in crate::convention::TABLE {
            convention.link(&mut core, &key)?;
        }
        for name in &key.host {
            let set = registered.get(name).ok_or_else(|| {
                crate::Error::not_found(format!(
                    "host functions `{name}`: they were granted but never registered (Runtime::add_host_functions)"
                ))
            })?;
            set.install(&mut core, &mut component, exec)?;
        }
        let mut store = wasmtime::Store::new(engine, HostState::empty());
        let core_names = core
            .iter(&mut store)
            .map(|(module, name, _)| (module.to_string(), name.to_string()))
            .collect();
        Ok(Linkers {
            core,
            component,
            core_names,
            key,
        })
    }
}

impl std::fmt::Debug for Linkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linkers")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Linkers {
    /// Pre-links a core module, reporting every missing import at once.
    pub(crate) fn link_core(
        &self,
        module: &wasmtime::Module,
    ) -> Result<wasmtime::InstancePre<HostState>> {
        if self.key.trap_unknown() {
            let mut linker = self.core.clone();
            return linker
                .define_unknown_imports_as_traps(module)
                .and_then(|()| linker.instantiate_pre(module))
                .map_err(link_failed);
        }
        let missing: Vec<MissingImport> = module
            .imports()
            .filter(|i| {
                !self
                    .core_names
                    .contains(&(i.module().to_string(), i.name().to_string()))
            })
            .map(|i| MissingImport {
                module: i.module().to_string(),
                name: i.name().to_string(),
                kind: kind_name(&i.ty()).to_string(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::Link {
                missing,
                detail: None,
            });
        }
        self.core.instantiate_pre(module).map_err(link_failed)
    }

    /// Pre-links a component; on failure lists every import nothing granted provides.
    pub(crate) fn link_component(
        &self,
        component: &wasmtime::component::Component,
    ) -> Result<wasmtime::component::InstancePre<HostState>> {
        if self.key.trap_unknown() {
            let mut linker = self.component.clone();
            return linker
                .define_unknown_imports_as_traps(component)
                .and_then(|()| linker.instantiate_pre(component))
                .map_err(link_failed);
        }
        self.component.instantiate_pre(component).map_err(|e| {
            let provided: &[&str] = if self.key.wasi() {
                &WASI_P2_PACKAGES
            } else {
                &[]
            };
            Error::unlinked_component(component, provided, e)
        })
    }
}

impl Linkers {
    /// Pre-links a component some of whose imported interfaces other
    /// components provide (see `compose.rs`): the grant shape's linker,
    /// with the provided interfaces defined over it. An import that
    /// neither provides is `link_error`, naming it.
    pub(crate) fn link_component_with(
        &self,
        component: &wasmtime::component::Component,
        provided: &[crate::compose::Provided],
        exec: Exec,
    ) -> Result<wasmtime::component::InstancePre<HostState>> {
        let mut linker = self.component.clone();
        // A provided interface takes the place of the host's of that name.
        linker.allow_shadowing(true);
        crate::compose::define(&mut linker, provided, exec)?;
        if self.key.trap_unknown() {
            return linker
                .define_unknown_imports_as_traps(component)
                .and_then(|()| linker.instantiate_pre(component))
                .map_err(link_failed);
        }
        linker.instantiate_pre(component).map_err(|e| {
            let mut names: Vec<&str> = provided.iter().map(|p| p.import.as_str()).collect();
            if self.key.wasi() {
                names.extend(WASI_P2_PACKAGES);
            }
            Error::unlinked_component(component, &names, e)
        })
    }

    /// Checks that `main` and `deps` (name, code) link against
    /// this grant shape and each other, and orders `deps` so that each
    /// comes after those it imports from. Every import that nothing
    /// provides is reported at once (`link_error`); modules that import
    /// each other in a cycle are `bad_input`.
    pub(crate) fn link_linked(
        &self,
        main: &wasmtime::Module,
        deps: &[(String, wasmtime::Module)],
    ) -> Result<LinkedPre> {
        let names: HashSet<&str> = deps.iter().map(|(n, ..)| n.as_str()).collect();
        // Topological order: a module goes once every module it imports from is placed.
        let mut placed: Vec<(String, wasmtime::Module)> = Vec::new();
        let mut pending: Vec<&(String, wasmtime::Module)> = deps.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|dep| {
                let ready = dep.1.imports().all(|i| {
                    !names.contains(i.module()) || placed.iter().any(|(n, ..)| n == i.module())
                });
                if ready {
                    placed.push((*dep).clone());
                }
                !ready
            });
            if pending.len() == before {
                let cycle: Vec<&str> = pending.iter().map(|(n, ..)| n.as_str()).collect();
                return Err(Error::bad_input(format!(
                    "linked modules import each other in a cycle: {}",
                    cycle.join(", ")
                )));
            }
        }
        if !self.key.trap_unknown() {
            // What each module's imports may reach: the host, and the
            // exports of the modules linked before it (all of them, for main).
            let mut missing = Vec::new();
            let mut defined: HashSet<(String, String)> = HashSet::new();
            let modules = placed
                .iter()
                .map(|(n, m)| (Some(n.as_str()), m))
                .chain(std::iter::once((None, main)));
            for (name, module) in modules {
                missing.extend(
                    module
                        .imports()
                        .filter(|i| {
                            let key = (i.module().to_string(), i.name().to_string());
                            !defined.contains(&key) && !self.core_names.contains(&key)
                        })
                        .map(|i| MissingImport {
                            module: i.module().to_string(),
                            name: i.name().to_string(),
                            kind: kind_name(&i.ty()).to_string(),
                        }),
                );
                if let Some(name) = name {
                    defined.extend(
                        module
                            .exports()
                            .map(|e| (name.to_string(), e.name().to_string())),
                    );
                }
            }
            if !missing.is_empty() {
                return Err(Error::Link {
                    missing,
                    detail: None,
                });
            }
        }
        let mut linker = self.core.clone();
        // A linked module's exports take the place of host functions of
        // the same names.
        linker.allow_shadowing(true);
        Ok(LinkedPre {
            linker,
            deps: placed,
            main: main.clone(),
            trap_unknown: self.key.trap_unknown(),
        })
    }
}

/// A linking failure wasmtime explains itself (a type mismatch, say).
fn link_failed(e: wasmtime::Error) -> Error {
    Error::Link {
        missing: Vec::new(),
        detail: Some(format!("{e:#}")),
    }
}

fn kind_name(ty: &wasmtime::ExternType) -> &'static str {
    match ty {
        wasmtime::ExternType::Func(_) => "func",
        wasmtime::ExternType::Memory(_) => "memory",
        wasmtime::ExternType::Table(_) => "table",
        wasmtime::ExternType::Global(_) => "global",
        wasmtime::ExternType::Tag(_) => "tag",
    }
}

/// WASI preview-2 packages the component linker provides when WASI is granted.
const WASI_P2_PACKAGES: [&str; 6] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];
