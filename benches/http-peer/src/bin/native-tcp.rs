//! The raw-TCP floor: a tokio server that treats each connection the way a
//! `wasmhost serve --tcp` worker does: read the message until the client
//! half-closes, answer `hello, world\n`, close. No WebAssembly.
//!
//!     native-tcp 127.0.0.1:9090

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9090".to_string())
        .parse()
        .expect("usage: native-tcp 127.0.0.1:PORT");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("cannot listen");
    eprintln!("native-tcp: listening on tcp://{addr}");
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("native-tcp: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut message = Vec::with_capacity(4096);
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) => break,
                    Ok(n) => message.extend_from_slice(&chunk[..n]),
                    Err(_) => return,
                }
            }
            let _ = stream.write_all(b"hello, world\n").await;
            let _ = stream.shutdown().await;
        });
    }
}
