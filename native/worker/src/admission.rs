//! Fixed fan-in: at most `max_concurrency` calls run on the compute pool and
//! at most `max_queue` more wait; beyond that a call is refused at once with
//! RESOURCE_EXHAUSTED. Kernels run on the compute pool, never on the async
//! runtime's threads; a panic there becomes INTERNAL with a correlation id.

use crate::grpc::{status, Code, Status};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    pub max_concurrency: usize,
    pub max_queue: usize,
}

/// A place among the admitted calls (running or waiting).
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
}

/// A compute slot, held while the kernel runs.
pub struct Slot {
    _ticket: Option<Ticket>,
    _running: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(max_concurrency: usize, max_queue: usize) -> Admission {
        Admission {
            admitted: Arc::new(Semaphore::new(max_concurrency + max_queue)),
            running: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            max_queue,
        }
    }

    /// Admits a call or refuses it at once when running + waiting is full.
    pub fn admit(&self) -> Result<Ticket, Status> {
        Arc::clone(&self.admitted).try_acquire_owned().map(|permit| Ticket { _permit: permit }).map_err(|_| {
            status(
                Code::ResourceExhausted,
                format!(
                    "the worker is at capacity ({} running, {} queued); retry later",
                    self.max_concurrency, self.max_queue
                ),
            )
        })
    }

    /// Places left for new calls (running or waiting).
    pub fn available(&self) -> usize {
        self.admitted.available_permits()
    }

    /// Waits for a compute slot; returns it with the time waited.
    pub async fn slot(&self, ticket: Ticket) -> Result<(Slot, Duration), Status> {
        let started = Instant::now();
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| status(Code::Unavailable, "the worker is shutting down"))?;
        Ok((Slot { _ticket: Some(ticket), _running: running }, started.elapsed()))
    }

    /// Waits for a compute slot for one chunk of an open stream. A stream
    /// holds no ticket between chunks, so one waiting for its client keeps
    /// no place from other calls; how many wait here is bounded by
    /// `--max-open-streams` instead.
    pub async fn chunk_slot(&self) -> Result<(Slot, Duration), Status> {
        let started = Instant::now();
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| status(Code::Unavailable, "the worker is shutting down"))?;
        Ok((Slot { _ticket: None, _running: running }, started.elapsed()))
    }

    /// Compute slots free now.
    pub fn free_slots(&self) -> usize {
        self.running.available_permits()
    }
}

static NEXT_CORRELATION: AtomicU64 = AtomicU64::new(1);

/// A fresh id that ties a caller-facing INTERNAL message to its log line.
pub fn correlation_id() -> String {
    let n = NEXT_CORRELATION.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{n}", std::process::id())
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs `job` on the compute pool, holding `slot` until it finishes (even
/// when the caller stopped waiting); returns its result and run time.
pub async fn on_pool<T: Send + 'static>(
    slot: Option<Slot>,
    what: &str,
    job: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<(T, Duration), Status> {
    let (tx, rx) = oneshot::channel();
    tandem_sdk::pool::pool().spawn(move || {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(job));
        let elapsed = started.elapsed();
        drop(slot);
        let _ = tx.send((outcome.map_err(|payload| panic_text(payload.as_ref())), elapsed));
    });
    match rx.await {
        Ok((Ok(result), elapsed)) => result.map(|value| (value, elapsed)),
        Ok((Err(panic), _)) => {
            let id = correlation_id();
            crate::log::error(
                "panic in a compute job",
                serde_json::json!({ "what": what, "correlation_id": id, "panic": panic }),
            );
            Err(status(Code::Internal, format!("the worker failed while running '{what}' (correlation id {id})")))
        }
        Err(_) => Err(status(Code::Internal, "a compute job ended without a result")),
    }
}
