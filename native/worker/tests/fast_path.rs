//! The local fast path (src/fast): negotiation in Describe, the handshake
//! and its token, every kernel with the same results, codes and messages
//! as gRPC, deadlines, cancellation, multiplexing, shared memory, drain,
//! the limits, and malformed frames closing only their own connection.

mod common;

use common::fast::FastClient;
use common::*;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;
use tandem_sdk::{Code, DType};
use tandem_worker::fast::frame;
use tandem_worker::pb::accelerator::*;
use tandem_worker::pb::health::{HealthCheckRequest, HealthCheckResponse};

fn topk_request(state: &str) -> InvokeRequest {
    InvokeRequest {
        kernel: "similarity.topk".into(),
        kernel_version: 1,
        state_id: state.into(),
        inputs: vec![f32_tensor(&[1, 2], &[1.0, 0.1])],
        params: vec![int(2), int(0)],
        outputs: vec![output(DType::I64, &[1, 2]), output(DType::F32, &[1, 2])],
        work: 6,
    }
}

fn collection(id: &str) -> CreateStateRequest {
    CreateStateRequest {
        state_id: id.into(),
        kind: "vector_collection".into(),
        tensors: vec![
            f32_tensor(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 0.7, 0.7]),
            Tensor { dtype: 0, shape: vec![], data: None },
        ],
        stored: None,
    }
}

#[tokio::test]
async fn describe_offers_a_private_fast_socket_next_to_the_grpc_one() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let reply: DescribeReply = client.unary("Describe", &DescribeRequest {}).await.unwrap();
    let fast = tandem_worker::fast::socket_path(&w.socket);
    assert_eq!(reply.fast_path_socket, fast.display().to_string());
    assert_eq!(reply.fast_path_version, u32::from(frame::VERSION));
    let meta = std::fs::symlink_metadata(&fast).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // Describe over the fast path says the same.
    let mut fast_client = FastClient::connect(&w.socket).await;
    let again: DescribeReply = fast_client.unary("Describe", &DescribeRequest {}).await.unwrap();
    assert_eq!(again.instance_id, reply.instance_id);
    assert_eq!(again.fast_path_socket, reply.fast_path_socket);
}

#[tokio::test]
async fn a_worker_started_with_the_fast_path_off_offers_none() {
    let w = start_with(|c| c.fast_path = false).await;
    let mut client = Client::connect(&w.socket).await;
    let reply: DescribeReply = client.unary("Describe", &DescribeRequest {}).await.unwrap();
    assert_eq!((reply.fast_path_socket.as_str(), reply.fast_path_version), ("", 0));
    assert!(!tandem_worker::fast::socket_path(&w.socket).exists());
}

#[tokio::test]
async fn every_kernel_answers_as_over_grpc() {
    let w = start().await;
    let mut grpc = Client::connect(&w.socket).await;
    let mut fast = FastClient::connect(&w.socket).await;
    let _: CreateStateReply = fast.unary("CreateState", &collection("docs")).await.unwrap();
    let listed: ListStatesReply = grpc.unary("ListStates", &ListStatesRequest {}).await.unwrap();
    assert_eq!(listed.states.len(), 1, "a state created on the fast path is the worker's");

    let topk = fast.invoke(&topk_request("docs")).await.unwrap();
    assert_eq!(i64s(&topk.outputs[0]), vec![0, 2]);
    assert_eq!(topk.outputs, grpc.invoke(&topk_request("docs")).await.unwrap().outputs);
    let montecarlo = montecarlo_request(2, 20_000);
    assert_eq!(fast.invoke(&montecarlo).await.unwrap().outputs, grpc.invoke(&montecarlo).await.unwrap().outputs);
    let hash = fast.invoke(&blake3_request(b"abc", 32)).await.unwrap();
    assert_eq!(inline_bytes(&hash.outputs[0]).as_ref(), blake3::hash(b"abc").as_bytes());
    let noop = InvokeRequest {
        kernel: "diagnostics.noop".into(),
        inputs: vec![u8_tensor(b"a"), u8_tensor(b"b")],
        ..Default::default()
    };
    assert!(fast.invoke(&noop).await.unwrap().outputs.is_empty());
    let health: HealthCheckResponse =
        fast.unary("Check", &HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(health.status, 1, "SERVING");
    let dropped: DropStateReply = fast.unary("DropState", &DropStateRequest { state_id: "docs".into() }).await.unwrap();
    assert!(dropped.dropped);
}

#[tokio::test]
async fn refusals_carry_the_same_codes_and_messages_as_grpc() {
    let w = start().await;
    let mut grpc = Client::connect(&w.socket).await;
    let mut fast = FastClient::connect(&w.socket).await;
    let mut bad_shape = blake3_request(b"abc", 32);
    bad_shape.inputs[0].shape = vec![4];
    let mut wrong_version = blake3_request(b"abc", 32);
    wrong_version.kernel_version = 99;
    let cases = [
        InvokeRequest { kernel: "no.such".into(), ..Default::default() },
        wrong_version,
        bad_shape,
        topk_request("missing"),
        montecarlo_request(1, 0),
    ];
    for req in &cases {
        let over_grpc = grpc.invoke(req).await.unwrap_err();
        let over_fast = fast.invoke(req).await.unwrap_err();
        assert_ne!(over_grpc.0, Code::Ok);
        assert_eq!(over_fast, over_grpc, "{req:?}");
    }
    let id = 42;
    fast.send(&frame::call(id, 2, None, [0; 16], &[0x0a, 0xff, 0xff])).await;
    let err = fast.finish::<InvokeReply>(id).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument);
    assert!(err.1.contains("malformed request message"), "{}", err.1);
    fast.send(&frame::call(43, 3, None, [0; 16], &[])).await;
    let err = fast.finish::<InvokeReply>(43).await.unwrap_err();
    assert_eq!(err.0, Code::Unimplemented);
    assert!(err.1.contains("over gRPC"), "{}", err.1);
    fast.send(&frame::call(44, 200, None, [0; 16], &[])).await;
    assert_eq!(fast.finish::<InvokeReply>(44).await.unwrap_err().0, Code::Unimplemented);
    // The connection still serves.
    fast.invoke(&blake3_request(b"after", 32)).await.unwrap();
}

#[tokio::test]
async fn deadlines_follow_grpc_timeout() {
    let w = start().await;
    let mut fast = FastClient::connect(&w.socket).await;
    let err = fast.unary_within::<_, InvokeReply>("Invoke", &blake3_request(b"x", 32), Some(Duration::ZERO)).await;
    assert_eq!(err.unwrap_err(), (Code::DeadlineExceeded, "the call's deadline passed before it completed".into()));
    // A long call past its deadline: the same code, and the kernel is told to stop.
    let err = fast
        .unary_within::<_, InvokeReply>("Invoke", &montecarlo_request(64, 1_000_000), Some(Duration::from_millis(30)))
        .await
        .unwrap_err();
    assert_eq!(err.0, Code::DeadlineExceeded, "{}", err.1);
    eventually(|| w.worker.app().lifecycle.in_flight() == 0, "the expired call to stop").await;
    fast.unary_within::<_, InvokeReply>("Invoke", &blake3_request(b"x", 32), Some(Duration::from_secs(5)))
        .await
        .unwrap();
}

#[tokio::test]
async fn calls_are_multiplexed_and_a_cancel_frees_only_its_call() {
    let w = start_with(|c| {
        c.max_concurrency = 1;
        c.max_queue = 4;
    })
    .await;
    let app = std::sync::Arc::clone(w.worker.app());
    // Hold the only compute slot, so the next kernel call waits in the queue.
    let ticket = app.admission.admit().unwrap();
    let (slot, _) = app.admission.slot(ticket).await.unwrap();
    let mut fast = FastClient::connect(&w.socket).await;
    let queued = fast.start("Invoke", &montecarlo_request(1, 1000), None).await;
    eventually(|| app.lifecycle.in_flight() == 1, "the call to queue").await;
    // Another call on the same connection is not held up behind it.
    let listed = fast.start("ListStates", &ListStatesRequest {}, None).await;
    fast.finish::<ListStatesReply>(listed).await.unwrap();
    fast.send(&frame::cancel(queued)).await;
    eventually(|| app.lifecycle.in_flight() == 0, "the cancelled call to leave").await;
    eventually(|| app.admission.available() == 4, "its queue place to come back").await;
    drop(slot);
    // Nothing arrives for the cancelled call; the next call is answered.
    fast.invoke(&blake3_request(b"next", 32)).await.unwrap();
    let rendered = app.metrics.render();
    assert!(
        rendered.contains("tandem_worker_invocations_total{code=\"CANCELLED\",kernel=\"montecarlo.european\"} 1"),
        "{rendered}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_calls() {
    let w = start_with(|c| c.max_concurrency = 1).await;
    let app = std::sync::Arc::clone(w.worker.app());
    let ticket = app.admission.admit().unwrap();
    let (slot, _) = app.admission.slot(ticket).await.unwrap();
    let mut fast = FastClient::connect(&w.socket).await;
    fast.start("Invoke", &montecarlo_request(1, 1000), None).await;
    eventually(|| app.lifecycle.in_flight() == 1, "the call to queue").await;
    drop(fast);
    eventually(|| app.lifecycle.in_flight() == 0, "the call to be cancelled").await;
    drop(slot);
}

#[tokio::test]
async fn shared_memory_inputs_and_outputs_work_over_the_fast_path() {
    use std::io::Write;
    let w = start().await;
    let dir = tempfile::Builder::new().prefix("tandem-test-").tempdir_in("/dev/shm").unwrap();
    let path = dir.path().join("region");
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path).unwrap();
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut contents = data.clone();
    contents.resize(1 << 16, 0);
    file.write_all(&contents).unwrap();
    let mut fast = FastClient::connect(&w.socket).await;
    let register =
        RegisterSharedMemoryRequest { name: "r1".into(), path: path.to_string_lossy().into_owned(), size: 1 << 16 };
    let _: RegisterSharedMemoryReply = fast.unary("RegisterSharedMemory", &register).await.unwrap();
    let shared = |offset, length| SharedMemoryRef { region: "r1".into(), offset, length };
    let req = InvokeRequest {
        kernel: "hash.blake3".into(),
        inputs: vec![Tensor {
            dtype: DType::U8 as i32,
            shape: vec![5000],
            data: Some(tensor::Data::Shared(shared(0, 5000))),
        }],
        outputs: vec![OutputSpec { dtype: DType::U8 as i32, shape: vec![32], shared: Some(shared(8192, 32)) }],
        work: 5000,
        ..Default::default()
    };
    let reply = fast.invoke(&req).await.unwrap();
    assert!(matches!(&reply.outputs[0].data, Some(tensor::Data::Shared(r)) if r.offset == 8192));
    assert_eq!(&std::fs::read(&path).unwrap()[8192..8224], blake3::hash(&data).as_bytes());
    // An out-of-bounds reference: the same refusal as on gRPC.
    let mut outside = req.clone();
    outside.inputs[0].data = Some(tensor::Data::Shared(shared(1 << 16, 5000)));
    let over_fast = fast.invoke(&outside).await.unwrap_err();
    let over_grpc = Client::connect(&w.socket).await.invoke(&outside).await.unwrap_err();
    assert_eq!(over_fast, over_grpc);
    let unregistered: UnregisterSharedMemoryReply =
        fast.unary("UnregisterSharedMemory", &UnregisterSharedMemoryRequest { name: "r1".into() }).await.unwrap();
    assert!(unregistered.unregistered);
}

#[tokio::test]
async fn the_handshake_checks_version_and_token() {
    let err = FastClient::connect_with(&start().await.socket, 9, b"").await.err().unwrap();
    assert_eq!(err.0, Code::FailedPrecondition);
    assert!(err.1.contains("version 9 is not supported") && err.1.contains("version 1"), "{}", err.1);

    const SECRET: &str = "a-socket-token-0123456789";
    let w = start_with(|c| c.token = Some(tandem_worker::auth::Token::new(SECRET, "test").unwrap())).await;
    let err = FastClient::connect_with(&w.socket, frame::VERSION, b"").await.err().unwrap();
    assert_eq!(err.0, Code::Unauthenticated);
    assert!(err.1.contains("carried none") && err.1.contains("WorkerToken"), "{}", err.1);
    let err = FastClient::connect_with(&w.socket, frame::VERSION, b"not-the-token-0123456789").await.err().unwrap();
    assert_eq!(err.0, Code::Unauthenticated);
    assert!(!err.1.contains(SECRET));
    let (mut fast, welcome) = FastClient::connect_with(&w.socket, frame::VERSION, SECRET.as_bytes()).await.unwrap();
    assert_eq!(welcome.max_in_flight, 256);
    assert_eq!(welcome.max_message_bytes, 64 << 20);
    fast.invoke(&blake3_request(b"authenticated", 32)).await.unwrap();
    assert!(w.worker.app().metrics.render().contains("tandem_worker_rejections_total{reason=\"unauthenticated\"} 2"));
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection_with_a_reason() {
    let w = start().await;
    let mut healthy = FastClient::connect(&w.socket).await;
    // Not a HELLO first.
    let mut rude = FastClient::open(&w.socket).await;
    rude.send(&frame::call(1, 2, None, [0; 16], &[])).await;
    let (code, reason) = rude.closed().await.expect("a reason before the close");
    assert_eq!(code, Code::Internal);
    assert!(reason.contains("must be a HELLO"), "{reason}");
    // A length that cannot hold a header.
    let mut broken = FastClient::connect(&w.socket).await;
    broken.send(&[3, 0, 0, 0, 2, 2, 0, 0, 1, 0, 0, 0]).await;
    assert!(broken.closed().await.unwrap().1.contains("8 header bytes"));
    // A call body too short for its prefix, and a connection cut inside a frame.
    let mut short = FastClient::connect(&w.socket).await;
    short.send(&[8 + 3, 0, 0, 0, frame::CALL, 2, 0, 0, 1, 0, 0, 0, 1, 2, 3]).await;
    assert!(short.closed().await.unwrap().1.contains("at least 24"));
    let mut cut = FastClient::connect(&w.socket).await;
    let whole = frame::call(5, 2, None, [0; 16], b"abcdef");
    cut.send(&whole[..whole.len() - 2]).await;
    drop(cut);
    // A duplicate id in flight.
    let app = std::sync::Arc::clone(w.worker.app());
    let ticket = app.admission.admit().unwrap();
    let (slot, _) = app.admission.slot(ticket).await.unwrap();
    let mut twice = FastClient::connect(&w.socket).await;
    let slow = frame::call(7, 2, None, [0; 16], &prost::Message::encode_to_vec(&montecarlo_request(1, 100)));
    twice.send(&slow).await;
    twice.send(&slow).await;
    assert!(twice.closed().await.unwrap().1.contains("already in flight"));
    drop(slot);
    healthy.invoke(&blake3_request(b"unaffected", 32)).await.unwrap();
}

#[tokio::test]
async fn limits_are_refused_per_call_naming_the_flag() {
    let w = start_with(|c| {
        c.max_message_bytes = 4096;
        c.max_streams_per_connection = 1;
        c.max_concurrency = 1;
    })
    .await;
    let app = std::sync::Arc::clone(w.worker.app());
    let mut fast = FastClient::connect(&w.socket).await;
    let err = fast.invoke(&blake3_request(&[7; 8192], 32)).await.unwrap_err();
    assert_eq!(err.0, Code::ResourceExhausted);
    assert!(err.1.contains("exceeds the limit of 4096 bytes (--max-message-bytes)"), "{}", err.1);
    // The oversize body was skipped: the connection is in step.
    fast.invoke(&blake3_request(b"small", 32)).await.unwrap();

    let ticket = app.admission.admit().unwrap();
    let (slot, _) = app.admission.slot(ticket).await.unwrap();
    let first = fast.start("Invoke", &montecarlo_request(1, 100), None).await;
    let second = fast.start("Invoke", &blake3_request(b"second", 32), None).await;
    let err = fast.finish::<InvokeReply>(second).await.unwrap_err();
    assert_eq!(err.0, Code::ResourceExhausted);
    assert!(err.1.contains("1 calls in flight, its limit (--max-streams-per-connection)"), "{}", err.1);
    drop(slot);
    fast.finish::<InvokeReply>(first).await.unwrap();
    assert!(app.metrics.render().contains("tandem_worker_rejections_total{reason=\"streams\"} 1"));
}

#[tokio::test]
async fn the_connection_cap_is_shared_with_grpc() {
    let w = start_with(|c| c.max_connections = 1).await;
    let mut grpc = Client::connect(&w.socket).await;
    let _: ListStatesReply = grpc.unary("ListStates", &ListStatesRequest {}).await.unwrap();
    let mut refused = FastClient::open(&w.socket).await;
    let (code, reason) = refused.closed().await.expect("a refusal");
    assert_eq!(code, Code::ResourceExhausted);
    assert!(reason.contains("--max-connections"), "{reason}");
}

#[tokio::test]
async fn drain_lets_calls_finish_refuses_new_ones_and_removes_the_socket_at_exit() {
    let w = start_with(|c| {
        c.max_concurrency = 1;
        c.max_queue = 4;
    })
    .await;
    let app = std::sync::Arc::clone(w.worker.app());
    let fast_socket = tandem_worker::fast::socket_path(&w.socket);
    let ticket = app.admission.admit().unwrap();
    let (slot, _) = app.admission.slot(ticket).await.unwrap();
    let mut busy = FastClient::connect(&w.socket).await;
    let queued = busy.start("Invoke", &montecarlo_request(1, 1000), None).await;
    eventually(|| app.lifecycle.in_flight() == 1, "the call to queue").await;

    let mut fast = FastClient::connect(&w.socket).await;
    let reply: DrainReply = fast.unary("Drain", &DrainRequest {}).await.unwrap();
    assert_eq!(reply.in_flight, 1);
    let err = fast.invoke(&blake3_request(b"late", 32)).await.unwrap_err();
    assert_eq!(err.0, Code::Unavailable);
    assert!(err.1.contains("draining"), "{}", err.1);

    drop(slot);
    busy.finish::<InvokeReply>(queued).await.expect("the call in flight completes");
    tokio::time::timeout(BOUND, w.worker.wait()).await.expect("the worker exits in time");
    assert!(fast.read().await.is_none(), "the connection is closed at exit");
    assert!(!fast_socket.exists() && !w.socket.exists());
}
