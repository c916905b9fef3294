//! The security review's library checks (issue 15, item 5; SECURITY.md
//! lists them): WASI preopens and symlinks (trailing slashes included),
//! resource exhaustion through WASI host calls, and snapshot bombs.

use std::path::Path;

use wasmhost::{
    CallOptions, Capabilities, Error, ErrorCode, Limits, Module, ModuleKind, Snapshot, Source, Wasi,
};

use crate::{built, runtime};

/// Both builds of `guests/rust/wasi-echo`: preview 1 and preview 2.
fn each(f: impl Fn(Module)) {
    let rt = runtime();
    for (file, kind) in [
        ("wasi-echo.wasm", ModuleKind::Core),
        ("wasi-echo.component.wasm", ModuleKind::Component),
    ] {
        let m = rt.load(&built(file)).expect("load");
        assert_eq!(m.kind(), kind, "{file}");
        f(m);
    }
}

/// Runs wasi-echo with `args` under `wasi` (and `limits`): stdout, or the
/// error.
fn run(m: &Module, wasi: Wasi, limits: Limits, args: &[&str]) -> Result<String, Error> {
    m.clone()
        .with_capabilities(
            Capabilities::none().with_wasi(wasi.arg("wasi-echo").args(args.iter().copied())),
        )
        .with_limits(limits)
        .run(&CallOptions::default())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
}

const SECRET: &str = "top secret 3b7d";

/// `outer/secret.txt`, `outer/private/{secret.txt,a,b}` and the preopened
/// `outer/sandbox` holding `ok.txt` and symlinks, each leading out of it
/// some way, and one leading inside.
fn sandbox_with_links(outer: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::symlink;
    std::fs::write(outer.join("secret.txt"), SECRET).unwrap();
    let private = outer.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::write(private.join("secret.txt"), SECRET).unwrap();
    std::fs::write(private.join("a"), "").unwrap();
    std::fs::write(private.join("b"), "").unwrap();
    let sandbox = outer.join("sandbox");
    std::fs::create_dir(&sandbox).unwrap();
    std::fs::write(sandbox.join("ok.txt"), "fine").unwrap();
    std::fs::create_dir(sandbox.join("sub")).unwrap();
    symlink("/etc", sandbox.join("etc")).unwrap();
    symlink(&private, sandbox.join("abs-dir")).unwrap();
    symlink("../private", sandbox.join("rel-dir")).unwrap();
    symlink("..", sandbox.join("up")).unwrap();
    symlink("../..", sandbox.join("sub/upup")).unwrap();
    symlink(outer.join("secret.txt"), sandbox.join("abs-file")).unwrap();
    symlink("../secret.txt", sandbox.join("rel-file")).unwrap();
    symlink("rel-file", sandbox.join("link-to-link")).unwrap();
    symlink("ok.txt", sandbox.join("inside")).unwrap();
    sandbox
}

/// A refused access: the guest's I/O error (exit 3, or 1 from a
/// component), nothing of the secret on its stdout.
fn assert_refused(result: Result<String, Error>, what: &str) {
    match result {
        Err(Error::Exit { code, stdout, .. }) => {
            assert!(code == 3 || code == 1, "{what}: exit {code}");
            let out = String::from_utf8_lossy(&stdout);
            assert!(
                !out.contains(SECRET) && !out.contains("passwd") && !out.contains("secret.txt"),
                "{what} leaked: {out}"
            );
        }
        Ok(out) => panic!("{what} succeeded: {out:?}"),
        Err(other) => panic!("{what}: {other:?}"),
    }
}

#[test]
fn wasi_symlinks_do_not_lead_out_of_a_preopen() {
    each(|m| {
        let outer = tempfile::tempdir().unwrap();
        let sandbox = sandbox_with_links(outer.path());
        for read_only in [true, false] {
            let wasi = || Wasi::new().dir(&sandbox, "/data", read_only);
            for path in [
                "/data/abs-file",
                "/data/rel-file",
                "/data/link-to-link",
                "/data/abs-file/",
                "/data/rel-file/",
                "/data/etc/passwd",
                "/data/etc/hostname",
                "/data/abs-dir/secret.txt",
                "/data/rel-dir/secret.txt",
                "/data/up/secret.txt",
                "/data/sub/upup/secret.txt",
                "/data/etc/../secret.txt",
                "/data/up/sandbox/ok.txt",
                "/data/../secret.txt",
                "/data/sub/../../secret.txt",
                "/etc/passwd",
                "/secret.txt",
                "../secret.txt",
            ] {
                assert_refused(
                    run(&m, wasi(), Limits::default(), &["read", path]),
                    &format!("read {path}"),
                );
            }
            // Directories, with and without the trailing slash of
            // wasmtime's 2026 advisory (`link/` following the link).
            for path in [
                "/data/etc/",
                "/data/etc",
                "/data/etc/.",
                "/data/etc/..",
                "/data/etc/../..",
                "/data/abs-dir/",
                "/data/rel-dir/",
                "/data/rel-dir/.",
                "/data/up/",
                "/data/up",
                "/data/up/..",
                "/data/sub/upup/",
                "/data/..",
                "/data/../",
                "/",
                "/etc",
            ] {
                assert_refused(
                    run(&m, wasi(), Limits::default(), &["ls", path]),
                    &format!("ls {path}"),
                );
            }
            // Writing through a link that leads out creates nothing there.
            if !read_only {
                for path in [
                    "/data/rel-dir/new.txt",
                    "/data/up/new.txt",
                    "/data/abs-dir/",
                ] {
                    let r = run(&m, wasi(), Limits::default(), &["write", path, "x"]);
                    assert_refused(r, &format!("write {path}"));
                }
                assert!(!outer.path().join("private/new.txt").exists());
                assert!(!outer.path().join("new.txt").exists());
            }
            // Inside, links work and files are read.
            let w = || Wasi::new().dir(&sandbox, "/data", read_only);
            assert_eq!(
                run(&m, w(), Limits::default(), &["read", "/data/inside"]).unwrap(),
                "fine"
            );
            let listing = run(&m, w(), Limits::default(), &["ls", "/data/"]).unwrap();
            assert!(listing.lines().any(|l| l == "ok.txt"), "{listing}");
        }
    });
}

#[test]
fn a_preopen_given_through_a_symlink_keeps_the_guest_inside() {
    // The operator's path may be a link (the host opens what it names);
    // the guest is still confined to that directory.
    each(|m| {
        let outer = tempfile::tempdir().unwrap();
        let sandbox = sandbox_with_links(outer.path());
        let via = outer.path().join("via-link");
        std::os::unix::fs::symlink(&sandbox, &via).unwrap();
        let wasi = || Wasi::new().dir(&via, "/data", true);
        assert_eq!(
            run(&m, wasi(), Limits::default(), &["read", "/data/ok.txt"]).unwrap(),
            "fine"
        );
        for path in [
            "/data/../secret.txt",
            "/data/rel-file",
            "/data/up/secret.txt",
        ] {
            assert_refused(
                run(&m, wasi(), Limits::default(), &["read", path]),
                &format!("read {path}"),
            );
        }
        assert_refused(
            run(&m, wasi(), Limits::default(), &["ls", "/data/up/"]),
            "ls /data/up/",
        );
    });
}

#[test]
fn random_requests_over_the_limit_stop_the_guest() {
    each(|m| {
        let wasi = || Wasi::new().random(true);
        let small = Limits::default().max_random_bytes(4096);
        assert_eq!(
            run(&m, wasi(), small.clone(), &["random-bytes", "4096"]).unwrap(),
            "got 4096\n"
        );
        // Over the limit: refused, though the guest's memory holds it.
        let err = run(&m, wasi(), small, &["random-bytes", "8192"]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Trap, "{err}");
        // The default limit (1 MiB) holds a guest asking for 8 MiB.
        let err = run(&m, wasi(), Limits::default(), &["random-bytes", "8388608"]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Trap, "{err}");
        assert_eq!(
            wasmhost::limits::DEFAULT_MAX_RANDOM_BYTES,
            Limits::default().max_random_bytes
        );
    });
}

#[test]
fn open_resources_are_capped_per_call() {
    each(|m| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let wasi = || Wasi::new().dir(dir.path(), "/d", true);
        // How many files the guest held open at once before the host
        // refused one: the open fails in the guest (which stops and says
        // how many it got), or the guest is stopped with a trap naming the
        // full resource table. Either way the host stays up.
        let opened = |limits: Limits, n: &str| -> Option<usize> {
            match run(&m, wasi(), limits, &["open-many", "/d/f", n]) {
                Ok(out) => Some(out.trim().parse().unwrap()),
                Err(e) => {
                    assert_eq!(e.code(), ErrorCode::Trap, "{e}");
                    assert!(e.to_string().contains("resource table"), "{e}");
                    None
                }
            }
        };
        // Under a cap of 64 resources (stdio and the preopen hold a few).
        if let Some(capped) = opened(Limits::default().max_host_resources(64), "1000") {
            assert!((1..64).contains(&capped), "opened {capped}");
        }
        // Unlimited by us (wasmtime's 1,000,000), all 1000 open.
        let wide = Limits::default().max_host_resources(1_000_000);
        assert_eq!(opened(wide, "1000"), Some(1000));
        // The default cap holds a guest that opens in a loop.
        let n = (wasmhost::limits::DEFAULT_MAX_HOST_RESOURCES + 100).to_string();
        if let Some(by_default) = opened(Limits::default(), &n) {
            assert!(
                by_default < wasmhost::limits::DEFAULT_MAX_HOST_RESOURCES,
                "opened {by_default}"
            );
        }
        // And the module still works afterwards.
        assert_eq!(
            run(&m, wasi(), Limits::default(), &["read", "/d/f"]).unwrap(),
            "x"
        );
    });
}

#[test]
fn bytes_passed_in_one_host_call_are_capped() {
    // wasi-echo's `flood` writes 64 KiB per call: over a 16 KiB cap the
    // host refuses the write (`nomem` on preview 1, a trap on preview 2)
    // before copying it.
    each(|m| {
        let capped = Limits::default().max_hostcall_bytes(16 << 10);
        let err = run(&m, Wasi::new(), capped, &["flood", "1"]).unwrap_err();
        match &err {
            Error::Exit { code, .. } => assert!(*code == 4 || *code == 1, "{err}"),
            other => assert_eq!(other.code(), ErrorCode::Trap, "{err}"),
        }
        let out = run(&m, Wasi::new(), Limits::default(), &["flood", "1"]).unwrap();
        assert_eq!(out.len(), 1 << 20);
    });
}

/// A snapshot of module `digest` with the given memories (index, size,
/// chunk indices, packed bytes), checksummed like a real one.
fn crafted(digest: &[u8], memories: &[(u32, u64, Vec<u32>, Vec<u8>)]) -> Vec<u8> {
    let mut b = b"WHSNAP\x01\0".to_vec();
    b.extend_from_slice(digest);
    b.extend_from_slice(&0u32.to_le_bytes()); // vars
    b.extend_from_slice(&0u32.to_le_bytes()); // globals
    b.extend_from_slice(&(memories.len() as u32).to_le_bytes());
    for (index, size, chunks, packed) in memories {
        b.extend_from_slice(&index.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
        for c in chunks {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        b.extend_from_slice(packed);
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn snapshot_bombs_are_refused_before_allocating() {
    let m = runtime()
        .load(&Source::Bytes(
            br#"(module (memory 1) (func (export "f") (result i32) (i32.load (i32.const 0))))"#
                .to_vec(),
        ))
        .unwrap();
    let mut live = m.instantiate(&CallOptions::default()).unwrap();
    let real = live.snapshot().unwrap();
    let digest = &real.as_bytes()[8..40];
    let one_chunk = lz4_flex::block::compress(&[7u8; 4096]);
    const PAGE: u64 = 65536;

    // A memory declared 1 TiB, more than any 32-bit memory holds: refused
    // before anything grows.
    let huge = crafted(digest, &[(0, 1 << 40, vec![0], one_chunk.clone())]);
    let snap = Snapshot::from_bytes(huge).unwrap();
    let err = live.restore(&snap).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    // A memory declared 2 GiB, which the module's memory could reach: the
    // restore grows it under the limits first, and stops there.
    let big = crafted(digest, &[(0, 1 << 31, vec![0], one_chunk.clone())]);
    let snap = Snapshot::from_bytes(big).unwrap();
    let err = live.restore(&snap).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");

    // Many chunks for a one-page memory: 4 bytes each in the snapshot,
    // 4 KiB each once decompressed (a million of them would be 4 GiB).
    let many = crafted(digest, &[(0, PAGE, vec![0; 1_000_000], one_chunk.clone())]);
    let err = Snapshot::from_bytes(many).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    // A chunk outside the memory.
    let outside = crafted(digest, &[(0, PAGE, vec![u32::MAX], one_chunk.clone())]);
    let err = Snapshot::from_bytes(outside).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    // Sizes whose sum overflows.
    let top = u64::MAX - (PAGE - 1);
    let overflow = crafted(
        digest,
        &[(0, top, vec![], vec![]), (1, top, vec![], vec![])],
    );
    match Snapshot::from_bytes(overflow) {
        Ok(snap) => {
            assert_eq!(snap.memory_bytes(), u64::MAX);
            assert!(live.restore(&snap).is_err());
        }
        Err(e) => assert_eq!(e.code(), ErrorCode::Corrupt, "{e}"),
    }
    // Packed bytes that expand past what the chunks hold.
    let big = lz4_flex::block::compress(&vec![1u8; 64 << 10]);
    let expands = crafted(digest, &[(0, PAGE, vec![0], big)]);
    let snap = Snapshot::from_bytes(expands).unwrap();
    let err = live.restore(&snap).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");

    // The instance is still good, and a real snapshot still restores.
    live.restore(&real).unwrap();
    assert_eq!(live.call("f", "").unwrap().value.integer().unwrap(), 0);
}
