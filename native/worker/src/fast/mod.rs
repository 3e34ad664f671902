//! The local fast path: for clients on the same host, a second Unix socket
//! next to the gRPC one (`PATH.fast`, bound the same way: 0600, inside the
//! same directory) that carries the unary RPCs' own protobuf messages in
//! length-prefixed frames ([`frame`]) instead of HTTP/2. Calls are
//! multiplexed by request id on one connection, with a cancel frame and a
//! deadline per call (the semantics of `grpc-timeout`); every call then goes
//! through exactly what a gRPC call goes through ([`crate::calls`]): the same
//! dispatch, admission, deadline, drain tracking, logs, metrics, codes and
//! messages. Streams (`InvokeStream`, health `Watch`) stay on gRPC.
//!
//! Negotiation: `Describe` names the socket (`fast_path_socket`) and the
//! protocol version; a client that knows neither keeps gRPC. A connection
//! starts with `HELLO` (version and, when the worker has one, its token —
//! the same rule as the gRPC socket's) and is answered `WELCOME` with the
//! limits, or a `STATUS` and closed.
//!
//! Bounds: the connections share `--max-connections` with gRPC; a call's
//! message is at most `--max-message-bytes` (refused from the frame's header,
//! its bytes skipped, never buffered) and large ones take from the same
//! receive budget; at most `--max-streams-per-connection` calls are in flight
//! on one connection; replies wait in a bounded queue, so a client that stops
//! reading stops being read. Bytes that cannot be a frame close the
//! connection with a logged reason.

pub mod connection;
pub mod frame;

use crate::connections::ConnectionLimit;
use crate::service::App;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// How long open connections get to close after the drain.
const CONNECTION_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where the fast path listens for a worker on `socket`.
pub fn socket_path(socket: &Path) -> PathBuf {
    let mut path = socket.as_os_str().to_owned();
    path.push(".fast");
    PathBuf::from(path)
}

/// Binds the fast path's socket next to `socket`, or logs why it is not
/// offered (the worker then serves gRPC only).
pub fn bind(socket: &Path) -> Option<(UnixListener, PathBuf)> {
    let path = socket_path(socket);
    match crate::bind_unix(&path) {
        Ok(listener) => Some((listener, path)),
        Err(err) => {
            crate::log::warn(
                "the fast path is not offered",
                json!({ "socket": path.display().to_string(), "error": err.to_string(), "note": "clients keep gRPC" }),
            );
            None
        }
    }
}

/// Accepts fast-path connections until shutdown, then waits (bounded) for
/// them to close and removes the socket.
pub async fn accept_loop(listener: UnixListener, path: PathBuf, app: Arc<App>, limit: Arc<ConnectionLimit>) {
    let mut shutdown = app.lifecycle.watch_shutdown();
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => match limit.admit() {
                Some(permit) => {
                    tokio::spawn(connection::serve(stream, Arc::clone(&app), (open_tx.clone(), permit)));
                }
                None => limit.refuse_with(stream.into_std(), &connection::refusal(limit.reason())),
            },
            Err(err) => {
                crate::log::warn("accept failed", json!({ "error": err.to_string(), "transport": "fast" }));
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    drop(open_tx);
    if tokio::time::timeout(CONNECTION_CLOSE_TIMEOUT, open_rx.recv()).await.is_err() {
        crate::log::warn("fast-path connections still open at exit", json!({}));
    }
}
