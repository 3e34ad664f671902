//! Times a `diagnostics.noop` call through the C ABI from Rust, to separate
//! the library's own per-call cost from the P/Invoke transition, unprepared
//! and prepared:
//! `cargo run --release -p tandem-ffi --example noop_timing`.

use std::time::Instant;
use tandem::*;

fn main() {
    let name = b"diagnostics.noop";
    let mut kernel: *const tandem_kernel_t = std::ptr::null();
    // SAFETY: valid name and out pointer.
    let error = unsafe { tandem_kernel_find(name.as_ptr(), name.len(), &mut kernel) };
    assert!(error.is_null());
    let (a, b) = ([0u8; 64], [0u8; 64]);
    let tensor = |data: &[u8; 64]| tandem_tensor_t {
        data: data.as_ptr().cast(),
        byte_len: 64,
        shape: [64, 0, 0, 0],
        rank: 1,
        dtype: TANDEM_DTYPE_U8,
    };
    let inputs = [tensor(&a), tensor(&b)];
    let calls: u32 = std::env::var("CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    for round in 0..3 {
        let start = Instant::now();
        for _ in 0..calls {
            // SAFETY: live kernel handle and input buffers; no outputs.
            let error = unsafe {
                tandem_kernel_invoke(
                    kernel,
                    std::ptr::null(),
                    inputs.as_ptr(),
                    2,
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                )
            };
            assert!(error.is_null());
        }
        println!("round {round}: {:.1} ns per call", start.elapsed().as_nanos() as f64 / f64::from(calls));
    }
    let mut prepared = std::ptr::null_mut();
    // SAFETY: live kernel handle, inputs and out pointer.
    let error = unsafe {
        tandem_kernel_prepare(kernel, inputs.as_ptr(), 2, std::ptr::null(), 0, std::ptr::null(), 0, &mut prepared)
    };
    assert!(error.is_null());
    let data = [
        tandem_slice_t { data: a.as_ptr().cast(), byte_len: 64 },
        tandem_slice_t { data: b.as_ptr().cast(), byte_len: 64 },
    ];
    for round in 0..3 {
        let start = Instant::now();
        for _ in 0..calls {
            // SAFETY: live prepared handle and input buffers of the prepared lengths.
            let error = unsafe {
                tandem_prepared_invoke(
                    prepared,
                    std::ptr::null(),
                    TANDEM_ROWS_AS_PREPARED,
                    data.as_ptr(),
                    2,
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                )
            };
            assert!(error.is_null());
        }
        println!("prepared round {round}: {:.1} ns per call", start.elapsed().as_nanos() as f64 / f64::from(calls));
    }
    // SAFETY: from tandem_kernel_prepare, freed once.
    unsafe { tandem_prepared_free(prepared) };
}
