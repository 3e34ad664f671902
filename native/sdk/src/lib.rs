//! `tandem-sdk`: what a kernel author depends on to serve Rust kernels to a
//! .NET service through Tandem — in process (the C ABI of the author's own
//! `cdylib`) or in `tandem-worker` (`--kernels PATH`).
//!
//! A kernel library is a crate with `crate-type = ["cdylib", "rlib"]` whose
//! `lib.rs` registers its kernels and exports the C ABI with one line:
//!
//! ```
//! use tandem_sdk::prelude::*;
//!
//! /// `scale.double`: y = 2·x, row by row.
//! struct Double;
//!
//! impl Kernel for Double {
//!     fn descriptor(&self) -> KernelDescriptor {
//!         KernelDescriptor::builder("scale.double", 1)
//!             .summary("Doubles every element.")
//!             .input(TensorSpec::new("x", DType::F64, [D::sym("batch")]).finite_only())
//!             .output(TensorSpec::new("y", DType::F64, [D::sym("batch")]))
//!             .flags(Flags { idempotent: true, batchable: true, deterministic: true, ..Flags::default() })
//!             .build()
//!     }
//!
//!     // The library checked x and the output y against the descriptor first.
//!     fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
//!         let x = call.inputs[0].f64s("x")?;
//!         for (y, x) in call.outputs[0].f64s_mut("y")?.iter_mut().zip(x) {
//!             *y = 2.0 * x;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // In the cdylib's lib.rs (once per library); it also writes `pub fn register`.
//! tandem_sdk::export!(kernels: [Double]);
//! # fn main() {
//! #     let library = tandem_sdk::Library::from_register("doc", "0.1.0", register).unwrap();
//! #     let kernel = library.kernel("scale.double").unwrap();
//! #     library.warm_up(kernel).unwrap();
//! #     assert_eq!(kernel.descriptor().hash.len(), 32);
//! #     let x = [1.5, -2.0];
//! #     let mut y = [0.0; 2];
//! #     let mut outputs = [TensorMut::of(&[2], &mut y)];
//! #     library.invoke(kernel, None, &[TensorRef::of(&[2], &x)], &[], &mut outputs, &CallContext::default()).unwrap();
//! #     assert_eq!(y, [3.0, -4.0]);
//! # }
//! ```
//!
//! Layout:
//! - [`kernel`]: the [`Kernel`] trait, the [`Invocation`] a call sees, and
//!   the streaming traits ([`StreamingKernel`], [`KernelStream`]).
//! - [`state`]: open state kinds ([`StateKind`]) and the type-erased [`State`].
//! - [`descriptor`]: the protobuf descriptor types, their builder, the hash.
//! - [`tensor`]: dtypes, typed read-only input views and writable outputs,
//!   parameters.
//! - [`context`]: cancellation, deadline and trace id of a call.
//! - [`validate`]: checks a call against its descriptor (before the kernel).
//! - [`check`]: checks a descriptor before a library is built.
//! - [`library`]: a built library: lookup, states, calls, streams, warm-up.
//! - `prepared`: calls validated once and repeated ([`library::PreparedCall`]).
//! - [`repository`]: the durable state repository (states written once,
//!   loaded memory-mapped by name and version).
//! - [`warmup`]: warm-up derived from the descriptor.
//! - [`pool`]: the compute pool the library's kernels share.
//! - [`simd`]: run-time SIMD path selection (forcible for tests).
//! - [`abi`]: the C ABI every kernel library exports, and [`export!`].
//! - [`error`]: the status codes of every boundary.

pub mod abi;
pub mod check;
pub mod context;
pub mod descriptor;
pub mod error;
pub mod kernel;
pub mod library;
pub mod pool;
mod prepared;
pub mod repository;
pub mod simd;
pub mod state;
mod streams;
pub mod tensor;
pub mod validate;
pub mod warmup;

/// What a kernel author usually needs, in one `use tandem_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::descriptor::{Flags, KernelDescriptor, ParamSpec, StateKindDescriptor, TensorSpec, D, W};
    pub use crate::{
        CallContext, DType, Invocation, Kernel, KernelError, KernelStream, LibraryBuilder, Param, StateKind,
        StreamingKernel, TensorMut, TensorRef, WarmTensor, WarmUp,
    };
}

pub use context::CallContext;
pub use error::{Code, KernelError};
pub use kernel::{Invocation, Kernel, KernelStream, StreamingKernel};
pub use library::{Library, LibraryBuilder, RegisteredKernel};
pub use repository::{Repository, SharedBytes, StateId, StoredState};
pub use state::{State, StateKind};
pub use streams::{DEFAULT_MAX_STREAMS, MAX_STREAMS_ENV};
pub use tensor::{DType, Element, Param, TensorMut, TensorRef};
pub use warmup::{WarmTensor, WarmUp};

/// ABI version: major in the high 16 bits, minor in the low 16 bits. A host
/// refuses a library whose major differs from the one it was built against.
/// Minor 1 added `tandem_library_status` and `tandem_kernel_warm_up`, and
/// descriptors with limits, output symbols and hashes. Minor 2 added prepared
/// calls (`tandem_kernel_prepare`, `tandem_prepared_invoke`, `tandem_prepared_varies_rows`,
/// `tandem_prepared_free`) and `tandem_slice_t`. Minor 3 added the state
/// repository (`tandem_state_store`, `tandem_state_load`, `tandem_repository_list`,
/// `tandem_repository_remove`, `tandem_stored_open`, `tandem_stored_tensors`,
/// `tandem_stored_free`).
pub const ABI_VERSION: u32 = (1 << 16) | 3;
