//! Tandem's kernels as plain safe Rust, with their descriptors and the registry
//! that the C ABI (`tandem-ffi`) and the worker serve.
//!
//! Layout:
//! - [`error`]: the status-code taxonomy shared by every boundary.
//! - [`tensor`]: borrowed tensor views, dtypes and parameters.
//! - [`context`]: per-call cancellation, deadline and trace context.
//! - [`descriptor`]: the protobuf descriptor types generated from `proto/`.
//! - [`validate`]: checks an invocation against its descriptor.
//! - [`registry`]: the kernel trait, states and the process-wide registry.
//! - [`pool`]: the fixed compute pool every kernel runs on.
//! - [`similarity`]: `similarity.topk` over vector collections.
//! - [`montecarlo`]: `montecarlo.european`, deterministic option pricing.
//! - [`hashing`]: `hash.blake3`, one-shot and streaming.
//! - [`diagnostics`]: `diagnostics.noop` (boundary cost) and the opt-in
//!   `diagnostics.panic` fault kernel.

pub mod context;
pub mod descriptor;
pub mod diagnostics;
pub mod error;
pub mod hashing;
pub mod montecarlo;
pub mod pool;
pub mod registry;
pub mod similarity;
pub mod tensor;
pub mod validate;

pub use context::CallContext;
pub use error::{Code, KernelError};
pub use registry::{registry, Invocation, Kernel, RegisteredKernel, Registry, State};
pub use tensor::{DType, Param, TensorMut, TensorRef};

/// ABI version: major in the high 16 bits, minor in the low 16 bits. A host
/// refuses a library whose major differs from the one it was built against.
pub const ABI_VERSION: u32 = 1 << 16;
