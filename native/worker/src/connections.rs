//! The cap on open client connections (`--max-connections`). A connection
//! beyond it is accepted only to be refused at once: it gets an HTTP/2
//! GOAWAY with ENHANCE_YOUR_CALM naming the limit (written without waiting,
//! best effort) and is closed, so the accept loop never stalls on it and
//! the connections already open are not touched. The fast path's
//! connections (src/fast) count against the same cap and are refused the
//! same way, with a STATUS frame instead of the GOAWAY. Refusals are counted
//! as `tandem_worker_rejections_total{reason="connections"}`.

use crate::metrics::Metrics;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// HTTP/2 error code ENHANCE_YOUR_CALM (RFC 9113 §7).
const ENHANCE_YOUR_CALM: u32 = 0xb;

pub struct ConnectionLimit {
    places: Arc<Semaphore>,
    max: usize,
    metrics: Arc<Metrics>,
    refused: AtomicU64,
    reason: String,
    goaway: Vec<u8>,
}

/// One open connection's place, released (and the gauge lowered) on drop.
pub struct Permit {
    _place: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.metrics.connections.dec();
    }
}

impl ConnectionLimit {
    pub fn new(max: usize, metrics: Arc<Metrics>) -> ConnectionLimit {
        let reason = format!("the worker has {max} connections open, its limit (--max-connections); retry later");
        ConnectionLimit {
            places: Arc::new(Semaphore::new(max)),
            max,
            metrics,
            refused: AtomicU64::new(0),
            goaway: refusal_frames(reason.as_bytes()),
            reason,
        }
    }

    /// Why a connection beyond the cap is refused, naming the flag.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// A place for a new connection, or `None` when all are taken.
    pub fn admit(&self) -> Option<Permit> {
        let place = Arc::clone(&self.places).try_acquire_owned().ok()?;
        self.metrics.connections.inc();
        Some(Permit { _place: place, metrics: Arc::clone(&self.metrics) })
    }

    /// Refuses a connection: writes the GOAWAY (the socket is non-blocking,
    /// so this never waits; a fresh socket's send buffer takes it whole),
    /// counts it, logs the first refusal and then every power of two, and
    /// closes the connection. A tokio socket's own `try_write` would not do:
    /// it reports WouldBlock until the runtime has seen the socket writable.
    pub fn refuse(&self, connection: std::io::Result<impl std::io::Write>) {
        self.refuse_with(connection, &self.goaway);
    }

    /// [`refuse`](Self::refuse) with the transport's own refusal bytes.
    pub fn refuse_with(&self, connection: std::io::Result<impl std::io::Write>, refusal: &[u8]) {
        if let Ok(mut connection) = connection {
            let _ = connection.write(refusal);
        }
        self.metrics.reject("connections");
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            crate::log::warn(
                "connection refused",
                json!({ "reason": "connections", "limit": self.max, "refused_total": refused }),
            );
        }
    }
}

/// The server's connection preface (an empty SETTINGS frame) followed by a
/// GOAWAY (last stream 0, ENHANCE_YOUR_CALM) carrying `reason` as debug data.
fn refusal_frames(reason: &[u8]) -> Vec<u8> {
    let mut frames = Vec::with_capacity(9 + 9 + 8 + reason.len());
    let header = |frames: &mut Vec<u8>, len: usize, kind: u8| {
        frames.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        frames.extend_from_slice(&[kind, 0]);
        frames.extend_from_slice(&0u32.to_be_bytes());
    };
    header(&mut frames, 0, 0x4);
    header(&mut frames, 8 + reason.len(), 0x7);
    frames.extend_from_slice(&0u32.to_be_bytes());
    frames.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
    frames.extend_from_slice(reason);
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_settings_then_goaway_with_the_reason() {
        let frames = refusal_frames(b"why");
        assert_eq!(&frames[..9], &[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(&frames[9..18], &[0, 0, 11, 7, 0, 0, 0, 0, 0]);
        assert_eq!(&frames[18..26], &[0, 0, 0, 0, 0, 0, 0, 0xb]);
        assert_eq!(&frames[26..], b"why");
    }

    #[test]
    fn places_come_back_when_connections_close() {
        let metrics = Arc::new(Metrics::new());
        let limit = ConnectionLimit::new(2, Arc::clone(&metrics));
        let a = limit.admit().unwrap();
        let _b = limit.admit().unwrap();
        assert!(limit.admit().is_none());
        let mut sent = Vec::new();
        limit.refuse(Ok(&mut sent));
        assert_eq!(
            sent,
            refusal_frames(b"the worker has 2 connections open, its limit (--max-connections); retry later")
        );
        assert!(metrics.render().contains("tandem_worker_rejections_total{reason=\"connections\"} 1"));
        assert!(metrics.render().contains("tandem_worker_connections 2"));
        drop(a);
        assert!(limit.admit().is_some());
    }
}
