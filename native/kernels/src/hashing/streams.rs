//! BLAKE3 streams behind integer handles. Handles are never reused and
//! never dereferenced as pointers, so an unknown, freed or forged handle is
//! NOT_FOUND instead of undefined behaviour; each stream has its own lock,
//! so many streams update concurrently.

use super::{check_output_len, update};
use crate::error::{Code, KernelError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

enum Stream {
    Open(Box<blake3::Hasher>),
    Finalized,
}

type Table = Mutex<HashMap<u64, Arc<Mutex<Stream>>>>;

static TABLE: OnceLock<Table> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(1);

fn table() -> &'static Table {
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn poisoned() -> KernelError {
    KernelError::new(Code::Internal, "a stream's lock was poisoned by an earlier failure")
}

fn get(handle: u64) -> Result<Arc<Mutex<Stream>>, KernelError> {
    let table = table().lock().map_err(|_| poisoned())?;
    table.get(&handle).cloned().ok_or_else(|| {
        KernelError::not_found(format!(
            "no open hash stream has handle {handle}; it was never opened or was already freed"
        ))
    })
}

/// Opens a stream; returns its handle (never 0).
pub fn open() -> Result<u64, KernelError> {
    let handle = NEXT.fetch_add(1, Ordering::Relaxed);
    let stream = Arc::new(Mutex::new(Stream::Open(Box::new(blake3::Hasher::new()))));
    table().lock().map_err(|_| poisoned())?.insert(handle, stream);
    Ok(handle)
}

/// Appends bytes (any length, including none).
pub fn append(handle: u64, data: &[u8]) -> Result<(), KernelError> {
    let stream = get(handle)?;
    let mut stream = stream.lock().map_err(|_| poisoned())?;
    match &mut *stream {
        Stream::Open(hasher) => {
            update(hasher, data);
            Ok(())
        }
        Stream::Finalized => Err(KernelError::new(
            Code::FailedPrecondition,
            format!("hash stream {handle} is already finalized; open a new stream to hash more data"),
        )),
    }
}

/// Writes the digest (`out.len()` bytes, XOF beyond 32) and closes the
/// stream to further data; the handle stays valid until freed.
pub fn finalize(handle: u64, out: &mut [u8]) -> Result<(), KernelError> {
    check_output_len(out.len())?;
    let stream = get(handle)?;
    let mut stream = stream.lock().map_err(|_| poisoned())?;
    match std::mem::replace(&mut *stream, Stream::Finalized) {
        Stream::Open(hasher) => {
            hasher.finalize_xof().fill(out);
            Ok(())
        }
        Stream::Finalized => Err(KernelError::new(
            Code::FailedPrecondition,
            format!("hash stream {handle} was already finalized; a stream yields one digest"),
        )),
    }
}

/// Frees a stream, finalized or not.
pub fn free(handle: u64) -> Result<(), KernelError> {
    let removed = table().lock().map_err(|_| poisoned())?.remove(&handle);
    removed.map(|_| ()).ok_or_else(|| {
        KernelError::not_found(format!(
            "no open hash stream has handle {handle}; it was never opened or was already freed"
        ))
    })
}

/// Number of streams currently held (for leak checks in tests).
pub fn open_count() -> usize {
    table().lock().map(|t| t.len()).unwrap_or(0)
}
