//! A raw HTTP/2 gRPC client over a Unix socket, and an in-process worker on
//! a temporary socket, shared by the integration tests.
#![allow(dead_code)]

pub mod certs;
pub mod fast;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use hyper::body::HttpBody;
use prost::Message;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_sdk::Code;
use tandem_worker::args::{Config, Endpoint};
use tandem_worker::grpc::frame::frame_bytes;
use tandem_worker::grpc::metadata::percent_decode;
use tandem_worker::grpc::FrameDecoder;
use tandem_worker::pb::accelerator::*;
use tandem_worker::pb::health::health_check_response::ServingStatus;
use tandem_worker::Worker;
use tokio::net::UnixStream;

pub const BOUND: Duration = Duration::from_secs(20);

/// A worker on a temporary socket, ready (warm-up done) when returned.
pub struct TestWorker {
    pub worker: Worker,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestWorker {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("worker.sock");
    let mut config = Config::new(Endpoint::Unix(socket.clone()));
    config.grace = Duration::from_secs(5);
    config.log_level = tandem_worker::log::Level::Error;
    configure(&mut config);
    let worker = tandem_worker::start(config).await.expect("worker starts");
    let mut readiness = worker.app().lifecycle.watch_readiness();
    let ready = async {
        while *readiness.borrow_and_update() != ServingStatus::Serving {
            readiness.changed().await.expect("readiness channel open");
        }
    };
    tokio::time::timeout(BOUND, ready).await.expect("worker becomes ready in time");
    TestWorker { worker, socket, dir }
}

pub async fn start() -> TestWorker {
    start_with(|_| {}).await
}

/// Waits (bounded) until `condition` holds, yielding between checks.
pub async fn eventually(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// [`eventually`] for a condition that must await (an RPC, a metrics scrape).
pub async fn eventually_async(mut condition: impl AsyncFnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub struct Reply {
    pub http: StatusCode,
    pub headers: HeaderMap,
    pub messages: Vec<Bytes>,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    fn status_header(&self, name: &str) -> Option<String> {
        let from = |h: &HeaderMap| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.trailers.as_ref().and_then(from).or_else(|| from(&self.headers))
    }

    pub fn code(&self) -> Code {
        let raw = self.status_header("grpc-status").expect("a grpc-status");
        Code::from_raw(raw.parse().expect("numeric grpc-status"))
    }

    pub fn message(&self) -> String {
        percent_decode(&self.status_header("grpc-message").unwrap_or_default())
    }

    /// Trailers-only: the status came in the headers with no body.
    pub fn is_trailers_only(&self) -> bool {
        self.headers.contains_key("grpc-status") && self.messages.is_empty() && self.trailers.is_none()
    }
}

pub type CallResult<T> = Result<T, (Code, String)>;

pub struct Client {
    send: hyper::client::conn::SendRequest<hyper::Body>,
    /// Sent as `authorization: Bearer <token>` on every request.
    token: Option<String>,
}

impl Client {
    pub async fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path).await.expect("connect to the worker");
        Client::over(stream).await
    }

    /// A client over TCP to `address` (`HOST:PORT`).
    pub async fn connect_tcp(address: &str) -> Client {
        let stream = tokio::net::TcpStream::connect(address).await.expect("connect to the worker");
        Client::over(stream).await
    }

    pub async fn over<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(stream: S) -> Client {
        let (send, connection) =
            hyper::client::conn::Builder::new().http2_only(true).handshake(stream).await.expect("HTTP/2 handshake");
        tokio::spawn(connection);
        Client { send, token: None }
    }

    /// Sends `token` with every request from now on.
    pub fn with_token(mut self, token: &str) -> Client {
        self.token = Some(token.to_owned());
        self
    }

    pub async fn request(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: hyper::Body,
    ) -> hyper::Response<hyper::Body> {
        let mut builder = Request::post(format!("http://worker{path}")).header("te", "trailers");
        let mut has_content_type = false;
        for (name, value) in headers {
            has_content_type |= name.eq_ignore_ascii_case("content-type");
            builder = builder.header(*name, *value);
        }
        if !has_content_type {
            builder = builder.header("content-type", "application/grpc");
        }
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        futures_util::future::poll_fn(|cx| self.send.poll_ready(cx)).await.expect("connection ready");
        self.send.send_request(builder.body(body).expect("request")).await.expect("response head")
    }

    pub async fn raw(&mut self, path: &str, headers: &[(&str, &str)], body: impl Into<hyper::Body>) -> Reply {
        let response = self.request(path, headers, body.into()).await;
        read_reply(response).await
    }

    pub async fn unary<Req: Message, Resp: Message + Default>(&mut self, method: &str, req: &Req) -> CallResult<Resp> {
        self.unary_with(method, req, &[]).await
    }

    pub async fn unary_with<Req: Message, Resp: Message + Default>(
        &mut self,
        method: &str,
        req: &Req,
        headers: &[(&str, &str)],
    ) -> CallResult<Resp> {
        let reply = self.raw(&accelerator_path(method), headers, frame_bytes(&req.encode_to_vec())).await;
        into_result(reply)
    }

    pub async fn invoke(&mut self, req: &InvokeRequest) -> CallResult<InvokeReply> {
        self.unary("Invoke", req).await
    }
}

pub fn accelerator_path(method: &str) -> String {
    if method.starts_with('/') {
        method.to_owned()
    } else {
        format!("/tandem.v1.Accelerator/{method}")
    }
}

pub fn into_result<Resp: Message + Default>(reply: Reply) -> CallResult<Resp> {
    assert_eq!(reply.http, StatusCode::OK);
    match reply.code() {
        Code::Ok => {
            assert_eq!(reply.messages.len(), 1, "one reply message");
            Ok(Resp::decode(reply.messages[0].clone()).expect("a valid reply"))
        }
        code => Err((code, reply.message())),
    }
}

pub async fn read_reply(response: hyper::Response<hyper::Body>) -> Reply {
    let (parts, mut body) = response.into_parts();
    let mut decoder = FrameDecoder::new(usize::MAX >> 1);
    let mut messages = Vec::new();
    let is_grpc = parts.headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    while let Some(chunk) = body.data().await {
        if !is_grpc {
            continue;
        }
        decoder.push(&chunk.expect("body chunk"));
        while let Some(m) = decoder.next_message().expect("valid framing") {
            messages.push(m);
        }
    }
    let trailers = body.trailers().await.expect("trailers");
    Reply { http: parts.status, headers: parts.headers, messages, trailers }
}

pub fn tensor_bytes(dtype: tandem_sdk::DType, shape: &[i64], data: Vec<u8>) -> Tensor {
    Tensor { dtype: dtype as i32, shape: shape.to_vec(), data: Some(tensor::Data::InlineData(Bytes::from(data))) }
}

pub fn f32_tensor(shape: &[i64], values: &[f32]) -> Tensor {
    tensor_bytes(tandem_sdk::DType::F32, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

pub fn f64_tensor(shape: &[i64], values: &[f64]) -> Tensor {
    tensor_bytes(tandem_sdk::DType::F64, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

pub fn i64_tensor(shape: &[i64], values: &[i64]) -> Tensor {
    tensor_bytes(tandem_sdk::DType::I64, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

pub fn u8_tensor(data: &[u8]) -> Tensor {
    tensor_bytes(tandem_sdk::DType::U8, &[data.len() as i64], data.to_vec())
}

/// `fixture.lookup` of `indices` in state `state` (the fixture library's table).
pub fn fixture_lookup(state: &str, indices: &[i64]) -> InvokeRequest {
    InvokeRequest {
        kernel: "fixture.lookup".into(),
        state_id: state.into(),
        inputs: vec![i64_tensor(&[indices.len() as i64], indices)],
        outputs: vec![output(tandem_sdk::DType::F64, &[indices.len() as i64])],
        ..Default::default()
    }
}

pub fn output(dtype: tandem_sdk::DType, shape: &[i64]) -> OutputSpec {
    OutputSpec { dtype: dtype as i32, shape: shape.to_vec(), shared: None }
}

pub fn int(v: i64) -> ParamValue {
    ParamValue { value: Some(param_value::Value::IntValue(v)) }
}

pub fn inline_bytes(t: &Tensor) -> Bytes {
    match &t.data {
        Some(tensor::Data::InlineData(b)) => b.clone(),
        other => panic!("expected inline data, got {other:?}"),
    }
}

pub fn f64s(t: &Tensor) -> Vec<f64> {
    inline_bytes(t).chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

pub fn i64s(t: &Tensor) -> Vec<i64> {
    inline_bytes(t).chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Reads the `{"event":"listening","address":...}` line a worker binary
/// prints on stdout and returns the address.
pub fn read_listening(stdout: std::process::ChildStdout) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).expect("the listening line");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(event["event"], "listening", "{line}");
    event["address"].as_str().expect("an address").to_owned()
}

/// Scrapes a worker's Prometheus metrics.
pub async fn scrape(port: u16) -> String {
    let client = hyper::Client::new();
    let uri: http::Uri = format!("http://127.0.0.1:{port}/metrics").parse().unwrap();
    let response = client.get(uri).await.expect("metrics answer");
    let body = hyper::body::to_bytes(response.into_body()).await.unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// A free TCP port on loopback (for a metrics listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends SIGTERM to a child and waits (bounded) for it to exit 0.
pub async fn terminate(mut child: std::process::Child) {
    // SAFETY: kill with a child's pid and SIGTERM has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(BOUND, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("the worker exits in time")
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

pub fn blake3_request(data: &[u8], len: i64) -> InvokeRequest {
    InvokeRequest {
        kernel: "hash.blake3".into(),
        inputs: vec![u8_tensor(data)],
        outputs: vec![output(tandem_sdk::DType::U8, &[len])],
        ..Default::default()
    }
}

/// A montecarlo call of `rows` at-the-money calls with `paths` paths each.
pub fn montecarlo_request(rows: usize, paths: i64) -> InvokeRequest {
    let mut options = Vec::new();
    for _ in 0..rows {
        options.extend_from_slice(&[100.0, 100.0, 0.01, 0.2, 1.0, 1.0]);
    }
    let keys: Vec<i64> = (0..rows as i64).collect();
    InvokeRequest {
        kernel: "montecarlo.european".into(),
        inputs: vec![f64_tensor(&[rows as i64, 6], &options), i64_tensor(&[rows as i64], &keys)],
        params: vec![int(paths), int(7), int(0)],
        outputs: vec![output(tandem_sdk::DType::F64, &[rows as i64]), output(tandem_sdk::DType::F64, &[rows as i64])],
        ..Default::default()
    }
}
