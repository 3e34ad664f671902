//! States (such as vector collections) behind opaque handles. A handle holds
//! one reference to a shared state; calls in flight hold their own, so
//! freeing a handle while a call reads the state is safe.

use crate::abi::error::{guard, invalid, tandem_error_t};
use crate::abi::kernel::{optional_tensors, str_arg};
use crate::abi::library;
use crate::abi::types::{tandem_tensor_t, TANDEM_MAX_RANK, TANDEM_MAX_TENSORS};
use crate::State;
use std::sync::Arc;

/// Opaque; created by `tandem_state_create`, released by `tandem_state_free`.
pub struct tandem_state_t {
    pub(crate) state: Arc<State>,
}

/// Builds a state of kind `kind` (UTF-8, `kind_len` bytes) from `tensors`;
/// a tensor with dtype 0 is an omitted optional tensor. The tensors are
/// copied; on success `*out` owns the new state.
///
/// # Safety
/// `kind` points to `kind_len` readable bytes; `tensors` to `count` structs
/// whose data pointers are readable for `byte_len` bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_state_create(
    kind: *const u8,
    kind_len: usize,
    tensors: *const tandem_tensor_t,
    count: usize,
    out: *mut *mut tandem_state_t,
) -> *mut tandem_error_t {
    guard("tandem_state_create", &[0; 16], || {
        if out.is_null() {
            return Err(invalid("argument 'out' is null"));
        }
        // SAFETY: `out` is non-null and writable per the contract.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: forwarded caller guarantees.
        let kind = unsafe { str_arg(kind, kind_len, "kind") }?;
        let mut shapes = [[0usize; TANDEM_MAX_RANK]; TANDEM_MAX_TENSORS];
        // SAFETY: forwarded caller guarantees.
        let present = unsafe { optional_tensors(tensors, count, &mut shapes) }?;
        let state = library()?.create_state(kind, &present[..count])?;
        let handle = Box::new(tandem_state_t { state: Arc::new(state) });
        // SAFETY: `out` is non-null and writable per the contract.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Releases the caller's reference to a state.
///
/// # Safety
/// `state` is null or a pointer from `tandem_state_create`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tandem_state_free(state: *mut tandem_state_t) {
    if !state.is_null() {
        // SAFETY: the pointer came from Box::into_raw and is freed once;
        // dropping a state cannot panic.
        drop(unsafe { Box::from_raw(state) });
    }
}

/// Size in bytes the state holds (0 for null).
///
/// # Safety
/// `state` is null or live.
#[no_mangle]
pub unsafe extern "C" fn tandem_state_size_bytes(state: *const tandem_state_t) -> u64 {
    // SAFETY: the caller guarantees `state` is null or live.
    match unsafe { state.as_ref() } {
        Some(s) => s.state.size_bytes() as u64,
        None => 0,
    }
}
