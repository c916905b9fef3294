//! The compiled-module caches: memory (LRU, bytes, TTL) and disk (atomic,
//! verified, keyed by engine fingerprint).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use wasmhost::{CacheConfig, Runtime, RuntimeConfig, Source, Value};

use crate::wat;

/// A distinct small module per `n`.
fn module_n(n: i32) -> Source {
    Source::Bytes(format!("(module (func (export \"n\") (result i32) i32.const {n}))").into_bytes())
}

fn only_artifact(rt: &Runtime) -> std::path::PathBuf {
    let dir = rt.disk_cache_dir().expect("disk cache");
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn memory_cache_hits_on_the_same_bytes() {
    let rt = crate::runtime();
    let a = rt.load(&wat("numeric")).unwrap();
    let b = rt.load(&wat("numeric")).unwrap();
    assert_eq!(a.digest(), b.digest());
    let s = rt.cache_stats();
    assert_eq!((s.compiles, s.hits, s.misses, s.entries), (1, 1, 1, 1));
    assert!(s.bytes > 0);
    assert_eq!(rt.cached_modules()[0].loads, 2);
}

#[test]
fn least_recently_used_is_evicted_past_max_modules() {
    let cfg = RuntimeConfig::default().cache(CacheConfig::default().max_modules(2));
    let rt = Runtime::new(cfg).unwrap();
    let first = rt.load(&module_n(1)).unwrap().digest();
    rt.load(&module_n(2)).unwrap();
    rt.load(&module_n(1)).unwrap(); // 1 is now the most recently used
    rt.load(&module_n(3)).unwrap(); // evicts 2
    let s = rt.cache_stats();
    assert_eq!((s.entries, s.evictions), (2, 1));
    let cached: Vec<_> = rt.cached_modules().into_iter().map(|m| m.digest).collect();
    assert!(cached.contains(&first));
    rt.load(&module_n(2)).unwrap();
    assert_eq!(rt.cache_stats().compiles, 4, "2 had to be compiled again");
}

#[test]
fn byte_bound_evicts() {
    let rt =
        Runtime::new(RuntimeConfig::default().cache(CacheConfig::default().max_bytes(1))).unwrap();
    for n in 0..5 {
        rt.load(&module_n(n)).unwrap();
    }
    // The newest entry always stays, even past the byte bound.
    let s = rt.cache_stats();
    assert_eq!((s.entries, s.evictions), (1, 4));
}

#[test]
fn idle_entries_expire_after_the_ttl() {
    let rt = Runtime::new(
        RuntimeConfig::default().cache(CacheConfig::default().ttl(Some(Duration::from_millis(50)))),
    )
    .unwrap();
    rt.load(&module_n(1)).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    rt.load(&module_n(1)).unwrap();
    let s = rt.cache_stats();
    assert_eq!((s.compiles, s.evictions, s.hits), (2, 1, 0));
}

#[test]
fn loaded_modules_outlive_eviction() {
    let rt = Runtime::new(RuntimeConfig::default().cache(CacheConfig::default().max_modules(1)))
        .unwrap();
    let one = rt.load(&module_n(1)).unwrap();
    rt.load(&module_n(2)).unwrap();
    rt.clear_cache().unwrap();
    assert_eq!(one.invoke("n", &[]).unwrap().value, [Value::I32(1)]);
}

#[test]
fn concurrent_loads_of_the_same_module_compile_once() {
    let rt = crate::runtime();
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (rt, barrier) = (rt.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                rt.load(&wat("numeric")).unwrap().digest()
            })
        })
        .collect();
    let digests: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(rt.cache_stats().compiles, 1);
}

#[test]
fn disk_cache_survives_a_new_runtime() {
    let state = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig::default().state_dir(state.path())).unwrap();
    rt.load(&wat("numeric")).unwrap();
    assert_eq!(rt.cache_stats().disk_writes, 1);
    drop(rt);

    let rt = Runtime::new(RuntimeConfig::default().state_dir(state.path())).unwrap();
    let m = rt.load(&wat("numeric")).unwrap();
    let s = rt.cache_stats();
    assert_eq!((s.disk_hits, s.compiles), (1, 0));
    assert_eq!(m.invoke("answer", &[]).unwrap().value, [Value::I32(42)]);
}

#[test]
fn corrupt_or_truncated_artifacts_are_recompiled_never_loaded() {
    let state = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig::default().state_dir(state.path());
    let rt = Runtime::new(config()).unwrap();
    rt.load(&wat("numeric")).unwrap();
    let path = only_artifact(&rt);
    drop(rt);

    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("bit flip", flipped),
        ("truncated", good[..good.len() / 3].to_vec()),
        ("empty", Vec::new()),
        ("foreign", b"\x7fELF this is not ours at all".to_vec()),
    ];
    for (what, bytes) in damages {
        std::fs::write(&path, &bytes).unwrap();
        let rt = Runtime::new(config()).unwrap();
        let m = rt.load(&wat("numeric")).unwrap();
        let s = rt.cache_stats();
        assert_eq!(
            (s.disk_rejected, s.disk_hits, s.compiles),
            (1, 0, 1),
            "{what}"
        );
        assert_eq!(
            m.invoke("answer", &[]).unwrap().value,
            [Value::I32(42)],
            "{what}"
        );
        // The artifact was rewritten whole.
        assert_eq!(std::fs::read(&path).unwrap().len(), good.len(), "{what}");
    }
}

#[test]
fn engines_with_other_settings_use_other_artifacts() {
    let state = tempfile::tempdir().unwrap();
    let plain = Runtime::new(RuntimeConfig::default().state_dir(state.path())).unwrap();
    let fueled = Runtime::new(
        RuntimeConfig::default()
            .state_dir(state.path())
            .fuel_metering(true),
    )
    .unwrap();
    assert_ne!(plain.disk_cache_dir(), fueled.disk_cache_dir());
    plain.load(&wat("numeric")).unwrap();
    fueled.load(&wat("numeric")).unwrap();
    assert_eq!(fueled.cache_stats().disk_hits, 0);
    assert_eq!(fueled.cache_stats().compiles, 1);
}

#[test]
fn clear_empties_both_levels() {
    let state = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig::default().state_dir(state.path())).unwrap();
    rt.load(&module_n(1)).unwrap();
    rt.load(&module_n(2)).unwrap();
    assert_eq!(rt.clear_cache().unwrap(), (2, 2));
    assert_eq!(rt.cache_stats().entries, 0);
    rt.load(&module_n(1)).unwrap();
    assert_eq!(rt.cache_stats().compiles, 3);
}

#[test]
fn persisted_stats_add_up_across_runtimes() {
    let state = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let rt = Runtime::new(RuntimeConfig::default().state_dir(state.path())).unwrap();
        let m = rt.load(&wat("divzero")).unwrap();
        m.invoke("div", &[Value::I32(4), Value::I32(2)]).unwrap();
        m.invoke("div", &[Value::I32(4), Value::I32(0)])
            .unwrap_err();
        rt.persist_stats(&[&m]).unwrap();
        // Persisting again adds nothing new.
        rt.persist_stats(&[&m]).unwrap();
        let stats = wasmhost::read_disk_stats(rt.disk_cache_dir().unwrap());
        let s = &stats[&m.digest().hex()];
        let n = round + 1;
        assert_eq!((s.loads, s.calls, s.errors), (n, 2 * n, n), "round {round}");
        assert!(s.compile_time_us > 0 && s.wasm_bytes > 0);
    }
}
