//! Bounds on what one client can make the worker hold, in process over a
//! Unix socket: open streams, concurrent streams per connection, idle
//! streams (which hold no compute slot and time out), and the token when
//! one is configured on a socket.

mod common;

use bytes::Bytes;
use common::*;
use prost::Message;
use std::time::Duration;
use tandem_sdk::{Code, DType};
use tandem_worker::auth::Token;
use tandem_worker::grpc::frame::frame_bytes;
use tandem_worker::pb::accelerator::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn header_frame() -> Bytes {
    let header =
        StreamHeader { kernel: "hash.blake3".into(), outputs: vec![output(DType::U8, &[32])], ..Default::default() };
    frame_bytes(&StreamRequest { part: Some(stream_request::Part::Header(header)) }.encode_to_vec())
}

fn chunk_frame(data: &'static [u8]) -> Bytes {
    frame_bytes(&StreamRequest { part: Some(stream_request::Part::Data(Bytes::from_static(data))) }.encode_to_vec())
}

/// A stream whose client sent its header and keeps the request open.
struct OpenStream {
    sender: hyper::body::Sender,
    reply: tokio::task::JoinHandle<hyper::Response<hyper::Body>>,
}

async fn open_stream(socket: &std::path::Path, first: &[Bytes]) -> OpenStream {
    let mut client = Client::connect(socket).await;
    let (mut sender, body) = hyper::Body::channel();
    let reply = tokio::spawn(async move { client.request("/tandem.v1.Accelerator/InvokeStream", &[], body).await });
    for frame in first {
        sender.send_data(frame.clone()).await.unwrap();
    }
    OpenStream { sender, reply }
}

async fn whole_stream(client: &mut Client, data: &'static [u8]) -> CallResult<InvokeReply> {
    let frames = [header_frame(), chunk_frame(data)];
    let body = futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
    into_result(client.raw("/tandem.v1.Accelerator/InvokeStream", &[], hyper::Body::wrap_stream(body)).await)
}

fn open_streams(app: &tandem_worker::service::App) -> String {
    let text = app.metrics.render();
    text.lines().find(|l| l.starts_with("tandem_worker_open_streams ")).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn streams_beyond_max_open_streams_are_resource_exhausted_naming_the_flag() {
    let w = start_with(|c| c.max_open_streams = 2).await;
    let app = std::sync::Arc::clone(w.worker.app());
    let first = open_stream(&w.socket, &[header_frame()]).await;
    let _second = open_stream(&w.socket, &[header_frame()]).await;
    eventually(|| open_streams(&app) == "tandem_worker_open_streams 2", "two streams to open").await;

    let mut client = Client::connect(&w.socket).await;
    let err = whole_stream(&mut client, b"third").await.unwrap_err();
    assert_eq!(err.0, Code::ResourceExhausted, "{}", err.1);
    assert!(err.1.contains("--max-open-streams") && err.1.contains('2'), "{}", err.1);
    assert!(app.metrics.render().contains("tandem_worker_rejections_total{reason=\"streams\"} 1"));
    // Unary calls are not affected.
    client.invoke(&blake3_request(b"unary", 32)).await.unwrap();

    // Finishing one frees its place.
    let mut sender = first.sender;
    sender.send_data(chunk_frame(b"done")).await.unwrap();
    drop(sender);
    let reply = read_reply(first.reply.await.unwrap()).await;
    assert_eq!(reply.code(), Code::Ok, "{}", reply.message());
    eventually(|| open_streams(&app) == "tandem_worker_open_streams 1", "the finished stream to close").await;
    let digest = whole_stream(&mut client, b"fourth").await.unwrap();
    assert_eq!(inline_bytes(&digest.outputs[0]).as_ref(), blake3::hash(b"fourth").as_bytes());
}

#[tokio::test]
async fn an_idle_stream_holds_no_compute_slot_and_is_closed_after_the_idle_timeout() {
    let w = start_with(|c| {
        c.max_concurrency = 1;
        c.max_queue = 1;
        c.stream_idle_timeout = Duration::from_secs(2);
    })
    .await;
    let app = std::sync::Arc::clone(w.worker.app());
    // Header and one chunk, then nothing.
    let idle = open_stream(&w.socket, &[header_frame(), chunk_frame(b"partial")]).await;
    eventually(|| open_streams(&app) == "tandem_worker_open_streams 1", "the stream to open").await;

    // The only compute slot is free for other calls while the stream waits.
    let mut client = Client::connect(&w.socket).await;
    let reply = client.invoke(&montecarlo_request(1, 1000)).await.unwrap();
    assert_eq!(reply.outputs.len(), 2);
    let again = client.invoke(&blake3_request(b"still served", 32)).await.unwrap();
    assert_eq!(inline_bytes(&again.outputs[0]).as_ref(), blake3::hash(b"still served").as_bytes());

    // Trailers-only: the status is in the response head (the worker then
    // resets the request side the client never finished).
    let response = tokio::time::timeout(BOUND, idle.reply).await.expect("the idle stream ends").unwrap();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("grpc-status"), (Code::DeadlineExceeded as i32).to_string(), "{:?}", response.headers());
    let message = tandem_worker::grpc::metadata::percent_decode(&header("grpc-message"));
    assert!(message.contains("--stream-idle-timeout"), "{message}");
    eventually(|| open_streams(&app) == "tandem_worker_open_streams 0", "the idle stream's state to be freed").await;
    assert!(app.metrics.render().contains("tandem_worker_rejections_total{reason=\"idle\"} 1"));
    assert_eq!(app.admission.free_slots(), 1);
    drop(idle.sender);
}

/// Writes one HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one HTTP/2 frame: (type, flags, stream, payload).
async fn read_frame(socket: &mut tokio::net::UnixStream) -> (u8, u8, u32, Vec<u8>) {
    let mut head = [0u8; 9];
    tokio::time::timeout(BOUND, socket.read_exact(&mut head)).await.expect("a frame in time").unwrap();
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).await.unwrap();
    (head[3], head[4], u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff, payload)
}

/// HPACK for a gRPC request's headers, as literals (no table, no Huffman).
fn request_headers(path: &str) -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static table)
    for (index, value) in [(&[0x04u8][..], path), (&[0x01][..], "worker"), (&[0x0f, 0x10][..], "application/grpc")] {
        block.extend_from_slice(index); // :path, :authority, content-type: literal, indexed name
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

#[tokio::test]
async fn max_streams_per_connection_is_advertised_and_enforced() {
    let w = start_with(|c| c.max_streams_per_connection = 1).await;
    let mut socket = tokio::net::UnixStream::connect(&w.socket).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    socket.write_all(&hello).await.unwrap();
    let max_streams = loop {
        let (kind, flags, _, payload) = read_frame(&mut socket).await;
        if kind == 0x4 && flags & 0x1 == 0 {
            let setting = payload.chunks_exact(6).find(|s| s[..2] == [0, 3]).expect("SETTINGS_MAX_CONCURRENT_STREAMS");
            break u32::from_be_bytes(setting[2..6].try_into().unwrap());
        }
    };
    assert_eq!(max_streams, 1);
    // Acknowledged, the limit applies: a second concurrent stream is refused.
    let mut requests = frame(0x4, 0x1, 0, &[]);
    let stream_path = "/tandem.v1.Accelerator/InvokeStream";
    requests.extend(frame(0x1, 0x4, 1, &request_headers(stream_path)));
    requests.extend(frame(0x1, 0x4, 3, &request_headers(stream_path)));
    socket.write_all(&requests).await.unwrap();
    let reason = loop {
        let (kind, _, stream, payload) = read_frame(&mut socket).await;
        if kind == 0x3 && stream == 3 {
            break u32::from_be_bytes(payload[..4].try_into().unwrap());
        }
    };
    assert_eq!(reason, 0x7, "RST_STREAM(REFUSED_STREAM)");
    drop(socket);
    let mut client = Client::connect(&w.socket).await;
    client.invoke(&blake3_request(b"after", 32)).await.unwrap();
}

#[tokio::test]
async fn a_token_configured_on_a_socket_is_enforced_too() {
    const TOKEN: &str = "socket-token-0123456789abcdef";
    let w = start_with(|c| c.token = Some(Token::new(TOKEN, "test").unwrap())).await;
    let mut anonymous = Client::connect(&w.socket).await;
    let err = anonymous.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap_err();
    assert_eq!(err.0, Code::Unauthenticated, "{}", err.1);
    let mut client = Client::connect(&w.socket).await.with_token(TOKEN);
    client.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap();
    client.invoke(&blake3_request(b"ok", 32)).await.unwrap();
}

#[tokio::test]
async fn a_call_over_its_kernels_work_bound_is_refused_naming_the_limit_and_counted() {
    let w = start().await;
    let app = std::sync::Arc::clone(w.worker.app());
    let mut client = Client::connect(&w.socket).await;
    // 100 options × 10^9 paths = 10^11, over montecarlo.european's 10^10.
    let err = client.invoke(&montecarlo_request(100, 1_000_000_000)).await.unwrap_err();
    assert_eq!(err.0, Code::ResourceExhausted, "{}", err.1);
    assert!(err.1.contains("(limit max_work_per_call)"), "{}", err.1);
    assert!(app.metrics.render().contains("tandem_worker_rejections_total{reason=\"work\"} 1"));
    // The worker keeps serving the same kernel within the bound.
    client.invoke(&montecarlo_request(1, 1_000)).await.unwrap();
}
