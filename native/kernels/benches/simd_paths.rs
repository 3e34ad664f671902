//! Kernel-only timings per SIMD path, side by side in one run:
//! `cargo bench -p tandem-kernels --bench simd_paths [-- rounds]`.
//!
//! The path is chosen once per process (`TANDEM_ISA`, cached by
//! `Isa::detect`), so the bench runs itself once per path and round, the
//! paths alternating so that a change in the machine's load hits them alike.
//! Shapes are those of the .NET benchmarks: `montecarlo.european` 64 rows ×
//! 1,000,000 paths, `similarity.topk` n = 200,000, dim = 384, k = 10, dot, a
//! batch of 64 (and one query), and the batch's dot products alone; plus
//! `fma.peak`, a register-only loop of independent fused multiply-adds at the
//! path's vector width, which bounds what any f32 dot product can reach on
//! one core. Medians and minimums in milliseconds, of wall time and of the
//! process's CPU time (all its threads): other jobs share the cores, and CPU
//! time moves less than wall time when they take turns on them (the load
//! average before and after is printed too). Idle pool threads spin a little
//! before they sleep, which CPU time counts; `TANDEM_THREADS=1` avoids that.
//! After the table, the batch-64 dot products' CPU time is set against the
//! time its 9.8 GFLOP take at the measured FMA peak.
//! `SIMD_PATHS=avx2,portable` picks the paths (default: every path this CPU
//! runs except portable, which is an order of magnitude slower).

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;
use tandem_kernels::montecarlo::{price, Contract, Sampling};
use tandem_kernels::similarity::{dot, search, Collection, Metric};
use tandem_sdk::pool::pool;
use tandem_sdk::simd::{Isa, ISA_ENV};
use tandem_sdk::CallContext;

const CHILD_ENV: &str = "SIMD_PATHS_CHILD";
const OPTIONS: usize = 64;
const PATHS: u64 = 1_000_000;
const ROWS: usize = 200_000;
const DIM: usize = 384;
const K: usize = 10;

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
    } else {
        parent();
    }
}

/// Runs one round per path and round count, then prints the table.
fn parent() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let paths: Vec<Isa> = match std::env::var("SIMD_PATHS") {
        Ok(list) => list.split(',').map(|name| Isa::parse(name).ok().flatten().expect("a SIMD path name")).collect(),
        Err(_) => Isa::available().into_iter().filter(|&isa| isa != Isa::Portable).collect(),
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| info.lines().find(|l| l.starts_with("model name")).map(|l| l.to_string()))
        .unwrap_or_default();
    println!("{cpu}; {} compute threads; load average {}", tandem_sdk::pool::threads(), load());
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut samples: BTreeMap<(&'static str, String), Vec<(f64, f64)>> = BTreeMap::new();
    for round in 0..rounds {
        for &isa in &paths {
            if let Some(reason) = isa.unsupported_reason() {
                println!("skipping {}: {reason}", isa.name());
                continue;
            }
            let output = Command::new(&exe).env(CHILD_ENV, "1").env(ISA_ENV, isa.name()).output().expect("run a round");
            assert!(
                output.status.success(),
                "round {round} on {}: {}",
                isa.name(),
                String::from_utf8_lossy(&output.stderr)
            );
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if let [case, wall, cpu] = fields[..] {
                    let (wall, cpu) = (wall.parse().expect("wall ms"), cpu.parse().expect("cpu ms"));
                    samples.entry((isa.name(), case.to_string())).or_default().push((wall, cpu));
                }
            }
        }
    }
    println!(
        "{:<10} {:<18} {:>8} {:>12} {:>9} {:>12} {:>9}",
        "path", "case", "samples", "wall median", "wall min", "CPU median", "CPU min"
    );
    for ((isa, case), times) in &samples {
        let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = times.iter().copied().unzip();
        wall.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let n = wall.len();
        println!(
            "{isa:<10} {case:<18} {n:>8} {:>12.2} {:>9.2} {:>12.2} {:>9.2}",
            wall[n / 2],
            wall[0],
            cpu[n / 2],
            cpu[0]
        );
    }
    for isa in &paths {
        let median_cpu = |case: &str| {
            samples.get(&(isa.name(), case.to_string())).map(|times| {
                let mut cpu: Vec<f64> = times.iter().map(|t| t.1).collect();
                cpu.sort_by(f64::total_cmp);
                cpu[cpu.len() / 2]
            })
        };
        if let (Some(peak_ms), Some(dots_ms)) = (median_cpu("fma.peak"), median_cpu("topk.dots64")) {
            let peak = PEAK_FLOPS / (peak_ms * 1e-3) / 1e9;
            let bound_ms = DOT_FLOPS / (peak * 1e9) * 1e3;
            println!(
                "{}: FMA peak {peak:.1} GFLOP/s per core; batch-64 dot products {dots_ms:.1} ms CPU = {:.0}% of that peak (bound {bound_ms:.1} ms CPU)",
                isa.name(),
                100.0 * bound_ms / dots_ms
            );
        }
    }
    println!("load average after: {}", load());
}

/// Flops of the batch-64 dot products: 64 queries × 200,000 rows × 384.
const DOT_FLOPS: f64 = 2.0 * 64.0 * ROWS as f64 * DIM as f64;
/// Flops of one `fma.peak` run (the same on every path: the narrower
/// vector runs more iterations).
const PEAK_FLOPS: f64 = 2.0 * 12.0 * 16.0 * PEAK_ITERATIONS as f64;
const PEAK_ITERATIONS: u64 = 20_000_000;

/// `fma.peak` on the path `TANDEM_ISA` forced: 12 independent accumulators,
/// enough to cover the FMA latency on both ports; `None` on the portable path.
fn fma_peak() -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    match Isa::detect() {
        // SAFETY: the forced path is only used when the CPU runs it (the
        // child is only started for paths Isa::unsupported_reason accepts).
        Isa::Avx512 => return Some(unsafe { peak::avx512(PEAK_ITERATIONS) }),
        // SAFETY: as above, for avx2 and fma.
        Isa::Avx2Fma => return Some(unsafe { peak::avx2(2 * PEAK_ITERATIONS) }),
        Isa::Portable => {}
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU supports avx512f.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iterations: u64) -> f32 {
        let (x, y) = (_mm512_set1_ps(0.999), _mm512_set1_ps(0.001));
        let mut acc = [_mm512_setzero_ps(); 12];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    /// # Safety
    /// The CPU supports avx2 and fma.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iterations: u64) -> f32 {
        let (x, y) = (_mm256_set1_ps(0.999), _mm256_set1_ps(0.001));
        let mut acc = [_mm256_setzero_ps(); 12];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut lanes = [0.0f32; 8];
        let mut sum = 0.0;
        for a in acc {
            _mm256_storeu_ps(lanes.as_mut_ptr(), a);
            sum += lanes.iter().sum::<f32>();
        }
        sum
    }
}

/// One round on the path `TANDEM_ISA` forced: prints `case wall-ms cpu-ms`
/// lines (after one warm-up call each).
fn child() {
    let ctx = CallContext::default();
    let contracts: Vec<Contract> = (0..OPTIONS)
        .map(|i| Contract {
            spot: 80.0 + i as f64,
            strike: 100.0,
            rate: 0.02,
            volatility: 0.1 + 0.005 * i as f64,
            maturity: 0.25 + 0.05 * i as f64,
            call: i % 2 == 0,
        })
        .collect();
    let sampling = Sampling { seed: 7, paths: PATHS, antithetic: false };
    let montecarlo = || {
        pool().install(|| {
            contracts
                .par_iter()
                .enumerate()
                .map(|(row, c)| price(c, row as u64, sampling, &ctx).expect("price"))
                .collect::<Vec<_>>()
        })
    };
    if fma_peak().is_some() {
        time("fma.peak", 3, fma_peak);
    }
    time("montecarlo.64x1M", 5, montecarlo);

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let values: Vec<f32> = (0..ROWS * DIM).map(|_| next()).collect();
    let collection = Collection::new(&values, ROWS, DIM, None).expect("valid collection");
    drop(values);
    // The dot products of the batch of 64 alone, blocked and parallel as the
    // search does them (16-row blocks, chunks on the pool), without the
    // selection: topk.batch64 minus this is what selecting costs.
    // 64-byte aligned, as the search pads its queries.
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    struct Line([f32; 16]);
    let mut lines = vec![Line([0.0; 16]); 64 * DIM / 16];
    for line in lines.iter_mut() {
        line.0 = std::array::from_fn(|_| next());
    }
    // SAFETY: Line is repr(C) over 16 f32s with no padding, so the lines are
    // a contiguous f32 array of 64 · DIM values (DIM is a multiple of 16).
    let queries: &[f32] = unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<f32>(), 64 * DIM) };
    let pd = collection.padded_dim();
    let chunk = ROWS.div_ceil(tandem_sdk::pool::threads() * 4).div_ceil(16) * 16;
    time("topk.dots64", 7, || {
        pool().install(|| {
            collection.values().par_chunks(chunk * pd).for_each(|rows| {
                let mut scores = vec![0.0f32; 64 * 16];
                let blocks: Vec<&[f32]> = rows.chunks(16 * pd).collect();
                for (b, block) in blocks.iter().enumerate() {
                    let next = blocks.get(b + 1).copied().unwrap_or(&[]);
                    let nx = block.len() / pd;
                    dot::dot_block_prefetching(Isa::detect(), queries, 64, block, nx, pd, &mut scores, 16, next);
                    std::hint::black_box(&scores);
                }
            })
        })
    });
    for batch in [64, 1] {
        let queries: Vec<f32> = (0..batch * DIM).map(|_| next()).collect();
        let (mut ids, mut scores) = (vec![0i64; batch * K], vec![0f32; batch * K]);
        let name = if batch == 64 { "topk.batch64" } else { "topk.batch1" };
        time(name, 7, || {
            search(&collection, &queries, batch, Metric::Dot, &ctx, &mut ids, &mut scores).expect("search")
        });
    }
}

fn time<T>(case: &str, iterations: usize, mut f: impl FnMut() -> T) {
    std::hint::black_box(f());
    for _ in 0..iterations {
        let (start, cpu) = (Instant::now(), cpu_ms());
        std::hint::black_box(f());
        println!("{case} {:.3} {:.3}", start.elapsed().as_secs_f64() * 1e3, cpu_ms() - cpu);
    }
}

/// CPU time of the whole process (every thread), in milliseconds.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // Linux defines, so the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 * 1e-6
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
