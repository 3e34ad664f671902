//! `montecarlo.european`: Monte Carlo prices of European options, with
//! counter-based random numbers keyed by (seed, row key, path), so a row's
//! price is bitwise repeatable on one backend for any thread count, batch
//! composition or retry.
//!
//! Input rows are f64[6]: spot, strike, rate, volatility, maturity (years),
//! call (1) or put (0). The `row_keys` input carries each row's index within
//! the caller's own request, which is what its random stream is keyed by.

mod european;
pub mod math;
pub mod philox;

pub use european::{price, Contract, Sampling, BLOCK};

use rayon::prelude::*;
use tandem_sdk::descriptor::{Flags, KernelDescriptor, ParamSpec, TensorSpec, D, W};
use tandem_sdk::pool::pool;
use tandem_sdk::{DType, Invocation, Kernel, KernelError};

pub const KERNEL_NAME: &str = "montecarlo.european";
/// Most paths a row may ask for.
pub const MAX_PATHS: i64 = 1_000_000_000;
/// Most paths one call may ask for over all its rows (rows × paths): ten
/// rows at the most paths, or 64 rows × 1M paths 156 times over.
pub const MAX_WORK_PER_CALL: i64 = 10_000_000_000;
/// Names of the six fields of an option row, in order.
pub const FIELDS: [&str; 6] = ["spot", "strike", "rate", "volatility", "maturity", "call"];

/// `montecarlo.european`.
pub struct European;

/// Checks one row, naming the row and field of the first problem.
pub fn contract(row: usize, values: &[f64]) -> Result<Contract, KernelError> {
    for (field, &v) in FIELDS.iter().zip(values) {
        if !v.is_finite() {
            return Err(KernelError::invalid(format!(
                "tensor 'options' row {row} field '{field}' is {v}; it must be finite"
            )));
        }
    }
    for (i, field) in [(0, "spot"), (1, "strike"), (3, "volatility"), (4, "maturity")] {
        if values[i] < 0.0 {
            return Err(KernelError::invalid(format!(
                "tensor 'options' row {row} field '{field}' is {}; it must not be negative",
                values[i]
            )));
        }
    }
    if values[5] != 0.0 && values[5] != 1.0 {
        return Err(KernelError::invalid(format!(
            "tensor 'options' row {row} field 'call' is {}; use 1 for a call or 0 for a put",
            values[5]
        )));
    }
    Ok(Contract {
        spot: values[0],
        strike: values[1],
        rate: values[2],
        volatility: values[3],
        maturity: values[4],
        call: values[5] == 1.0,
    })
}

impl Kernel for European {
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor::builder(KERNEL_NAME, 1)
            .summary("Monte Carlo prices of European options, bitwise repeatable per (seed, row key, path).")
            .input(TensorSpec::new("options", DType::F64, [D::sym("batch"), D::fixed(6)]))
            .input(TensorSpec::new("row_keys", DType::I64, [D::sym("batch")]))
            .output(TensorSpec::new("price", DType::F64, [D::sym("batch")]))
            .output(TensorSpec::new("stderr", DType::F64, [D::sym("batch")]))
            .param(ParamSpec::int("paths", 1, MAX_PATHS, 100_000))
            .param(ParamSpec::int("seed", i64::MIN, i64::MAX, 0))
            .param(ParamSpec::boolean("antithetic", false))
            .limit("max_paths", MAX_PATHS, "Most paths a row may ask for.")
            .work(&[W::sym("batch"), W::param("paths")], MAX_WORK_PER_CALL)
            .flags(Flags { idempotent: true, batchable: true, deterministic: true, ..Flags::default() })
            .build()
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        let batch = call.symbol("batch");
        if batch == 0 {
            return Err(KernelError::invalid("tensor 'options' holds no rows; send at least one option"));
        }
        let options = call.inputs[0].f64s("options")?;
        let keys = call.inputs[1].i64s("row_keys")?;
        let contracts: Vec<Contract> =
            options.chunks_exact(6).enumerate().map(|(row, values)| contract(row, values)).collect::<Result<_, _>>()?;
        let sampling = Sampling {
            paths: call.params[0].as_i64() as u64,
            seed: call.params[1].as_i64() as u64,
            antithetic: call.params[2].as_i64() != 0,
        };
        let ctx = call.ctx;
        let results: Vec<(f64, f64)> = pool().install(|| {
            contracts
                .par_iter()
                .zip(keys.par_iter())
                .map(|(c, &key)| price(c, key as u64, sampling, ctx))
                .collect::<Result<_, KernelError>>()
        })?;
        let (price_out, stderr_out) = call.outputs.split_at_mut(1);
        let prices = price_out[0].f64s_mut("price")?;
        let stderrs = stderr_out[0].f64s_mut("stderr")?;
        for ((p, s), (price, stderr)) in prices.iter_mut().zip(stderrs.iter_mut()).zip(results) {
            *p = price;
            *s = stderr;
        }
        Ok(())
    }
}
