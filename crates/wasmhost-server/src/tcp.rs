//! Raw-TCP workers (`--tcp PORT=MODULE`): each connection is one message,
//! read until the client half-closes its side (EOF), handled by the worker,
//! answered, and closed. A client streams one message per connection.
//!
//! Bounds: a connection waits for a worker slot like an HTTP request (when
//! the queue is full it is closed at once, unanswered); the message is at
//! most `--max-body` bytes and must arrive within `--request-timeout`. A
//! message that fails (trap, timeout, over the size limit) closes the
//! connection without a reply; the failure is logged and counted in
//! `wasm_errors_total` and `wasmhost_tcp_messages_total{result="error"}`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::state::AppState;
use crate::workers::Worker;

/// Counter: TCP messages by result (`ok`, `error`, `rejected`).
pub const TCP_MESSAGES: &str = "wasmhost_tcp_messages_total";

/// Accepts connections on `listener` until `stop` turns true, then waits
/// for the connections in flight.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    worker: Arc<Worker>,
    mut stop: watch::Receiver<bool>,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(connection(state.clone(), worker.clone(), stream, port));
                }
                Err(e) => {
                    tracing::warn!(error = %e, port, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Completes once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection(state: Arc<AppState>, worker: Arc<Worker>, mut stream: TcpStream, port: u16) {
    let _ = stream.set_nodelay(true);
    let slot = match state.admission.enter().await {
        Ok(slot) => slot,
        Err(e) => {
            metrics::counter!(TCP_MESSAGES, "result" => "rejected").increment(1);
            tracing::debug!(port, "tcp connection refused: {}", e.message());
            return;
        }
    };
    let deadline = state.config.request_timeout;
    let result = tokio::time::timeout(deadline, async {
        let message = read_message(&mut stream, state.config.max_body_bytes).await?;
        let reply = worker
            .message(None, None, message)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(&reply.body)
            .await
            .map_err(|e| format!("cannot write the reply: {e}"))?;
        stream
            .shutdown()
            .await
            .map_err(|e| format!("cannot close the connection: {e}"))
    })
    .await;
    drop(slot);
    let outcome = match result {
        Ok(Ok(())) => "ok",
        Ok(Err(why)) => {
            tracing::warn!(port, "tcp message failed: {why}");
            "error"
        }
        Err(_) => {
            tracing::warn!(port, "tcp message not done within {deadline:?}");
            "error"
        }
    };
    metrics::counter!(TCP_MESSAGES, "result" => outcome).increment(1);
}

/// Reads until EOF, at most `limit` bytes.
async fn read_message(stream: &mut TcpStream, limit: usize) -> Result<Bytes, String> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("cannot read the message: {e}"))?;
        if n == 0 {
            return Ok(Bytes::from(buf));
        }
        if buf.len() + n > limit {
            return Err(format!("the message is over the {limit}-byte limit"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
