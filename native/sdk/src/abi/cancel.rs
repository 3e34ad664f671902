//! A cancellation token the host creates, passes in `tandem_call_context_t`
//! and sets when its caller gives up; kernels see it between chunks of work.

use crate::context::CancelFlag;
use std::sync::Arc;

/// Opaque; created by `tandem_cancel_new`, released by `tandem_cancel_free`.
pub struct tandem_cancel_t {
    pub(crate) flag: Arc<CancelFlag>,
}

#[no_mangle]
pub extern "C" fn tandem_cancel_new() -> *mut tandem_cancel_t {
    Box::into_raw(Box::new(tandem_cancel_t { flag: Arc::new(CancelFlag::default()) }))
}

/// Requests cancellation of every call that carries this token.
///
/// # Safety
/// `token` is null or a live pointer from `tandem_cancel_new`.
#[no_mangle]
pub unsafe extern "C" fn tandem_cancel_set(token: *const tandem_cancel_t) {
    // SAFETY: the caller guarantees `token` is null or live.
    if let Some(token) = unsafe { token.as_ref() } {
        token.flag.cancel();
    }
}

/// Releases the caller's reference; running calls keep their own.
///
/// # Safety
/// `token` is null or a pointer from `tandem_cancel_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tandem_cancel_free(token: *mut tandem_cancel_t) {
    if !token.is_null() {
        // SAFETY: the pointer came from Box::into_raw and is freed once.
        drop(unsafe { Box::from_raw(token) });
    }
}
