//! `montecarlo.european` through the registry: the Black–Scholes oracle,
//! bitwise repeatability, keying by the caller's row, and bad inputs.

use std::sync::Arc;
use tandem_kernels::montecarlo::KERNEL_NAME;
use tandem_sdk::context::CancelFlag;
use tandem_sdk::{CallContext, Code, DType, KernelError, Param, TensorMut, TensorRef};

fn bytes<T>(v: &[T]) -> &[u8] {
    // SAFETY: plain numeric slices viewed as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

fn bytes_mut<T>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: plain numeric slices viewed as bytes; every pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}

fn run(
    options: &[f64],
    keys: &[i64],
    paths: i64,
    seed: i64,
    antithetic: bool,
    ctx: &CallContext,
) -> Result<(Vec<f64>, Vec<f64>), KernelError> {
    let reg = tandem_kernels::library().unwrap();
    let kernel = reg.find(KERNEL_NAME).unwrap();
    let batch = keys.len();
    let (shape, key_shape) = ([options.len() / 6, 6], [batch]);
    let mut prices = vec![f64::NAN; batch];
    let mut stderrs = vec![f64::NAN; batch];
    {
        let inputs = [
            TensorRef { dtype: DType::F64, shape: &shape, bytes: bytes(options) },
            TensorRef { dtype: DType::I64, shape: &key_shape, bytes: bytes(keys) },
        ];
        let mut outputs = [
            TensorMut { dtype: DType::F64, shape: &key_shape, bytes: bytes_mut(&mut prices) },
            TensorMut { dtype: DType::F64, shape: &key_shape, bytes: bytes_mut(&mut stderrs) },
        ];
        let params = [Param::Int(paths), Param::Int(seed), Param::Int(i64::from(antithetic))];
        reg.invoke(kernel, None, &inputs, &params, &mut outputs, ctx)?;
    }
    Ok((prices, stderrs))
}

/// Standard normal CDF via erfc (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn norm_cdf(x: f64) -> f64 {
    let z = (x / std::f64::consts::SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

fn black_scholes(s: f64, k: f64, r: f64, v: f64, t: f64, call: bool) -> f64 {
    let d1 = ((s / k).ln() + (r + 0.5 * v * v) * t) / (v * t.sqrt());
    let d2 = d1 - v * t.sqrt();
    if call {
        s * norm_cdf(d1) - k * (-r * t).exp() * norm_cdf(d2)
    } else {
        k * (-r * t).exp() * norm_cdf(-d2) - s * norm_cdf(-d1)
    }
}

#[test]
fn prices_agree_with_black_scholes_within_four_standard_errors() {
    let mut options = Vec::new();
    for strike in [80.0, 100.0, 125.0] {
        for vol in [0.1, 0.3, 0.6] {
            for maturity in [0.25, 1.0, 3.0] {
                for call in [1.0, 0.0] {
                    options.extend_from_slice(&[100.0, strike, 0.03, vol, maturity, call]);
                }
            }
        }
    }
    let keys: Vec<i64> = (0..options.len() as i64 / 6).collect();
    for antithetic in [false, true] {
        let (prices, stderrs) = run(&options, &keys, 200_000, 42, antithetic, &CallContext::default()).unwrap();
        for (row, values) in options.chunks_exact(6).enumerate() {
            let exact = black_scholes(values[0], values[1], values[2], values[3], values[4], values[5] == 1.0);
            let error = (prices[row] - exact).abs();
            assert!(stderrs[row] >= 0.0);
            assert!(
                error <= 4.0 * stderrs[row] + 1e-6,
                "row {row} {values:?}: {} vs {exact} (se {})",
                prices[row],
                stderrs[row]
            );
        }
    }
}

#[test]
fn a_row_is_keyed_by_its_caller_row_not_its_batch_position() {
    let a = [100.0, 100.0, 0.01, 0.2, 1.0, 1.0];
    let b = [90.0, 100.0, 0.02, 0.4, 2.0, 0.0];
    let alone = run(&a, &[0], 50_001, 7, false, &CallContext::default()).unwrap();
    // The same row with the same key inside a larger batch, in another slot.
    let batch: Vec<f64> = [b, a, b].concat();
    let together = run(&batch, &[3, 0, 5], 50_001, 7, false, &CallContext::default()).unwrap();
    assert_eq!(alone.0[0].to_bits(), together.0[1].to_bits());
    assert_eq!(alone.1[0].to_bits(), together.1[1].to_bits());
    // A different key draws a different stream.
    let other = run(&a, &[1], 50_001, 7, false, &CallContext::default()).unwrap();
    assert_ne!(alone.0[0], other.0[0]);
    // Repeats are bitwise equal.
    let again = run(&a, &[0], 50_001, 7, false, &CallContext::default()).unwrap();
    assert_eq!(alone.0[0].to_bits(), again.0[0].to_bits());
}

#[test]
fn degenerate_contracts_price_exactly() {
    // Zero volatility: the discounted forward payoff.
    let (prices, stderrs) =
        run(&[100.0, 90.0, 0.05, 0.0, 1.0, 1.0], &[0], 1000, 1, false, &CallContext::default()).unwrap();
    let expected = (100.0 * 0.05f64.exp() - 90.0) * (-0.05f64).exp();
    assert!((prices[0] - expected).abs() < 1e-9, "{} vs {expected}", prices[0]);
    // Every path pays the same; only rounding in the mean is left.
    assert!(stderrs[0] < 1e-12);
    // One path: standard error reported as 0.
    let (_, stderrs) = run(&[100.0, 90.0, 0.05, 0.2, 1.0, 1.0], &[0], 1, 1, false, &CallContext::default()).unwrap();
    assert_eq!(stderrs[0], 0.0);
}

fn expect_invalid(options: &[f64], paths: i64, needle: &str) {
    let keys: Vec<i64> = (0..options.len() as i64 / 6).collect();
    match run(options, &keys, paths, 0, false, &CallContext::default()) {
        Err(e) => {
            assert_eq!(e.code, Code::InvalidArgument, "{}", e.message);
            assert!(e.message.contains(needle), "'{}' does not contain '{needle}'", e.message);
        }
        Ok(_) => panic!("expected INVALID_ARGUMENT containing '{needle}'"),
    }
}

#[test]
fn bad_rows_and_parameters_are_named() {
    let good = [100.0, 100.0, 0.01, 0.2, 1.0, 1.0];
    let with = |field: usize, value: f64| {
        let mut rows = [good, good].concat();
        rows[6 + field] = value;
        rows
    };
    expect_invalid(&with(0, f64::NAN), 10, "row 1 field 'spot'");
    expect_invalid(&with(1, -1.0), 10, "row 1 field 'strike'");
    expect_invalid(&with(2, f64::INFINITY), 10, "row 1 field 'rate'");
    expect_invalid(&with(3, -0.2), 10, "row 1 field 'volatility'");
    expect_invalid(&with(4, f64::NEG_INFINITY), 10, "row 1 field 'maturity'");
    expect_invalid(&with(5, 0.5), 10, "row 1 field 'call'");
    expect_invalid(&good, 0, "'paths'");
    expect_invalid(&good, 1_000_000_001, "'paths'");
    expect_invalid(&good[..5], 10, "bytes");
    expect_invalid(&[], 10, "no rows");
}

#[test]
fn cancellation_and_deadlines_stop_long_runs() {
    let flag = Arc::new(CancelFlag::default());
    flag.cancel();
    let ctx = CallContext { cancel: Some(flag), ..Default::default() };
    let err = run(&[100.0, 100.0, 0.01, 0.2, 1.0, 1.0], &[0], 1_000_000_000, 0, false, &ctx).unwrap_err();
    assert_eq!(err.code, Code::Cancelled);
    let ctx = CallContext { deadline: Some(std::time::Instant::now()), ..Default::default() };
    let err = run(&[100.0, 100.0, 0.01, 0.2, 1.0, 1.0], &[0], 1_000_000_000, 0, false, &ctx).unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded);
}

#[test]
fn a_call_over_the_work_bound_is_refused_before_any_path_runs() {
    use tandem_kernels::montecarlo::{MAX_PATHS, MAX_WORK_PER_CALL};
    let row = [100.0, 100.0, 0.01, 0.2, 1.0, 1.0];
    // 100 options × 10^9 paths = 10^11 paths: minutes of both cores.
    let options: Vec<f64> = row.iter().copied().cycle().take(6 * 100).collect();
    let keys: Vec<i64> = (0..100).collect();
    let error = run(&options, &keys, MAX_PATHS, 7, false, &CallContext::default()).unwrap_err();
    assert_eq!(error.code, Code::ResourceExhausted);
    assert_eq!(
        error.message,
        format!(
            "kernel 'montecarlo.european' asks for 100000000000 units of work (batch 100 × paths 1000000000); \
             at most {MAX_WORK_PER_CALL} per call (limit max_work_per_call); split the call"
        )
    );
    // 64 options × 1M paths fit the bound; checked on the descriptor's own numbers
    // rather than run (it is seconds of work).
    let reg = tandem_kernels::library().unwrap();
    let work = reg.find(KERNEL_NAME).unwrap().descriptor().work.clone().unwrap();
    assert!(64 * 1_000_000 * 100 <= work.max_per_call, "64 × 1M paths pass with a wide margin");
    assert_eq!(work.max_per_call, MAX_WORK_PER_CALL);
}

/// Prices pinned bit for bit, as the kernel computed them before its SIMD
/// paths were rewritten: rows in and out of the money, calls and puts, a
/// volatility whose paths mostly underflow `exp`, with and without
/// antithetic pairs, over an odd path count spanning partial blocks. Every
/// SIMD path must give these bits (`make test-isa` runs this once per path).
#[test]
fn prices_are_bitwise_those_pinned_for_every_simd_path() {
    let options = [
        [100.0, 95.0, 0.02, 0.2, 1.0, 1.0],
        [100.0, 95.0, 0.02, 0.2, 1.0, 0.0],
        [80.0, 120.0, 0.05, 0.6, 3.0, 1.0],
        // Most paths of this row underflow exp (exponent below −708).
        [1.0, 0.0, 0.0, 10.0, 16.0, 1.0],
        [50.0, 55.0, -0.01, 0.05, 0.1, 0.0],
    ]
    .concat();
    let keys = [0, 1, 2, 3, 41];
    let mut got = Vec::new();
    for antithetic in [false, true] {
        let (prices, stderrs) = run(&options, &keys, 10_001, -3, antithetic, &CallContext::default()).unwrap();
        got.extend(prices.iter().zip(&stderrs).map(|(p, s)| (p.to_bits(), s.to_bits())));
    }
    // (price bits, stderr bits): rows 0..5 without antithetic pairs, then with.
    let pinned: [(u64, u64); 10] = [
        (0x4026cbe5ee334d87, 0x3fc38e062acbf788),
        (0x40136c8a2d5b3723, 0x3fb495626440655a),
        (0x4038f83cb77cc608, 0x3ff14bcd31ee3660),
        (0x05e731216c288856, 0x0000000000000000),
        (0x4014407d210d6530, 0x3f8021f118f35be1),
        (0x4027518f46e2813c, 0x3fb28d35fbd50aac),
        (0x4013125a38c8308c, 0x3fa746e3bcb26b81),
        (0x4038aa0288b8908a, 0x3fe58bf431cb9af0),
        (0x05d73305e3d0b617, 0x0000000000000000),
        (0x40143864b8d29e76, 0x3f1724f4ff3950b9),
    ];
    assert_eq!(got, pinned, "on the {} path", tandem_sdk::simd::Isa::detect().name());
}
