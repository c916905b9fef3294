//! `--link INTERFACE=PROVIDER`: a component's imported interfaces provided
//! by another component, on `run`, `call`, in a manifest's `[[link]]` and
//! in a `serve` route's `link=`. The guests: `guests/rust/link-consumer`
//! (imports `wasmhost:example/console` and `/events`; its command flavour
//! `link-consumer-cli`), `guests/rust/link-provider` (exports both) and
//! `guests/wat/link-mismatch.wat` (exports console with other types).

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{built, http, serve, wasmhost_in, wat};

/// One state directory per test, so its compiled components are cached
/// between the test's commands.
struct Cli(tempfile::TempDir);

impl Cli {
    fn new() -> Self {
        Cli(tempfile::tempdir().unwrap())
    }

    /// Runs `wasmhost ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = wasmhost_in(self.0.path(), args, b"");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `wasmhost ARGS`, which must fail; (exit status, stderr).
    fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = wasmhost_in(self.0.path(), args, b"");
        assert!(!out.status.success(), "{args:?} should fail");
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

const CONSOLE: &str = "wasmhost:example/console";
const EVENTS: &str = "wasmhost:example/events";

fn link(interface: &str, provider: &str) -> String {
    format!("{interface}={provider}")
}

#[test]
fn call_and_run_link_a_components_imports_to_another_component() {
    let cli = Cli::new();
    let provider = built("link-provider.wasm");
    let console = link(CONSOLE, &provider);
    let events = link(EVENTS, &provider);
    // Flags anywhere, as for every `call` flag.
    let out = cli.ok(&[
        "call",
        "--wasi",
        &built("link-consumer.wasm"),
        "greet",
        r#""ada""#,
        "--link",
        &console,
        "--link",
        &events,
    ]);
    assert_eq!(out.trim(), r#""hello ada | greeted: 1""#);
    // `run`: flags before MODULE; the provider's stdout is inherited.
    let out = cli.ok(&[
        "run",
        "--link",
        &console,
        "--link",
        &events,
        &built("link-consumer-cli.wasm"),
        "a",
        "b",
    ]);
    assert_eq!(
        out,
        "[console] arg a\n[console] arg b\nconsumer: 2 line(s), 2 arg event(s)\n"
    );
}

#[test]
fn link_errors_name_what_is_missing_or_wrong() {
    let cli = Cli::new();
    let consumer = built("link-consumer.wasm");
    let provider = built("link-provider.wasm");
    // events is imported and nothing provides it.
    let (code, err) = cli.fails(&[
        "call",
        "--wasi",
        &consumer,
        "greet",
        r#""ada""#,
        "--link",
        &link(CONSOLE, &provider),
    ]);
    assert_eq!(code, 67, "{err}");
    assert!(
        err.contains("error[link_error]") && err.contains("wasmhost:example/events@0.1.0"),
        "{err}"
    );
    // A provider exporting console with other types.
    let (code, err) = cli.fails(&[
        "call",
        "--wasi",
        &consumer,
        "greet",
        r#""ada""#,
        "--link",
        &link(CONSOLE, &wat("link-mismatch")),
        "--link",
        &link(EVENTS, &provider),
    ]);
    assert_eq!(code, 67, "{err}");
    assert!(err.contains("function `log`: type mismatch"), "{err}");
    // A provider that does not export the interface.
    let (code, err) = cli.fails(&[
        "run",
        "--link",
        &link(CONSOLE, &built("wit-component.wasm")),
        &built("link-consumer-cli.wasm"),
    ]);
    assert_eq!(code, 67, "{err}");
    assert!(err.contains("does not export that interface"), "{err}");
    // Not INTERFACE=PROVIDER.
    let (code, err) = cli.fails(&["run", "--link", CONSOLE, &consumer]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("INTERFACE=PROVIDER"), "{err}");
}

#[test]
fn a_manifest_links_providers_with_their_own_limits() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(built("link-consumer.wasm"), d.join("consumer.wasm")).unwrap();
    std::fs::copy(built("link-provider.wasm"), d.join("provider.wasm")).unwrap();
    // The provider's own manifest: 2 MiB of memory, WASI.
    std::fs::write(
        d.join("provider.toml"),
        "[module]\npath = \"provider.wasm\"\n[limits]\nmax_memory = \"2MiB\"\n\
         [capabilities.wasi]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("app.toml"),
        format!(
            "[module]\npath = \"consumer.wasm\"\n[limits]\nmax_memory = \"64MiB\"\n\
             [capabilities.wasi]\n\
             [[link]]\ninterface = \"{CONSOLE}\"\npath = \"provider.toml\"\n\
             [[link]]\ninterface = \"{EVENTS}\"\npath = \"provider.toml\"\n"
        ),
    )
    .unwrap();
    let app = d.join("app.toml").display().to_string();
    let out = cli.ok(&["call", &app, "greet", r#""ada""#]);
    assert_eq!(out.trim(), r#""hello ada | greeted: 1""#);
    // 3 MiB of events: more than the provider's 2 MiB, far less than the
    // consumer's 64 MiB; the provider's limit stops the call.
    let (code, err) = cli.fails(&["call", &app, "emit-many", "[12, 262144]"]);
    assert_eq!(code, 71, "{err}");
    assert!(err.contains("error[memory_limit]"), "{err}");
    let out = cli.ok(&["inspect", &app]);
    assert!(
        out.contains("link:    wasmhost:example/console  provided by provider.toml  sha256:"),
        "{out}"
    );
    // A store name holds one module: such a manifest is not pushed.
    let (code, err) = cli.fails(&["push", &app, "app:v1"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("links components"), "{err}");
    // A provider named by store reference.
    cli.ok(&["push", &built("link-provider.wasm"), "provider:v1"]);
    std::fs::write(
        d.join("stored.toml"),
        format!(
            "[module]\npath = \"consumer.wasm\"\n[capabilities.wasi]\n\
             [[link]]\ninterface = \"{CONSOLE}\"\nstore = \"provider:v1\"\n\
             [[link]]\ninterface = \"{EVENTS}\"\nstore = \"provider:v1\"\n"
        ),
    )
    .unwrap();
    let stored = d.join("stored.toml").display().to_string();
    let out = cli.ok(&["call", &stored, "greet", r#""bob""#]);
    assert_eq!(out.trim(), r#""hello bob | greeted: 1""#);
    // A link must say where its provider is.
    std::fs::write(
        d.join("bad.toml"),
        format!("[module]\npath = \"consumer.wasm\"\n[[link]]\ninterface = \"{CONSOLE}\"\n"),
    )
    .unwrap();
    let (code, err) = cli.fails(&[
        "call",
        &d.join("bad.toml").display().to_string(),
        "greet",
        "\"x\"",
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("exactly one of `path` or `store`"), "{err}");
}

#[test]
fn a_serve_route_links_components() {
    let provider = built("link-provider.wasm");
    let route = format!(
        "/greet={},mode=function,function=greet,link={},link={}",
        built("link-consumer.wasm"),
        link(CONSOLE, &provider),
        link(EVENTS, &provider)
    );
    let s = serve(&["--route", &route]);
    for name in ["ada", "bob"] {
        let (status, body) = http(&s.addr, "POST", "/greet", &format!("{name:?}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.trim(), format!("\"hello {name} | greeted: 1\""));
    }
}
