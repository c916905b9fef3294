//! WASI commands, preview 1 (core module) and preview 2 (component), built
//! from the same Rust source `guests/rust/wasi-echo`.

use wasmhost::{CallOptions, Capabilities, Error, ErrorCode, Module, ModuleKind, Stdin, Wasi};

use crate::{built, runtime};

const GUESTS: [(&str, ModuleKind); 2] = [
    ("wasi-echo.wasm", ModuleKind::Core),
    ("wasi-echo.component.wasm", ModuleKind::Component),
];

fn each(f: impl Fn(Module)) {
    let rt = runtime();
    for (file, kind) in GUESTS {
        let m = rt.load(&built(file)).expect("load");
        assert_eq!(m.kind(), kind, "{file}");
        f(m);
    }
}

/// The status a guest's `exit(code)` arrives with. WASI 0.2's
/// `wasi:cli/exit.exit` takes only ok/err, so a component that fails
/// reports status 1 whatever number it chose.
fn status(m: &Module, code: i32) -> i32 {
    match m.kind() {
        ModuleKind::Core => code,
        ModuleKind::Component => 1,
    }
}

fn with_args(m: &Module, wasi: Wasi, args: &[&str]) -> Module {
    m.clone().with_capabilities(
        Capabilities::none().with_wasi(wasi.arg("wasi-echo").args(args.iter().copied())),
    )
}

#[test]
fn echoes_stdin_to_stdout() {
    each(|m| {
        let m = with_args(&m, Wasi::new(), &["echo"]);
        let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let out = m
            .run(&CallOptions::default().stdin(Stdin::bytes(input.clone())))
            .unwrap();
        assert_eq!(out.stdout, input, "{}", m.name());
        // Again, on the same module: a fresh instance, the same answer.
        let out = m
            .run(&CallOptions::default().stdin(Stdin::bytes(&b"again"[..])))
            .unwrap();
        assert_eq!(out.stdout, b"again");
    });
}

#[test]
fn sees_exactly_the_args_and_env_given() {
    each(|m| {
        let out = with_args(&m, Wasi::new(), &["args", "one", "two words"])
            .run(&CallOptions::default())
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "args\none\ntwo words\n"
        );
        let out = with_args(&m, Wasi::new().env("B", "2").env("A", "1"), &["env"])
            .run(&CallOptions::default())
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "A=1\nB=2\n");
        // No env granted: the guest sees none of the host's.
        let out = with_args(&m, Wasi::new(), &["env"])
            .run(&CallOptions::default())
            .unwrap();
        assert_eq!(out.stdout, b"");
    });
}

#[test]
fn writes_into_a_preopened_directory() {
    each(|m| {
        let dir = tempfile::tempdir().unwrap();
        let wasi = Wasi::new().dir(dir.path(), "/data", false);
        let out = with_args(
            &m,
            wasi,
            &["write", "/data/out.txt", "written by the guest"],
        )
        .run(&CallOptions::default())
        .unwrap();
        assert_eq!(out.stdout, b"wrote /data/out.txt\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
            "written by the guest"
        );
    });
}

#[test]
fn read_only_directories_refuse_writes() {
    each(|m| {
        let dir = tempfile::tempdir().unwrap();
        let wasi = Wasi::new().dir(dir.path(), "/data", true);
        let err = with_args(&m, wasi, &["write", "/data/out.txt", "x"])
            .run(&CallOptions::default())
            .unwrap_err();
        assert!(
            matches!(err, Error::Exit { code, .. } if code == status(&m, 3)),
            "{err}"
        );
        assert!(!dir.path().join("out.txt").exists());
    });
}

#[test]
fn cannot_read_outside_its_preopened_directory() {
    each(|m| {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret.txt"), "top secret").unwrap();
        let inner = outer.path().join("sandbox");
        std::fs::create_dir(&inner).unwrap();
        for path in ["/data/../secret.txt", "/secret.txt", "../secret.txt"] {
            let wasi = Wasi::new().dir(&inner, "/data", false);
            let err = with_args(&m, wasi, &["read", path])
                .run(&CallOptions::default())
                .unwrap_err();
            match &err {
                Error::Exit {
                    code,
                    stdout,
                    stderr,
                } => {
                    assert_eq!(*code, status(&m, 3), "{path}: {err}");
                    assert!(
                        !String::from_utf8_lossy(stdout).contains("top secret"),
                        "{path} leaked"
                    );
                    assert!(
                        String::from_utf8_lossy(stderr).starts_with("error:"),
                        "{path}: {err}"
                    );
                }
                other => panic!("{path}: expected exit 3, got {other:?}"),
            }
        }
        // The same module reads inside its directory fine.
        std::fs::write(inner.join("ok.txt"), "fine").unwrap();
        let out = with_args(
            &m,
            Wasi::new().dir(&inner, "/data", true),
            &["read", "/data/ok.txt"],
        )
        .run(&CallOptions::default())
        .unwrap();
        assert_eq!(out.stdout, b"fine");
    });
}

#[test]
fn exit_status_is_propagated() {
    each(|m| {
        let err = with_args(&m, Wasi::new(), &["exit", "7"])
            .run(&CallOptions::default())
            .unwrap_err();
        match &err {
            Error::Exit { code, stderr, .. } => {
                assert_eq!(*code, status(&m, 7));
                assert_eq!(stderr, b"exiting with 7\n");
            }
            other => panic!("expected exit 7, got {other:?}"),
        }
        assert_eq!(err.code(), ErrorCode::Exit);
        // exit 0 is success.
        assert!(
            with_args(&m, Wasi::new(), &["exit", "0"])
                .run(&CallOptions::default())
                .is_ok()
        );
    });
}

#[test]
fn clocks_and_random_need_their_own_grants() {
    each(|m| {
        for (cmd, cap) in [("time", "clocks"), ("random", "random")] {
            let err = with_args(&m, Wasi::new(), &[cmd])
                .run(&CallOptions::default())
                .unwrap_err();
            match &err {
                Error::CapabilityDenied { capability, .. } => {
                    assert_eq!(capability, cap, "{}", m.name())
                }
                other => panic!(
                    "{cmd} on {}: expected capability_denied, got {other:?}",
                    m.name()
                ),
            }
        }
        let out = with_args(&m, Wasi::new().clocks(true), &["time"])
            .run(&CallOptions::default())
            .unwrap();
        let secs: u64 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(secs > 1_700_000_000, "a real clock: {secs}");
        let out = with_args(&m, Wasi::new().random(true), &["random"])
            .run(&CallOptions::default())
            .unwrap();
        assert!(!out.stdout.is_empty());
    });
}

#[test]
fn a_guest_panic_is_a_trap_with_its_message_on_stderr() {
    each(|m| {
        let err = with_args(&m, Wasi::new(), &["panic"])
            .run(&CallOptions::default())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Trap, "{}: {err}", m.name());
    });
}

#[test]
fn a_guest_allocating_too_much_hits_the_memory_limit() {
    each(|m| {
        let m = with_args(&m, Wasi::new(), &["alloc", "64"])
            .with_limits(wasmhost::Limits::default().max_memory_bytes(16 << 20));
        let err = m.run(&CallOptions::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MemoryLimit, "{}: {err}", m.name());
        let ok = m
            .clone()
            .with_limits(wasmhost::Limits::default().max_memory_bytes(128 << 20))
            .run(&CallOptions::default())
            .unwrap();
        assert_eq!(ok.stdout, b"allocated 64 MiB\n");
        assert!(ok.stats.peak_memory_bytes >= 64 << 20);
    });
}

#[test]
fn flooding_stdout_past_the_capture_limit_is_a_memory_limit() {
    each(|m| {
        let opts = CallOptions::default().stdout(wasmhost::Output::Capture { limit: 1 << 20 });
        let err = with_args(&m, Wasi::new(), &["flood", "8"])
            .run(&opts)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::MemoryLimit, "{}: {err}", m.name());
    });
}

#[test]
fn a_missing_preopen_directory_is_not_found() {
    each(|m| {
        let err = with_args(&m, Wasi::new().dir("/no/such/dir", "/d", false), &["echo"])
            .run(&CallOptions::default())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    });
}

#[test]
fn components_without_wasi_are_link_errors_naming_the_interfaces() {
    let rt = runtime();
    let m = rt.load(&built("wasi-echo.component.wasm")).unwrap();
    let err = m.run(&CallOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
    assert!(err.to_string().contains("wasi:cli/environment"), "{err}");
}

#[test]
fn the_instance_limit_counts_a_components_core_instances() {
    let rt = runtime();
    let m = rt.load(&built("wasi-echo.component.wasm")).unwrap();
    let m = with_args(&m, Wasi::new(), &["echo"]);
    let err = m
        .clone()
        .with_limits(wasmhost::Limits::default().max_instances(1))
        .run(&CallOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    assert!(err.to_string().contains("instance"), "{err}");
    assert!(m.run(&CallOptions::default()).is_ok());
}
