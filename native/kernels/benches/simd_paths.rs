//! Kernel-only timings per SIMD path, side by side in one run:
//! `cargo bench -p tandem-kernels --bench simd_paths [-- rounds]`.
//!
//! The path is chosen once per process (`TANDEM_ISA`, cached by
//! `Isa::detect`), so the bench runs itself once per path and round, the
//! paths alternating so that a change in the machine's load hits them alike.
//! Shapes are those of the .NET benchmarks: `montecarlo.european` 64 rows ×
//! 1,000,000 paths, `similarity.topk` n = 200,000, dim = 384, k = 10, dot, a
//! batch of 64 (and one query). Medians and minimums in milliseconds; the
//! load average before and after is printed, since other jobs share the cores.
//! `SIMD_PATHS=avx2,portable` picks the paths (default: every path this CPU
//! runs except portable, which is an order of magnitude slower).

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;
use tandem_kernels::montecarlo::{price, Contract, Sampling};
use tandem_kernels::similarity::{search, Collection, Metric};
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
    let mut samples: BTreeMap<(&'static str, String), Vec<f64>> = BTreeMap::new();
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
                let mut fields = line.split_whitespace();
                if let (Some(case), Some(ms)) = (fields.next(), fields.next().and_then(|v| v.parse::<f64>().ok())) {
                    samples.entry((isa.name(), case.to_string())).or_default().push(ms);
                }
            }
        }
    }
    println!("{:<10} {:<22} {:>8} {:>10} {:>10}", "path", "case", "samples", "median ms", "min ms");
    for ((isa, case), mut times) in samples {
        times.sort_by(f64::total_cmp);
        println!("{isa:<10} {case:<22} {:>8} {:>10.2} {:>10.2}", times.len(), times[times.len() / 2], times[0]);
    }
    println!("load average after: {}", load());
}

/// One round on the path `TANDEM_ISA` forced: prints `case milliseconds`
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
        let start = Instant::now();
        std::hint::black_box(f());
        println!("{case} {:.3}", start.elapsed().as_secs_f64() * 1e3);
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
