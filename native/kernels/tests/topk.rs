//! `similarity.topk` through the registry: results against a brute-force
//! reference, batch invariance, and every bad input the descriptor forbids.

use proptest::prelude::*;
use std::sync::Arc;
use std::time::Instant;
use tandem_kernels::similarity::{KERNEL_NAME, MAX_K};
use tandem_sdk::context::CancelFlag;
use tandem_sdk::{CallContext, Code, DType, Library, Param, State, TensorMut, TensorRef};

fn bytes<T>(v: &[T]) -> &[u8] {
    // SAFETY: plain numeric slices viewed as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

fn bytes_mut<T>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: plain numeric slices viewed as bytes; every pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}

/// Small integers: every dot product is exact, so ranking has no rounding.
fn int_data(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..rows * dim)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % 7) as f32 - 3.0
        })
        .collect()
}

fn collection(
    reg: &Library,
    values: &[f32],
    rows: usize,
    dim: usize,
    ids: Option<&[i64]>,
) -> Result<State, tandem_sdk::KernelError> {
    let shape = [rows, dim];
    let id_shape = [rows];
    let vectors = TensorRef { dtype: DType::F32, shape: &shape, bytes: bytes(values) };
    let ids = ids.map(|ids| TensorRef { dtype: DType::I64, shape: &id_shape, bytes: bytes(ids) });
    reg.create_state("vector_collection", &[Some(vectors), ids])
}

struct Out {
    ids: Vec<i64>,
    scores: Vec<f32>,
}

fn topk(
    reg: &Library,
    state: &State,
    queries: &[f32],
    batch: usize,
    dim: usize,
    k: i64,
    metric: i64,
    k_out: usize,
    ctx: &CallContext,
) -> Result<Out, tandem_sdk::KernelError> {
    let kernel = reg.find(KERNEL_NAME).unwrap();
    let q_shape = [batch, dim];
    let out_shape = [batch, k_out];
    let mut ids = vec![-7i64; batch * k_out];
    let mut scores = vec![f32::NAN; batch * k_out];
    {
        let inputs = [TensorRef { dtype: DType::F32, shape: &q_shape, bytes: bytes(queries) }];
        let mut outputs = [
            TensorMut { dtype: DType::I64, shape: &out_shape, bytes: bytes_mut(&mut ids) },
            TensorMut { dtype: DType::F32, shape: &out_shape, bytes: bytes_mut(&mut scores) },
        ];
        reg.invoke(kernel, Some(state), &inputs, &[Param::Int(k), Param::Int(metric)], &mut outputs, ctx)?;
    }
    Ok(Out { ids, scores })
}

/// Brute force in f64 with the same definitions; exact on integer data.
fn reference(values: &[f32], rows: usize, dim: usize, query: &[f32], metric: i64, k: usize) -> Vec<(i64, f64)> {
    let qq: f64 = query.iter().map(|v| (*v as f64).powi(2)).sum();
    let mut all: Vec<(i64, f64)> = (0..rows)
        .map(|r| {
            let x = &values[r * dim..(r + 1) * dim];
            let dot: f64 = x.iter().zip(query).map(|(a, b)| *a as f64 * *b as f64).sum();
            let xx: f64 = x.iter().map(|v| (*v as f64).powi(2)).sum();
            let score = match metric {
                0 => dot,
                1 if xx == 0.0 => 0.0,
                1 => dot / (qq.sqrt() * xx.sqrt()),
                _ => (qq + xx - 2.0 * dot).max(0.0),
            };
            (r as i64, score)
        })
        .collect();
    all.sort_by(|a, b| {
        let by_score = if metric == 2 { a.1.partial_cmp(&b.1) } else { b.1.partial_cmp(&a.1) };
        by_score.unwrap().then(a.0.cmp(&b.0))
    });
    all.truncate(k);
    all
}

#[test]
fn matches_brute_force_for_every_metric() {
    let reg = tandem_kernels::library().unwrap();
    let (rows, dim, batch) = (3000, 37, 9);
    let values = int_data(rows, dim, 1);
    let state = collection(&reg, &values, rows, dim, None).unwrap();
    let queries = int_data(batch, dim, 2);
    for metric in 0..3 {
        for k in [1usize, 10, 1000] {
            let out = topk(&reg, &state, &queries, batch, dim, k as i64, metric, k, &CallContext::default()).unwrap();
            for q in 0..batch {
                let expected = reference(&values, rows, dim, &queries[q * dim..(q + 1) * dim], metric, k);
                let ids: Vec<i64> = expected.iter().map(|e| e.0).collect();
                let cosine = metric == 1;
                // Cosine divides, so near-equal scores may order differently
                // than in f64; all other metrics are exact on integer data.
                if !cosine {
                    assert_eq!(&out.ids[q * k..(q + 1) * k], &ids[..], "metric {metric} k {k} query {q}");
                }
                for (slot, (_, score)) in expected.iter().enumerate() {
                    let got = out.scores[q * k + slot] as f64;
                    assert!((got - score).abs() <= 1e-4 * score.abs().max(1.0), "metric {metric}: {got} vs {score}");
                }
            }
        }
    }
}

#[test]
fn k_above_n_returns_n_hits_and_ties_go_to_lower_ids() {
    let reg = tandem_kernels::library().unwrap();
    let values = vec![1.0f32; 5 * 4];
    let ids = [50i64, 40, 30, 20, 10];
    let state = collection(&reg, &values, 5, 4, Some(&ids)).unwrap();
    let out = topk(&reg, &state, &[1.0, 1.0, 1.0, 1.0], 1, 4, 1000, 0, 5, &CallContext::default()).unwrap();
    assert_eq!(out.ids, vec![10, 20, 30, 40, 50]);
    assert_eq!(out.scores, vec![4.0; 5]);
}

#[test]
fn l2_scores_are_squared_distances_smallest_first() {
    let reg = tandem_kernels::library().unwrap();
    let values = [0.0f32, 0.0, 3.0, 4.0, 1.0, 0.0];
    let state = collection(&reg, &values, 3, 2, None).unwrap();
    let out = topk(&reg, &state, &[0.0, 0.0], 1, 2, 3, 2, 3, &CallContext::default()).unwrap();
    assert_eq!(out.ids, vec![0, 2, 1]);
    assert_eq!(out.scores, vec![0.0, 1.0, 25.0]);
}

fn code_and_message(result: Result<impl Sized, tandem_sdk::KernelError>) -> (Code, String) {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => (e.code, e.message),
    }
}

#[test]
fn bad_inputs_get_specific_errors() {
    let reg = tandem_kernels::library().unwrap();
    let values = int_data(100, 8, 3);
    let state = collection(&reg, &values, 100, 8, None).unwrap();
    let ctx = CallContext::default();
    let q = int_data(3, 8, 4);

    let (code, msg) = code_and_message(topk(&reg, &state, &int_data(2, 7, 4), 2, 7, 5, 0, 5, &ctx));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("dimension 7") && msg.contains("dimension 8"), "{msg}");

    let (code, msg) = code_and_message(topk(&reg, &state, &[], 0, 8, 5, 0, 5, &ctx));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("no rows"), "{msg}");

    let mut bad = q.clone();
    bad[2 * 8 + 5] = f32::NAN;
    let (code, msg) = code_and_message(topk(&reg, &state, &bad, 3, 8, 5, 0, 5, &ctx));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("row 2"), "{msg}");

    bad[2 * 8 + 5] = f32::INFINITY;
    assert!(code_and_message(topk(&reg, &state, &bad, 3, 8, 5, 0, 5, &ctx)).1.contains("row 2"));

    let (code, msg) = code_and_message(topk(&reg, &state, &q, 3, 8, 0, 0, 0, &ctx));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("'k'"), "{msg}");
    let (code, _) = code_and_message(topk(&reg, &state, &q, 3, 8, MAX_K + 1, 0, 100, &ctx));
    assert_eq!(code, Code::InvalidArgument);

    let (code, msg) = code_and_message(topk(&reg, &state, &q, 3, 8, 5, 3, 5, &ctx));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("metric"), "{msg}");

    // Output buffers must have exactly [batch, min(k, n)].
    let (code, msg) = code_and_message(topk(&reg, &state, &q, 3, 8, 5, 0, 4, &ctx));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("ids"), "{msg}");

    let mut zero = q.clone();
    zero[8..16].fill(0.0);
    let (code, msg) = code_and_message(topk(&reg, &state, &zero, 3, 8, 5, 1, 5, &ctx));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("row 1") && msg.contains("zero norm"), "{msg}");
}

#[test]
fn bad_collections_are_refused() {
    let reg = tandem_kernels::library().unwrap();
    let (code, msg) = code_and_message(collection(&reg, &[], 4, 0, None));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("dimension 0"), "{msg}");
    assert!(code_and_message(collection(&reg, &[], 0, 4, None)).1.contains("no rows"));
    let mut values = int_data(10, 4, 5);
    values[7 * 4] = f32::NAN;
    assert!(code_and_message(collection(&reg, &values, 10, 4, None)).1.contains("row 7"));
    let values = int_data(3, 4, 5);
    let (code, msg) = code_and_message(collection(&reg, &values, 3, 4, Some(&[1, 2, 1])));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("entry 2") && msg.contains("id 1"), "{msg}");
    let (code, _) = code_and_message(reg.create_state("no_such_kind", &[]));
    assert_eq!(code, Code::NotFound);
}

#[test]
fn cancellation_and_deadlines_stop_the_scan() {
    let reg = tandem_kernels::library().unwrap();
    let values = int_data(20_000, 16, 6);
    let state = collection(&reg, &values, 20_000, 16, None).unwrap();
    let flag = Arc::new(CancelFlag::default());
    flag.cancel();
    let ctx = CallContext { cancel: Some(flag), ..Default::default() };
    let (code, _) = code_and_message(topk(&reg, &state, &int_data(1, 16, 7), 1, 16, 5, 0, 5, &ctx));
    assert_eq!(code, Code::Cancelled);
    let ctx = CallContext { deadline: Some(Instant::now()), ..Default::default() };
    let (code, _) = code_and_message(topk(&reg, &state, &int_data(1, 16, 7), 1, 16, 5, 0, 5, &ctx));
    assert_eq!(code, Code::DeadlineExceeded);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A row's result never depends on which rows share its batch.
    #[test]
    fn results_are_batch_invariant(batch in 1usize..12, metric in 0i64..3, k in 1usize..40, seed in 0u64..1000) {
        let reg = tandem_kernels::library().unwrap();
        let (rows, dim) = (2500, 29);
        let mut values = int_data(rows, dim, seed);
        // Non-integer data too: rounding must not depend on batch mates.
        for (i, v) in values.iter_mut().enumerate() { *v += (i % 13) as f32 * 0.37; }
        let state = collection(&reg, &values, rows, dim, None).unwrap();
        let mut queries = int_data(batch, dim, seed + 1);
        for (i, v) in queries.iter_mut().enumerate() { *v += (i % 11) as f32 * 0.29 + 0.01; }
        let ctx = CallContext::default();
        let all = topk(&reg, &state, &queries, batch, dim, k as i64, metric, k, &ctx).unwrap();
        for q in 0..batch {
            let one = topk(&reg, &state, &queries[q * dim..(q + 1) * dim], 1, dim, k as i64, metric, k, &ctx).unwrap();
            prop_assert_eq!(&one.ids[..], &all.ids[q * k..(q + 1) * k]);
            let same_bits = one.scores.iter().zip(&all.scores[q * k..(q + 1) * k]).all(|(a, b)| a.to_bits() == b.to_bits());
            prop_assert!(same_bits);
        }
    }
}

/// A collection written to the state repository and loaded back answers
/// exactly as the one created from the same tensors: read in place from the
/// file when its dimension needs no padding, copied when it does.
#[test]
fn a_collection_loaded_from_the_repository_answers_as_the_created_one() {
    use tandem_kernels::similarity::Collection;
    use tandem_sdk::{Repository, StateId};
    let reg = tandem_kernels::library().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path()).unwrap();
    for (dim, mapped) in [(32usize, true), (20, false)] {
        let rows = 300;
        let values = int_data(rows, dim, dim as u64);
        let ids: Vec<i64> = (0..rows as i64).map(|i| 10_000 - 3 * i).collect();
        let queries = int_data(5, dim, 99);
        let (shape, id_shape) = ([rows, dim], [rows]);
        let tensors = [
            Some(TensorRef { dtype: DType::F32, shape: &shape, bytes: bytes(&values) }),
            Some(TensorRef { dtype: DType::I64, shape: &id_shape, bytes: bytes(&ids) }),
        ];
        let id = StateId { name: format!("docs-{dim}"), version: 1 };
        let (created, _) = reg.store_state(&repo, "vector_collection", &id, &tensors).unwrap();
        let loaded = reg.load_state(&repo, &id).unwrap();
        assert_eq!(loaded.get::<Collection>().unwrap().is_mapped(), mapped, "dim {dim}");
        assert!(!created.get::<Collection>().unwrap().is_mapped());
        for metric in 0..3 {
            let ctx = CallContext::default();
            let a = topk(&reg, &created, &queries, 5, dim, 7, metric, 7, &ctx).unwrap();
            let b = topk(&reg, &loaded, &queries, 5, dim, 7, metric, 7, &ctx).unwrap();
            assert_eq!(a.ids, b.ids, "dim {dim}, metric {metric}");
            assert_eq!(bytes(&a.scores), bytes(&b.scores), "dim {dim}, metric {metric}");
        }
    }
}
