//! `similarity.topk`: the `k` rows of a vector collection most similar to
//! each query, by dot product, cosine similarity or squared L2 distance.
//!
//! Scores: dot and cosine are similarities (highest first); l2 is the squared
//! Euclidean distance `(|q|² + |x|²) − 2·q·x`, clamped at 0 (lowest first).
//! Ties go to the lower id. A cosine score against a zero row is 0; a zero
//! query under cosine is INVALID_ARGUMENT. With `k > n`, `n` hits return.

mod collection;
pub mod dot;
mod search;
pub mod select;

pub use collection::Collection;
pub use search::search;

use crate::descriptor::{self, enum_param, int_param, tensor, KernelDescriptor, StateKindDescriptor, D};
use crate::error::KernelError;
use crate::registry::{Invocation, Kernel};
use crate::tensor::DType;
use crate::validate::check_output;

pub const KERNEL_NAME: &str = "similarity.topk";
pub const COLLECTION_KIND: &str = "vector_collection";
/// Largest `k` a call may ask for.
pub const MAX_K: i64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Dot = 0,
    Cosine = 1,
    L2 = 2,
}

impl Metric {
    pub fn from_index(index: i64) -> Option<Metric> {
        match index {
            0 => Some(Metric::Dot),
            1 => Some(Metric::Cosine),
            2 => Some(Metric::L2),
            _ => None,
        }
    }
}

pub fn collection_kind_descriptor() -> StateKindDescriptor {
    StateKindDescriptor {
        name: COLLECTION_KIND.into(),
        tensors: vec![
            tensor("vectors", DType::F32, &[D::Sym("n"), D::Sym("dim")], true),
            tensor("ids", DType::I64, &[D::Sym("n")], false),
        ],
        optional_tensors: vec!["ids".into()],
    }
}

pub struct TopK {
    descriptor: KernelDescriptor,
}

impl TopK {
    pub fn new() -> TopK {
        TopK {
            descriptor: KernelDescriptor {
                name: KERNEL_NAME.into(),
                version: 1,
                inputs: vec![tensor("queries", DType::F32, &[D::Sym("batch"), D::Sym("dim")], true)],
                outputs: vec![
                    tensor("ids", DType::I64, &[D::Sym("batch"), D::Sym("k")], false),
                    tensor("scores", DType::F32, &[D::Sym("batch"), D::Sym("k")], false),
                ],
                params: vec![int_param("k", 1, MAX_K, 10), enum_param("metric", &["dot", "cosine", "l2"], 0)],
                state_kind: COLLECTION_KIND.into(),
                flags: descriptor::flags(true, true, true, false),
            },
        }
    }
}

impl Default for TopK {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernel for TopK {
    fn descriptor(&self) -> &KernelDescriptor {
        &self.descriptor
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        let coll = call
            .state
            .and_then(|s| s.as_collection())
            .ok_or_else(|| KernelError::invalid("similarity.topk needs a vector collection"))?;
        let batch = call.bindings.get("batch").unwrap_or(0);
        let dim = call.bindings.get("dim").unwrap_or(0);
        if batch == 0 {
            return Err(KernelError::invalid("tensor 'queries' holds no rows; send at least one query"));
        }
        if dim != coll.dim() {
            return Err(KernelError::invalid(format!(
                "tensor 'queries' has dimension {dim} but the collection's vectors have dimension {}",
                coll.dim()
            )));
        }
        let metric = Metric::from_index(call.params[1].as_i64())
            .ok_or_else(|| KernelError::invalid("parameter 'metric' is out of range"))?;
        let k = (call.params[0].as_i64() as usize).min(coll.rows());
        if call.outputs.len() != 2 {
            return Err(KernelError::invalid(format!(
                "similarity.topk writes 2 outputs (ids, scores), got {}",
                call.outputs.len()
            )));
        }
        let expected = [batch, k];
        check_output(&self.descriptor.outputs[0], &call.outputs[0], &expected)?;
        check_output(&self.descriptor.outputs[1], &call.outputs[1], &expected)?;
        let queries = call.inputs[0].f32s("queries")?;
        let (ids_out, scores_out) = call.outputs.split_at_mut(1);
        let ids = ids_out[0].i64s_mut("ids")?;
        let scores = scores_out[0].f32s_mut("scores")?;
        search(coll, queries, batch, metric, call.ctx, ids, scores)
    }
}
