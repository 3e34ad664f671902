//! Pricing one European option row by Monte Carlo under geometric Brownian
//! motion: `S_T = S·exp((r − σ²/2)T + σ√T·z)`, payoff `max(±(S_T − K), 0)`,
//! discounted by `exp(−rT)`.
//!
//! Path `p` of a row draws its normal from Philox keyed by the seed, with
//! counter (p / 2, row key): one Philox call gives two uniforms and Box–Muller
//! turns them into the normals of paths 2j (cosine) and 2j+1 (sine). Paths
//! are summed in fixed blocks whose statistics are merged in block order, so
//! the result is bitwise repeatable whatever the thread count or batch.

use super::math::{exp, ln, sincos_2pi};
use super::philox::{open_unit, philox4x32_10};
use rayon::prelude::*;
use tandem_sdk::context::CallContext;
use tandem_sdk::error::KernelError;
use tandem_sdk::simd::Isa;

/// Paths per block (even, so every block starts on a Philox pair).
pub const BLOCK: usize = 4096;
/// Blocks between cancellation / deadline checks.
const BLOCKS_PER_CHECK: u64 = 16;

/// One option row, validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contract {
    pub spot: f64,
    pub strike: f64,
    pub rate: f64,
    pub volatility: f64,
    pub maturity: f64,
    pub call: bool,
}

/// How a row's paths are drawn.
#[derive(Clone, Copy, Debug)]
pub struct Sampling {
    pub seed: u64,
    pub paths: u64,
    pub antithetic: bool,
}

/// Count, mean and sum of squared deviations of a set of samples.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Stats {
    /// Chan et al.'s pairwise merge: stable for any block sizes.
    fn merge(self, other: Stats) -> Stats {
        if self.n == 0.0 {
            return other;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        Stats {
            n,
            mean: self.mean + delta * (other.n / n),
            m2: self.m2 + other.m2 + delta * delta * (self.n * other.n / n),
        }
    }
}

/// Row constants shared by every path.
#[derive(Clone, Copy)]
struct Prepared {
    spot: f64,
    strike: f64,
    drift: f64,
    diffusion: f64,
    sign: f64,
    antithetic: bool,
}

/// Prices one row: (discounted mean payoff, its standard error). The
/// standard error of a single path is undefined and reported as 0.
pub fn price(
    contract: &Contract,
    row_key: u64,
    sampling: Sampling,
    ctx: &CallContext,
) -> Result<(f64, f64), KernelError> {
    let prepared = Prepared {
        spot: contract.spot,
        strike: contract.strike,
        drift: (contract.rate - 0.5 * contract.volatility * contract.volatility) * contract.maturity,
        diffusion: contract.volatility * contract.maturity.sqrt(),
        sign: if contract.call { 1.0 } else { -1.0 },
        antithetic: sampling.antithetic,
    };
    let key = [sampling.seed as u32, (sampling.seed >> 32) as u32];
    let blocks = sampling.paths.div_ceil(BLOCK as u64);
    let isa = Isa::detect();
    let stats: Vec<Stats> = (0..blocks)
        .into_par_iter()
        .map(|block| {
            if block % BLOCKS_PER_CHECK == 0 {
                ctx.check()?;
            }
            let first = block * BLOCK as u64;
            let count = (sampling.paths - first).min(BLOCK as u64) as usize;
            Ok(block_stats(isa, &prepared, key, row_key, first, count))
        })
        .collect::<Result<_, KernelError>>()?;
    let total = stats.into_iter().fold(Stats::default(), Stats::merge);
    let discount = (-contract.rate * contract.maturity).exp();
    let stderr = if total.n > 1.0 { (total.m2 / (total.n - 1.0) / total.n).sqrt() } else { 0.0 };
    Ok((discount * total.mean, discount * stderr))
}

fn block_stats(isa: Isa, p: &Prepared, key: [u32; 2], row: u64, first: u64, count: usize) -> Stats {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx512 is only detected when the CPU has avx512f.
        Isa::Avx512 => unsafe { block_avx512(p, key, row, first, count) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2Fma is only detected when the CPU has avx2 and fma.
        Isa::Avx2Fma => unsafe { block_avx2(p, key, row, first, count) },
        _ => block_generic(p, key, row, first, count),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn block_avx512(p: &Prepared, key: [u32; 2], row: u64, first: u64, count: usize) -> Stats {
    block_generic(p, key, row, first, count)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2(p: &Prepared, key: [u32; 2], row: u64, first: u64, count: usize) -> Stats {
    block_generic(p, key, row, first, count)
}

/// The block loop, written so the compiler vectorises it for each ISA it is
/// inlined into. No operation is fused or reordered between ISAs, so every
/// path computes bitwise-equal results.
#[inline(always)]
fn block_generic(p: &Prepared, key: [u32; 2], row: u64, first: u64, count: usize) -> Stats {
    const PAIRS: usize = BLOCK / 2;
    let pairs = count.div_ceil(2);
    let first_pair = first / 2;
    let (row_lo, row_hi) = (row as u32, (row >> 32) as u32);

    let mut u1 = [0.0f64; PAIRS];
    let mut u2 = [0.0f64; PAIRS];
    for (j, (a, b)) in u1.iter_mut().zip(u2.iter_mut()).enumerate().take(pairs) {
        let pair = first_pair + j as u64;
        let x = philox4x32_10([pair as u32, (pair >> 32) as u32, row_lo, row_hi], key);
        *a = open_unit(x[0], x[1]);
        *b = open_unit(x[2], x[3]);
    }

    // Simple loops over whole fixed-size arrays, one transform each, so the
    // compiler vectorises every one (lanes past `pairs` are computed and
    // ignored): u1 becomes the radius, u2 the cosine normal, z1 the sine.
    let mut z1 = [0.0f64; PAIRS];
    for r in u1.iter_mut() {
        *r = (-2.0 * ln(*r)).sqrt();
    }
    for j in 0..PAIRS {
        let (cos, sin) = sincos_2pi(u2[j]);
        z1[j] = u1[j] * sin;
        u2[j] = u1[j] * cos;
    }
    samples(p, &mut u2);
    samples(p, &mut z1);

    // Path 2j drew the cosine normal, path 2j+1 the sine one; with an odd
    // count the last sine path is not part of the block.
    let cosine_paths = &u2[..pairs];
    let sine_paths = &z1[..count / 2];
    let mean = (lane_sum(cosine_paths, |y| y) + lane_sum(sine_paths, |y| y)) / count as f64;
    let m2 = lane_sum(cosine_paths, |y| (y - mean) * (y - mean)) + lane_sum(sine_paths, |y| (y - mean) * (y - mean));
    Stats { n: count as f64, mean, m2 }
}

/// Turns normals into samples: the payoff at z, or the mean of the payoffs
/// at z and −z. The antithetic choice is made once, outside the loops: with
/// it inside, LLVM if-converted it on AVX-512 and priced both z and −z for
/// every path of a plain run, then masked one away (perf put the payoff loops
/// at over half of the AVX-512 block; objdump showed two `vdivpd` per vector).
#[inline(always)]
fn samples(p: &Prepared, normals: &mut [f64; BLOCK / 2]) {
    let payoff = |z: f64| (p.sign * (p.spot * exp(p.drift + p.diffusion * z) - p.strike)).max(0.0);
    if p.antithetic {
        for z in normals.iter_mut() {
            *z = 0.5 * (payoff(*z) + payoff(-*z));
        }
    } else {
        for z in normals.iter_mut() {
            *z = payoff(*z);
        }
    }
}

/// Sums `f(x)` over 8 interleaved lanes, then the lanes in order: a fixed
/// order the compiler can vectorise.
#[inline(always)]
fn lane_sum(values: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in chunks.by_ref() {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += f(v);
    }
    ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_isa_gives_bitwise_equal_blocks() {
        // Calls and puts, with and without antithetic pairs, exponents that
        // overflow (drift 720) and underflow (drift −720) exp, and full,
        // odd and one-path blocks at a few starting paths.
        let rows = [
            (100.0, 95.0, 0.01, 0.2, 1.0, true),
            (100.0, 95.0, 0.01, 0.2, -1.0, false),
            (80.0, 120.0, 0.3, 1.1, 1.0, true),
            (1.0, 0.0, 720.0, 3.0, 1.0, false),
            (1.0, 0.0, -720.0, 30.0, 1.0, true),
        ];
        for (spot, strike, drift, diffusion, sign, antithetic) in rows {
            let p = Prepared { spot, strike, drift, diffusion, sign, antithetic };
            for (first, count) in [(4096, 4001), (0, BLOCK), (8192, 1), (1 << 40, 2)] {
                let reference = block_generic(&p, [7, 9], 3, first, count);
                for isa in Isa::available() {
                    let got = block_stats(isa, &p, [7, 9], 3, first, count);
                    let case = format!("{isa:?}, drift {drift}, paths {first}+{count}");
                    assert_eq!(got.mean.to_bits(), reference.mean.to_bits(), "{case}");
                    assert_eq!(got.m2.to_bits(), reference.m2.to_bits(), "{case}");
                }
            }
        }
    }
}
