//! Entry points for the coverage-guided fuzz harnesses in `native/fuzz`
//! (not part of the worker's API). Each takes arbitrary bytes, drives one
//! decoder the way the server does, and checks that every outcome is a
//! value: a message, or a status with a code other than OK and a message.
//! A panic here is a bug the fuzzer reports.
//!
//! - [`grpc_framing`]: length-prefixed messages through [`FrameDecoder`] and
//!   through [`RequestMessages`] over an HTTP body split into chunks, with a
//!   receive budget.
//! - [`metadata`]: `grpc-timeout`, `traceparent` and `grpc-message`.
//! - [`requests`]: prost decoding of every request type, then the worker's
//!   conversion of the decoded tensors, parameters and output specs into a
//!   call (no shared memory: every region reference is refused), and the
//!   call itself on the built-in kernels under a short deadline.

use crate::catalog::Catalog;
use crate::grpc::frame::FrameDecoder;
use crate::grpc::metadata::{parse_timeout, parse_traceparent, percent_decode, percent_encode};
use crate::grpc::request::{decode, RequestMessages, BUDGET_THRESHOLD};
use crate::grpc::{Code, Status};
use crate::pb::accelerator::{self as pb, stream_request};
use crate::pb::health::HealthCheckRequest;
use crate::service::tensors::{
    allocate_outputs, check_overlaps, decode_input, decode_inputs, decode_params, plan_outputs, Input, Output,
};
use crate::shm::Regions;
use bytes::Bytes;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tandem_sdk::{CallContext, TensorMut, TensorRef};

/// Inline output bytes one fuzzed call may ask for (the worker's own limit
/// is the message size; this keeps each input fast).
const INLINE_BUDGET: usize = 1 << 20;
/// Deadline of each fuzzed kernel call, so large `paths` or `k` stay quick.
const CALL_DEADLINE: Duration = Duration::from_millis(20);

fn assert_status(err: &Status) {
    assert_ne!(err.code, Code::Ok, "a failure carried OK: {}", err.message);
    assert!(!err.message.is_empty(), "a {:?} failure carried no message", err.code);
}

/// Byte 0 picks the message limit (small, or up to 508 KiB so that
/// announced lengths reach the receive budget), byte 1 the chunk size; the
/// rest is the request body, decoded in one piece, in chunks, and through
/// [`RequestMessages`].
pub fn grpc_framing(data: &[u8]) {
    let (max_message_bytes, chunk, body) = match data {
        [limit @ 0..=127, chunk, body @ ..] => (usize::from(*limit) * 4, usize::from(*chunk).max(1), body),
        [limit, chunk, body @ ..] => (usize::from(*limit - 128) << 12, usize::from(*chunk).max(1), body),
        _ => return,
    };
    let whole = frame_all(body, body.len().max(1), max_message_bytes);
    let chunked = frame_all(body, chunk, max_message_bytes);
    // Chunk boundaries never change what the stream decodes to.
    assert_eq!(whole, chunked, "framing depends on chunking");
    let (messages, code) = request_messages(body, chunk, max_message_bytes);
    if code == Code::ResourceExhausted && whole.1 != Code::ResourceExhausted {
        // The receive budget may refuse a large announced message early.
        assert!(whole.0.starts_with(&messages), "RequestMessages returned messages FrameDecoder did not");
    } else {
        assert_eq!(whole, (messages, code), "RequestMessages disagrees with FrameDecoder");
    }
}

/// Every message a stream decodes to, then its final status code.
fn frame_all(body: &[u8], chunk: usize, max_message_bytes: usize) -> (Vec<Bytes>, Code) {
    let mut decoder = FrameDecoder::new(max_message_bytes);
    let mut messages = Vec::new();
    for piece in body.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    assert!(message.len() <= max_message_bytes, "a message beyond the limit was returned");
                    messages.push(message);
                }
                Ok(None) => break,
                Err(err) => {
                    assert_status(&err);
                    return (messages, err.code);
                }
            }
        }
    }
    match decoder.finish() {
        Ok(()) => (messages, Code::Ok),
        Err(err) => {
            assert_status(&err);
            (messages, err.code)
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime")
    })
}

/// The same stream read the way the server reads it, with a receive budget
/// of two threshold-sized messages.
fn request_messages(body: &[u8], chunk: usize, max_message_bytes: usize) -> (Vec<Bytes>, Code) {
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        body.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let body = hyper::Body::wrap_stream(futures_util::stream::iter(chunks));
    let budget = crate::grpc::request::receive_budget(2 * BUDGET_THRESHOLD);
    let mut reader = RequestMessages::new(body, max_message_bytes).with_budget(budget);
    runtime().block_on(async {
        let mut messages = Vec::new();
        loop {
            match reader.next().await {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => return (messages, Code::Ok),
                Err(err) => {
                    assert_status(&err);
                    return (messages, err.code);
                }
            }
        }
    })
}

/// The input, as text, through every metadata parser; byte 0 picks which.
pub fn metadata(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match selector % 3 {
        0 => {
            if let Some(timeout) = parse_timeout(&text) {
                // At most 8 digits of hours.
                assert!(timeout <= Duration::from_secs(99_999_999 * 3600));
                assert!(text.len() <= 9);
            }
        }
        1 => {
            if let Some(trace_id) = parse_traceparent(&text) {
                assert_ne!(trace_id, [0; 16], "an all-zero trace id was accepted");
            }
        }
        _ => {
            let encoded = percent_encode(&text);
            assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)), "grpc-message is not printable ASCII");
            assert_eq!(percent_decode(&encoded), text, "percent-encoding does not round-trip");
            let _ = percent_decode(&text);
        }
    }
}

struct Fixture {
    catalog: Catalog,
    regions: Regions,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        catalog: Catalog::load(&[]).expect("the built-in kernels load"),
        // A directory that does not exist refuses every region reference.
        regions: Regions::new(std::path::Path::new("/nonexistent/tandem-fuzz")),
    })
}

fn context() -> CallContext {
    CallContext { deadline: Instant::now().checked_add(CALL_DEADLINE), ..CallContext::default() }
}

/// Byte 0 picks the request type; the rest is its encoded message.
pub fn requests(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let bytes = Bytes::copy_from_slice(rest);
    let outcome = match selector % 12 {
        0 => decode::<pb::InvokeRequest>(bytes).and_then(|req| invoke(&req)),
        1 => decode::<pb::StreamRequest>(bytes).and_then(|req| stream_part(&req)),
        2 => decode::<pb::CreateStateRequest>(bytes).and_then(|req| create_state(&req)),
        3 => decode::<pb::DropStateRequest>(bytes).map(drop),
        4 => decode::<pb::ListStatesRequest>(bytes).map(drop),
        5 => decode::<pb::RegisterSharedMemoryRequest>(bytes).map(drop),
        6 => decode::<pb::UnregisterSharedMemoryRequest>(bytes).map(drop),
        7 => decode::<pb::ListSharedMemoryRequest>(bytes).map(drop),
        8 => decode::<pb::DescribeRequest>(bytes).map(drop),
        9 => decode::<pb::DrainRequest>(bytes).map(drop),
        10 => decode::<HealthCheckRequest>(bytes).map(drop),
        _ => decode::<pb::StreamHeader>(bytes).and_then(|header| stream_header(&header)),
    };
    if let Err(err) = outcome {
        assert_status(&err);
    }
}

fn invoke(req: &pb::InvokeRequest) -> Result<(), Status> {
    let fixture = fixture();
    let (kernel, _) = fixture.catalog.find(&req.kernel, req.kernel_version)?;
    let inputs = decode_inputs(&req.inputs, &fixture.regions, "input")?;
    for input in &inputs {
        assert_eq!(input.bytes().len(), input.dtype.size() * input.shape.iter().product::<usize>());
    }
    let params = decode_params(&req.params)?;
    let plan = plan_outputs(&req.outputs, &fixture.regions, INLINE_BUDGET)?;
    let mut outputs = allocate_outputs(plan)?;
    check_overlaps(&inputs, &outputs)?;
    let views: Vec<TensorRef<'_>> = inputs.iter().map(Input::view).collect();
    let mut out_views: Vec<TensorMut<'_>> = outputs.iter_mut().map(Output::view).collect();
    fixture.catalog.invoke(kernel, None, &views, &params, &mut out_views, &context())
}

fn stream_header(header: &pb::StreamHeader) -> Result<(), Status> {
    let fixture = fixture();
    fixture.catalog.find(&header.kernel, header.kernel_version)?;
    decode_params(&header.params)?;
    allocate_outputs(plan_outputs(&header.outputs, &fixture.regions, INLINE_BUDGET)?)?;
    Ok(())
}

fn stream_part(req: &pb::StreamRequest) -> Result<(), Status> {
    match &req.part {
        Some(stream_request::Part::Header(header)) => stream_header(header),
        Some(stream_request::Part::Shared(r)) => fixture().regions.resolve(r, 1, "stream data").map(drop),
        Some(stream_request::Part::Data(_)) | None => Ok(()),
    }
}

fn create_state(req: &pb::CreateStateRequest) -> Result<(), Status> {
    let fixture = fixture();
    if req.tensors.len() > crate::service::tensors::MAX_ITEMS {
        return Err(crate::grpc::status(Code::InvalidArgument, "too many tensors"));
    }
    let mut tensors = Vec::with_capacity(req.tensors.len());
    for (i, t) in req.tensors.iter().enumerate() {
        tensors.push(if t.dtype == 0 {
            None
        } else {
            Some(decode_input(t, &fixture.regions, &format!("tensor {i}"))?)
        });
    }
    let views: Vec<_> = tensors.iter().map(|t| t.as_ref().map(Input::view)).collect();
    fixture.catalog.create_state(&req.kind, &views).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Runs every committed seed and regression input of `target` through
    /// `harness`, so `cargo test` replays them without an instrumented build.
    fn replay(target: &str, harness: fn(&[u8])) {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut count = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                harness(&std::fs::read(&path).unwrap());
                count += 1;
            }
        }
        assert!(count > 0, "no committed inputs for {target}");
    }

    #[test]
    fn committed_framing_inputs_decode_or_fail_with_a_status() {
        replay("grpc_framing", grpc_framing);
    }

    #[test]
    fn committed_metadata_inputs_parse_or_are_refused() {
        replay("metadata", metadata);
    }

    #[test]
    fn committed_requests_decode_or_fail_with_a_status() {
        replay("requests", requests);
    }

    #[test]
    #[should_panic(expected = "a failure carried OK")]
    fn a_status_of_ok_on_failure_is_a_finding() {
        assert_status(&Status::new(Code::Ok, "not an error"));
    }
}
