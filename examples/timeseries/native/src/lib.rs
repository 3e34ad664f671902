//! `timeseries-kernels`: an example kernel library for Tandem, the kind of
//! hot loop a .NET team moves to Rust, built on `tandem-sdk` the way
//! Tandem's own kernels are. Copy it, rename it, put your math in.
//!
//! It has one kernel, `timeseries.ewma` v1. It computes the exponentially
//! weighted moving average of every row in a batch of time series:
//!
//! ```text
//! y[0] = x[0]
//! y[t] = y[t-1] + alpha · (x[t] − y[t-1])      for t = 1 … len−1
//! ```
//!
//! - input `x`: f64[batch, len], finite (the SDK refuses NaN and ±Inf
//!   before the kernel runs);
//! - parameter `alpha`: the smoothing factor, in [1e-6, 1], default 0.1
//!   (for a half-life of `h` samples, `alpha = 1 − 0.5^(1/h)`);
//! - output `y`: f64[batch, len];
//! - flags: idempotent, batchable (rows are independent, so Tandem may
//!   merge concurrent calls along axis 0), deterministic.
//!
//! **Bitwise equal to its C# twin.** Each step is one subtraction, one
//! multiplication and one addition, in that order, on IEEE 754 doubles.
//! Neither Rust nor .NET fuses them into an FMA unless asked to. So the twin
//! (`dotnet/Timeseries.Kernels/EwmaTwin.cs`) writes the same bits, and the
//! tests compare bits, not tolerances. To keep that true, don't add
//! `mul_add`, don't reorder the operations, and don't vectorise across
//! time steps.
//!
//! Layout:
//! - [`ewma_rows`]: the math, in plain safe Rust with no Tandem types;
//! - [`Ewma`]: the kernel: its descriptor (the contract, which C# is
//!   generated from) and `invoke`, which adapts the tensors to
//!   [`ewma_rows`];
//! - `tandem_sdk::export!`: the library's C ABI (it writes [`register`]).

use tandem_sdk::prelude::*;

/// The smallest smoothing factor the contract accepts (a half-life of about
/// 690,000 samples). The contract can't say "greater than 0", only a minimum.
pub const MIN_ALPHA: f64 = 1e-6;

/// Rows between two checks of the call's cancellation and deadline.
const ROWS_PER_CHECK: usize = 256;

/// Writes into `y` the EWMA of each row of `x` (row-major, `len` values per
/// row). `x` and `y` have the same length, a multiple of `len`.
pub fn ewma_rows(x: &[f64], len: usize, alpha: f64, y: &mut [f64]) {
    if len == 0 {
        return;
    }
    for (x, y) in x.chunks_exact(len).zip(y.chunks_exact_mut(len)) {
        let mut average = x[0];
        y[0] = average;
        for t in 1..len {
            average += alpha * (x[t] - average);
            y[t] = average;
        }
    }
}

/// `timeseries.ewma`: see the crate docs.
pub struct Ewma;

impl Kernel for Ewma {
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor::builder("timeseries.ewma", 1)
            .summary("Exponentially weighted moving average of each row: y[0] = x[0], y[t] = y[t-1] + alpha·(x[t] − y[t-1]).")
            .input(TensorSpec::new("x", DType::F64, [D::sym("batch"), D::sym("len")]).finite_only())
            .output(TensorSpec::new("y", DType::F64, [D::sym("batch"), D::sym("len")]))
            .param(ParamSpec::float("alpha", MIN_ALPHA, 1.0, 0.1))
            .flags(Flags { idempotent: true, batchable: true, deterministic: true, ..Flags::default() })
            .build()
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        // The SDK has already checked x, alpha and the output y against the descriptor.
        let (len, alpha) = (call.symbol("len"), call.float(0));
        let (x, y) = (call.inputs[0].f64s("x")?, call.outputs[0].f64s_mut("y")?);
        let block = ROWS_PER_CHECK * len.max(1);
        for (x, y) in x.chunks(block).zip(y.chunks_mut(block)) {
            call.ctx.check()?;
            ewma_rows(x, len, alpha, y);
        }
        Ok(())
    }
}

// The library's C ABI, and `pub fn register` adding its kernels (the tests call it).
tandem_sdk::export!(kernels: [Ewma]);

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_sdk::{CallContext, Code, Library, Param, TensorMut, TensorRef};

    fn library() -> Library {
        Library::from_register("timeseries-kernels", "0", register).unwrap()
    }

    /// Runs `timeseries.ewma` through the library, validation included, the
    /// way Tandem's host and worker call it.
    fn invoke(rows: usize, x: &[f64], alpha: f64) -> Result<Vec<f64>, KernelError> {
        let library = library();
        let kernel = library.kernel("timeseries.ewma")?;
        let shape = [rows, x.len().checked_div(rows).unwrap_or(0)];
        let mut y = vec![0.0f64; x.len()];
        let inputs = [TensorRef::of(&shape, x)];
        let mut outputs = [TensorMut::of(&shape, &mut y)];
        library.invoke(kernel, None, &inputs, &[Param::Float(alpha)], &mut outputs, &CallContext::default())?;
        Ok(y)
    }

    #[test]
    fn ewma_rows_half_alpha_halves_the_distance_each_step() {
        let mut y = [0.0; 4];
        ewma_rows(&[1.0, 2.0, 3.0, 3.0], 4, 0.5, &mut y);
        assert_eq!(y, [1.0, 1.5, 2.25, 2.625]);
    }

    #[test]
    fn ewma_rows_alpha_one_copies_the_input() {
        let x = [3.0, -1.0, 7.5, 0.25];
        let mut y = [0.0; 4];
        ewma_rows(&x, 2, 1.0, &mut y);
        assert_eq!(y, x);
    }

    #[test]
    fn ewma_rows_each_row_starts_afresh() {
        let mut y = [0.0; 4];
        ewma_rows(&[10.0, 20.0, 100.0, 200.0], 2, 0.5, &mut y);
        assert_eq!(y, [10.0, 15.0, 100.0, 150.0]);
    }

    #[test]
    fn invoke_row_alone_or_in_a_batch_gives_the_same_bits() {
        let batch: Vec<f64> = (0..5 * 300).map(|i| ((i * 7919) % 1000) as f64 / 7.0 - 50.0).collect();
        let together = invoke(300, &batch, 0.03).unwrap();
        for row in [0, 1, 257, 299] {
            let alone = invoke(1, &batch[row * 5..row * 5 + 5], 0.03).unwrap();
            let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&alone), bits(&together[row * 5..row * 5 + 5]), "row {row}");
        }
    }

    #[test]
    fn invoke_empty_rows_writes_nothing() {
        assert_eq!(invoke(3, &[], 0.5).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn invoke_non_finite_input_is_refused_naming_the_tensor() {
        let error = invoke(1, &[1.0, f64::NAN], 0.5).unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument);
        assert!(error.message.contains("'x'"), "{error}");
    }

    #[test]
    fn invoke_alpha_outside_its_range_is_refused_naming_it() {
        for alpha in [0.0, 1.5] {
            let error = invoke(1, &[1.0, 2.0], alpha).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument);
            assert!(error.message.contains("'alpha'"), "{alpha}: {error}");
        }
    }

    #[test]
    fn invoke_output_of_another_shape_is_refused_naming_it() {
        let library = library();
        let kernel = library.kernel("timeseries.ewma").unwrap();
        let mut y = [0.0f64; 3];
        let inputs = [TensorRef::of(&[1, 2], &[1.0f64, 2.0][..])];
        let mut outputs = [TensorMut::of(&[1, 3], &mut y[..])];
        let error = library
            .invoke(kernel, None, &inputs, &[Param::Float(0.5)], &mut outputs, &CallContext::default())
            .unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument);
        assert!(error.message.contains("'y'"), "{error}");
    }

    #[test]
    fn every_kernel_warms_up() {
        let library = library();
        for kernel in library.kernels() {
            library.warm_up(kernel).unwrap();
        }
    }
}
