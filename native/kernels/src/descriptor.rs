//! Descriptor types generated from `proto/tandem/v1/descriptor.proto`, and
//! small constructors so each kernel can declare its descriptor in one place.

#[allow(clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tandem.v1.rs"));
}

pub use pb::{KernelDescriptor, KernelFlags, KernelSet, ParamSpec, StateKindDescriptor, TensorSpec};

use crate::tensor::DType;
use pb::{dim, Dim, ParamType};

/// A dimension: a number is fixed, anything else is a symbol.
pub enum D {
    Fixed(i64),
    Sym(&'static str),
}

pub fn dtype_pb(dtype: DType) -> i32 {
    dtype as i32
}

pub fn tensor(name: &str, dtype: DType, shape: &[D], finite_only: bool) -> TensorSpec {
    TensorSpec {
        name: name.to_owned(),
        dtype: dtype_pb(dtype),
        shape: shape
            .iter()
            .map(|d| Dim {
                kind: Some(match d {
                    D::Fixed(n) => dim::Kind::Fixed(*n),
                    D::Sym(s) => dim::Kind::Symbol((*s).to_owned()),
                }),
            })
            .collect(),
        finite_only,
    }
}

pub fn int_param(name: &str, min: i64, max: i64, default_value: i64) -> ParamSpec {
    ParamSpec {
        name: name.to_owned(),
        r#type: ParamType::Int as i32,
        min: min as f64,
        max: max as f64,
        default_value: default_value as f64,
        choices: Vec::new(),
    }
}

pub fn enum_param(name: &str, choices: &[&str], default_index: i64) -> ParamSpec {
    ParamSpec {
        name: name.to_owned(),
        r#type: ParamType::Enum as i32,
        min: 0.0,
        max: (choices.len() - 1) as f64,
        default_value: default_index as f64,
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
    }
}

pub fn flags(idempotent: bool, batchable: bool, deterministic: bool, streaming: bool) -> Option<KernelFlags> {
    Some(KernelFlags { idempotent, batchable, deterministic, streaming })
}
