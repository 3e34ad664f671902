//! Helpers the C ABI tests share: errors taken and freed, kernels found,
//! tensor headers over Rust slices.
#![allow(dead_code)]

use std::ffi::CStr;
use std::ptr::null;
use tandem::*;

/// An owned error's code and message (the error is freed).
pub fn take(error: *mut tandem_error_t) -> Option<(i32, String)> {
    if error.is_null() {
        return None;
    }
    // SAFETY: a live error this library returned, freed once here.
    unsafe {
        let code = tandem_error_code(error);
        let message = CStr::from_ptr(tandem_error_message(error)).to_string_lossy().into_owned();
        tandem_error_free(error);
        Some((code, message))
    }
}

pub fn ok(error: *mut tandem_error_t) {
    if let Some((code, message)) = take(error) {
        panic!("{code}: {message}");
    }
}

pub fn find(name: &str) -> *const tandem_kernel_t {
    let mut kernel = null();
    // SAFETY: valid name and out pointer.
    ok(unsafe { tandem_kernel_find(name.as_ptr(), name.len(), &mut kernel) });
    kernel
}

pub fn tensor<T>(data: &[T], shape: &[i64], dtype: tandem_dtype_t) -> tandem_tensor_t {
    let mut dims = [0; TANDEM_MAX_RANK];
    dims[..shape.len()].copy_from_slice(shape);
    tandem_tensor_t {
        data: data.as_ptr().cast(),
        byte_len: std::mem::size_of_val(data) as u64,
        shape: dims,
        rank: shape.len() as u32,
        dtype,
    }
}

pub fn tensor_mut<T>(data: &mut [T], shape: &[i64], dtype: tandem_dtype_t) -> tandem_tensor_mut_t {
    let t = tensor(data, shape, dtype);
    tandem_tensor_mut_t { data: data.as_mut_ptr().cast(), byte_len: t.byte_len, shape: t.shape, rank: t.rank, dtype }
}
