//! Run-time selection of SIMD paths, shared by every kernel so that one
//! switch forces a path everywhere: `TANDEM_ISA=portable|avx2|avx512` forces
//! that path (when the CPU can run it), which is how tests run every path
//! on any machine.
//!
//! The choice is made once per process ([`Isa::detect`] caches it), so a
//! kernel never reads the environment on its hot path. A library must not
//! take its host down over an environment variable: an unknown value, or a
//! path this CPU cannot run, is ignored with one warning log line and the
//! best available path is used.

use std::sync::OnceLock;

/// Environment variable forcing the SIMD path (`portable`, `avx2`, `avx512`;
/// unset, empty or `auto` = the best this CPU supports).
pub const ISA_ENV: &str = "TANDEM_ISA";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2Fma,
    Portable,
}

/// The process-wide choice, made on first use.
static SELECTED: OnceLock<Isa> = OnceLock::new();

impl Isa {
    /// Every path, best first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2Fma, Isa::Portable];

    /// The path the kernels of this process use: the best this CPU supports,
    /// or the one `TANDEM_ISA` forces. Read once, then cached.
    pub fn detect() -> Isa {
        *SELECTED.get_or_init(|| {
            let value = std::env::var(ISA_ENV).unwrap_or_default();
            let (isa, warning) = Self::select(&value, Self::missing_features);
            if let Some(warning) = warning {
                crate::abi::log::warning("simd.detect", &warning);
            }
            isa
        })
    }

    /// The `TANDEM_ISA` spelling of this path.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Fma => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Parses a `TANDEM_ISA` value: `Ok(None)` means "best available".
    pub fn parse(value: &str) -> Result<Option<Isa>, String> {
        match value.trim() {
            "" | "auto" => Ok(None),
            "avx512" => Ok(Some(Isa::Avx512)),
            "avx2" => Ok(Some(Isa::Avx2Fma)),
            "portable" => Ok(Some(Isa::Portable)),
            other => Err(format!(
                "{ISA_ENV}='{other}' is not a SIMD path; use portable, avx2, avx512 or auto (ignored: using the best available)"
            )),
        }
    }

    /// The CPU features this path needs that this CPU lacks (empty: it runs).
    pub fn missing_features(self) -> Vec<&'static str> {
        let needed: &[&'static str] = match self {
            // The Monte Carlo kernels also use avx512dq and avx512vl, so the
            // AVX-512 path requires all three (AVX-512F-only CPUs take AVX2).
            Isa::Avx512 => &["avx512f", "avx512dq", "avx512vl"],
            Isa::Avx2Fma => &["avx2", "fma"],
            Isa::Portable => &[],
        };
        needed.iter().copied().filter(|f| !cpu_has(f)).collect()
    }

    /// Why this CPU cannot run the path (`None`: it can), e.g.
    /// "CPU lacks avx512dq" — what tests print when they skip it.
    pub fn unsupported_reason(self) -> Option<String> {
        let missing = self.missing_features();
        (!missing.is_empty()).then(|| format!("CPU lacks {}", missing.join(", ")))
    }

    /// The path for a `TANDEM_ISA` value, given which features the CPU lacks,
    /// and the warning to log when the value could not be honoured.
    fn select(value: &str, missing: impl Fn(Isa) -> Vec<&'static str>) -> (Isa, Option<String>) {
        let best = || Self::ALL.into_iter().find(|&isa| missing(isa).is_empty()).unwrap_or(Isa::Portable);
        match Self::parse(value) {
            Ok(None) => (best(), None),
            Ok(Some(isa)) => {
                let lacking = missing(isa);
                if lacking.is_empty() {
                    (isa, None)
                } else {
                    let chosen = best();
                    let warning = format!(
                        "{ISA_ENV}={} cannot be honoured: the CPU lacks {}; using {}",
                        isa.name(),
                        lacking.join(", "),
                        chosen.name()
                    );
                    (chosen, Some(warning))
                }
            }
            Err(warning) => (best(), Some(warning)),
        }
    }

    /// Every path this CPU can run, best first (for tests that compare paths
    /// within one process, whatever `TANDEM_ISA` says).
    pub fn available() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|isa| isa.missing_features().is_empty()).collect()
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has(feature: &str) -> bool {
    match feature {
        "avx512f" => is_x86_feature_detected!("avx512f"),
        "avx512dq" => is_x86_feature_detected!("avx512dq"),
        "avx512vl" => is_x86_feature_detected!("avx512vl"),
        "avx2" => is_x86_feature_detected!("avx2"),
        "fma" => is_x86_feature_detected!("fma"),
        _ => false,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has(_feature: &str) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_with(features: &'static [&'static str]) -> impl Fn(Isa) -> Vec<&'static str> {
        move |isa| match isa {
            Isa::Avx512 => ["avx512f", "avx512dq", "avx512vl"].into_iter().filter(|f| !features.contains(f)).collect(),
            Isa::Avx2Fma => ["avx2", "fma"].into_iter().filter(|f| !features.contains(f)).collect(),
            Isa::Portable => vec![],
        }
    }

    const AVX512_CPU: &[&str] = &["avx512f", "avx512dq", "avx512vl", "avx2", "fma"];
    const AVX2_CPU: &[&str] = &["avx512f", "avx2", "fma"];

    #[test]
    fn no_value_picks_the_best_path_the_cpu_runs() {
        assert_eq!(Isa::select("", cpu_with(AVX512_CPU)), (Isa::Avx512, None));
        assert_eq!(Isa::select("auto", cpu_with(AVX2_CPU)), (Isa::Avx2Fma, None));
        assert_eq!(Isa::select("", cpu_with(&[])), (Isa::Portable, None));
    }

    #[test]
    fn each_value_forces_its_path_when_the_cpu_runs_it() {
        for isa in Isa::ALL {
            assert_eq!(Isa::select(isa.name(), cpu_with(AVX512_CPU)), (isa, None));
        }
    }

    #[test]
    fn a_path_the_cpu_lacks_falls_back_with_a_warning_naming_the_feature() {
        let (isa, warning) = Isa::select("avx512", cpu_with(AVX2_CPU));
        assert_eq!(isa, Isa::Avx2Fma);
        let warning = warning.expect("a warning");
        assert!(warning.contains("lacks avx512dq, avx512vl"), "{warning}");
        assert!(warning.contains("using avx2"), "{warning}");
    }

    #[test]
    fn an_unknown_value_is_ignored_with_a_warning_listing_the_valid_ones() {
        let (isa, warning) = Isa::select("sse9", cpu_with(AVX512_CPU));
        assert_eq!(isa, Isa::Avx512);
        let warning = warning.expect("a warning");
        assert!(warning.contains("TANDEM_ISA='sse9'"), "{warning}");
        assert!(warning.contains("portable, avx2, avx512"), "{warning}");
    }

    #[test]
    fn available_lists_runnable_paths_best_first_ending_with_portable() {
        let available = Isa::available();
        assert_eq!(available.last(), Some(&Isa::Portable));
        for isa in &available {
            assert_eq!(isa.unsupported_reason(), None);
        }
        let mut sorted = available.clone();
        sorted.sort_by_key(|isa| Isa::ALL.iter().position(|a| a == isa));
        assert_eq!(sorted, available);
    }

    #[test]
    fn detection_is_cached_and_honours_the_environment() {
        let first = Isa::detect();
        assert_eq!(Isa::detect(), first);
        let value = std::env::var(ISA_ENV).unwrap_or_default();
        let (expected, _) = Isa::select(&value, Isa::missing_features);
        assert_eq!(first, expected);
    }
}
