//! Shared-memory regions: registration checks, inputs and outputs by
//! reference, bounds, alignment and overlap checks.

mod common;

use bytes::Bytes;
use common::*;
use prost::Message;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use tandem_sdk::{Code, DType};
use tandem_worker::grpc::frame::frame_bytes;
use tandem_worker::pb::accelerator::*;

const REGION_SIZE: usize = 1 << 16;

/// A 0600 file in a private directory under /dev/shm, filled with `fill`.
fn region_file(fill: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("tandem-test-").tempdir_in("/dev/shm").expect("a dir in /dev/shm");
    let path = dir.path().join("region");
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path).unwrap();
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut data = fill.to_vec();
    data.resize(REGION_SIZE, 0);
    file.write_all(&data).unwrap();
    (dir, path)
}

async fn register(
    client: &mut Client,
    name: &str,
    path: &std::path::Path,
    size: u64,
) -> CallResult<RegisterSharedMemoryReply> {
    let req = RegisterSharedMemoryRequest { name: name.into(), path: path.to_string_lossy().into_owned(), size };
    client.unary("RegisterSharedMemory", &req).await
}

fn shared(region: &str, offset: u64, length: u64) -> SharedMemoryRef {
    SharedMemoryRef { region: region.into(), offset, length }
}

fn shared_tensor(dtype: DType, shape: &[i64], r: SharedMemoryRef) -> Tensor {
    Tensor { dtype: dtype as i32, shape: shape.to_vec(), data: Some(tensor::Data::Shared(r)) }
}

fn hash_shared(input: SharedMemoryRef, input_len: i64, out: Option<SharedMemoryRef>, out_len: i64) -> InvokeRequest {
    InvokeRequest {
        kernel: "hash.blake3".into(),
        inputs: vec![shared_tensor(DType::U8, &[input_len], input)],
        outputs: vec![OutputSpec { dtype: DType::U8 as i32, shape: vec![out_len], shared: out }],
        ..Default::default()
    }
}

#[tokio::test]
async fn blake3_reads_and_writes_shared_memory() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
    let (_dir, path) = region_file(&data);
    register(&mut client, "r1", &path, REGION_SIZE as u64).await.unwrap();
    let listed: ListSharedMemoryReply = client.unary("ListSharedMemory", &ListSharedMemoryRequest {}).await.unwrap();
    assert_eq!(listed.regions.len(), 1);
    assert_eq!(listed.regions[0].size, REGION_SIZE as u64);
    assert_eq!(register(&mut client, "r1", &path, 16).await.unwrap_err().0, Code::AlreadyExists);

    let req = hash_shared(shared("r1", 0, 5000), 5000, Some(shared("r1", 8192, 32)), 32);
    let reply = client.invoke(&req).await.unwrap();
    match &reply.outputs[0].data {
        Some(tensor::Data::Shared(r)) => assert_eq!((r.offset, r.length), (8192, 32)),
        other => panic!("expected a shared output, got {other:?}"),
    }
    let file = std::fs::read(&path).unwrap();
    assert_eq!(&file[8192..8224], blake3::hash(&data).as_bytes());

    // Shared input, inline output.
    let reply = client.invoke(&hash_shared(shared("r1", 100, 200), 200, None, 32)).await.unwrap();
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), blake3::hash(&data[100..300]).as_bytes());

    // A stream chunk by reference.
    let header =
        StreamHeader { kernel: "hash.blake3".into(), outputs: vec![output(DType::U8, &[32])], ..Default::default() };
    let frames = vec![
        frame_bytes(&StreamRequest { part: Some(stream_request::Part::Header(header)) }.encode_to_vec()),
        frame_bytes(
            &StreamRequest { part: Some(stream_request::Part::Data(Bytes::copy_from_slice(&data[..10]))) }
                .encode_to_vec(),
        ),
        frame_bytes(
            &StreamRequest { part: Some(stream_request::Part::Shared(shared("r1", 10, 4990))) }.encode_to_vec(),
        ),
    ];
    let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
    let reply = client.raw("/tandem.v1.Accelerator/InvokeStream", &[], hyper::Body::wrap_stream(stream)).await;
    let reply: InvokeReply = into_result(reply).unwrap();
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), blake3::hash(&data).as_bytes());

    let removed: UnregisterSharedMemoryReply =
        client.unary("UnregisterSharedMemory", &UnregisterSharedMemoryRequest { name: "r1".into() }).await.unwrap();
    assert!(removed.unregistered);
    assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::NotFound);
}

#[tokio::test]
async fn state_tensors_may_live_in_shared_memory() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let vectors: Vec<u8> = [1.0f32, 0.0, 0.0, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let (_dir, path) = region_file(&vectors);
    register(&mut client, "vecs", &path, REGION_SIZE as u64).await.unwrap();
    let req = CreateStateRequest {
        state_id: "s".into(),
        kind: "vector_collection".into(),
        tensors: vec![shared_tensor(DType::F32, &[2, 2], shared("vecs", 0, 16))],
        stored: None,
    };
    let reply: CreateStateReply = client.unary("CreateState", &req).await.unwrap();
    // Held by the worker: 2 rows padded to 16 lanes (64 bytes) plus norms (8).
    assert_eq!(reply.size_bytes, 2 * 72);
}

#[tokio::test]
async fn references_are_bounds_alignment_and_overlap_checked() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let (_dir, path) = region_file(&[1u8; 64]);
    register(&mut client, "r", &path, REGION_SIZE as u64).await.unwrap();
    let size = REGION_SIZE as u64;
    let cases = [
        (hash_shared(shared("r", size - 10, 20), 20, None, 32), Code::OutOfRange),
        (hash_shared(shared("r", u64::MAX - 1, 4), 4, None, 32), Code::OutOfRange),
        (hash_shared(shared("nope", 0, 4), 4, None, 32), Code::NotFound),
        (hash_shared(shared("r", 0, 4), 8, None, 32), Code::InvalidArgument),
        (hash_shared(shared("r", 0, 64), 64, Some(shared("r", 32, 32)), 32), Code::InvalidArgument),
        (hash_shared(shared("r", 0, 64), 64, Some(shared("r", 128, 16)), 32), Code::InvalidArgument),
        (hash_shared(shared("r", 0, 64), 64, Some(shared("r", size, 32)), 32), Code::OutOfRange),
    ];
    for (i, (req, code)) in cases.iter().enumerate() {
        let err = client.invoke(req).await.unwrap_err();
        assert_eq!(err.0, *code, "case {i}: {}", err.1);
    }
    // An f64 tensor must start on an 8-byte boundary.
    let mut req = montecarlo_request(1, 100);
    req.inputs[0] = shared_tensor(DType::F64, &[1, 6], shared("r", 4, 48));
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument);
    assert!(err.1.contains("aligned"), "{}", err.1);
}

#[tokio::test]
async fn registration_refuses_unsafe_or_bad_files() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let (dir, path) = region_file(&[]);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(register(&mut client, "open", &path, 16).await.unwrap_err().0, Code::PermissionDenied);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let outside = tempfile::NamedTempFile::new_in(w.dir.path()).unwrap();
    assert_eq!(register(&mut client, "outside", outside.path(), 16).await.unwrap_err().0, Code::PermissionDenied);
    let err = register(&mut client, "big", &path, REGION_SIZE as u64 + 1).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument);
    assert_eq!(register(&mut client, "bad/name", &path, 16).await.unwrap_err().0, Code::InvalidArgument);
    assert_eq!(register(&mut client, "", &path, 16).await.unwrap_err().0, Code::InvalidArgument);
    assert_eq!(register(&mut client, "zero", &path, 0).await.unwrap_err().0, Code::InvalidArgument);
    let missing = dir.path().join("missing");
    assert_eq!(register(&mut client, "missing", &missing, 16).await.unwrap_err().0, Code::NotFound);
    assert_eq!(register(&mut client, "dir", dir.path(), 16).await.unwrap_err().0, Code::InvalidArgument);
}

#[tokio::test]
async fn registrations_beyond_the_region_limit_are_refused_until_one_is_unregistered() {
    let w = start_with(|c| c.max_regions = 2).await;
    let mut client = Client::connect(&w.socket).await;
    let (_dir, path) = region_file(&[]);
    register(&mut client, "a", &path, 64).await.unwrap();
    register(&mut client, "b", &path, 64).await.unwrap();
    let (code, message) = register(&mut client, "c", &path, 64).await.unwrap_err();
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("--max-regions 2"), "{message}");
    let unregistered: UnregisterSharedMemoryReply =
        client.unary("UnregisterSharedMemory", &UnregisterSharedMemoryRequest { name: "a".into() }).await.unwrap();
    assert!(unregistered.unregistered);
    register(&mut client, "c", &path, 64).await.unwrap();
}

#[tokio::test]
async fn concurrent_calls_never_write_one_shared_range_at_once() {
    // Each call hashes 60 KiB into the same 32 output bytes: a call either
    // runs alone on the range (serialised by the reservation, or by the
    // compute slots) or is refused, naming the ranges; the bytes end as the
    // digest, never torn.
    let w = start_with(|c| c.max_concurrency = 4).await;
    let data: Vec<u8> = (0..60_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (_dir, path) = region_file(&data);
    let mut client = Client::connect(&w.socket).await;
    register(&mut client, "r", &path, REGION_SIZE as u64).await.unwrap();
    let calls = (0..16).map(|i| {
        let socket = w.socket.clone();
        tokio::spawn(async move {
            let mut client = Client::connect(&socket).await;
            // Overlapping, not equal, ranges: [61000 + i, 61032 + i).
            let out = shared("r", 61_000 + i, 32);
            client.invoke(&hash_shared(shared("r", 0, 60_000), 60_000, Some(out), 32)).await.map(|_| i)
        })
    });
    let mut refused = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => {}
            Err((code, message)) => {
                assert_eq!(code, Code::FailedPrecondition, "{message}");
                assert!(message.contains("which another call in flight is writing"), "{message}");
                refused += 1;
            }
        }
    }
    assert!(refused < 16, "at least one call ran");
    let file = std::fs::read(&path).unwrap();
    let digest = blake3::hash(&data);
    // The last writer's range holds the whole digest.
    assert!((0..16).any(|i| &file[61_000 + i..61_032 + i] == digest.as_bytes()), "some call's digest is intact");
}
