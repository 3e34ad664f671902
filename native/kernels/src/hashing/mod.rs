//! `hash.blake3`: BLAKE3 digests (Debian's `blake3` crate, with its SIMD and,
//! for large inputs, multi-threaded paths) as a one-shot kernel and as
//! streams that live in Rust behind integer handles.
//!
//! Output length is the output buffer's length: 1 byte to 1 MiB (extended
//! output, XOF, beyond 32 bytes).

use tandem_sdk::descriptor::{Flags, KernelDescriptor, TensorSpec, D, W};
use tandem_sdk::pool::pool;
use tandem_sdk::{DType, Invocation, Kernel, KernelError, KernelStream, StreamingKernel};

pub const KERNEL_NAME: &str = "hash.blake3";
/// Longest digest a call may ask for.
pub const MAX_OUTPUT: usize = 1 << 20;
/// Most bytes one one-shot call may hash (about a second of both cores);
/// longer inputs go through a stream.
pub const MAX_WORK_PER_CALL: i64 = 1 << 30;
/// Inputs at least this long are hashed on every core of the pool.
pub const PARALLEL_THRESHOLD: usize = 128 * 1024;

/// `hash.blake3`, one-shot and as a stream.
pub struct Blake3;

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
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor::builder(KERNEL_NAME, 1)
            .summary("BLAKE3 of a byte string, with extended output beyond 32 bytes.")
            .input(TensorSpec::new("data", DType::U8, [D::sym("len")]))
            .output(TensorSpec::new("digest", DType::U8, [D::sym("output_len")]))
            .output_symbol("output_len", MAX_OUTPUT as i64, "digest length in bytes, chosen by the caller")
            .limit("max_output_len", MAX_OUTPUT as i64, "Longest digest (extended output) a call may ask for.")
            .work(&[W::sym("len")], MAX_WORK_PER_CALL)
            .flags(Flags { idempotent: true, deterministic: true, streaming: true, ..Flags::default() })
            .build()
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        // The library checked the output against the descriptor: a u8 vector of output_len bytes.
        let out = &mut call.outputs[0];
        check_output_len(out.bytes.len())?;
        let mut hasher = blake3::Hasher::new();
        update(&mut hasher, call.inputs[0].bytes);
        call.ctx.check()?;
        hasher.finalize_xof().fill(out.bytes);
        Ok(())
    }

    fn stream(&self) -> Option<&dyn StreamingKernel> {
        Some(self)
    }
}

impl StreamingKernel for Blake3 {
    fn open(&self) -> Result<Box<dyn KernelStream>, KernelError> {
        Ok(Box::new(Blake3Stream(Box::new(blake3::Hasher::new()))))
    }
}

/// An open BLAKE3 stream.
pub struct Blake3Stream(Box<blake3::Hasher>);

impl KernelStream for Blake3Stream {
    fn update(&mut self, data: &[u8]) -> Result<(), KernelError> {
        update(&mut self.0, data);
        Ok(())
    }

    fn finalize(&mut self, output: &mut [u8]) -> Result<(), KernelError> {
        check_output_len(output.len())?;
        self.0.finalize_xof().fill(output);
        Ok(())
    }
}
