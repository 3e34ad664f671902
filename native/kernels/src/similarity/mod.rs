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

use std::sync::Arc;
use tandem_sdk::descriptor::{Flags, KernelDescriptor, ParamSpec, StateKindDescriptor, TensorSpec, D, W};
use tandem_sdk::{DType, Invocation, Kernel, KernelError, StateKind, StoredState, TensorRef, WarmTensor, WarmUp};

pub const KERNEL_NAME: &str = "similarity.topk";
pub const COLLECTION_KIND: &str = "vector_collection";
/// Largest `k` a call may ask for.
pub const MAX_K: i64 = 4096;
/// Most query values (queries × dim) one call may send: 256 MiB of f32. A
/// call's work is this times the collection's rows, which the state bounds;
/// the collection is no factor because a call's tensors do not bind it.
pub const MAX_WORK_PER_CALL: i64 = 1 << 26;

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

/// The `vector_collection` state kind: rows f32[n, dim] and optional ids i64[n].
pub struct CollectionKind;

impl StateKind for CollectionKind {
    type State = Collection;

    fn descriptor(&self) -> StateKindDescriptor {
        StateKindDescriptor::new(
            COLLECTION_KIND,
            vec![
                TensorSpec::new("vectors", DType::F32, [D::sym("n"), D::sym("dim")]).finite_only(),
                TensorSpec::new("ids", DType::I64, [D::sym("n")]),
            ],
            &["ids"],
        )
    }

    fn create(&self, tensors: &[Option<TensorRef<'_>>]) -> Result<Collection, KernelError> {
        Collection::from_tensors(tensors)
    }

    fn load(&self, tensors: &[Option<TensorRef<'_>>], stored: &Arc<StoredState>) -> Result<Collection, KernelError> {
        Collection::from_stored(tensors, stored)
    }

    fn size_bytes(&self, state: &Collection) -> usize {
        state.size_bytes()
    }
}

/// `similarity.topk` over a [`Collection`].
pub struct TopK;

impl Kernel for TopK {
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor::builder(KERNEL_NAME, 1)
            .summary("The k rows of a vector collection most similar to each query (ties to the lower id).")
            .input(TensorSpec::new("queries", DType::F32, [D::sym("batch"), D::sym("dim")]).finite_only())
            .output(TensorSpec::new("ids", DType::I64, [D::sym("batch"), D::sym("k")]))
            .output(TensorSpec::new("scores", DType::F32, [D::sym("batch"), D::sym("k")]))
            .output_symbol("k", MAX_K, "min(parameter k, rows in the collection)")
            .param(ParamSpec::int("k", 1, MAX_K, 10))
            .param(ParamSpec::choice("metric", &["dot", "cosine", "l2"], 0))
            .state_kind(COLLECTION_KIND)
            .limit("max_k", MAX_K, "Largest k a call may ask for.")
            .work(&[W::sym("batch"), W::sym("dim")], MAX_WORK_PER_CALL)
            .flags(Flags { idempotent: true, batchable: true, deterministic: true, ..Flags::default() })
            .build()
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        let coll: &Collection = call.state()?;
        let batch = call.symbol("batch");
        let dim = call.symbol("dim");
        if batch == 0 {
            return Err(KernelError::invalid("tensor 'queries' holds no rows; send at least one query"));
        }
        if dim != coll.dim() {
            return Err(KernelError::invalid(format!(
                "tensor 'queries' has dimension {dim} but the collection's vectors have dimension {}",
                coll.dim()
            )));
        }
        let metric = Metric::from_index(call.int(1))
            .ok_or_else(|| KernelError::invalid("parameter 'metric' is out of range"))?;
        let k = (call.int(0) as usize).min(coll.rows());
        // The library checked both outputs against the descriptor (ids and scores agree on k).
        if call.symbol("k") != k {
            return Err(KernelError::invalid(format!(
                "output 'ids' (and 'scores') must have k = min(parameter k, rows in the collection) = {k} columns, got {}",
                call.symbol("k")
            )));
        }
        let queries = call.inputs[0].f32s("queries")?;
        let (ids_out, scores_out) = call.outputs.split_at_mut(1);
        let ids = ids_out[0].i64s_mut("ids")?;
        let scores = scores_out[0].f32s_mut("scores")?;
        search(coll, queries, batch, metric, call.ctx, ids, scores)
    }

    /// Searches a 64 × 128 collection with 8 queries, so the blocked dot
    /// product and the selection run on this CPU's SIMD path.
    fn warm_up(&self, warm: &mut WarmUp<'_>) -> Result<(), KernelError> {
        const ROWS: usize = 64;
        const DIM: usize = 128;
        let values: Vec<f64> = (0..ROWS * DIM).map(|i| ((i * 7919) % 101) as f64 / 101.0).collect();
        let vectors = WarmTensor::from_f64s(DType::F32, &[ROWS, DIM], &values);
        let queries = WarmTensor::from_f64s(DType::F32, &[8, DIM], &values[..8 * DIM]);
        let mut params = warm.default_params();
        params[0] = tandem_sdk::Param::Int(1);
        warm.run(&[queries], &params, Some((COLLECTION_KIND, &[Some(vectors), None])))
    }
}
