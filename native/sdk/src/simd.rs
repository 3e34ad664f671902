//! Run-time selection of SIMD paths, shared by every kernel so that one
//! switch forces a path everywhere: `TANDEM_ISA=portable|avx2` caps the
//! detected instruction set, which is how tests run every path on any CPU.

/// Environment variable capping the instruction set (`portable`, `avx2`).
pub const ISA_ENV: &str = "TANDEM_ISA";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2Fma,
    Portable,
}

impl Isa {
    /// The best instruction set this CPU supports (`TANDEM_ISA=portable|avx2`
    /// caps it, for testing the other paths).
    pub fn detect() -> Isa {
        let cap = std::env::var(ISA_ENV).unwrap_or_default();
        Self::detect_capped(&cap)
    }

    fn detect_capped(cap: &str) -> Isa {
        if cap == "portable" {
            return Isa::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // The Monte Carlo kernels also use avx512dq and avx512vl, so the
            // AVX-512 path requires all three (AVX-512F-only CPUs take AVX2).
            if cap != "avx2"
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl")
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
        }
        Isa::Portable
    }

    /// Every path this CPU can run, best first (used by tests).
    pub fn available() -> Vec<Isa> {
        let mut all = vec![];
        for cap in ["", "avx2", "portable"] {
            let isa = Self::detect_capped(cap);
            if !all.contains(&isa) {
                all.push(isa);
            }
        }
        all
    }
}
