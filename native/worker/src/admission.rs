//! Fixed fan-in: at most `max_concurrency` calls run on the compute pool and
//! at most `max_queue` more wait; beyond that a call is refused at once with
//! RESOURCE_EXHAUSTED. Kernels run on the compute pool, except calls their
//! client estimated below `--inline-work-threshold`, which run on the async
//! runtime's thread that read them (as the in-process backend runs calls
//! below its work threshold on the caller's thread): a tiny call then costs
//! no hand-off to a pool thread and back. A panic becomes INTERNAL with a
//! correlation id either way.

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
        Ok((outcome, elapsed)) => settle(what, outcome, elapsed),
        Err(_) => Err(status(Code::Internal, "a compute job ended without a result")),
    }
}

/// Runs `job` here, on the calling (I/O) thread, holding `slot` while it
/// runs: for calls too small to be worth the hand-off to the pool.
pub fn inline<T>(slot: Slot, what: &str, job: impl FnOnce() -> Result<T, Status>) -> Result<(T, Duration), Status> {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(job));
    let elapsed = started.elapsed();
    drop(slot);
    settle(what, outcome.map_err(|payload| panic_text(payload.as_ref())), elapsed)
}

/// A job's result and run time, a panic logged and turned into INTERNAL.
fn settle<T>(
    what: &str,
    outcome: Result<Result<T, Status>, String>,
    elapsed: Duration,
) -> Result<(T, Duration), Status> {
    match outcome {
        Ok(result) => result.map(|value| (value, elapsed)),
        Err(panic) => {
            let id = correlation_id();
            crate::log::error(
                "panic in a compute job",
                serde_json::json!({ "what": what, "correlation_id": id, "panic": panic }),
            );
            Err(status(Code::Internal, format!("the worker failed while running '{what}' (correlation id {id})")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inline_runs_on_the_calling_thread_and_contains_panics() {
        let admission = Admission::new(1, 0);
        let (slot, _) = admission.slot(admission.admit().unwrap()).await.unwrap();
        let here = std::thread::current().id();
        let (ran_on, _) = inline(slot, "test", || Ok(std::thread::current().id())).unwrap();
        assert_eq!(ran_on, here);
        assert_eq!(admission.free_slots(), 1, "the slot is given back");
        let (slot, _) = admission.slot(admission.admit().unwrap()).await.unwrap();
        let err = inline(slot, "test", || -> Result<(), Status> { panic!("boom") }).unwrap_err();
        assert_eq!(err.code, Code::Internal);
        assert!(err.message.contains("correlation id") && !err.message.contains("boom"), "{}", err.message);
        assert_eq!(admission.free_slots(), 1);
        let (slot, _) = admission.slot(admission.admit().unwrap()).await.unwrap();
        let (pool_thread, _) = on_pool(Some(slot), "test", || Ok(std::thread::current().id())).await.unwrap();
        assert_ne!(pool_thread, here);
    }
}
