//! Streaming kernels: open → update* → finalize, then free.
//! Streams are integer handles into a table in Rust, so a stale, freed or
//! forged handle is NOT_FOUND rather than a use-after-free.

use crate::abi::error::{guard, invalid, tandem_error_t};
use crate::abi::kernel::tandem_kernel_t;
use crate::abi::library;

/// Opens a stream of a streaming kernel; `*out` receives its handle (never 0).
///
/// # Safety
/// `kernel` is null or from `tandem_kernel_find`; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_stream_open(kernel: *const tandem_kernel_t, out: *mut u64) -> *mut tandem_error_t {
    guard("tandem_stream_open", &[0; 16], || {
        // SAFETY: the caller guarantees `kernel` is null or a live handle.
        let kernel = unsafe { kernel.as_ref() }.ok_or_else(|| invalid("argument 'kernel' is null"))?;
        // SAFETY: the caller guarantees `out` is null or writable.
        let out = unsafe { out.as_mut() }.ok_or_else(|| invalid("argument 'out' is null"))?;
        *out = library()?.open_stream(kernel.registered())?;
        Ok(())
    })
}

/// Appends `len` bytes (any length, including 0) to a stream.
///
/// # Safety
/// `data` is readable for `len` bytes, or null with `len` 0.
#[no_mangle]
pub unsafe extern "C" fn tandem_stream_update(handle: u64, data: *const u8, len: usize) -> *mut tandem_error_t {
    guard("tandem_stream_update", &[0; 16], || {
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(invalid(format!("argument 'data' is null but its length is {len}")));
        } else {
            // SAFETY: non-null and readable for `len` bytes per the caller.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        library()?.stream_update(handle, bytes)
    })
}

/// Writes the stream's result into `out` (`out_len` bytes; the kernel checks
/// the length). A stream yields one result; it stays allocated until freed.
///
/// # Safety
/// `out` is writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn tandem_stream_finalize(handle: u64, out: *mut u8, out_len: usize) -> *mut tandem_error_t {
    guard("tandem_stream_finalize", &[0; 16], || {
        let out: &mut [u8] = if out_len == 0 {
            &mut []
        } else if out_len > isize::MAX as usize {
            return Err(invalid(format!("argument 'out_len' is {out_len}, beyond any valid allocation")));
        } else if out.is_null() {
            return Err(invalid("argument 'out' is null"));
        } else {
            // SAFETY: non-null and writable for `out_len` bytes per the caller.
            unsafe { std::slice::from_raw_parts_mut(out, out_len) }
        };
        library()?.stream_finalize(handle, out)
    })
}

/// Frees a stream, finalized or not; NOT_FOUND for an unknown handle.
#[no_mangle]
pub extern "C" fn tandem_stream_free(handle: u64) -> *mut tandem_error_t {
    guard("tandem_stream_free", &[0; 16], || library()?.stream_free(handle))
}
