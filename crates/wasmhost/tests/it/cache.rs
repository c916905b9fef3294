//! The compiled-module caches: memory (LRU, bytes, TTL) and disk (atomic,
//! verified by checksum or by a settled stamp, keyed by engine
//! fingerprint), and the path index of module files.

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
    // Written less than 2 s ago: its stamp cannot vouch for it yet, so its
    // checksum was computed in full.
    assert_eq!(s.disk_verified, 1);
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

// ---------------------------------------------------------------------------
// Artifact stamps and the path index. A stamp (device, inode, size, mtime,
// ctime) is trusted only when taken at least 2 s after the file last changed,
// so these tests wait that long where they need a trusted stamp.

/// Longer than the runtime's racy-timestamp margin (2 s).
const SETTLE: Duration = Duration::from_millis(2100);

/// The record beside an artifact.
fn meta_of(artifact: &std::path::Path) -> std::path::PathBuf {
    artifact.with_extension("meta")
}

/// A state directory whose artifact of `module_n(n)` has a trusted stamp:
/// compiled, then (once old enough) loaded with a full check that recorded
/// its stamp, then loaded by stamp alone. Returns the state dir and the
/// artifact's path.
fn settled_artifact(n: i32) -> (tempfile::TempDir, std::path::PathBuf) {
    let state = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig::default().state_dir(state.path());
    let rt = Runtime::new(config()).unwrap();
    rt.load(&module_n(n)).unwrap();
    let path = only_artifact(&rt);
    assert!(meta_of(&path).exists());
    drop(rt);
    std::thread::sleep(SETTLE);
    for verified in [1, 0] {
        let rt = Runtime::new(config()).unwrap();
        let m = rt.load(&module_n(n)).unwrap();
        let s = rt.cache_stats();
        assert_eq!(
            (s.disk_hits, s.disk_verified, s.compiles, s.disk_rejected),
            (1, verified, 0, 0),
            "{s:?}"
        );
        assert_eq!(m.invoke("n", &[]).unwrap().value, [Value::I32(n)]);
    }
    (state, path)
}

/// Loads `module_n(n)` from `state` in a fresh runtime and checks that the
/// artifact was refused, the module recompiled and the artifact rewritten.
fn assert_refused_and_recompiled(state: &std::path::Path, n: i32, artifact_len: u64, what: &str) {
    let rt = Runtime::new(RuntimeConfig::default().state_dir(state)).unwrap();
    let m = rt.load(&module_n(n)).unwrap();
    let s = rt.cache_stats();
    assert_eq!(
        (s.disk_rejected, s.disk_hits, s.compiles, s.disk_writes),
        (1, 0, 1, 1),
        "{what}: {s:?}"
    );
    assert_eq!(m.invoke("n", &[]).unwrap().value, [Value::I32(n)], "{what}");
    let path = only_artifact(&rt);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        artifact_len,
        "{what}"
    );
}

#[test]
fn a_flipped_byte_in_a_trusted_artifact_is_refused() {
    use std::io::{Seek, SeekFrom, Write};
    let (state, path) = settled_artifact(11);
    let before = std::fs::metadata(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    // In place: same inode, same size, and the mtime put back, so only the
    // ctime tells that the file changed.
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(mid as u64)).unwrap();
    f.write_all(&bytes[mid..=mid]).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    drop(f);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before.modified().unwrap()
    );
    assert_refused_and_recompiled(state.path(), 11, before.len(), "flipped byte");
}

#[test]
fn a_truncated_trusted_artifact_is_refused() {
    let (state, path) = settled_artifact(12);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    assert_refused_and_recompiled(state.path(), 12, len, "truncated");
}

#[test]
fn a_foreign_file_in_place_of_a_trusted_artifact_is_refused() {
    let (state, path) = settled_artifact(13);
    let len = std::fs::metadata(&path).unwrap().len();
    // Random bytes of the same length, renamed over it: the record beside it
    // is intact but names another file.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &noise).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_refused_and_recompiled(state.path(), 13, len, "foreign file");
}

#[test]
fn a_foreign_file_named_like_an_artifact_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig::default().state_dir(state.path());
    let rt = Runtime::new(config()).unwrap();
    // The digest of module 14, from a runtime without a disk cache.
    let digest = crate::runtime().load(&module_n(14)).unwrap().digest();
    let path = rt
        .disk_cache_dir()
        .unwrap()
        .join(format!("{}.cwasm", digest.hex()));
    std::fs::write(&path, b"\x7fELF\x02\x01\x01 random bytes that are not ours").unwrap();
    drop(rt);
    let rt = Runtime::new(config()).unwrap();
    let m = rt.load(&module_n(14)).unwrap();
    let s = rt.cache_stats();
    assert_eq!(
        (s.disk_rejected, s.disk_hits, s.compiles),
        (1, 0, 1),
        "{s:?}"
    );
    assert_eq!(m.invoke("n", &[]).unwrap().value, [Value::I32(14)]);
    assert!(meta_of(&path).exists(), "rewritten with its record");
}

#[test]
fn an_artifact_of_another_engine_configuration_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let fueled = Runtime::new(
        RuntimeConfig::default()
            .state_dir(state.path())
            .fuel_metering(true),
    )
    .unwrap();
    fueled.load(&module_n(15)).unwrap();
    let foreign = only_artifact(&fueled);
    drop(fueled);
    // Copied, record and all, into the plain engine's directory: the CRC
    // matches, so it is wasmtime's header check that refuses it.
    let plain = Runtime::new(RuntimeConfig::default().state_dir(state.path())).unwrap();
    let dir = plain.disk_cache_dir().unwrap().to_path_buf();
    drop(plain);
    let copy = dir.join(foreign.file_name().unwrap());
    std::fs::copy(&foreign, &copy).unwrap();
    std::fs::copy(meta_of(&foreign), meta_of(&copy)).unwrap();
    let rt = Runtime::new(RuntimeConfig::default().state_dir(state.path())).unwrap();
    let m = rt.load(&module_n(15)).unwrap();
    let s = rt.cache_stats();
    assert_eq!(
        (s.disk_rejected, s.disk_hits, s.compiles),
        (1, 0, 1),
        "{s:?}"
    );
    assert_eq!(m.invoke("n", &[]).unwrap().value, [Value::I32(15)]);
    // The copy was removed; the plain engine's own artifact replaced it.
    assert_ne!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&foreign).unwrap()
    );
}

#[test]
fn an_artifact_without_its_record_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig::default().state_dir(state.path());
    let rt = Runtime::new(config()).unwrap();
    rt.load(&module_n(16)).unwrap();
    let path = only_artifact(&rt);
    let len = std::fs::metadata(&path).unwrap().len();
    drop(rt);
    std::fs::remove_file(meta_of(&path)).unwrap();
    assert_refused_and_recompiled(state.path(), 16, len, "no record");
    // A record that is not JSON is no better.
    std::fs::write(meta_of(&path), b"{ not json").unwrap();
    assert_refused_and_recompiled(state.path(), 16, len, "garbled record");
}

#[test]
fn components_are_loaded_from_disk_too() {
    let state = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig::default().state_dir(state.path());
    let component = || Source::Bytes(b"(component)".to_vec());
    let rt = Runtime::new(config()).unwrap();
    rt.load(&component()).unwrap();
    assert_eq!(rt.cache_stats().disk_writes, 1);
    drop(rt);
    let rt = Runtime::new(config()).unwrap();
    rt.load(&component()).unwrap();
    let s = rt.cache_stats();
    assert_eq!((s.disk_hits, s.compiles), (1, 0), "{s:?}");
    assert_eq!(rt.cached_modules()[0].kind, "component");
}

/// A module file in its own directory, returning `value` from `n`. The
/// `i32.const` is padded so that every value gives a file of the same size.
fn module_file(dir: &std::path::Path, value: i32) -> std::path::PathBuf {
    let path = dir.join("m.wat");
    std::fs::write(&path, module_text(value)).unwrap();
    path
}

fn module_text(value: i32) -> String {
    format!("(module (func (export \"n\") (result i32) i32.const {value:>6}))")
}

#[test]
fn a_file_loaded_again_unchanged_is_not_read_again() {
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = module_file(files.path(), 21);
    std::thread::sleep(SETTLE);
    let config = || RuntimeConfig::default().state_dir(state.path());

    let rt = Runtime::new(config()).unwrap();
    let first = rt.load(&Source::File(path.clone())).unwrap();
    let s = rt.cache_stats();
    assert_eq!((s.path_index_hits, s.compiles), (0, 1), "{s:?}");
    // Within the same runtime: by path, then from memory.
    let again = rt.load(&Source::File(path.clone())).unwrap();
    let s = rt.cache_stats();
    assert_eq!((s.path_index_hits, s.hits, s.compiles), (1, 1, 1), "{s:?}");
    assert_eq!(again.digest(), first.digest());
    drop((first, again, rt));
    assert!(state.path().join("cache/paths.json").exists());

    // A fresh runtime: by path (from the index on disk), then from the disk
    // cache; the file is neither read nor hashed.
    let rt = Runtime::new(config()).unwrap();
    let m = rt.load(&Source::File(path.clone())).unwrap();
    let s = rt.cache_stats();
    assert_eq!(
        (s.path_index_hits, s.disk_hits, s.misses, s.compiles),
        (1, 1, 1, 0),
        "{s:?}"
    );
    assert_eq!(m.invoke("n", &[]).unwrap().value, [Value::I32(21)]);
    // Another spelling of the same path is the same file.
    let dotted = files.path().join(".").join("m.wat");
    rt.load(&Source::File(dotted)).unwrap();
    assert_eq!(rt.cache_stats().path_index_hits, 2);
}

#[test]
fn without_a_state_dir_the_path_index_lives_in_memory() {
    let files = tempfile::tempdir().unwrap();
    let path = module_file(files.path(), 22);
    std::thread::sleep(SETTLE);
    let rt = crate::runtime();
    rt.load(&Source::File(path.clone())).unwrap();
    let m = rt.load(&Source::File(path)).unwrap();
    let s = rt.cache_stats();
    assert_eq!((s.path_index_hits, s.hits, s.compiles), (1, 1, 1), "{s:?}");
    assert_eq!(m.invoke("n", &[]).unwrap().value, [Value::I32(22)]);
}

#[test]
fn a_file_changed_in_place_with_the_same_size_and_mtime_is_hashed_again() {
    use std::io::Write;
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = module_file(files.path(), 31);
    std::thread::sleep(SETTLE);
    let config = || RuntimeConfig::default().state_dir(state.path());
    let rt = Runtime::new(config()).unwrap();
    let old = rt.load(&Source::File(path.clone())).unwrap();
    assert_eq!(rt.cache_stats().path_index_hits, 0);

    let before = std::fs::metadata(&path).unwrap();
    // Same size, same inode, mtime put back: only the ctime differs.
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(module_text(32).as_bytes()).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    drop(f);
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());

    for rt in [rt, Runtime::new(config()).unwrap()] {
        let new = rt.load(&Source::File(path.clone())).unwrap();
        assert_ne!(new.digest(), old.digest());
        assert_eq!(new.invoke("n", &[]).unwrap().value, [Value::I32(32)]);
        assert_eq!(rt.cache_stats().path_index_hits, 0);
    }
}

#[test]
fn a_freshly_written_file_is_read_again() {
    // Changed less than 2 s ago: a later change could keep the same stamp, so
    // the index does not vouch for it (the racy-timestamp rule).
    let files = tempfile::tempdir().unwrap();
    let path = module_file(files.path(), 41);
    let rt = crate::runtime();
    rt.load(&Source::File(path.clone())).unwrap();
    rt.load(&Source::File(path)).unwrap();
    let s = rt.cache_stats();
    assert_eq!((s.path_index_hits, s.hits, s.compiles), (0, 1, 1), "{s:?}");
}

#[test]
fn a_corrupt_path_index_is_ignored() {
    let state = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = module_file(files.path(), 51);
    std::thread::sleep(SETTLE);
    let config = || RuntimeConfig::default().state_dir(state.path());
    Runtime::new(config())
        .unwrap()
        .load(&Source::File(path.clone()))
        .unwrap();
    let index = state.path().join("cache/paths.json");
    std::fs::write(&index, b"\0\0 not an index").unwrap();
    let rt = Runtime::new(config()).unwrap();
    let m = rt.load(&Source::File(path.clone())).unwrap();
    assert_eq!(m.invoke("n", &[]).unwrap().value, [Value::I32(51)]);
    assert_eq!(rt.cache_stats().path_index_hits, 0);
    // The load rewrote the index.
    let rt = Runtime::new(config()).unwrap();
    rt.load(&Source::File(path)).unwrap();
    assert_eq!(rt.cache_stats().path_index_hits, 1);
}
