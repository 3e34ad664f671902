//! Borrowed tensors (contiguous, row-major, little-endian) and parameters.

use crate::error::KernelError;

/// Maximum rank of a tensor at the boundary.
pub const MAX_RANK: usize = 4;

/// Element types; numbers match `tandem.v1.DType` and `tandem_dtype_t`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    U8 = 1,
    I32 = 2,
    I64 = 3,
    F32 = 4,
    F64 = 5,
}

impl DType {
    pub fn from_raw(raw: u32) -> Option<DType> {
        Some(match raw {
            1 => DType::U8,
            2 => DType::I32,
            3 => DType::I64,
            4 => DType::F32,
            5 => DType::F64,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::I32 => 4,
            DType::I64 | DType::F64 => 8,
            DType::F32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A plain numeric element type a tensor may hold: every bit pattern of its
/// size is a valid value, so its slices may be viewed as bytes and back.
/// Implemented for `u8`, `i32`, `i64`, `f32` and `f64` only (sealed).
pub trait Element: Copy + sealed::Sealed + 'static {
    /// The tensor dtype of this element type.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

element!(u8 => U8, i32 => I32, i64 => I64, f32 => F32, f64 => F64);

/// An immutable input tensor borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub bytes: &'a [u8],
}

/// An output tensor the caller provided; the kernel fills it completely.
#[derive(Debug)]
pub struct TensorMut<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub bytes: &'a mut [u8],
}

fn cast<'a, T>(bytes: &'a [u8], name: &str) -> Result<&'a [T], KernelError> {
    // SAFETY: T is only instantiated with plain numeric types (f32, f64, i32,
    // i64) for which every bit pattern is valid; align_to checks alignment.
    let (head, body, tail) = unsafe { bytes.align_to::<T>() };
    if !head.is_empty() || !tail.is_empty() {
        return Err(KernelError::invalid(format!(
            "tensor '{name}' data is not aligned to {} bytes or its length is not a whole number of elements",
            std::mem::align_of::<T>()
        )));
    }
    Ok(body)
}

fn cast_mut<'a, T>(bytes: &'a mut [u8], name: &str) -> Result<&'a mut [T], KernelError> {
    // SAFETY: as in `cast`; the output is only written with valid values.
    let (head, body, tail) = unsafe { bytes.align_to_mut::<T>() };
    if !head.is_empty() || !tail.is_empty() {
        return Err(KernelError::invalid(format!(
            "output '{name}' buffer is not aligned to {} bytes or its length is not a whole number of elements",
            std::mem::align_of::<T>()
        )));
    }
    Ok(body)
}

impl<'a> TensorRef<'a> {
    /// A tensor over `data` with `shape` (row-major), for tests and for
    /// kernels that call other kernels: `TensorRef::of(&[2, 3], &values)`.
    pub fn of<T: Element>(shape: &'a [usize], data: &'a [T]) -> TensorRef<'a> {
        // SAFETY: `data` is a live, initialised slice of a plain numeric type
        // (Element is sealed to u8/i32/i64/f32/f64, which have no padding), so
        // its size_of_val bytes are readable as u8 for the same lifetime.
        let bytes = unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) };
        TensorRef { dtype: T::DTYPE, shape, bytes }
    }

    pub fn f32s(&self, name: &str) -> Result<&'a [f32], KernelError> {
        cast(self.bytes, name)
    }

    pub fn i64s(&self, name: &str) -> Result<&'a [i64], KernelError> {
        cast(self.bytes, name)
    }

    pub fn f64s(&self, name: &str) -> Result<&'a [f64], KernelError> {
        cast(self.bytes, name)
    }
}

impl<'a> TensorMut<'a> {
    /// An output tensor over `data` with `shape`: `TensorMut::of(&[2, 3], &mut out)`.
    pub fn of<T: Element>(shape: &'a [usize], data: &'a mut [T]) -> TensorMut<'a> {
        // SAFETY: as in `TensorRef::of`; in addition every byte pattern the
        // kernel writes is a valid T (Element's contract), and the exclusive
        // borrow of `data` moves into the returned view, so nothing aliases it.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(data)) };
        TensorMut { dtype: T::DTYPE, shape, bytes }
    }

    pub fn f32s_mut(&mut self, name: &str) -> Result<&mut [f32], KernelError> {
        cast_mut(self.bytes, name)
    }

    pub fn i64s_mut(&mut self, name: &str) -> Result<&mut [i64], KernelError> {
        cast_mut(self.bytes, name)
    }

    pub fn f64s_mut(&mut self, name: &str) -> Result<&mut [f64], KernelError> {
        cast_mut(self.bytes, name)
    }
}

/// A parameter value, positional in descriptor order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param {
    Int(i64),
    Float(f64),
}

impl Param {
    pub fn as_i64(self) -> i64 {
        match self {
            Param::Int(v) => v,
            Param::Float(v) => v as i64,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Param::Int(v) => v as f64,
            Param::Float(v) => v,
        }
    }
}
