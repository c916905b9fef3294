//! A load generator for one-message-per-connection TCP servers (wrk only
//! speaks HTTP). Each of C concurrent clients loops for D seconds:
//! connect, write the message, shut down its sending side, read the reply to
//! EOF. Prints requests per second and latency percentiles of that whole
//! exchange (connect included), in a `key=value` line that
//! benches/serve/run.sh parses, and a readable summary on stderr.
//!
//!     tcp-load ADDR [-c CONNECTIONS] [-d SECONDS] [-t THREADS] [-m MESSAGE] [--expect REPLY]
//!
//! Defaults: 64 connections, 10 s, 1 thread, message `hi`, expect
//! `hello, world\n`. A reply that differs from --expect counts as an error,
//! as does a failed connect, write or read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    threads: usize,
    message: Vec<u8>,
    expect: Vec<u8>,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let usage =
        "usage: tcp-load ADDR [-c N] [-d SECONDS] [-t THREADS] [-m MESSAGE] [--expect REPLY]";
    let mut a = Args {
        addr: "127.0.0.1:9090".parse().expect("addr"),
        connections: 64,
        duration: Duration::from_secs(10),
        threads: 1,
        message: b"hi".to_vec(),
        expect: b"hello, world\n".to_vec(),
    };
    let mut addr = None;
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{usage}"));
        match arg.as_str() {
            "-c" => a.connections = value().parse().expect("-c N"),
            "-d" => a.duration = Duration::from_secs_f64(value().parse().expect("-d SECONDS")),
            "-t" => a.threads = value().parse().expect("-t THREADS"),
            "-m" => a.message = value().into_bytes(),
            "--expect" => a.expect = value().into_bytes(),
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            other => addr = Some(other.parse().unwrap_or_else(|_| panic!("{usage}"))),
        }
    }
    a.addr = addr.unwrap_or(a.addr);
    a
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn one(addr: SocketAddr, message: &[u8], reply: &mut Vec<u8>) -> std::io::Result<()> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(message).await?;
    s.shutdown().await?;
    reply.clear();
    s.read_to_end(reply).await?;
    Ok(())
}

async fn client(a: Arc<Args>, stop: Arc<AtomicBool>) -> Tally {
    let mut t = Tally::default();
    let mut reply = Vec::with_capacity(64);
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let r = one(a.addr, &a.message, &mut reply).await;
        let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        match r {
            Ok(()) if reply == a.expect => t.latencies_us.push(us),
            Ok(()) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| {
                    format!("unexpected reply {:?}", String::from_utf8_lossy(&reply))
                });
            }
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| e.to_string());
                // A refused or reset connection: don't spin.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    t
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[i.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn main() {
    let a = Arc::new(args());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (tallies, elapsed) = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..a.connections)
            .map(|_| tokio::spawn(client(a.clone(), stop.clone())))
            .collect();
        tokio::time::sleep(a.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut tallies = Vec::new();
        for t in tasks {
            tallies.push(t.await.expect("client task"));
        }
        (tallies, started.elapsed())
    });
    let mut lat: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tallies {
        lat.extend(t.latencies_us);
        errors += t.errors;
        first_error = first_error.or(t.first_error);
    }
    lat.sort_unstable();
    let n = lat.len();
    let rps = n as f64 / elapsed.as_secs_f64();
    let (p50, p90, p99, max) = (
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0),
    );
    eprintln!(
        "tcp-load {}: {} connections, {:.1} s: {n} ok, {errors} errors, {rps:.0} req/s, \
         latency p50 {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
        a.addr,
        a.connections,
        elapsed.as_secs_f64(),
    );
    if let Some(e) = first_error {
        eprintln!("tcp-load: first error: {e}");
    }
    println!(
        "requests={n} errors={errors} seconds={:.3} rps={rps:.1} p50_ms={p50:.3} p90_ms={p90:.3} p99_ms={p99:.3} max_ms={max:.3}",
        elapsed.as_secs_f64()
    );
}
