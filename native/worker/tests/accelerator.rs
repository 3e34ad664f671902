//! The Accelerator RPCs end to end over a Unix socket: Describe, kernels
//! inline and through shared memory, streams, states and their errors.

mod common;

use bytes::Bytes;
use common::*;
use prost::Message;
use tandem_sdk::{Code, DType};
use tandem_worker::grpc::frame::frame_bytes;
use tandem_worker::pb::accelerator::*;

#[tokio::test]
async fn describe_reports_kernels_version_and_limits() {
    let w = start_with(|c| c.build_id = Some("test7".into())).await;
    let mut client = Client::connect(&w.socket).await;
    let reply: DescribeReply = client.unary("Describe", &DescribeRequest {}).await.unwrap();
    let set = reply.kernel_set.unwrap();
    let names: Vec<&str> = set.kernels.iter().map(|k| k.name.as_str()).collect();
    for name in ["similarity.topk", "montecarlo.european", "hash.blake3", "diagnostics.noop"] {
        assert!(names.contains(&name), "{names:?}");
    }
    assert_eq!(reply.worker_version, format!("{}+test7", env!("CARGO_PKG_VERSION")));
    assert_eq!(reply.abi_version, tandem_sdk::ABI_VERSION);
    assert!(reply.compute_threads >= 1);
    assert_eq!(reply.max_queue, 64);
    assert_eq!(reply.max_message_bytes, 64 << 20);
    assert!(!reply.instance_id.is_empty());
}

#[tokio::test]
async fn topk_over_a_created_state_finds_the_nearest_rows() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let create = CreateStateRequest {
        state_id: "docs".into(),
        kind: "vector_collection".into(),
        tensors: vec![
            f32_tensor(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 0.7, 0.7]),
            Tensor { dtype: 0, shape: vec![], data: None },
        ],
        stored: None,
    };
    let created: CreateStateReply = client.unary("CreateState", &create).await.unwrap();
    // What the worker holds: 3 rows padded to 16 lanes (64 bytes) plus norms (8).
    assert_eq!(created.size_bytes, 3 * 72);
    let err = client.unary::<_, CreateStateReply>("CreateState", &create).await.unwrap_err();
    assert_eq!(err.0, Code::AlreadyExists);

    let req = InvokeRequest {
        kernel: "similarity.topk".into(),
        kernel_version: 1,
        state_id: "docs".into(),
        inputs: vec![f32_tensor(&[1, 2], &[1.0, 0.1])],
        params: vec![int(2), int(0)],
        outputs: vec![output(DType::I64, &[1, 2]), output(DType::F32, &[1, 2])],
        // Under --inline-work-threshold: runs on the I/O thread.
        work: 6,
    };
    let reply = client.invoke(&req).await.unwrap();
    assert_eq!(i64s(&reply.outputs[0]), vec![0, 2]);
    assert!(!reply.instance_id.is_empty());

    let listed: ListStatesReply = client.unary("ListStates", &ListStatesRequest {}).await.unwrap();
    assert_eq!(listed.states.len(), 1);
    assert_eq!(listed.states[0].kind, "vector_collection");
    let dropped: DropStateReply =
        client.unary("DropState", &DropStateRequest { state_id: "docs".into() }).await.unwrap();
    assert!(dropped.dropped);
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::NotFound, "{}", err.1);
}

#[tokio::test]
async fn montecarlo_prices_are_deterministic_and_plausible() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let req = montecarlo_request(2, 20_000);
    let a = client.invoke(&req).await.unwrap();
    let b = client.invoke(&req).await.unwrap();
    let prices = f64s(&a.outputs[0]);
    assert_eq!(prices, f64s(&b.outputs[0]));
    // Black-Scholes price of this call is about 8.43.
    assert!((prices[0] - 8.43).abs() < 0.5, "{prices:?}");
}

#[tokio::test]
async fn blake3_matches_the_reference_including_xof_lengths() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let reply = client.invoke(&blake3_request(&data, 32)).await.unwrap();
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), blake3::hash(&data).as_bytes());
    let reply = client.invoke(&blake3_request(&data, 100)).await.unwrap();
    let mut expected = [0u8; 100];
    blake3::Hasher::new().update(&data).finalize_xof().fill(&mut expected);
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), expected);
}

fn stream_frames(header: StreamHeader, chunks: &[&[u8]]) -> Vec<Bytes> {
    let mut frames =
        vec![frame_bytes(&StreamRequest { part: Some(stream_request::Part::Header(header)) }.encode_to_vec())];
    for chunk in chunks {
        let part = stream_request::Part::Data(Bytes::copy_from_slice(chunk));
        frames.push(frame_bytes(&StreamRequest { part: Some(part) }.encode_to_vec()));
    }
    frames
}

fn digest_header(len: i64) -> StreamHeader {
    StreamHeader { kernel: "hash.blake3".into(), outputs: vec![output(DType::U8, &[len])], ..Default::default() }
}

async fn send_stream(client: &mut Client, frames: Vec<Bytes>) -> CallResult<InvokeReply> {
    let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
    let reply = client.raw("/tandem.v1.Accelerator/InvokeStream", &[], hyper::Body::wrap_stream(stream)).await;
    into_result(reply)
}

#[tokio::test]
async fn invoke_stream_in_chunks_equals_one_shot() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let chunks: Vec<&[u8]> = data.chunks(70_000).collect();
    let streamed = send_stream(&mut client, stream_frames(digest_header(32), &chunks)).await.unwrap();
    let one_shot = client.invoke(&blake3_request(&data, 32)).await.unwrap();
    assert_eq!(inline_bytes(&streamed.outputs[0]), inline_bytes(&one_shot.outputs[0]));
    assert_eq!(inline_bytes(&streamed.outputs[0]).as_ref(), blake3::hash(&data).as_bytes());

    // An empty stream hashes the empty input.
    let empty = send_stream(&mut client, stream_frames(digest_header(32), &[])).await.unwrap();
    assert_eq!(inline_bytes(&empty.outputs[0]).as_ref(), blake3::hash(b"").as_bytes());
}

#[tokio::test]
async fn invoke_stream_refuses_bad_streams() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let data_first = vec![frame_bytes(
        &StreamRequest { part: Some(stream_request::Part::Data(Bytes::from_static(b"x"))) }.encode_to_vec(),
    )];
    assert_eq!(send_stream(&mut client, data_first).await.unwrap_err().0, Code::InvalidArgument);
    assert_eq!(send_stream(&mut client, vec![]).await.unwrap_err().0, Code::InvalidArgument);
    let mut header = digest_header(32);
    header.kernel = "montecarlo.european".into();
    assert_eq!(send_stream(&mut client, stream_frames(header, &[b"x"])).await.unwrap_err().0, Code::Unimplemented);
    let err = send_stream(&mut client, stream_frames(digest_header(0), &[b"x"])).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument, "{}", err.1);
    let mut twice = stream_frames(digest_header(32), &[b"x"]);
    twice.push(twice[0].clone());
    assert_eq!(send_stream(&mut client, twice).await.unwrap_err().0, Code::InvalidArgument);
}

#[tokio::test]
async fn invoke_refuses_unknown_kernels_versions_and_bad_tensors() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let mut req = blake3_request(b"abc", 32);
    req.kernel = "nope".into();
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::NotFound);
    assert!(err.1.contains("hash.blake3"), "names known kernels: {}", err.1);

    let mut req = blake3_request(b"abc", 32);
    req.kernel_version = 99;
    assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::FailedPrecondition);

    let mut req = blake3_request(b"abc", 32);
    req.inputs[0].dtype = DType::F32 as i32;
    assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::InvalidArgument);

    let mut req = blake3_request(b"abc", 32);
    req.inputs[0].shape = vec![4];
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument);
    assert!(err.1.contains("needs 4"), "{}", err.1);

    for shape in [vec![-1], vec![1, 1, 1, 1, 3], vec![i64::MAX, i64::MAX]] {
        let mut req = blake3_request(b"abc", 32);
        req.inputs[0].shape = shape;
        assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::InvalidArgument);
    }

    let mut req = blake3_request(b"abc", 32);
    req.inputs[0].dtype = 42;
    assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::InvalidArgument);

    let mut req = montecarlo_request(1, 100);
    req.inputs[0] = f32_tensor(&[1, 6], &[1.0; 6]);
    assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::InvalidArgument);

    let mut req = blake3_request(b"abc", 32);
    req.state_id = "missing".into();
    assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::NotFound);

    // An inline output beyond the message limit is refused before allocating.
    let req = blake3_request(b"abc", 1 << 40);
    assert_eq!(client.invoke(&req).await.unwrap_err().0, Code::ResourceExhausted);
}

#[tokio::test]
async fn create_state_validates_ids_and_kinds() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let mut req = CreateStateRequest {
        state_id: String::new(),
        kind: "vector_collection".into(),
        tensors: vec![f32_tensor(&[1, 2], &[1.0, 2.0])],
        stored: None,
    };
    assert_eq!(client.unary::<_, CreateStateReply>("CreateState", &req).await.unwrap_err().0, Code::InvalidArgument);
    req.state_id = "x".repeat(257);
    assert_eq!(client.unary::<_, CreateStateReply>("CreateState", &req).await.unwrap_err().0, Code::InvalidArgument);
    req.state_id = "ok".into();
    req.kind = "nope".into();
    assert_eq!(client.unary::<_, CreateStateReply>("CreateState", &req).await.unwrap_err().0, Code::NotFound);
    let dropped: DropStateReply =
        client.unary("DropState", &DropStateRequest { state_id: "none".into() }).await.unwrap();
    assert!(!dropped.dropped);
}

#[tokio::test]
async fn a_state_flood_is_refused_at_the_limits_and_the_worker_keeps_serving() {
    let w = start_with(|c| {
        c.max_states = 3;
        c.max_state_bytes = 1000;
    })
    .await;
    let mut client = Client::connect(&w.socket).await;
    let create = |id: &str, rows: usize| CreateStateRequest {
        state_id: id.into(),
        kind: "vector_collection".into(),
        tensors: vec![f32_tensor(&[rows as i64, 2], &vec![0.5; rows * 2])],
        stored: None,
    };
    // A row of dimension 2 is 8 bytes in but 72 held (padded to 16 lanes,
    // plus its norms): the budget counts what the state holds.
    for id in ["a", "b", "c"] {
        let reply: CreateStateReply = client.unary("CreateState", &create(id, 3)).await.unwrap();
        assert_eq!(reply.size_bytes, 3 * 72);
    }
    let (code, message) = client.unary::<_, CreateStateReply>("CreateState", &create("d", 1)).await.unwrap_err();
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("--max-states 3"), "{message}");
    client.unary::<_, DropStateReply>("DropState", &DropStateRequest { state_id: "a".into() }).await.unwrap();
    // 432 bytes held. 100 rows declare 800 bytes: refused before anything is built.
    let (code, message) = client.unary::<_, CreateStateReply>("CreateState", &create("huge", 100)).await.unwrap_err();
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("holds 432 bytes of states and its limit is 1000 (--max-state-bytes)"), "{message}");
    // 10 rows declare 80 bytes, which fit, but hold 720, which do not.
    let (code, message) = client.unary::<_, CreateStateReply>("CreateState", &create("padded", 10)).await.unwrap_err();
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("holds 432 bytes of states and its limit is 1000 (--max-state-bytes)"), "{message}");
    client.unary::<_, CreateStateReply>("CreateState", &create("d", 6)).await.unwrap();
    let listed: ListStatesReply = client.unary("ListStates", &ListStatesRequest {}).await.unwrap();
    assert_eq!(listed.states.iter().map(|s| s.state_id.as_str()).collect::<Vec<_>>(), ["b", "c", "d"]);
    // Still serving calls.
    let reply = client.invoke(&blake3_request(b"abc", 32)).await.unwrap();
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), blake3::hash(b"abc").as_bytes());
}
