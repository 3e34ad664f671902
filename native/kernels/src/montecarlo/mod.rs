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

use crate::descriptor::pb::ParamType;
use crate::descriptor::{self, int_param, tensor, KernelDescriptor, ParamSpec, D};
use crate::error::KernelError;
use crate::pool::pool;
use crate::registry::{Invocation, Kernel};
use crate::tensor::DType;
use crate::validate::check_output;
use rayon::prelude::*;

pub const KERNEL_NAME: &str = "montecarlo.european";
/// Most paths a row may ask for.
pub const MAX_PATHS: i64 = 1_000_000_000;
/// Names of the six fields of an option row, in order.
pub const FIELDS: [&str; 6] = ["spot", "strike", "rate", "volatility", "maturity", "call"];

pub struct European {
    descriptor: KernelDescriptor,
}

fn bool_param(name: &str) -> ParamSpec {
    ParamSpec {
        name: name.to_owned(),
        r#type: ParamType::Bool as i32,
        min: 0.0,
        max: 1.0,
        default_value: 0.0,
        choices: Vec::new(),
    }
}

impl European {
    pub fn new() -> European {
        European {
            descriptor: KernelDescriptor {
                name: KERNEL_NAME.into(),
                version: 1,
                inputs: vec![
                    tensor("options", DType::F64, &[D::Sym("batch"), D::Fixed(6)], false),
                    tensor("row_keys", DType::I64, &[D::Sym("batch")], false),
                ],
                outputs: vec![
                    tensor("price", DType::F64, &[D::Sym("batch")], false),
                    tensor("stderr", DType::F64, &[D::Sym("batch")], false),
                ],
                params: vec![
                    int_param("paths", 1, MAX_PATHS, 100_000),
                    int_param("seed", i64::MIN, i64::MAX, 0),
                    bool_param("antithetic"),
                ],
                state_kind: String::new(),
                flags: descriptor::flags(true, true, true, false),
            },
        }
    }
}

impl Default for European {
    fn default() -> Self {
        Self::new()
    }
}

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
    fn descriptor(&self) -> &KernelDescriptor {
        &self.descriptor
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        let batch = call.bindings.get("batch").unwrap_or(0);
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
        if call.outputs.len() != 2 {
            return Err(KernelError::invalid(format!(
                "montecarlo.european writes 2 outputs (price, stderr), got {}",
                call.outputs.len()
            )));
        }
        check_output(&self.descriptor.outputs[0], &call.outputs[0], &[batch])?;
        check_output(&self.descriptor.outputs[1], &call.outputs[1], &[batch])?;
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
