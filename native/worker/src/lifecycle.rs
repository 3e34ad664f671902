//! Readiness, draining and the calls in flight. Readiness is a watch
//! channel, so health Watch streams see every change; draining refuses new
//! work, waits for calls in flight within the grace period, then cancels
//! whatever is left through each call's flag.

use crate::pb::health::health_check_response::ServingStatus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_sdk::context::CancelFlag;
use tokio::sync::{watch, Notify};

pub struct Lifecycle {
    readiness: watch::Sender<ServingStatus>,
    draining: AtomicBool,
    drain_requested: Notify,
    shutdown: watch::Sender<bool>,
    calls: Mutex<HashMap<u64, Arc<CancelFlag>>>,
    next_call: AtomicU64,
    idle: Notify,
}

/// A call counted as in flight until dropped.
pub struct InFlight {
    lifecycle: Arc<Lifecycle>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now_idle = match self.lifecycle.calls.lock() {
            Ok(mut calls) => {
                calls.remove(&self.id);
                calls.is_empty()
            }
            Err(_) => true,
        };
        if now_idle {
            self.lifecycle.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle {
            readiness: watch::channel(ServingStatus::NotServing).0,
            draining: AtomicBool::new(false),
            drain_requested: Notify::new(),
            shutdown: watch::channel(false).0,
            calls: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
            idle: Notify::new(),
        }
    }

    pub fn readiness(&self) -> ServingStatus {
        *self.readiness.borrow()
    }

    pub fn watch_readiness(&self) -> watch::Receiver<ServingStatus> {
        self.readiness.subscribe()
    }

    /// Marks the worker ready, unless it already started draining.
    pub fn set_serving(&self) -> bool {
        if self.is_draining() {
            return false;
        }
        self.readiness.send_replace(ServingStatus::Serving);
        true
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining (idempotent); returns whether this call started it.
    pub fn request_drain(&self) -> bool {
        let first = !self.draining.swap(true, Ordering::AcqRel);
        self.readiness.send_replace(ServingStatus::NotServing);
        self.drain_requested.notify_one();
        first
    }

    pub async fn drain_requested(&self) {
        if self.is_draining() {
            return;
        }
        self.drain_requested.notified().await;
    }

    /// Counts a call as in flight, with the flag that cancels it.
    pub fn track(self: &Arc<Self>, cancel: Arc<CancelFlag>) -> InFlight {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(id, cancel);
        }
        InFlight { lifecycle: Arc::clone(self), id }
    }

    pub fn in_flight(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Waits until no call is in flight or `timeout` passes; true when idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// Sets every in-flight call's cancel flag.
    pub fn cancel_all(&self) -> usize {
        let calls = self.calls.lock().map(|c| c.values().cloned().collect::<Vec<_>>()).unwrap_or_default();
        for flag in &calls {
            flag.cancel();
        }
        calls.len()
    }

    /// Tells connections and server streams to finish.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn watch_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}
