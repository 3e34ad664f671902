//! The SIMD path `TANDEM_ISA` forces is the one the kernels run, so that
//! `make test-isa` (this suite once per path) never tests a silently
//! substituted path. An unknown value fails here; a path this CPU lacks is
//! skipped with the reason printed.

use tandem_sdk::simd::{Isa, ISA_ENV};

#[test]
fn the_forced_path_is_the_one_the_kernels_run() {
    let value = std::env::var(ISA_ENV).unwrap_or_default();
    match Isa::parse(&value).unwrap_or_else(|e| panic!("{e}")) {
        None => assert_eq!(Isa::detect(), Isa::available()[0], "no {ISA_ENV}: the best path"),
        Some(isa) => match isa.unsupported_reason() {
            Some(reason) => eprintln!("skipping {}: {reason}", isa.name()),
            None => assert_eq!(Isa::detect(), isa, "{ISA_ENV}={value}"),
        },
    }
}
