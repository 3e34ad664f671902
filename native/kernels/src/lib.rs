//! Tandem's reference kernels, written against `tandem-sdk` only — the way a
//! user writes theirs. `libtandem.so` (`native/ffi`) exports them with
//! `tandem_sdk::export!(tandem_kernels::register)`; the worker serves them
//! as its built-in library.
//!
//! Layout:
//! - [`similarity`]: `similarity.topk` over the `vector_collection` state kind.
//! - [`montecarlo`]: `montecarlo.european`, deterministic option pricing.
//! - [`hashing`]: `hash.blake3`, one-shot and streaming.
//! - [`diagnostics`]: `diagnostics.noop` (boundary cost) and the opt-in
//!   `diagnostics.panic` fault kernel.

pub mod diagnostics;
pub mod hashing;
pub mod montecarlo;
pub mod similarity;

use tandem_sdk::{KernelError, Library, LibraryBuilder};

/// Environment variable that adds fault-injection kernels (tests only).
pub const TEST_KERNELS_ENV: &str = "TANDEM_TEST_KERNELS";

/// Registers the reference kernels (and, with `TANDEM_TEST_KERNELS=1`, the
/// fault kernels).
pub fn register(library: &mut LibraryBuilder) {
    library
        .state_kind(similarity::CollectionKind)
        .kernel(similarity::TopK)
        .kernel(montecarlo::European)
        .kernel(hashing::Blake3)
        .kernel(diagnostics::Noop);
    if std::env::var(TEST_KERNELS_ENV).is_ok_and(|v| v == "1") {
        library.kernel(diagnostics::Panic);
    }
}

/// The reference kernels as a library, built in process (tests, the worker).
pub fn library() -> Result<Library, KernelError> {
    Library::from_register("tandem", env!("CARGO_PKG_VERSION"), register)
}

/// The reference kernels as one process-wide library.
pub fn shared() -> &'static Library {
    static LIBRARY: std::sync::OnceLock<Library> = std::sync::OnceLock::new();
    LIBRARY.get_or_init(|| library().expect("the reference kernels' descriptors pass the SDK's checks"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_reference_kernel_warms_up() {
        let library = super::library().unwrap();
        for kernel in library.kernels() {
            library.warm_up(kernel).unwrap_or_else(|e| panic!("{}: {e}", kernel.name()));
        }
    }

    #[test]
    fn streaming_kernels_are_exactly_those_marked_streaming() {
        let library = super::library().unwrap();
        let streaming: Vec<&str> = library.kernels().filter(|k| k.streaming()).map(|k| k.name()).collect();
        assert_eq!(streaming, ["hash.blake3"]);
    }
}
