//! `hash.blake3`: the published test vectors, one-shot and streamed, any
//! chunking, and misuse of stream handles.

use proptest::prelude::*;
use tandem_kernels::hashing::{KERNEL_NAME, MAX_OUTPUT};
use tandem_sdk::{CallContext, Code, DType, TensorMut, TensorRef};

const VECTORS: &str = include_str!("../../../tests/data/blake3_vectors.txt");

fn vectors() -> Vec<(usize, Vec<u8>)> {
    VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (len, hex) = l.split_once(' ').unwrap();
            let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            (len.parse().unwrap(), bytes)
        })
        .collect()
}

fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn one_shot(data: &[u8], out_len: usize) -> Result<Vec<u8>, tandem_sdk::KernelError> {
    let reg = tandem_kernels::shared();
    let kernel = reg.find(KERNEL_NAME).unwrap();
    let (shape, out_shape) = ([data.len()], [out_len]);
    let mut out = vec![0u8; out_len];
    let inputs = [TensorRef { dtype: DType::U8, shape: &shape, bytes: data }];
    let mut outputs = [TensorMut { dtype: DType::U8, shape: &out_shape, bytes: &mut out }];
    reg.invoke(kernel, None, &inputs, &[], &mut outputs, &CallContext::default())?;
    Ok(out)
}

fn lib() -> &'static tandem_sdk::Library {
    tandem_kernels::shared()
}

fn open() -> Result<u64, tandem_sdk::KernelError> {
    lib().open_stream(lib().kernel(KERNEL_NAME)?)
}

fn streamed(chunks: &[&[u8]], out_len: usize) -> Vec<u8> {
    let handle = open().unwrap();
    for chunk in chunks {
        lib().stream_update(handle, chunk).unwrap();
    }
    let mut out = vec![0u8; out_len];
    lib().stream_finalize(handle, &mut out).unwrap();
    lib().stream_free(handle).unwrap();
    out
}

#[test]
fn published_vectors_match_one_shot_and_streamed() {
    for (len, expected) in vectors() {
        let data = input(len);
        assert_eq!(one_shot(&data, 32).unwrap(), expected[..32], "len {len}");
        assert_eq!(one_shot(&data, expected.len()).unwrap(), expected, "len {len} XOF");
        let (a, b) = data.split_at(len / 3);
        assert_eq!(streamed(&[a, &[], b], expected.len()), expected, "len {len} streamed");
    }
}

#[test]
fn large_inputs_take_the_parallel_path_and_agree() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let whole = one_shot(&data, 64).unwrap();
    let chunks: Vec<&[u8]> = data.chunks(1 << 20).collect();
    assert_eq!(streamed(&chunks, 64), whole);
    assert_eq!(whole, blake3_reference(&data, 64));
}

fn blake3_reference(data: &[u8], len: usize) -> Vec<u8> {
    // Single-threaded, unchunked: an independent path through the crate.
    let mut out = vec![0u8; len];
    let mut hasher = blake3::Hasher::new();
    hasher.update(data);
    hasher.finalize_xof().fill(&mut out);
    out
}

#[test]
fn stream_misuse_gets_specific_errors() {
    let handle = open().unwrap();
    lib().stream_update(handle, b"abc").unwrap();
    let mut out = [0u8; 32];
    assert_eq!(lib().stream_finalize(handle, &mut []).unwrap_err().code, Code::InvalidArgument);
    lib().stream_finalize(handle, &mut out).unwrap();
    assert_eq!(lib().stream_update(handle, b"more").unwrap_err().code, Code::FailedPrecondition);
    assert_eq!(lib().stream_finalize(handle, &mut out).unwrap_err().code, Code::FailedPrecondition);
    lib().stream_free(handle).unwrap();
    assert_eq!(lib().stream_free(handle).unwrap_err().code, Code::NotFound);
    assert_eq!(lib().stream_update(handle, b"x").unwrap_err().code, Code::NotFound);
    assert_eq!(lib().stream_update(u64::MAX, b"x").unwrap_err().code, Code::NotFound);
    let mut too_long = vec![0u8; MAX_OUTPUT + 1];
    let other = open().unwrap();
    assert_eq!(lib().stream_finalize(other, &mut too_long).unwrap_err().code, Code::InvalidArgument);
    lib().stream_free(other).unwrap();
}

#[test]
fn one_shot_output_length_is_checked() {
    assert_eq!(one_shot(b"x", 0).unwrap_err().code, Code::InvalidArgument);
    assert_eq!(one_shot(b"x", MAX_OUTPUT + 1).unwrap_err().code, Code::InvalidArgument);
    assert_eq!(one_shot(b"x", MAX_OUTPUT).unwrap().len(), MAX_OUTPUT);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any chunking of the same bytes gives the same digest.
    #[test]
    fn any_chunking_gives_the_same_digest(data in proptest::collection::vec(any::<u8>(), 0..20_000), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&data[start..p]);
            start = p;
        }
        chunks.push(&data[start..]);
        prop_assert_eq!(streamed(&chunks, 48), one_shot(&data, 48).unwrap());
    }
}

#[test]
fn one_shot_input_over_the_work_bound_is_refused_naming_the_limit() {
    let bound = tandem_kernels::hashing::MAX_WORK_PER_CALL as usize;
    let error = one_shot(&vec![0u8; bound + 1], 32).unwrap_err();
    assert_eq!(error.code, tandem_sdk::Code::ResourceExhausted);
    assert!(error.message.contains(&format!("asks for {} units of work (len {})", bound + 1, bound + 1)), "{error}");
    assert!(error.message.contains("(limit max_work_per_call)"), "{error}");
}
