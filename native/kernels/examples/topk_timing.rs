//! Times `similarity.topk` on the registry without the C ABI, for tuning the
//! kernel: `cargo run --release --example topk_timing -- [rows] [dim] [batch]`.

use std::time::Instant;
use tandem_kernels::similarity::{search, Collection, Metric};
use tandem_sdk::CallContext;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (rows, dim, batch) =
        (*args.first().unwrap_or(&200_000), *args.get(1).unwrap_or(&384), *args.get(2).unwrap_or(&64));
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let values: Vec<f32> = (0..rows * dim).map(|_| next()).collect();
    let queries: Vec<f32> = (0..batch * dim).map(|_| next()).collect();
    let collection = Collection::new(&values, rows, dim, None).expect("valid collection");
    let (mut ids, mut scores) = (vec![0i64; batch * 10], vec![0f32; batch * 10]);
    let ctx = CallContext::default();
    let mut samples = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        search(&collection, &queries, batch, Metric::Dot, &ctx, &mut ids, &mut scores).expect("search");
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let gflops = 2.0 * (rows * dim * batch) as f64 / (median * 1e-3) / 1e9;
    println!(
        "rows {rows} dim {dim} batch {batch}: median {median:.2} ms ({gflops:.0} GFLOP/s), min {:.2} ms",
        samples[0]
    );
}
