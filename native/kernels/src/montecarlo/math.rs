//! Branch-free f64 `ln`, `exp` and `sincos(2πu)` (fdlibm's kernels) that the
//! compiler can vectorise inside the path loops; the standard library's
//! versions are calls into libm, one lane at a time. Accuracy is about one
//! ulp, checked against libm in the tests.

// The constants are fdlibm's, written as published.
#![allow(clippy::excessive_precision)]

const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const SQRT2: f64 = std::f64::consts::SQRT_2;
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// Natural logarithm of a positive normal number.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    const LG1: f64 = 6.666_666_666_666_735_130e-01;
    const LG2: f64 = 3.999_999_999_940_941_908e-01;
    const LG3: f64 = 2.857_142_874_366_239_149e-01;
    const LG4: f64 = 2.222_219_843_214_978_396e-01;
    const LG5: f64 = 1.818_357_216_161_805_012e-01;
    const LG6: f64 = 1.531_383_769_920_937_332e-01;
    const LG7: f64 = 1.479_819_860_511_658_591e-01;
    let bits = x.to_bits();
    // The biased exponent as a double without an int→float conversion
    // (which AVX2 lacks for 64-bit lanes): 2^52 + e, minus 2^52 + 1023.
    let exponent = f64::from_bits(((bits >> 52) & 0x7ff) | 0x4330_0000_0000_0000) - (TWO_52 + 1023.0);
    let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // Keep the mantissa in [√2/2, √2) so f is small either side of 0.
    let high = mantissa > SQRT2;
    let m = if high { mantissa * 0.5 } else { mantissa };
    let k = if high { exponent + 1.0 } else { exponent };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

/// e^x for x in [−708, 709]; infinity above 709 (0.3% short of the true
/// overflow point, so 2^k never needs an exponent beyond 1023), and 0 below
/// −708 (results that would be subnormal flush to zero, which no payoff can
/// tell apart).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    const P1: f64 = 1.666_666_666_666_660_190_37e-01;
    const P2: f64 = -2.777_777_777_701_559_338_42e-03;
    const P3: f64 = 6.613_756_321_437_934_361_17e-05;
    const P4: f64 = -1.653_390_220_546_525_153_90e-06;
    const P5: f64 = 4.138_136_797_057_238_460_39e-08;
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    let clamped = x.clamp(-708.0, 709.0);
    let k = (clamped * INV_LN2).round_ties_even();
    let hi = clamped - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // 2^k from the bits of k + 1023 + 2^52 (exact for the clamped range).
    let scaled = y * f64::from_bits((k + (TWO_52 + 1023.0)).to_bits() << 52);
    // Two plain selects: an `if / else if / else` chain made LLVM keep a
    // branch per lane, and the AVX2 payoff loops ran scalar.
    let capped = if x > 709.0 { f64::INFINITY } else { scaled };
    if x < -708.0 {
        0.0
    } else {
        capped
    }
}

/// (cos 2πu, sin 2πu) for u in [0, 1].
#[inline(always)]
pub fn sincos_2pi(u: f64) -> (f64, f64) {
    const S1: f64 = -1.666_666_666_666_663_243_48e-01;
    const S2: f64 = 8.333_333_333_322_489_461_24e-03;
    const S3: f64 = -1.984_126_982_985_794_931_34e-04;
    const S4: f64 = 2.755_731_370_707_006_767_89e-06;
    const S5: f64 = -2.505_076_025_340_686_341_95e-08;
    const S6: f64 = 1.589_690_995_211_550_102_21e-10;
    const C1: f64 = 4.166_666_666_666_660_190_37e-02;
    const C2: f64 = -1.388_888_888_887_410_957_49e-03;
    const C3: f64 = 2.480_158_728_947_672_941_78e-05;
    const C4: f64 = -2.755_731_435_139_066_330_35e-07;
    const C5: f64 = 2.087_572_321_298_174_827_90e-09;
    const C6: f64 = -1.135_964_755_778_819_482_65e-11;
    // Quarter turns: u = q/4 + r with |r| ≤ 1/8, and r is exact.
    let q = (u * 4.0).round_ties_even();
    let r = u - q * 0.25;
    let x = r * std::f64::consts::TAU;
    let z = x * x;
    let sin = x + x * z * (S1 + z * (S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))));
    let cos = 1.0 - 0.5 * z + z * z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    // Rotate by q quarter turns with selects, not a branch per lane.
    let quadrant = (q + TWO_52).to_bits() & 3;
    let (a, b) = if quadrant & 1 != 0 { (sin, cos) } else { (cos, sin) };
    let cos_q = if (quadrant + 1) & 2 != 0 { -a } else { a };
    let sin_q = if quadrant & 2 != 0 { -b } else { b };
    (cos_q, sin_q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        ((a - b) / b.abs().max(f64::MIN_POSITIVE)).abs() / f64::EPSILON
    }

    #[test]
    fn ln_is_within_two_ulps_of_libm() {
        for i in 1..100_000u64 {
            let x = i as f64 / 100_000.0 + 1e-300 * (i as f64);
            assert!(ulps(ln(x), x.ln()) <= 2.0, "ln({x}) = {} vs {}", ln(x), x.ln());
        }
        assert!(ulps(ln(1e-16), 1e-16f64.ln()) <= 2.0);
    }

    #[test]
    fn exp_is_within_two_ulps_of_libm() {
        for i in -70_000..70_000i64 {
            let x = i as f64 / 100.0;
            assert!(ulps(exp(x), x.exp()) <= 2.0, "exp({x}) = {} vs {}", exp(x), x.exp());
        }
        assert_eq!(exp(800.0), f64::INFINITY);
        assert_eq!(exp(-800.0), 0.0);
    }

    #[test]
    fn sincos_is_accurate_over_the_circle() {
        for i in 0..=100_000u64 {
            let u = i as f64 / 100_000.0;
            let (c, s) = sincos_2pi(u);
            let angle = u * std::f64::consts::TAU;
            // The reference angle u·2π carries its own rounding (up to ~9e-16).
            assert!((c - angle.cos()).abs() <= 2e-15, "cos at {u}");
            assert!((s - angle.sin()).abs() <= 2e-15, "sin at {u}");
        }
    }
}
