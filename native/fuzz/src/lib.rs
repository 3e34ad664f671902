//! Tandem's coverage-guided fuzz harnesses (see docs/reliability.md,
//! "Fuzzing", and `build/fuzz.sh`).
//!
//! Each binary in `src/bin` is one libFuzzer target: it defines
//! `LLVMFuzzerTestOneInput` through [`fuzz_target!`] and is linked against
//! the libFuzzer runtime; the whole crate graph is built with stable rustc's
//! sancov instrumentation. The worker's targets live in
//! `tandem_worker::fuzzing`; the C ABI's is [`abi`], since it drives the
//! exported functions exactly as a C caller does.
//!
//! Layout:
//! - [`reader`]: turns fuzz bytes into bounded choices.
//! - [`abi`]: the C ABI target.

pub mod abi;
pub mod reader;

/// Defines `LLVMFuzzerTestOneInput` calling `$harness(&[u8])`.
#[macro_export]
macro_rules! fuzz_target {
    ($harness:path) => {
        /// libFuzzer's entry point: one input per call.
        ///
        /// # Safety
        /// libFuzzer passes `size` readable bytes at `data` (or `size` 0).
        #[no_mangle]
        pub unsafe extern "C" fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> i32 {
            let input: &[u8] = if size == 0 || data.is_null() {
                &[]
            } else {
                // SAFETY: libFuzzer passes `size` readable bytes at `data`,
                // alive for the duration of this call.
                unsafe { std::slice::from_raw_parts(data, size) }
            };
            $harness(input);
            0
        }
    };
}
