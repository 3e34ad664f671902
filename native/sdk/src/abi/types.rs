//! Blittable structs shared with C#. Their sizes and field offsets are
//! published by `tandem_layout_table` and asserted by tests on both sides.

use crate::tensor::MAX_RANK;
use std::ffi::c_void;

/// Maximum rank of a tensor crossing the ABI.
pub const TANDEM_MAX_RANK: usize = 4;
/// Maximum number of tensors (inputs or outputs) in one call.
pub const TANDEM_MAX_TENSORS: usize = 8;
/// Maximum number of parameters in one call.
pub const TANDEM_MAX_PARAMS: usize = 16;

const _: () = assert!(TANDEM_MAX_RANK == MAX_RANK);

/// Element type codes (`tandem.v1.DType`).
pub type tandem_dtype_t = u32;
pub const TANDEM_DTYPE_U8: tandem_dtype_t = 1;
pub const TANDEM_DTYPE_I32: tandem_dtype_t = 2;
pub const TANDEM_DTYPE_I64: tandem_dtype_t = 3;
pub const TANDEM_DTYPE_F32: tandem_dtype_t = 4;
pub const TANDEM_DTYPE_F64: tandem_dtype_t = 5;

/// A borrowed input tensor: contiguous, row-major, little-endian. `data` may
/// be null only when `byte_len` is 0. In `tandem_state_create`, dtype 0 marks
/// an omitted optional tensor.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tandem_tensor_t {
    pub data: *const c_void,
    pub byte_len: u64,
    pub shape: [i64; TANDEM_MAX_RANK],
    pub rank: u32,
    pub dtype: tandem_dtype_t,
}

/// A caller-provided output buffer the kernel fills completely.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tandem_tensor_mut_t {
    pub data: *mut c_void,
    pub byte_len: u64,
    pub shape: [i64; TANDEM_MAX_RANK],
    pub rank: u32,
    pub dtype: tandem_dtype_t,
}

/// One buffer of a prepared call's repeat (`tandem_prepared_invoke`): its
/// data and length; the dtype and shape were fixed at preparation. `data`
/// may be null only when `byte_len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tandem_slice_t {
    pub data: *const c_void,
    pub byte_len: u64,
}

/// A writable buffer of a prepared call's repeat.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tandem_slice_mut_t {
    pub data: *mut c_void,
    pub byte_len: u64,
}

/// `rows` of `tandem_prepared_invoke` meaning "the row count it was prepared with".
pub const TANDEM_ROWS_AS_PREPARED: u64 = u64::MAX;

pub type tandem_param_kind_t = u32;
pub const TANDEM_PARAM_INT: tandem_param_kind_t = 1;
pub const TANDEM_PARAM_FLOAT: tandem_param_kind_t = 2;

/// One parameter, positional in descriptor order; `kind` says which value
/// field is meaningful.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tandem_param_t {
    pub kind: tandem_param_kind_t,
    pub reserved: u32,
    pub int_value: i64,
    pub float_value: f64,
}

/// Per-call context. `timeout_ns` 0 means no deadline; `cancel` may be null.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tandem_call_context_t {
    pub timeout_ns: u64,
    pub cancel: *const crate::abi::cancel::tandem_cancel_t,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u32,
    pub reserved: u32,
}

/// Bytes owned by the library; release with `tandem_buffer_free`.
#[repr(C)]
#[derive(Debug)]
pub struct tandem_buffer_t {
    pub data: *mut u8,
    pub len: u64,
    pub capacity: u64,
}

/// Facts about the loaded library's runtime.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct tandem_runtime_info_t {
    pub abi_version: u32,
    pub compute_threads: u32,
    pub max_pending: u32,
    /// 1 = AVX-512, 2 = AVX2+FMA, 3 = portable.
    pub isa: u32,
}
