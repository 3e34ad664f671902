//! `hash.blake3`: BLAKE3 digests (Debian's `blake3` crate, with its SIMD and,
//! for large inputs, multi-threaded paths) as a one-shot kernel and as
//! streams that live in Rust behind integer handles.
//!
//! Output length is the output buffer's length: 1 byte to 1 MiB (extended
//! output, XOF, beyond 32 bytes).

pub mod streams;

use crate::descriptor::{self, tensor, KernelDescriptor, D};
use crate::error::KernelError;
use crate::pool::pool;
use crate::registry::{Invocation, Kernel};
use crate::tensor::DType;

pub const KERNEL_NAME: &str = "hash.blake3";
/// Longest digest a call may ask for.
pub const MAX_OUTPUT: usize = 1 << 20;
/// Inputs at least this long are hashed on every core of the pool.
pub const PARALLEL_THRESHOLD: usize = 128 * 1024;

pub struct Blake3 {
    descriptor: KernelDescriptor,
}

impl Blake3 {
    pub fn new() -> Blake3 {
        Blake3 {
            descriptor: KernelDescriptor {
                name: KERNEL_NAME.into(),
                version: 1,
                inputs: vec![tensor("data", DType::U8, &[D::Sym("len")], false)],
                outputs: vec![tensor("digest", DType::U8, &[D::Sym("output_len")], false)],
                params: vec![],
                state_kind: String::new(),
                flags: descriptor::flags(true, false, true, true),
            },
        }
    }
}

impl Default for Blake3 {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks a requested digest length.
pub fn check_output_len(len: usize) -> Result<(), KernelError> {
    if len == 0 || len > MAX_OUTPUT {
        return Err(KernelError::invalid(format!("output 'digest' must be 1 to {MAX_OUTPUT} bytes long, got {len}")));
    }
    Ok(())
}

/// Feeds `data` to `hasher`, on every core when it is large.
pub fn update(hasher: &mut blake3::Hasher, data: &[u8]) {
    if data.len() >= PARALLEL_THRESHOLD {
        pool().install(|| hasher.update_rayon(data));
    } else {
        hasher.update(data);
    }
}

impl Kernel for Blake3 {
    fn descriptor(&self) -> &KernelDescriptor {
        &self.descriptor
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        if call.outputs.len() != 1 {
            return Err(KernelError::invalid(format!(
                "hash.blake3 writes 1 output (digest), got {}",
                call.outputs.len()
            )));
        }
        let out = &mut call.outputs[0];
        if out.dtype != DType::U8 || out.shape.len() != 1 || out.shape[0] != out.bytes.len() {
            return Err(KernelError::invalid("output 'digest' must be a u8 vector whose shape matches its length"));
        }
        check_output_len(out.bytes.len())?;
        let mut hasher = blake3::Hasher::new();
        update(&mut hasher, call.inputs[0].bytes);
        call.ctx.check()?;
        hasher.finalize_xof().fill(out.bytes);
        Ok(())
    }

    fn streaming(&self) -> bool {
        true
    }
}
