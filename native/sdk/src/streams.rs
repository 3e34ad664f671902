//! Open streams of a library behind integer handles. Handles are never
//! reused and never dereferenced as pointers, so an unknown, freed or forged
//! handle is NOT_FOUND instead of undefined behaviour; each stream has its
//! own lock, so many streams update concurrently. The table is bounded.

use crate::error::{Code, KernelError};
use crate::kernel::KernelStream;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Environment variable bounding the streams open at once in one library.
pub const MAX_STREAMS_ENV: &str = "TANDEM_MAX_STREAMS";
/// Default bound on open streams per library.
pub const DEFAULT_MAX_STREAMS: usize = 4096;

enum Slot {
    Open(Box<dyn KernelStream>),
    Finalized,
}

struct Entry {
    kernel: String,
    slot: Mutex<Slot>,
}

pub(crate) struct Streams {
    table: Mutex<HashMap<u64, Arc<Entry>>>,
    next: AtomicU64,
    max: usize,
}

fn poisoned() -> KernelError {
    KernelError::new(Code::Internal, "a stream's lock was poisoned by an earlier failure")
}

fn unknown(handle: u64) -> KernelError {
    KernelError::not_found(format!("no open stream has handle {handle}; it was never opened or was already freed"))
}

impl Streams {
    pub(crate) fn new() -> Streams {
        let max = std::env::var(MAX_STREAMS_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_STREAMS);
        Streams { table: Mutex::new(HashMap::new()), next: AtomicU64::new(1), max }
    }

    fn get(&self, handle: u64) -> Result<Arc<Entry>, KernelError> {
        let table = self.table.lock().map_err(|_| poisoned())?;
        table.get(&handle).cloned().ok_or_else(|| unknown(handle))
    }

    /// Stores an opened stream; returns its handle (never 0).
    pub(crate) fn insert(&self, kernel: &str, stream: Box<dyn KernelStream>) -> Result<u64, KernelError> {
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        if table.len() >= self.max {
            return Err(KernelError::new(
                Code::ResourceExhausted,
                format!(
                    "{} streams are already open in this library (the limit, {MAX_STREAMS_ENV}); free finished streams first",
                    self.max
                ),
            ));
        }
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        table.insert(handle, Arc::new(Entry { kernel: kernel.to_owned(), slot: Mutex::new(Slot::Open(stream)) }));
        Ok(handle)
    }

    pub(crate) fn update(&self, handle: u64, data: &[u8]) -> Result<(), KernelError> {
        let entry = self.get(handle)?;
        let mut slot = entry.slot.lock().map_err(|_| poisoned())?;
        match &mut *slot {
            Slot::Open(stream) => stream.update(data),
            Slot::Finalized => Err(KernelError::new(
                Code::FailedPrecondition,
                format!("stream {handle} of '{}' is already finalized; open a new stream for more data", entry.kernel),
            )),
        }
    }

    /// Writes the result and closes the stream to further data; the handle
    /// stays valid until freed. A refused output length leaves it open.
    pub(crate) fn finalize(&self, handle: u64, out: &mut [u8]) -> Result<(), KernelError> {
        let entry = self.get(handle)?;
        let mut slot = entry.slot.lock().map_err(|_| poisoned())?;
        let Slot::Open(stream) = &mut *slot else {
            return Err(KernelError::new(
                Code::FailedPrecondition,
                format!("stream {handle} of '{}' was already finalized; a stream yields one result", entry.kernel),
            ));
        };
        let outcome = stream.finalize(out);
        if !matches!(&outcome, Err(e) if e.code == Code::InvalidArgument) {
            *slot = Slot::Finalized;
        }
        outcome
    }

    pub(crate) fn free(&self, handle: u64) -> Result<(), KernelError> {
        let removed = self.table.lock().map_err(|_| poisoned())?.remove(&handle);
        removed.map(|_| ()).ok_or_else(|| unknown(handle))
    }

    pub(crate) fn open_count(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }
}
