//! Extism manifests read from files, resolved and fetched through
//! [`manifest::load`] and [`manifest::module_bytes`] like every other
//! manifest, beside packets that must still load as packets.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use wasmhost::{Convention, Digest, ErrorCode, Limits};
use wasmhost_store::ModuleStore;
use wasmhost_store::manifest::{
    self, AnyManifest, DigestOf, ExtismManifest, ModuleSource, Resolved,
};

use super::{runtime, wasm};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Writes `json` as `dir/plugin.json` and loads it as an Extism manifest.
fn load_extism(dir: &Path, json: &str) -> wasmhost::Result<ExtismManifest> {
    let path = dir.join("plugin.json");
    std::fs::write(&path, json).unwrap();
    match manifest::load(&path)? {
        AnyManifest::Extism(m) => Ok(*m),
        other => panic!("{json} loaded as {other:?}"),
    }
}

fn fetch(resolved: &Resolved) -> wasmhost::Result<Vec<u8>> {
    runtime().block_on(manifest::module_bytes(resolved, &ModuleStore::memory()))
}

#[test]
fn extism_manifest_with_a_path_and_its_hash_loads_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm(7);
    std::fs::create_dir(dir.path().join("mods")).unwrap();
    std::fs::write(dir.path().join("mods/plugin.wasm"), &module).unwrap();
    let hash = Digest::of(&module).hex();
    let m = load_extism(
        dir.path(),
        &format!(
            r#"{{"wasm": [{{"path": "mods/plugin.wasm", "name": "main", "hash": "{hash}"}}]}}"#
        ),
    )
    .unwrap();
    assert_eq!(
        m.path.as_deref(),
        Some(dir.path().join("plugin.json").as_path())
    );
    let r = m.resolve(&Limits::default());
    assert_eq!(
        r.source,
        ModuleSource::File(dir.path().join("mods/plugin.wasm"))
    );
    assert_eq!(r.convention, Some(Convention::Extism));
    assert_eq!(r.sha256_of, DigestOf::Source);
    assert_eq!(fetch(&r).unwrap(), module);
    // The compiled module is the one named.
    let rt = wasmhost::Runtime::new(wasmhost::RuntimeConfig::default().pool(None)).unwrap();
    let loaded = rt
        .load(&wasmhost::Source::Bytes(fetch(&r).unwrap()))
        .unwrap();
    assert_eq!(
        loaded.invoke("n", &[]).unwrap().value,
        [wasmhost::Value::I32(7)]
    );
}

#[test]
fn extism_manifest_with_base64_data_loads() {
    let dir = tempfile::tempdir().unwrap();
    let module = wasm(3);
    let hash = Digest::of(&module);
    for data in [b64(&module), b64(&module).trim_end_matches('=').to_string()] {
        let m = load_extism(
            dir.path(),
            &format!(r#"{{"wasm": [{{"data": "{data}", "hash": "{hash}"}}]}}"#),
        )
        .unwrap();
        assert_eq!(m.source, ModuleSource::Bytes(module.clone()));
        assert_eq!(fetch(&m.resolve(&Limits::default())).unwrap(), module);
    }
}

#[test]
fn extism_hash_mismatch_is_corrupt_before_anything_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let other = Digest::of(&wasm(2));
    // Bytes that are not even a valid module: a digest mismatch must be
    // reported first, proving they were never validated or compiled.
    let junk = b"\0asm\x01\0\0\0 not a module".to_vec();
    std::fs::write(dir.path().join("plugin.wasm"), &junk).unwrap();
    for json in [
        format!(
            r#"{{"wasm": [{{"path": "plugin.wasm", "hash": "{}"}}]}}"#,
            other.hex()
        ),
        format!(
            r#"{{"wasm": [{{"data": "{}", "hash": "{other}"}}]}}"#,
            b64(&junk)
        ),
    ] {
        let m = load_extism(dir.path(), &json).unwrap();
        let err = fetch(&m.resolve(&Limits::default())).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt, "{json}: {err}");
        let msg = err.to_string();
        for needle in [
            "plugin.json".to_string(),
            "wasm[0]".to_string(),
            other.hex(),
            Digest::of(&junk).hex(),
        ] {
            assert!(msg.contains(&needle), "{msg}\n  does not contain: {needle}");
        }
    }
    // Without a hash the same bytes reach validation, and fail there.
    let m = load_extism(dir.path(), r#"{"wasm": [{"path": "plugin.wasm"}]}"#).unwrap();
    let err = fetch(&m.resolve(&Limits::default())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidModule, "{err}");
}

#[test]
fn extism_hash_covers_the_bytes_as_read() {
    // A WAT file: Extism hashes the file, not the binary it becomes.
    let dir = tempfile::tempdir().unwrap();
    let text = super::wat(5);
    std::fs::write(dir.path().join("plugin.wat"), &text).unwrap();
    let of_text = Digest::of(text.as_bytes()).hex();
    let m = load_extism(
        dir.path(),
        &format!(r#"{{"wasm": [{{"path": "plugin.wat", "hash": "{of_text}"}}]}}"#),
    )
    .unwrap();
    assert_eq!(fetch(&m.resolve(&Limits::default())).unwrap(), wasm(5));
    let of_binary = Digest::of(&wasm(5)).hex();
    let m = load_extism(
        dir.path(),
        &format!(r#"{{"wasm": [{{"path": "plugin.wat", "hash": "{of_binary}"}}]}}"#),
    )
    .unwrap();
    let err = fetch(&m.resolve(&Limits::default())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt);
}

#[test]
fn extism_missing_module_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let m = load_extism(dir.path(), r#"{"wasm": [{"path": "absent.wasm"}]}"#).unwrap();
    let err = fetch(&m.resolve(&Limits::default())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    assert!(err.to_string().contains("absent.wasm"), "{err}");
}

#[test]
fn extism_paths_are_read_as_extism_reads_them() {
    // Extism opens a path as given: absolute, or relative (`..` included).
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(dir.path().join("x.wasm"), wasm(1)).unwrap();
    let absolute = dir.path().join("x.wasm");
    std::fs::create_dir(inner.join("a")).unwrap();
    for path in [
        "../x.wasm".to_string(),
        "a/../../x.wasm".to_string(),
        absolute.display().to_string(),
    ] {
        let json = serde_json::json!({ "wasm": [{ "path": path }] }).to_string();
        let m = load_extism(&inner, &json).unwrap();
        assert_eq!(
            fetch(&m.resolve(&Limits::default())).unwrap(),
            wasm(1),
            "{json}"
        );
    }
    let json = r#"{"wasm": [{"path": "p.wasm"}], "allowed_paths": {"ro:../..": "/"}}"#;
    let m = load_extism(&inner, json).unwrap();
    assert_eq!(m.allowed_paths[0].host, inner.join("../.."));
    assert!(m.allowed_paths[0].read_only);

    // A relative path missing from the manifest's directory is looked for
    // in the current directory (the crate's, for this test), as Extism
    // looks for it, when the manifest is a file; text is never looked up.
    let m = load_extism(&inner, r#"{"wasm": [{"path": "Cargo.toml"}]}"#).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(m.source, ModuleSource::File(cwd.join("Cargo.toml")));
    let m = ExtismManifest::from_json(r#"{"wasm": [{"path": "Cargo.toml"}]}"#, &inner).unwrap();
    assert_eq!(m.source, ModuleSource::File(inner.join("Cargo.toml")));
}

#[test]
fn extism_linked_modules_are_fetched_and_checked_each() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.wasm"), wasm(5)).unwrap();
    let json = format!(
        r#"{{"wasm": [{{"path": "lib.wasm", "name": "lib", "hash": "{}"}},
                      {{"data": "{}"}}]}}"#,
        Digest::of(&wasm(5)).hex(),
        b64(&wasm(6))
    );
    let m = load_extism(dir.path(), &json).unwrap();
    let r = m.resolve(&Limits::default());
    let (main, linked) = runtime()
        .block_on(manifest::fetch_modules(
            &r,
            &ModuleStore::memory(),
            &wasmhost_store::fetch::UrlFetcher::none(),
        ))
        .unwrap();
    assert_eq!(main, wasm(6));
    assert_eq!(linked, [("lib".to_string(), wasm(5))]);
    // A linked module's hash is checked like the main one's, and named.
    let json = json.replace(&Digest::of(&wasm(5)).hex(), &"0".repeat(64));
    let m = load_extism(dir.path(), &json).unwrap();
    let err = runtime()
        .block_on(manifest::fetch_modules(
            &m.resolve(&Limits::default()),
            &ModuleStore::memory(),
            &wasmhost_store::fetch::UrlFetcher::none(),
        ))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(err.to_string().contains("wasm[0]"), "{err}");
    // A URL is refused unless its host is allowed (and module_bytes, which
    // has no allow-list, refuses every one).
    let m = load_extism(
        dir.path(),
        r#"{"wasm": [{"url": "http://127.0.0.1:9/p.wasm"}]}"#,
    )
    .unwrap();
    let err = fetch(&m.resolve(&Limits::default())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::CapabilityDenied, "{err}");
}

#[test]
fn extism_bad_sources_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"wasm": [{"path": "a.wasm"}, {"path": "b.wasm", "name": "main"}]}"#,
            "two modules of `wasm` are named `main`",
        ),
        (
            r#"{"wasm": [{"url": "file:///etc/passwd"}]}"#,
            "only http and https",
        ),
        (r#"{"wasm": [{"data": "%%%"}]}"#, "`wasm[0].data`"),
        (
            r#"{"wasm": [{"path": "a.wasm"}], "memory": {"max_pages": "1"}}"#,
            "`memory.max_pages`",
        ),
        (
            r#"{"wasm": [{"path": "a.wasm"}], "timeout_ms": -5}"#,
            "`timeout_ms`",
        ),
        (
            r#"{"wasm": [{"path": "a.wasm"}], "extra": 1}"#,
            "unknown field `extra`",
        ),
        (r#"{"wasm": "#, "not valid JSON"),
    ];
    for (json, needle) in cases {
        let path = dir.path().join("plugin.json");
        std::fs::write(&path, json).unwrap();
        let err = manifest::load(&path).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadInput, "{json}: {err}");
        assert!(err.to_string().contains(needle), "{json}: {err}");
    }
}

#[test]
fn extism_fields_map_onto_limits_and_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    let m = load_extism(
        dir.path(),
        r#"{
          "wasm": [{"path": "plugin.wasm"}],
          "memory": {"max_pages": 4, "max_http_response_bytes": 4096, "max_var_bytes": 512},
          "config": {"greeting": "hello", "lang": "en"},
          "allowed_hosts": ["api.example.com", "*.example.org"],
          "allowed_paths": {"data": "/data", "ro:assets": "/assets"},
          "timeout_ms": 250
        }"#,
    )
    .unwrap();
    let defaults = Limits::default().fuel(Some(99)).max_instances(3);
    let r = m.resolve(&defaults);
    assert_eq!(r.limits.max_memory_bytes, 4 * 65536);
    assert_eq!(r.limits.timeout, Some(Duration::from_millis(250)));
    assert_eq!(
        (r.limits.fuel, r.limits.max_instances),
        (Some(99), 3),
        "what the manifest leaves out keeps the defaults"
    );

    let caps = &r.capabilities;
    assert_eq!(caps.config.len(), 2);
    assert_eq!(
        caps.config.get("greeting").map(String::as_str),
        Some("hello")
    );
    let http = caps.http.as_ref().expect("allowed_hosts grants http");
    assert_eq!(http.allowed_hosts, ["api.example.com", "*.example.org"]);
    assert_eq!(http.max_response_bytes, 4096);
    assert!(http.allows("cdn.example.org") && !http.allows("example.com"));
    let wasi = caps.wasi.as_ref().expect("allowed_paths grants WASI");
    let dirs: Vec<_> = wasi
        .dirs
        .iter()
        .map(|d| (d.host.clone(), d.guest.as_str(), d.read_only))
        .collect();
    assert_eq!(
        dirs,
        [
            (dir.path().join("data"), "/data", false),
            (dir.path().join("assets"), "/assets", true),
        ]
    );
    // WASI as Extism's `wasi: true` gives it: with clocks and random.
    assert!(wasi.args.is_empty() && wasi.env.is_empty() && wasi.clocks && wasi.random);
    assert!(!caps.log && caps.host.is_empty());
    assert_eq!(r.max_var_bytes, Some(512));
    assert_eq!(r.allowed_hosts, ["api.example.com", "*.example.org"]);
    assert!(!r.key_value);

    // Nothing given: nothing granted, defaults unchanged, no WASI.
    let m = load_extism(dir.path(), r#"{"wasm": [{"path": "plugin.wasm"}]}"#).unwrap();
    let r = m.resolve(&defaults);
    assert_eq!(r.capabilities, wasmhost::Capabilities::none());
    assert_eq!(r.limits, defaults);
    assert!(m.wasi().is_none());
}

#[test]
fn json_manifests_are_told_apart_by_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    // A packet still loads as a packet.
    let packet = format!(
        r#"{{"name": "p", "sourceContent": [{{"format": "wasm", "worldVersion": "v1", "contentB64": "{}"}}]}}"#,
        b64(&wasm(4))
    );
    std::fs::write(&path, &packet).unwrap();
    match manifest::load(&path).unwrap() {
        AnyManifest::Packet(p) => assert_eq!(p.single().unwrap().wasm, wasm(4)),
        other => panic!("a packet loaded as {other:?}"),
    }
    // Packet errors are still packet errors.
    std::fs::write(&path, packet.replace("\"v1\"", "\"v2\"")).unwrap();
    let err = manifest::load(&path).unwrap_err();
    assert!(err.to_string().contains("worldVersion"), "{err}");

    for (json, needle) in [
        (r#"{"name": "x"}"#, "neither an Extism manifest"),
        (r#"[]"#, "neither an Extism manifest"),
        (
            r#"{"wasm": [], "sourceContent": []}"#,
            "both `wasm` (Extism manifest) and `sourceContent` (packet)",
        ),
        ("not json", "not valid JSON"),
    ] {
        std::fs::write(&path, json).unwrap();
        let err = manifest::load(&path).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadInput, "{json}");
        assert!(err.to_string().contains(needle), "{json}: {err}");
    }

    // Text given directly (the CLI's -m, the HTTP server) resolves against
    // the directory it is given.
    let m =
        manifest::from_json(r#"{"wasm": [{"path": "p.wasm"}]}"#, Path::new("/plugins")).unwrap();
    let AnyManifest::Extism(m) = m else {
        panic!("not Extism: {m:?}")
    };
    assert_eq!(m.path, None);
    assert_eq!(
        m.source,
        ModuleSource::File(Path::new("/plugins").join("p.wasm"))
    );
    let direct =
        ExtismManifest::from_json(r#"{"wasm": [{"path": "p.wasm"}]}"#, Path::new("/plugins"))
            .unwrap();
    assert_eq!(*m, direct);

    let err = manifest::load(&dir.path().join("absent.json")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
}

#[test]
fn native_manifest_digests_still_cover_the_wasm_binary() {
    // WAT text named by a wasmhost manifest is checked after conversion,
    // a binary before validation; both as before.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.wat"), super::wat(6)).unwrap();
    std::fs::write(dir.path().join("m.wasm"), wasm(6)).unwrap();
    let digest = Digest::of(&wasm(6));
    for file in ["m.wat", "m.wasm"] {
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            format!("[module]\npath = \"{file}\"\nsha256 = \"{digest}\"\n"),
        )
        .unwrap();
        let AnyManifest::Native(m) = manifest::load(&path).unwrap() else {
            panic!("not native")
        };
        let r = m.resolve(dir.path(), &Limits::default()).unwrap();
        assert_eq!(r.sha256_of, DigestOf::Wasm);
        assert_eq!(fetch(&r).unwrap(), wasm(6), "{file}");
    }
    let wrong = Digest::of(b"other");
    std::fs::write(
        dir.path().join("m.toml"),
        format!("[module]\npath = \"m.wasm\"\nsha256 = \"{wrong}\"\n"),
    )
    .unwrap();
    let AnyManifest::Native(m) = manifest::load(&dir.path().join("m.toml")).unwrap() else {
        panic!("not native")
    };
    let err = fetch(&m.resolve(dir.path(), &Limits::default()).unwrap()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt);
    assert!(err.to_string().contains("the manifest's module"), "{err}");
}
