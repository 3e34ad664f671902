//! `libtandem.so`: Tandem's reference kernels exported through the SDK's C
//! ABI — the same one line a user's kernel library has.
//!
//! The exports themselves (`tandem_*`, DESIGN.md §3) live in
//! `tandem_sdk::abi`; the header is `native/sdk/include/tandem.h`.

tandem_sdk::export!(tandem_kernels::register, name = "tandem", version = env!("CARGO_PKG_VERSION"));

/// Re-exported so that Rust code linking this crate (benchmarks, examples)
/// reaches the C ABI by the crate's name.
pub use tandem_sdk::abi::*;
