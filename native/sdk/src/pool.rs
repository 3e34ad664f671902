//! The fixed compute pool: one worker thread per core, shared by every kernel
//! so concurrent calls queue for cores instead of oversubscribing them.

use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::OnceLock;

/// Environment variable overriding the pool's thread count.
pub const THREADS_ENV: &str = "TANDEM_THREADS";

static POOL: OnceLock<ThreadPool> = OnceLock::new();

pub fn pool() -> &'static ThreadPool {
    POOL.get_or_init(|| {
        let threads = std::env::var(THREADS_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        ThreadPoolBuilder::new()
            .num_threads(threads)
            // A worker waiting inside a parallel loop may run other queued
            // calls on its stack (work stealing), so give nesting room.
            .stack_size(16 << 20)
            .thread_name(|i| format!("tandem-compute-{i}"))
            .build()
            .expect("the compute pool's threads could not be started")
    })
}

pub fn threads() -> usize {
    pool().current_num_threads()
}
