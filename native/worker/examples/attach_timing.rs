//! Times attaching a kernel library in the worker: `dlopen`, the ABI and
//! status checks, describe, re-hashing and re-checking every descriptor, and
//! building the catalog with the built-in library. Each round loads a fresh
//! copy of the library (a new path, so the loader and the library's
//! registration start from nothing):
//! `cargo run --release -p tandem-worker --example attach_timing [LIBRARY] [ROUNDS]`
//! (default: the fixture library, 50 rounds).

use std::path::PathBuf;
use std::time::Instant;
use tandem_worker::catalog::Catalog;

fn main() {
    let mut args = std::env::args().skip(1);
    let library = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libtandem_fixture_kernels.so")
    });
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().expect("a temp dir");
    // The built-in library is built once per process; take it out of the figure.
    Catalog::load(&[]).expect("the built-in library loads");
    let mut micros = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let copy = dir.path().join(format!("lib{round}.so"));
        std::fs::copy(&library, &copy).expect("copy the library");
        let started = Instant::now();
        let catalog = Catalog::load(&[copy]).expect("the library attaches");
        micros.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(catalog);
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    println!(
        "attach {}: {rounds} rounds, median {:.0} µs, p10 {:.0} µs, p90 {:.0} µs",
        library.display(),
        at(0.5),
        at(0.1),
        at(0.9)
    );
}
