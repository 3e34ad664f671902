//! Times `montecarlo.european` pricing without the C ABI, for tuning:
//! `cargo run --release --example montecarlo_timing -- [paths]`.

use std::time::Instant;
use tandem_kernels::montecarlo::{price, Contract, Sampling};
use tandem_sdk::pool::pool;
use tandem_sdk::CallContext;

fn main() {
    let paths: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(16_000_000);
    let contract = Contract { spot: 100.0, strike: 100.0, rate: 0.02, volatility: 0.2, maturity: 1.0, call: true };
    let sampling = Sampling { seed: 7, paths, antithetic: false };
    let ctx = CallContext::default();
    for _ in 0..5 {
        let start = Instant::now();
        let (p, se) = pool().install(|| price(&contract, 0, sampling, &ctx)).expect("price");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{paths} paths: {:.1} ms, {:.1} M paths/s (price {p:.4} ± {se:.4})",
            secs * 1e3,
            paths as f64 / secs / 1e6
        );
    }
}
