//! Errors as values: a fallible export returns null on success or an owned
//! `tandem_error_t*` (freed by `tandem_error_free`). Every export runs inside
//! [`guard`], so a panic becomes INTERNAL with a correlation id instead of
//! unwinding into the host.

use crate::abi::log;
use crate::{Code, KernelError};
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Opaque error: a gRPC status code and a UTF-8 message.
pub struct tandem_error_t {
    code: i32,
    message: CString,
}

impl tandem_error_t {
    pub(crate) fn boxed(err: KernelError) -> *mut tandem_error_t {
        let message = CString::new(err.message.replace('\0', " ")).unwrap_or_default();
        Box::into_raw(Box::new(tandem_error_t { code: err.code as i32, message }))
    }
}

const NO_ERROR: &[u8] = b"no error\0";

static CORRELATION: AtomicU64 = AtomicU64::new(0);

/// A short id tying a caller-visible message to the detailed log line.
pub(crate) fn correlation_id() -> String {
    let n = CORRELATION.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    format!("{:08x}{:04x}", (nanos ^ (u64::from(std::process::id()) << 32)) as u32, n as u16)
}

/// Runs `body`, turning its error or panic into an owned error pointer.
pub(crate) fn guard<F>(operation: &str, trace_id: &[u8; 16], body: F) -> *mut tandem_error_t
where
    F: FnOnce() -> Result<(), KernelError>,
{
    guard_lazy(|| (operation, *trace_id), body)
}

/// [`guard`] for the hot exports: what the panic's log line names (the
/// operation and the trace id) is read only when `body` panics, so a call
/// that returns pays for the guard nothing but `catch_unwind`'s landing pad.
#[inline(always)]
pub(crate) fn guard_lazy<'a, F>(describe: impl FnOnce() -> (&'a str, [u8; 16]), body: F) -> *mut tandem_error_t
where
    F: FnOnce() -> Result<(), KernelError>,
{
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ptr::null_mut(),
        Ok(Err(err)) => tandem_error_t::boxed(err),
        Err(payload) => {
            let (operation, trace_id) = describe();
            tandem_error_t::boxed(panic_error(operation, &trace_id, payload.as_ref()))
        }
    }
}

/// The trace id as 32 hex digits, or `None` when all zero.
pub(crate) fn trace_hex(trace_id: &[u8; 16]) -> Option<String> {
    if trace_id.iter().all(|b| *b == 0) {
        return None;
    }
    Some(trace_id.iter().map(|b| format!("{b:02x}")).collect())
}

/// Logs a panic payload under a new correlation id and returns INTERNAL.
pub(crate) fn panic_error(operation: &str, trace_id: &[u8; 16], payload: &(dyn std::any::Any + Send)) -> KernelError {
    let detail = super::panic_message(payload);
    let id = correlation_id();
    log::error(operation, trace_hex(trace_id).as_deref(), Code::Internal, &id, &detail);
    KernelError::new(
        Code::Internal,
        format!("internal error in {operation}; the library logged the details (correlation id {id})"),
    )
}

pub(crate) fn invalid(message: impl Into<String>) -> KernelError {
    KernelError::invalid(message)
}

/// The error's gRPC status code; 2 (UNKNOWN) for a null pointer.
///
/// # Safety
/// `error` is null or a live pointer returned by this library.
#[no_mangle]
pub unsafe extern "C" fn tandem_error_code(error: *const tandem_error_t) -> i32 {
    // SAFETY: the caller guarantees `error` is null or live.
    unsafe { error.as_ref() }.map_or(Code::Unknown as i32, |e| e.code)
}

/// The error's NUL-terminated UTF-8 message, valid until the error is freed.
///
/// # Safety
/// `error` is null or a live pointer returned by this library.
#[no_mangle]
pub unsafe extern "C" fn tandem_error_message(error: *const tandem_error_t) -> *const c_char {
    // SAFETY: the caller guarantees `error` is null or live.
    match unsafe { error.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => NO_ERROR.as_ptr().cast(),
    }
}

/// Releases an error.
///
/// # Safety
/// `error` is null or a pointer returned by this library, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tandem_error_free(error: *mut tandem_error_t) {
    if !error.is_null() {
        // SAFETY: the pointer came from Box::into_raw and is freed once.
        drop(unsafe { Box::from_raw(error) });
    }
}
