//! Health, fan-in, drain and cancellation, in process.

mod common;

use bytes::Bytes;
use common::*;
use hyper::body::HttpBody;
use prost::Message;
use tandem_sdk::Code;
use tandem_worker::grpc::frame::frame_bytes;
use tandem_worker::grpc::FrameDecoder;
use tandem_worker::pb::accelerator::*;
use tandem_worker::pb::health::health_check_response::ServingStatus;
use tandem_worker::pb::health::{HealthCheckRequest, HealthCheckResponse};

async fn check(client: &mut Client, service: &str) -> CallResult<ServingStatus> {
    let req = HealthCheckRequest { service: service.into() };
    let reply: HealthCheckResponse = client.unary("/grpc.health.v1.Health/Check", &req).await?;
    Ok(ServingStatus::from_i32(reply.status).unwrap_or(ServingStatus::Unknown))
}

/// A Watch stream, read message by message.
struct Watch {
    body: hyper::Body,
    decoder: FrameDecoder,
}

impl Watch {
    async fn open(client: &mut Client, service: &str) -> Watch {
        let req = HealthCheckRequest { service: service.into() };
        let response =
            client.request("/grpc.health.v1.Health/Watch", &[], frame_bytes(&req.encode_to_vec()).into()).await;
        assert_eq!(response.status(), http::StatusCode::OK);
        Watch { body: response.into_body(), decoder: FrameDecoder::new(1 << 20) }
    }

    /// The next status, or `None` when the stream ended.
    async fn next(&mut self) -> Option<ServingStatus> {
        loop {
            if let Some(m) = self.decoder.next_message().unwrap() {
                let reply = HealthCheckResponse::decode(m).unwrap();
                return Some(ServingStatus::from_i32(reply.status).unwrap());
            }
            let chunk = tokio::time::timeout(BOUND, self.body.data()).await.expect("watch update in time")?;
            self.decoder.push(&chunk.unwrap());
        }
    }
}

#[tokio::test]
async fn health_check_and_watch_follow_the_drain() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    assert_eq!(check(&mut client, "").await.unwrap(), ServingStatus::Serving);
    assert_eq!(check(&mut client, "tandem.v1.Accelerator").await.unwrap(), ServingStatus::Serving);
    assert_eq!(check(&mut client, "liveness").await.unwrap(), ServingStatus::Serving);
    assert_eq!(check(&mut client, "nope").await.unwrap_err().0, Code::NotFound);

    let mut readiness = Watch::open(&mut client, "").await;
    let mut liveness = Watch::open(&mut client, "liveness").await;
    let mut unknown = Watch::open(&mut client, "nope").await;
    assert_eq!(readiness.next().await, Some(ServingStatus::Serving));
    assert_eq!(liveness.next().await, Some(ServingStatus::Serving));
    assert_eq!(unknown.next().await, Some(ServingStatus::ServiceUnknown));

    let reply: DrainReply = client.unary("Drain", &DrainRequest {}).await.unwrap();
    assert_eq!(reply.in_flight, 0);
    assert_eq!(readiness.next().await, Some(ServingStatus::NotServing));
    // The drain finishes, the streams end and the socket goes away.
    tokio::time::timeout(BOUND, w.worker.wait()).await.expect("the worker exits in time");
    assert_eq!(readiness.next().await, None);
    assert_eq!(liveness.next().await, None);
    assert!(!w.socket.exists(), "the socket is removed at exit");
}

#[tokio::test]
async fn fan_in_refuses_calls_beyond_running_plus_queued() {
    let w = start_with(|c| {
        c.max_concurrency = 1;
        c.max_queue = 1;
    })
    .await;
    let app = std::sync::Arc::clone(w.worker.app());
    // The test takes the only compute slot, so the next call has to queue.
    let ticket = app.admission.admit().unwrap();
    let (slot, _) = app.admission.slot(ticket).await.unwrap();

    let mut queued_client = Client::connect(&w.socket).await;
    let queued = tokio::spawn(async move { queued_client.invoke(&blake3_request(b"queued", 32)).await });
    eventually(|| app.admission.available() == 0, "the call to queue").await;

    let mut client = Client::connect(&w.socket).await;
    let err = client.invoke(&blake3_request(b"one too many", 32)).await.unwrap_err();
    assert_eq!(err.0, Code::ResourceExhausted, "{}", err.1);

    drop(slot);
    let reply = queued.await.unwrap().unwrap();
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), blake3::hash(b"queued").as_bytes());
    assert!(reply.queue_micros > 0);
    let metrics = app.metrics.render();
    assert!(metrics.contains("tandem_worker_rejections_total{reason=\"capacity\"} 1"), "{metrics}");
    assert!(
        metrics.contains("tandem_worker_invocations_total{code=\"RESOURCE_EXHAUSTED\",kernel=\"hash.blake3\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn drain_lets_calls_in_flight_finish_and_refuses_new_ones() {
    let w = start_with(|c| {
        c.max_concurrency = 1;
        c.max_queue = 4;
    })
    .await;
    let app = std::sync::Arc::clone(w.worker.app());
    let ticket = app.admission.admit().unwrap();
    let (slot, _) = app.admission.slot(ticket).await.unwrap();

    let mut busy_client = Client::connect(&w.socket).await;
    let in_flight = tokio::spawn(async move { busy_client.invoke(&montecarlo_request(1, 1000)).await });
    eventually(|| app.lifecycle.in_flight() == 1 && app.admission.available() == 3, "the call to queue").await;

    let mut client = Client::connect(&w.socket).await;
    let reply: DrainReply = client.unary("Drain", &DrainRequest {}).await.unwrap();
    assert_eq!(reply.in_flight, 1);
    assert_eq!(check(&mut client, "").await.unwrap(), ServingStatus::NotServing);
    assert_eq!(check(&mut client, "liveness").await.unwrap(), ServingStatus::Serving);
    let err = client.invoke(&blake3_request(b"late", 32)).await.unwrap_err();
    assert_eq!(err.0, Code::Unavailable);
    assert!(err.1.contains("draining"), "{}", err.1);
    let create =
        CreateStateRequest { state_id: "late".into(), kind: "vector_collection".into(), tensors: vec![], stored: None };
    assert_eq!(client.unary::<_, CreateStateReply>("CreateState", &create).await.unwrap_err().0, Code::Unavailable);

    drop(slot);
    in_flight.await.unwrap().expect("the call in flight completes");
    tokio::time::timeout(BOUND, w.worker.wait()).await.expect("the worker exits in time");
    assert!(!w.socket.exists());
}

#[tokio::test]
async fn a_client_leaving_mid_stream_releases_everything() {
    let w = start_with(|c| {
        c.max_concurrency = 2;
        c.max_queue = 2;
    })
    .await;
    let app = std::sync::Arc::clone(w.worker.app());
    let mut client = Client::connect(&w.socket).await;
    let (mut sender, body) = hyper::Body::channel();
    let header = StreamHeader {
        kernel: "hash.blake3".into(),
        outputs: vec![output(tandem_sdk::DType::U8, &[32])],
        ..Default::default()
    };
    let response = tokio::spawn(async move { client.request("/tandem.v1.Accelerator/InvokeStream", &[], body).await });
    let first = StreamRequest { part: Some(stream_request::Part::Header(header)) };
    sender.send_data(frame_bytes(&first.encode_to_vec())).await.unwrap();
    let chunk = StreamRequest { part: Some(stream_request::Part::Data(Bytes::from_static(b"partial"))) };
    sender.send_data(frame_bytes(&chunk.encode_to_vec())).await.unwrap();
    eventually(|| app.metrics.render().contains("tandem_worker_open_streams 1"), "the stream to start").await;
    // Waiting for its client, the stream holds no place among admitted calls.
    assert_eq!(app.admission.available(), 4);
    sender.abort();
    eventually(|| app.lifecycle.in_flight() == 0 && app.admission.available() == 4, "the stream to be released").await;
    eventually(|| app.metrics.render().contains("tandem_worker_open_streams 0"), "the open-stream gauge to drop").await;
    eventually(|| app.metrics.render().contains("tandem_worker_in_flight 0"), "the in-flight gauge to drop").await;
    drop(response);
    // The worker still serves.
    let mut client = Client::connect(&w.socket).await;
    client.invoke(&blake3_request(b"after", 32)).await.unwrap();
}

#[tokio::test]
async fn large_requests_share_a_bounded_receive_budget() {
    let w = start_with(|c| c.max_message_bytes = 256 * 1024).await;
    let app = std::sync::Arc::clone(w.worker.app());
    let total = app.receive_budget.available_permits();
    let mut senders = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..tandem_worker::service::RECEIVE_BUDGET_MESSAGES {
        let mut client = Client::connect(&w.socket).await;
        let (mut sender, body) = hyper::Body::channel();
        pending.push(tokio::spawn(async move { client.request("/tandem.v1.Accelerator/Invoke", &[], body).await }));
        let mut prefix = vec![0u8];
        prefix.extend_from_slice(&(256u32 * 1024).to_be_bytes());
        prefix.extend_from_slice(&[0x0a, 0x01]);
        sender.send_data(Bytes::from(prefix)).await.unwrap();
        senders.push(sender);
    }
    eventually(|| app.receive_budget.available_permits() == 0, "the large requests to take the budget").await;

    let mut client = Client::connect(&w.socket).await;
    let err = client.invoke(&blake3_request(&vec![1u8; 100_000], 32)).await.unwrap_err();
    assert_eq!(err.0, Code::ResourceExhausted, "{}", err.1);
    client.invoke(&blake3_request(b"small requests still pass", 32)).await.unwrap();

    for sender in senders {
        sender.abort();
    }
    eventually(|| app.receive_budget.available_permits() == total, "the budget to be returned").await;
    client.invoke(&blake3_request(&vec![1u8; 100_000], 32)).await.unwrap();
    drop(pending);
}
