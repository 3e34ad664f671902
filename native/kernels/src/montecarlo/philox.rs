//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
//! 3", SC 2011): a counter-based generator, so the numbers for any
//! (seed, row, path) are computed directly, in any order, on any thread.

const M0: u64 = 0xD251_1F53;
const M1: u64 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Ten rounds over a 128-bit counter under a 64-bit key.
#[inline(always)]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = M0 * u64::from(c0);
        let p1 = M1 * u64::from(c2);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    [c0, c1, c2, c3]
}

/// A double in the open interval (0, 1) from 64 random bits: the top 52
/// bits plus one half, so `(k + 0.5) / 2^52` is exact and never 0 or 1.
///
/// Computed without an integer→float conversion (AVX2 has none for 64-bit
/// lanes, so one made the uniform loop scalar there): the 52 bits become the
/// mantissa of `1 + k·2^-52`, and subtracting `1 − 2^-53` leaves exactly
/// `(k + 0.5)·2^-52` (the difference is representable, so it is exact).
#[inline(always)]
pub fn open_unit(hi: u32, lo: u32) -> f64 {
    const ONE_MINUS_HALF_ULP: f64 = 1.0 - 1.0 / (1u64 << 53) as f64;
    let bits = (u64::from(hi) << 32) | u64::from(lo);
    f64::from_bits((bits >> 12) | 0x3ff0_0000_0000_0000) - ONE_MINUS_HALF_ULP
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer tests from the Random123 distribution (kat_vectors).
    #[test]
    fn matches_random123_known_answers() {
        assert_eq!(philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(
            philox4x32_10([0xffff_ffff; 4], [0xffff_ffff; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn open_unit_is_exactly_k_plus_a_half_over_two_to_the_52() {
        let reference = |hi: u32, lo: u32| {
            let bits = (u64::from(hi) << 32) | u64::from(lo);
            ((bits >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let edges = [(0, 0), (0, 0xfff), (0, 0x1000), (u32::MAX, u32::MAX), (0x8000_0000, 0), (1, 0)];
        let random = (0..100_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 32) as u32, state as u32)
        });
        for (hi, lo) in edges.into_iter().chain(random) {
            assert_eq!(open_unit(hi, lo).to_bits(), reference(hi, lo).to_bits(), "{hi:#x} {lo:#x}");
        }
    }

    #[test]
    fn open_unit_never_reaches_the_bounds() {
        assert!(open_unit(0, 0) > 0.0);
        assert!(open_unit(u32::MAX, u32::MAX) < 1.0);
    }
}
