//! The Extism plugin ABI with real plugins: `guests/rust/extism-plugin`
//! (extism-pdk) and `guests/assemblyscript/extism-plugin.ts`
//! (@extism/as-pdk).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use wasmhost::{
    CallOptions, Capabilities, Convention, Data, Error, ErrorCode, HostFunctions, Http, Limits,
    LogLevel, Module,
};

use crate::{built, runtime};

/// The test plugin imports one host function, `extism:host/user::reverse`:
/// it links only where a set providing it is granted.
pub(crate) fn plugin() -> Module {
    let rt = runtime();
    rt.add_host_functions(reverser("text")).unwrap();
    rt.load(&built("extism-plugin.wasm"))
        .unwrap()
        .with_capabilities(granted())
}

fn reverser(name: &str) -> HostFunctions {
    HostFunctions::new(name).extism("reverse", |input| {
        let s = std::str::from_utf8(input).map_err(|e| e.to_string())?;
        Ok(s.chars().rev().collect::<String>().into_bytes())
    })
}

/// Capabilities granting the `reverse` host function.
fn granted() -> Capabilities {
    Capabilities::none().with_host_functions("text")
}

fn json(out: &Data) -> serde_json::Value {
    out.json().unwrap()
}

#[test]
fn detected_and_called_with_config_and_vars() {
    let m = plugin();
    assert!(
        m.conventions("count_vowels")
            .iter()
            .any(|(c, v)| *c == Convention::Extism && v.is_ok())
    );
    let out = m.call("count_vowels", "Hello, World!").unwrap();
    assert_eq!(
        json(&out.value),
        serde_json::json!({"count": 3, "total": 3, "vowels": "aeiouAEIOU"})
    );

    // Config is what the grants say.
    let caps = granted().with_config("vowels", "lo");
    let out = m
        .call_with(
            "count_vowels",
            "Hello, World!",
            &CallOptions::default().capabilities(caps),
        )
        .unwrap();
    assert_eq!(json(&out.value)["count"], 5);
}

#[test]
fn vars_persist_on_an_instance_and_are_isolated_between_instances() {
    let m = plugin();
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    let mut b = m.instantiate(&CallOptions::default()).unwrap();
    for want in ["1", "2", "3"] {
        assert_eq!(a.call("counter", "").unwrap().value.text().unwrap(), want);
    }
    assert_eq!(b.call("counter", "").unwrap().value.text().unwrap(), "1");
    // A fresh sandbox per call starts without vars.
    assert_eq!(m.call("counter", "").unwrap().value.text().unwrap(), "1");
    assert_eq!(m.call("counter", "").unwrap().value.text().unwrap(), "1");
    let t1 = json(&a.call("count_vowels", "aaa").unwrap().value);
    let t2 = json(&a.call("count_vowels", "ee").unwrap().value);
    assert_eq!(
        (t1["total"].clone(), t2["total"].clone()),
        (3.into(), 5.into())
    );
}

#[test]
fn echo_round_trips_arbitrary_bytes() {
    let m = plugin();
    let input: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let out = m.call("echo", &input).unwrap();
    assert_eq!(&*out.value.bytes(), &input[..]);
    let out = m.call("echo", "").unwrap();
    assert!(out.value.bytes().is_empty());
}

#[test]
fn user_host_function_round_trip() {
    let rt = runtime();
    rt.add_host_functions(reverser("text")).unwrap();
    let m = rt.load(&built("extism-plugin.wasm")).unwrap();

    // Not granted: the import is missing, and the error names it.
    let e = m.call("reverse_via_host", "abc").unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkError, "{e}");
    assert!(e.to_string().contains("extism:host/user::reverse"), "{e}");

    let m = m.with_capabilities(Capabilities::none().with_host_functions("text"));
    let out = m.call("reverse_via_host", "héllo").unwrap();
    assert_eq!(out.value.text().unwrap(), "host said: olléh");
}

#[test]
fn failing_host_function_traps_with_its_message() {
    let rt = runtime();
    rt.add_host_functions(
        HostFunctions::new("broken").extism("reverse", |_| Err("backend unavailable".to_string())),
    )
    .unwrap();
    let m = rt
        .load(&built("extism-plugin.wasm"))
        .unwrap()
        .with_capabilities(Capabilities::none().with_host_functions("broken"));
    let e = m.call("reverse_via_host", "x").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Trap, "{e}");
    assert!(e.to_string().contains("backend unavailable"), "{e}");
}

#[test]
fn async_host_functions_are_awaited() {
    let rt = runtime();
    rt.add_host_functions(
        HostFunctions::new("slow").extism_async("reverse", |input| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(input.into_iter().rev().collect())
        }),
    )
    .unwrap();
    let m = rt
        .load(&built("extism-plugin.wasm"))
        .unwrap()
        .with_capabilities(Capabilities::none().with_host_functions("slow"));
    assert_eq!(
        m.call("reverse_via_host", "abc")
            .unwrap()
            .value
            .text()
            .unwrap(),
        "host said: cba"
    );
    // Also from inside a multi-threaded tokio runtime (block_in_place).
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let m2 = m.clone();
    let out = tokio_rt
        .block_on(
            async move { tokio::spawn(async move { m2.call("reverse_via_host", "xy") }).await },
        )
        .unwrap()
        .unwrap();
    assert_eq!(out.value.text().unwrap(), "host said: yx");
}

/// A one-shot HTTP server on loopback: answers one request, then stops.
fn one_shot_server(
    status: &'static str,
    body: &'static str,
) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Test: yes\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8_lossy(&req).into_owned()
    });
    (format!("http://127.0.0.1:{}/hello", addr.port()), handle)
}

#[test]
fn http_to_an_allowed_host() {
    let (url, server) = one_shot_server("200 OK", "hi from the server");
    let m = plugin().with_capabilities(granted().with_http(Http::allow(["127.0.0.1"])));
    let out = m.call("http_get", &url).unwrap();
    assert_eq!(
        json(&out.value),
        serde_json::json!({"status": 200, "body": "hi from the server"})
    );
    let request = server.join().unwrap();
    assert!(request.starts_with("GET /hello HTTP/1.1"), "{request}");
}

#[test]
fn http_status_codes_reach_the_guest() {
    let (url, server) = one_shot_server("404 Not Found", "nope");
    let m = plugin().with_capabilities(granted().with_http(Http::allow(["127.0.0.1"])));
    let out = m.call("http_get", &url).unwrap();
    assert_eq!(json(&out.value)["status"], 404);
    server.join().unwrap();
}

#[test]
fn http_to_a_host_not_allowed_is_refused() {
    // Nothing listens: the request must be refused before any connection.
    let url = "http://127.0.0.1:9/x";
    for caps in [
        granted(),
        granted().with_http(Http::allow(["example.com", "*.internal"])),
    ] {
        let e = plugin()
            .with_capabilities(caps)
            .call("http_get", url)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::CapabilityDenied, "{e}");
        assert!(e.to_string().contains("127.0.0.1"), "{e}");
    }
}

/// A listener nothing should reach: whether a connection came.
struct Untouched(TcpListener);

impl Untouched {
    fn bind(ip: &str) -> Untouched {
        let l = TcpListener::bind((ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        Untouched(l)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    fn reached(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn http_redirects_are_not_followed() {
    // 127.0.0.2 is loopback too, and not on the list.
    let off_list = Untouched::bind("127.0.0.2");
    let (url, server) = one_shot_server(
        Box::leak(
            format!(
                "302 Found\r\nLocation: http://127.0.0.2:{}/x",
                off_list.port()
            )
            .into_boxed_str(),
        ),
        "",
    );
    let m = plugin().with_capabilities(granted().with_http(Http::allow(["127.0.0.1"])));
    let out = m.call("http_get", &url).unwrap();
    assert_eq!(
        json(&out.value)["status"],
        302,
        "the guest sees the redirect"
    );
    server.join().unwrap();
    assert!(
        !off_list.reached(),
        "the host followed a redirect off the list"
    );
}

#[test]
fn a_gzip_bomb_is_cut_off_at_the_response_limit() {
    // 64 MiB of zeros, gzipped to some 64 KiB: ureq inflates gzip
    // bodies, and the host reads the inflated stream up to the limit only.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/bomb",
        listener.local_addr().unwrap().port()
    );
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let mut req = Vec::new();
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bomb.len()
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&bomb);
        String::from_utf8_lossy(&req).into_owned()
    });
    let http = Http::allow(["127.0.0.1"]).max_response_bytes(1 << 20);
    let m = plugin().with_capabilities(granted().with_http(http));
    let e = m.call("http_get", &url).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MemoryLimit, "{e}");
    let request = server.join().unwrap();
    assert!(
        request
            .to_ascii_lowercase()
            .contains("accept-encoding: gzip"),
        "{request}"
    );
}

/// A name other than `localhost` that /etc/hosts maps to loopback (the
/// machine's host name, on Debian and in containers).
fn name_resolving_to_loopback() -> Option<String> {
    use std::net::ToSocketAddrs;
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts.lines().find_map(|line| {
        let mut words = line.split('#').next()?.split_whitespace();
        let ip: std::net::IpAddr = words.next()?.parse().ok()?;
        if !ip.is_loopback() {
            return None;
        }
        words
            .find(|name| {
                let h = wasmhost::capabilities::http::Host::parse(name);
                h.is_ok_and(|h| !h.is_loopback() && h.ip().is_none())
                    && (*name, 80)
                        .to_socket_addrs()
                        .is_ok_and(|mut a| a.all(|a| a.ip().is_loopback()))
            })
            .map(str::to_string)
    })
}

#[test]
fn http_loopback_is_reached_only_when_named_exactly() {
    let target = Untouched::bind("127.0.0.1");
    let port = target.port();
    let name = name_resolving_to_loopback()
        .expect("a name besides localhost that /etc/hosts maps to loopback (the host name)");
    let base = plugin();
    for patterns in [
        vec!["*"],
        vec!["*.localhost", "127.0.0.*", "local*", "*.*"],
        vec!["example.com"],
    ] {
        let m = base
            .clone()
            .with_capabilities(granted().with_http(Http::allow(patterns.clone())));
        for host in [
            "127.0.0.1",
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "0177.0.0.1",
            "[::ffff:127.0.0.1]",
            "[::1]",
            "0.0.0.0",
            "localhost",
            "a.localhost",
            name.as_str(),
        ] {
            let url = format!("http://{host}:{port}/x");
            let e = m.call("http_get", &url).unwrap_err();
            assert_eq!(
                e.code(),
                ErrorCode::CapabilityDenied,
                "{patterns:?} {url}: {e}"
            );
        }
    }
    assert!(!target.reached(), "a refused request reached loopback");
}

#[test]
fn guest_error_carries_the_guest_message() {
    let e = plugin().call("fail", "not today").unwrap_err();
    assert_eq!(e.code(), ErrorCode::GuestError, "{e}");
    match &e {
        Error::Guest { message, status } => {
            assert_eq!(message, "guest refused: not today");
            assert!(matches!(status, Some(s) if *s != 0), "{status:?}");
        }
        other => panic!("{other:?}"),
    }
    // The instance is still good afterwards (the guest returned normally).
    let mut i = plugin().instantiate(&CallOptions::default()).unwrap();
    assert!(i.call("fail", "x").is_err());
    assert_eq!(i.call("counter", "").unwrap().value.text().unwrap(), "1");
    assert_eq!(i.restarts(), 0);
}

#[test]
fn infinite_loop_is_stopped_by_the_timeout_and_the_instance_recovers() {
    let limits = Limits::default().timeout(Some(Duration::from_millis(200)));
    let m = plugin().with_limits(limits);
    let mut i = m.instantiate(&CallOptions::default()).unwrap();
    assert_eq!(i.call("counter", "").unwrap().value.text().unwrap(), "1");
    let e = i.call("spin", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
    assert_eq!(i.restarts(), 1);
    // Vars are host-side and survive the restart.
    assert_eq!(i.call("counter", "").unwrap().value.text().unwrap(), "2");
}

#[test]
fn writing_past_a_block_is_refused() {
    let e = plugin().call("overflow", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Trap, "{e}");
    assert!(e.to_string().contains("outside any allocated block"), "{e}");
}

#[test]
fn logs_are_collected() {
    let out = plugin().call("log_it", "careful").unwrap();
    assert_eq!(out.value.text().unwrap(), "logged");
    let levels: Vec<LogLevel> = out.logs.iter().map(|l| l.level).collect();
    assert_eq!(levels, [LogLevel::Info, LogLevel::Warn, LogLevel::Error]);
    assert!(out.logs.iter().all(|l| l.message == "careful"));
}

#[test]
fn assemblyscript_pdk_plugin() {
    let m = runtime().load(&built("as-extism-plugin.wasm")).unwrap();
    let out = m.call("greet", "Zoë").unwrap();
    assert_eq!(out.value.text().unwrap(), "Hello, Zoë!");
    let out = m.call("count_vowels", "Hello, World!").unwrap();
    assert_eq!(json(&out.value)["count"], 3);
    let caps = Capabilities::none().with_config("vowels", "o");
    let out = m
        .call_with(
            "count_vowels",
            "Hello, World!",
            &CallOptions::default().capabilities(caps),
        )
        .unwrap();
    assert_eq!(json(&out.value)["count"], 2);
}
