//! Streaming kernels (`hash.blake3`): open → update* → finalize, then free.
//! Streams are integer handles into a table in Rust, so a stale, freed or
//! forged handle is NOT_FOUND rather than a use-after-free.

use crate::error::{guard, invalid, tandem_error_t};
use crate::kernel::tandem_kernel_t;
use tandem_kernels::hashing::{self, streams};
use tandem_kernels::{Code, KernelError};

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
        let name = &kernel.registered().descriptor().name;
        if !kernel.registered().streaming() || name != hashing::KERNEL_NAME {
            return Err(KernelError::new(Code::Unimplemented, format!("kernel '{name}' has no streaming form")));
        }
        *out = streams::open()?;
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
        streams::append(handle, bytes)
    })
}

/// Writes the digest into `out` (`out_len` bytes: 1 to 1 MiB; XOF beyond 32).
/// A stream yields one digest; it stays allocated until freed.
///
/// # Safety
/// `out` is writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn tandem_stream_finalize(handle: u64, out: *mut u8, out_len: usize) -> *mut tandem_error_t {
    guard("tandem_stream_finalize", &[0; 16], || {
        hashing::check_output_len(out_len)?;
        if out.is_null() {
            return Err(invalid("argument 'out' is null"));
        }
        // SAFETY: non-null and writable for `out_len` bytes per the caller.
        let out = unsafe { std::slice::from_raw_parts_mut(out, out_len) };
        streams::finalize(handle, out)
    })
}

/// Frees a stream, finalized or not; NOT_FOUND for an unknown handle.
#[no_mangle]
pub extern "C" fn tandem_stream_free(handle: u64) -> *mut tandem_error_t {
    guard("tandem_stream_free", &[0; 16], || streams::free(handle))
}
