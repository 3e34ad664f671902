//! What a loaded library hands out, each owned by one Rust value that frees
//! it through that library: errors, cancel tokens, states and streams.

use std::ffi::{c_char, CStr};
use tandem_sdk::abi::{tandem_cancel_t, tandem_error_t, tandem_state_t};
use tandem_sdk::{Code, KernelError, KernelStream};

pub(super) type ErrorPtr = *mut tandem_error_t;

/// Reads and frees the errors a library returns (owned `tandem_error_t*`).
#[derive(Clone, Copy)]
pub(super) struct ErrorReader {
    pub(super) code: unsafe extern "C" fn(*const tandem_error_t) -> i32,
    pub(super) message: unsafe extern "C" fn(*const tandem_error_t) -> *const c_char,
    pub(super) free: unsafe extern "C" fn(ErrorPtr),
}

impl ErrorReader {
    pub(super) fn check(self, error: ErrorPtr) -> Result<(), KernelError> {
        if error.is_null() {
            return Ok(());
        }
        // SAFETY: a live error from the library, read then freed once.
        unsafe {
            let code = Code::from_raw((self.code)(error));
            let message = CStr::from_ptr((self.message)(error)).to_string_lossy().into_owned();
            (self.free)(error);
            Err(KernelError::new(code, message))
        }
    }
}

/// A stream open in a loaded library; freed there when dropped.
pub(super) struct ForeignStream {
    pub(super) handle: u64,
    pub(super) update: unsafe extern "C" fn(u64, *const u8, usize) -> ErrorPtr,
    pub(super) finalize: unsafe extern "C" fn(u64, *mut u8, usize) -> ErrorPtr,
    pub(super) free: extern "C" fn(u64) -> ErrorPtr,
    pub(super) errors: ErrorReader,
}

impl KernelStream for ForeignStream {
    fn update(&mut self, data: &[u8]) -> Result<(), KernelError> {
        // SAFETY: `data` is readable for its length during the call.
        self.errors.check(unsafe { (self.update)(self.handle, data.as_ptr(), data.len()) })
    }

    fn finalize(&mut self, output: &mut [u8]) -> Result<(), KernelError> {
        // SAFETY: `output` is writable for its length during the call.
        self.errors.check(unsafe { (self.finalize)(self.handle, output.as_mut_ptr(), output.len()) })
    }
}

impl Drop for ForeignStream {
    fn drop(&mut self) {
        // A stream that is already gone (NOT_FOUND) has nothing left to free.
        let _ = self.errors.check((self.free)(self.handle));
    }
}

/// A cancellation token of the library, freed when the last holder drops it.
pub(super) struct ForeignCancel {
    pub(super) token: *mut tandem_cancel_t,
    pub(super) free: unsafe extern "C" fn(*mut tandem_cancel_t),
}

// SAFETY: tandem_cancel_t is an atomic flag behind a pointer; the ABI allows
// setting it from any thread while a call reads it.
unsafe impl Send for ForeignCancel {}
// SAFETY: as above.
unsafe impl Sync for ForeignCancel {}

impl Drop for ForeignCancel {
    fn drop(&mut self) {
        // SAFETY: the token came from this library's cancel_new and is freed once.
        unsafe { (self.free)(self.token) };
    }
}

/// A state held by a loaded library.
pub(super) struct ForeignState {
    pub(super) handle: *mut tandem_state_t,
    pub(super) free: unsafe extern "C" fn(*mut tandem_state_t),
}

// SAFETY: states are immutable once created and the ABI lets any thread read
// them (calls in flight hold their own reference inside the library).
unsafe impl Send for ForeignState {}
// SAFETY: as above.
unsafe impl Sync for ForeignState {}

impl Drop for ForeignState {
    fn drop(&mut self) {
        // SAFETY: the handle came from this library's state_create and is freed once.
        unsafe { (self.free)(self.handle) };
    }
}
