//! The blocked, parallel top-k scan. The collection is split into chunks
//! scanned in parallel on the compute pool; within a chunk, blocks of rows
//! small enough to stay in L1 are scored against every query of the batch
//! (tiles of queries × rows, so each row is read from memory once per batch),
//! and each query keeps a bounded heap. Chunk heaps are merged under the same
//! total order, so the result is independent of chunking and thread count.

use super::collection::{AlignedFloats, Collection};
use super::dot::{self, Isa};
use super::select::{self, best_first, Hit, TopK};
use super::Metric;
use rayon::prelude::*;
use tandem_sdk::context::CallContext;
use tandem_sdk::error::KernelError;
use tandem_sdk::pool::{self, pool};

/// Rows scored per block: 16 rows of 384 floats stay in a 48 KiB L1.
const ROW_BLOCK: usize = 16;
/// Multiply-adds below which a call runs on the caller's thread.
const INLINE_WORK: usize = 1 << 20;
/// Blocks between cancellation / deadline checks.
const BLOCKS_PER_CHECK: usize = 64;

/// Per-batch data derived from the queries.
struct Queries<'a> {
    padded: &'a [f32],
    batch: usize,
    norms_sq: &'a [f32],
    norms: &'a [f32],
}

/// Searches `queries` (`batch` rows of the collection's dimension) and writes
/// the best `ids.len() / batch` hits per query, best first.
pub fn search(
    coll: &Collection,
    queries: &[f32],
    batch: usize,
    metric: Metric,
    ctx: &CallContext,
    ids: &mut [i64],
    scores: &mut [f32],
) -> Result<(), KernelError> {
    let (dim, pd, n) = (coll.dim(), coll.padded_dim(), coll.rows());
    let k = ids.len() / batch.max(1);
    debug_assert_eq!(queries.len(), batch * dim);
    debug_assert_eq!(scores.len(), ids.len());
    let isa = Isa::detect();

    let mut aligned = AlignedFloats::try_zeroed(batch * pd, "padded queries")?;
    let padded = aligned.as_mut_slice();
    for (dst, src) in padded.chunks_exact_mut(pd).zip(queries.chunks_exact(dim)) {
        dst[..dim].copy_from_slice(src);
    }
    let padded = aligned.as_slice();
    let mut norms_sq = vec![0.0f32; batch];
    for (i, n) in norms_sq.iter_mut().enumerate() {
        let q = &padded[i * pd..(i + 1) * pd];
        dot::dot_block(isa, q, 1, q, 1, pd, std::slice::from_mut(n), 1);
    }
    if metric == Metric::Cosine {
        if let Some(row) = norms_sq.iter().position(|n| *n == 0.0) {
            return Err(KernelError::invalid(format!(
                "tensor 'queries' row {row} has zero norm; cosine similarity is undefined for it"
            )));
        }
    }
    let norms: Vec<f32> = norms_sq.iter().map(|n| n.sqrt()).collect();
    let q = Queries { padded, batch, norms_sq: &norms_sq, norms: &norms };

    let chunk_rows = chunk_rows(n, batch * k);
    let starts: Vec<usize> = (0..n).step_by(chunk_rows).collect();
    let scan_chunk = |&start: &usize| scan(coll, &q, metric, k, start, (start + chunk_rows).min(n), isa, ctx);
    // Small calls stay on the caller's thread: handing them to the pool costs
    // a thread wake-up, more than the work itself.
    let partials: Result<Vec<Vec<TopK>>, KernelError> = if batch * n * pd < INLINE_WORK {
        starts.iter().map(scan_chunk).collect()
    } else {
        pool().install(|| starts.par_iter().map(scan_chunk).collect())
    };
    let mut partials = partials?;

    for query in 0..batch {
        let mut hits: Vec<Hit> = Vec::with_capacity(k * partials.len());
        for partial in partials.iter_mut() {
            hits.extend(std::mem::replace(&mut partial[query], TopK::new(0)).into_hits());
        }
        let best = best_first(hits, k);
        let (id_row, score_row) = (&mut ids[query * k..(query + 1) * k], &mut scores[query * k..(query + 1) * k]);
        for (slot, hit) in best.iter().enumerate() {
            id_row[slot] = hit.id;
            score_row[slot] = if metric == Metric::L2 { -hit.key } else { hit.key };
        }
    }
    Ok(())
}

/// Bytes the per-chunk heaps of one call may hold at once.
const HEAP_BUDGET: usize = 256 << 20;

/// Enough chunks for load balance across the pool, few enough that merging
/// the per-chunk heaps stays cheap and that all chunks' heaps (`hits` each)
/// fit [`HEAP_BUDGET`] however large the batch and k.
fn chunk_rows(n: usize, hits: usize) -> usize {
    let hit_bytes = std::mem::size_of::<select::Hit>();
    let max_chunks = (HEAP_BUDGET / hits.saturating_mul(hit_bytes).max(1)).max(1);
    let chunks = (pool::threads() * 4).min(max_chunks);
    let target = n.div_ceil(chunks).max(1024);
    target.div_ceil(ROW_BLOCK) * ROW_BLOCK
}

fn scan(
    coll: &Collection,
    q: &Queries<'_>,
    metric: Metric,
    k: usize,
    start: usize,
    end: usize,
    isa: Isa,
    ctx: &CallContext,
) -> Result<Vec<TopK>, KernelError> {
    let pd = coll.padded_dim();
    let values = coll.values();
    let mut tops = vec![TopK::new(k); q.batch];
    let mut scores = vec![0.0f32; q.batch * ROW_BLOCK];
    for (block, row0) in (start..end).step_by(ROW_BLOCK).enumerate() {
        if block % BLOCKS_PER_CHECK == 0 {
            ctx.check()?;
        }
        let nx = ROW_BLOCK.min(end - row0);
        // The block after this one (within the chunk) is pulled into cache
        // while this one computes.
        let next = &values[(row0 + nx) * pd..(row0 + nx + ROW_BLOCK).min(end) * pd];
        let rows = &values[row0 * pd..(row0 + nx) * pd];
        dot::dot_block_prefetching(isa, q.padded, q.batch, rows, nx, pd, &mut scores, ROW_BLOCK, next);
        let mut derived = [0.0f32; ROW_BLOCK];
        for (i, top) in tops.iter_mut().enumerate() {
            let dots = &scores[i * ROW_BLOCK..i * ROW_BLOCK + nx];
            let keys: &[f32] = match metric {
                Metric::Dot => dots,
                Metric::Cosine => {
                    for ((key, &s), &xn) in derived.iter_mut().zip(dots).zip(&coll.norms()[row0..row0 + nx]) {
                        *key = if xn == 0.0 { 0.0 } else { s / (q.norms[i] * xn) };
                    }
                    &derived[..nx]
                }
                Metric::L2 => {
                    for ((key, &s), &xx) in derived.iter_mut().zip(dots).zip(&coll.norms_sq()[row0..row0 + nx]) {
                        *key = -((q.norms_sq[i] + xx) - 2.0 * s).max(0.0);
                    }
                    &derived[..nx]
                }
            };
            if !may_enter(keys, top.threshold()) {
                continue;
            }
            for (j, &key) in keys.iter().enumerate() {
                offer(top, key, coll.id(row0 + j));
            }
        }
    }
    Ok(tops)
}

/// Whether any key of a block could enter a heap whose k-th hit is
/// `threshold`. Most blocks hold none, and this rejects them with one
/// branch-free compare per key (a max fold with `f32::max`'s NaN rule cost
/// about a tenth of the batch-64 search). NaN compares false, which is right
/// once the heap is full (it ranks NaN last); while it fills (threshold −∞)
/// every block may enter.
#[inline(always)]
fn may_enter(keys: &[f32], threshold: f32) -> bool {
    threshold == f32::NEG_INFINITY || keys.iter().fold(false, |any, &key| any | (key >= threshold))
}

#[inline(always)]
fn offer(top: &mut TopK, key: f32, id: i64) {
    // `!(key < threshold)` also admits NaN, which the heap ranks last, so a
    // query always gets exactly k hits.
    if key.partial_cmp(&top.threshold()) != Some(std::cmp::Ordering::Less) {
        top.push(key, id);
    }
}
