//! A vector collection: the state `similarity.topk` searches. Rows are
//! copied once into 64-byte aligned, zero-padded storage with their squared
//! norms precomputed, so queries never re-read or re-validate them — or,
//! loaded from the state repository with a dimension that needs no padding,
//! read in place from the file's mapped pages (64-byte aligned there too).

use super::dot::{self, Isa, LANES};
use rayon::prelude::*;
use std::sync::Arc;
use tandem_sdk::error::{Code, KernelError};
use tandem_sdk::pool::pool;
use tandem_sdk::repository::{SharedBytes, StoredState};
use tandem_sdk::tensor::TensorRef;
use tandem_sdk::validate::first_non_finite_row;

#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Block([f32; LANES]);

/// Where a collection's padded rows live.
#[derive(Debug)]
enum Rows {
    /// Copied and zero-padded at creation.
    Owned(Vec<Block>),
    /// A repository file's pages, read in place: the dimension is a multiple
    /// of the lanes, so the stored rows already are the padded layout.
    Shared(SharedBytes),
}

#[derive(Debug)]
pub struct Collection {
    rows: usize,
    dim: usize,
    padded_dim: usize,
    data: Rows,
    norms_sq: Vec<f32>,
    norms: Vec<f32>,
    ids: Option<Vec<i64>>,
}

fn exhausted(what: &str, bytes: usize) -> KernelError {
    KernelError::new(Code::ResourceExhausted, format!("cannot allocate {bytes} bytes for {what}"))
}

/// Allocates a vector without aborting the process when memory runs out.
pub(crate) fn try_vec<T: Clone>(len: usize, fill: T, what: &str) -> Result<Vec<T>, KernelError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| exhausted(what, len.saturating_mul(std::mem::size_of::<T>())))?;
    v.resize(len, fill);
    Ok(v)
}

impl Collection {
    /// Builds a collection from `vectors` f32[n, dim] and optional `ids` i64[n]
    /// as the state kind receives them: already checked against its
    /// descriptor by the library, shapes and finiteness (`vectors` is
    /// `finite_only`), so the vectors are not scanned for NaN a second time.
    pub fn from_tensors(tensors: &[Option<TensorRef<'_>>]) -> Result<Collection, KernelError> {
        let (vectors, ids) = vectors_and_ids(tensors)?;
        Self::copy_padded(vectors.f32s("vectors")?, vectors.shape[0], vectors.shape[1], ids)
    }

    /// Builds a collection from a repository file's tensors: in place when
    /// the rows need no padding, else copied as [`Collection::from_tensors`]
    /// does. Every check of a new collection runs either way.
    pub fn from_stored(
        tensors: &[Option<TensorRef<'_>>],
        stored: &Arc<StoredState>,
    ) -> Result<Collection, KernelError> {
        let (vectors, ids) = vectors_and_ids(tensors)?;
        let (rows, dim) = (vectors.shape[0], vectors.shape[1]);
        let values = vectors.f32s("vectors")?;
        if dot::padded(dim) != dim {
            return Self::copy_padded(values, rows, dim, ids);
        }
        check(values, rows, dim, ids)?;
        let shared = stored.share(vectors.bytes).ok_or_else(|| {
            KernelError::new(Code::Internal, "tensor 'vectors' does not lie in its repository file's mapping")
        })?;
        Self::with_rows(Rows::Shared(shared), rows, dim, ids)
    }

    /// Builds a collection from values no library has checked: every check
    /// of [`Collection::from_tensors`] plus NaN and infinity.
    pub fn new(values: &[f32], rows: usize, dim: usize, ids: Option<&[i64]>) -> Result<Collection, KernelError> {
        if let Some(row) = first_non_finite_row(values, dim.max(1)) {
            return Err(KernelError::invalid(format!("tensor 'vectors' row {row} contains NaN or infinity")));
        }
        Self::copy_padded(values, rows, dim, ids)
    }

    /// The rows copied into the padded layout (values checked for finiteness).
    fn copy_padded(values: &[f32], rows: usize, dim: usize, ids: Option<&[i64]>) -> Result<Collection, KernelError> {
        check(values, rows, dim, ids)?;
        let padded_dim = dot::padded(dim);
        let blocks_per_row = padded_dim / LANES;
        let total = rows * blocks_per_row;
        let mut data: Vec<Block> = Vec::new();
        data.try_reserve_exact(total)
            .map_err(|_| exhausted("the collection's vectors", total.saturating_mul(std::mem::size_of::<Block>())))?;
        // One pass: each row's lanes, the last block zero-padded (no separate
        // zero fill of the whole buffer first).
        data.extend(values.chunks_exact(dim).flat_map(|row| {
            row.chunks(LANES).map(|lanes| {
                let mut block = [0.0f32; LANES];
                block[..lanes.len()].copy_from_slice(lanes);
                Block(block)
            })
        }));
        debug_assert_eq!(data.len(), total);
        Self::with_rows(Rows::Owned(data), rows, dim, ids)
    }

    /// The collection over padded rows already checked, its norms computed.
    fn with_rows(data: Rows, rows: usize, dim: usize, ids: Option<&[i64]>) -> Result<Collection, KernelError> {
        let padded_dim = dot::padded(dim);
        let mut norms_sq = try_vec(rows, 0.0f32, "the collection's norms")?;
        let isa = Isa::detect();
        let floats = rows_floats(&data);
        pool().install(|| {
            norms_sq.par_chunks_mut(1024).enumerate().for_each(|(chunk, out)| {
                for (i, n) in out.iter_mut().enumerate() {
                    let row = chunk * 1024 + i;
                    let v = &floats[row * padded_dim..(row + 1) * padded_dim];
                    let mut one = [0.0f32];
                    dot::dot_block(isa, v, 1, v, 1, padded_dim, &mut one, 1);
                    *n = one[0];
                }
            })
        });
        let norms = norms_sq.iter().map(|n| n.sqrt()).collect();
        Ok(Collection { rows, dim, padded_dim, data, norms_sq, norms, ids: ids.map(|s| s.to_vec()) })
    }

    /// Whether the rows are read in place from a repository file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.data, Rows::Shared(_))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn padded_dim(&self) -> usize {
        self.padded_dim
    }

    /// Row-major zero-padded values, `rows * padded_dim` long.
    pub fn values(&self) -> &[f32] {
        rows_floats(&self.data)
    }

    pub fn norms_sq(&self) -> &[f32] {
        &self.norms_sq
    }

    pub fn norms(&self) -> &[f32] {
        &self.norms
    }

    /// The caller-visible id of a row (its index when no ids were given).
    #[inline(always)]
    pub fn id(&self, row: usize) -> i64 {
        match &self.ids {
            Some(ids) => ids[row],
            None => row as i64,
        }
    }

    /// Bytes held by the collection.
    pub fn size_bytes(&self) -> usize {
        // Mapped rows count too: they are resident while searched, even if
        // the page cache can share and reclaim them.
        self.rows * self.padded_dim * 4
            + (self.norms_sq.len() + self.norms.len()) * 4
            + self.ids.as_ref().map_or(0, |ids| ids.len() * 8)
    }
}

/// The state kind's tensors: `vectors` f32[n, dim] and the optional `ids` i64[n].
fn vectors_and_ids<'a>(tensors: &[Option<TensorRef<'a>>]) -> Result<(TensorRef<'a>, Option<&'a [i64]>), KernelError> {
    let vectors =
        tensors.first().copied().flatten().ok_or_else(|| KernelError::invalid("tensor 'vectors' is required"))?;
    let ids = match tensors.get(1).copied().flatten() {
        Some(t) => Some(t.i64s("ids")?),
        None => None,
    };
    Ok((vectors, ids))
}

/// Every check of a new collection's tensors beyond the descriptor's
/// (finiteness is the descriptor's: the library checks it).
fn check(values: &[f32], rows: usize, dim: usize, ids: Option<&[i64]>) -> Result<(), KernelError> {
    if dim == 0 {
        return Err(KernelError::invalid("tensor 'vectors' has dimension 0; vectors need at least one component"));
    }
    if rows == 0 {
        return Err(KernelError::invalid("tensor 'vectors' holds no rows; a collection needs at least one vector"));
    }
    if values.len() != rows * dim {
        return Err(KernelError::invalid(format!(
            "tensor 'vectors' has {} values, shape [{rows}, {dim}] needs {}",
            values.len(),
            rows * dim
        )));
    }
    if let Some(ids) = ids {
        check_unique(ids)?;
    }
    Ok(())
}

fn rows_floats(rows: &Rows) -> &[f32] {
    match rows {
        Rows::Owned(blocks) => as_floats(blocks),
        Rows::Shared(bytes) => bytes.f32s().expect("a stored f32 tensor is 64-byte aligned (checked at load)"),
    }
}

fn check_unique(ids: &[i64]) -> Result<(), KernelError> {
    let mut sorted: Vec<(i64, usize)> = ids.iter().copied().zip(0..).collect();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        if pair[0].0 == pair[1].0 {
            let (first, second) = (pair[0].1.min(pair[1].1), pair[0].1.max(pair[1].1));
            return Err(KernelError::invalid(format!(
                "tensor 'ids' entry {second} repeats id {} of entry {first}; ids must be unique",
                pair[0].0
            )));
        }
    }
    Ok(())
}

fn as_floats(blocks: &[Block]) -> &[f32] {
    // SAFETY: Block is repr(C) over [f32; LANES] with no padding (64 bytes
    // of f32s, 64-byte aligned), so the blocks are a contiguous f32 array.
    unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<f32>(), blocks.len() * LANES) }
}

fn as_floats_mut(blocks: &mut [Block]) -> &mut [f32] {
    // SAFETY: as in `as_floats`; the exclusive borrow of the blocks becomes
    // the exclusive borrow of their floats, and every f32 bit pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast::<f32>(), blocks.len() * LANES) }
}

/// Zeroed f32 storage starting on a 64-byte boundary, like a collection's
/// rows. Query rows are padded into one, so with a padded dimension (a
/// multiple of 16 floats) every vector load of the dot tiles stays inside one
/// cache line: from a plain `Vec<f32>` (16-byte aligned), half the AVX2 loads
/// and every AVX-512 load of a query straddled two lines, which cost the
/// batch-64 dot products about a third of their speed.
pub(crate) struct AlignedFloats {
    blocks: Vec<Block>,
}

impl AlignedFloats {
    /// `len` zeroed floats (rounded up to whole 16-float blocks), or
    /// RESOURCE_EXHAUSTED naming `what` when memory runs out.
    pub(crate) fn try_zeroed(len: usize, what: &str) -> Result<AlignedFloats, KernelError> {
        let blocks = try_vec(len.div_ceil(LANES), Block([0.0; LANES]), what)?;
        Ok(AlignedFloats { blocks })
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        as_floats(&self.blocks)
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        as_floats_mut(&mut self.blocks)
    }
}
