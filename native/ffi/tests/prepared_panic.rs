//! A kernel that panics inside a prepared call: the repeat's fast path runs
//! the kernel inside the same panic guard as every export, so the host gets
//! INTERNAL with a correlation id, never an unwind or an abort. Its own test
//! binary, because the fault kernel registers only when
//! `TANDEM_TEST_KERNELS=1` is set before the library's first call.

use std::ffi::CStr;
use std::ptr::{null, null_mut};
use tandem::*;

#[test]
fn a_panicking_kernel_in_a_prepared_call_is_internal_with_a_correlation_id() {
    // SAFETY: set before this binary's only test makes the library's first call.
    unsafe { std::env::set_var("TANDEM_TEST_KERNELS", "1") };
    let name = "diagnostics.panic";
    let mut kernel = null();
    // SAFETY: valid name and out pointer.
    assert!(unsafe { tandem_kernel_find(name.as_ptr(), name.len(), &mut kernel) }.is_null());
    let data = [7u8; 4];
    let input = tandem_tensor_t {
        data: data.as_ptr().cast(),
        byte_len: 4,
        shape: [4, 0, 0, 0],
        rank: 1,
        dtype: TANDEM_DTYPE_U8,
    };
    let mut prepared = null_mut();
    // SAFETY: live arrays and out pointer; preparing runs no kernel.
    assert!(unsafe { tandem_kernel_prepare(kernel, &input, 1, null(), 0, null(), 0, &mut prepared) }.is_null());
    let slice = tandem_slice_t { data: data.as_ptr().cast(), byte_len: 4 };
    for _ in 0..2 {
        // SAFETY: live prepared call and buffer.
        let error =
            unsafe { tandem_prepared_invoke(prepared, null(), TANDEM_ROWS_AS_PREPARED, &slice, 1, null(), 0, null()) };
        assert!(!error.is_null());
        // SAFETY: a live error, freed once.
        let (code, message) = unsafe {
            let pair =
                (tandem_error_code(error), CStr::from_ptr(tandem_error_message(error)).to_string_lossy().into_owned());
            tandem_error_free(error);
            pair
        };
        assert_eq!(code, 13, "{message}");
        assert!(message.contains("correlation id"), "{message}");
        assert!(!message.contains("invoked with"), "the panic's text stays in the log: {message}");
    }
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}
