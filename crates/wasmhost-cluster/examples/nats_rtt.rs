//! The floor of a hop across the cluster: NATS's own request/reply round
//! trip between two processes, with the same client (async-nats, as the
//! nodes use it) and a payload like a small call's. Used by
//! benches/cluster/run.sh.
//!
//!   nats_rtt nats://127.0.0.1:4222 respond          # answers on rtt.echo
//!   nats_rtt nats://127.0.0.1:4222 request 20000    # N sequential requests: p50/p99 in µs

use std::time::{Duration, Instant};

use futures::StreamExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(mode)) = (args.next(), args.next()) else {
        eprintln!("usage: nats_rtt URL respond | nats_rtt URL request N");
        std::process::exit(64);
    };
    let client = async_nats::connect(url.as_str()).await?;
    match mode.as_str() {
        "respond" => {
            let mut sub = client.subscribe("rtt.echo").await?;
            while let Some(msg) = sub.next().await {
                if let Some(reply) = msg.reply {
                    client.publish(reply, msg.payload).await?;
                }
            }
            Ok(())
        }
        "request" => {
            let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let payload = bytes::Bytes::from_static(b"[40, 2]");
            // Warm-up.
            for _ in 0..1000 {
                client.request("rtt.echo", payload.clone()).await?;
            }
            let mut took: Vec<Duration> = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                client.request("rtt.echo", payload.clone()).await?;
                took.push(t.elapsed());
            }
            took.sort();
            let at =
                |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)].as_micros();
            println!("requests={n} p50_us={} p99_us={}", at(0.50), at(0.99));
            Ok(())
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(64);
        }
    }
}
