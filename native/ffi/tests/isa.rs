//! `tandem_runtime_info` reports the SIMD path `TANDEM_ISA` forces (what a
//! host sees through the C ABI); `make test-isa` runs it once per path.

use tandem::{tandem_runtime_info, tandem_runtime_info_t};
use tandem_sdk::simd::{Isa, ISA_ENV};

fn abi_code(isa: Isa) -> u32 {
    match isa {
        Isa::Avx512 => 1,
        Isa::Avx2Fma => 2,
        Isa::Portable => 3,
    }
}

#[test]
fn runtime_info_reports_the_forced_path() {
    let mut info = tandem_runtime_info_t { abi_version: 0, compute_threads: 0, max_pending: 0, isa: 0 };
    // SAFETY: `info` is a live, writable struct for the duration of the call.
    let error = unsafe { tandem_runtime_info(&mut info) };
    assert!(error.is_null());
    let value = std::env::var(ISA_ENV).unwrap_or_default();
    let expected = match Isa::parse(&value).unwrap_or_else(|e| panic!("{e}")) {
        None => Isa::available()[0],
        Some(isa) => match isa.unsupported_reason() {
            Some(reason) => {
                eprintln!("skipping {}: {reason}", isa.name());
                return;
            }
            None => isa,
        },
    };
    assert_eq!(info.isa, abi_code(expected), "{ISA_ENV}={value}");
}
