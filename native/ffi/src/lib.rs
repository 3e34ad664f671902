//! `libtandem.so`: the C ABI over the kernel registry (DESIGN.md §3).
//!
//! Layout:
//! - [`types`]: the `#[repr(C)]` structs shared with C# (layouts tested on
//!   both sides through [`layout`]).
//! - [`error`]: owned error values and the panic guard every export uses.
//! - [`kernel`]: describe, find, synchronous invoke, asynchronous submit.
//! - [`state`]: state create / free.
//! - [`stream`]: streaming kernels (BLAKE3) behind integer handles.
//! - [`cancel`]: the cancellation token shared with a running call.
//! - [`log`]: JSON log lines on stderr.
//! - [`stack`]: the fixed-capacity vector call arguments are decoded into.
//!
//! Ownership: borrowed inputs are never retained after a synchronous call
//! returns (for `submit`, until the completion callback runs); every `*_t*`
//! a function hands out has exactly one paired `_free`.
#![allow(non_camel_case_types)]

pub mod cancel;
pub mod error;
pub mod kernel;
pub mod layout;
pub mod log;
pub mod stack;
pub mod state;
pub mod stream;
pub mod types;

pub use cancel::*;
pub use error::*;
pub use kernel::*;
pub use layout::*;
pub use state::*;
pub use stream::*;
pub use types::*;

/// Major in the high 16 bits, minor in the low 16 bits.
#[no_mangle]
pub extern "C" fn tandem_abi_version() -> u32 {
    tandem_kernels::ABI_VERSION
}
