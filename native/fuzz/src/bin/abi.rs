//! The C ABI's argument decoding and validation, through its exports.
#![no_main]

// The reference kernels exported exactly as libtandem.so exports them. The
// registration lives in this binary's own object, so the linker keeps it.
tandem_sdk::export!(tandem_kernels::register, name = "tandem", version = "fuzz");

tandem_fuzz::fuzz_target!(tandem_fuzz::abi::abi);
