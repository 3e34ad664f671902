//! TLS on TCP: the worker serves gRPC over TLS with its token, refuses
//! clients that do not trust it, plaintext clients, and (with
//! --tls-client-ca) clients without a certificate from that CA; it takes
//! rotated certificate files without a restart and keeps its current set
//! when the new files are bad; it refuses to start on a bad set; the
//! --health-listen port serves only the health service, in plaintext.

mod common;

use common::certs::{self, Ca, Leaf};
use common::*;
use std::path::Path;
use tandem_sdk::Code;
use tandem_worker::args::{Config, Endpoint};
use tandem_worker::auth::Token;
use tandem_worker::pb::accelerator::*;
use tandem_worker::pb::health::{health_check_response::ServingStatus, HealthCheckRequest, HealthCheckResponse};
use tandem_worker::tls::TlsFiles;
use tokio::net::TcpStream;

const TOKEN: &str = "tls-test-token-0123456789abcdef";

fn config(leaf: &Leaf, client_ca: Option<&Path>) -> Config {
    let mut config = Config::new(Endpoint::Tcp("127.0.0.1:0".parse().unwrap()));
    config.log_level = tandem_worker::log::Level::Error;
    config.token = Some(Token::new(TOKEN, "test").unwrap());
    config.tls =
        Some(TlsFiles { cert: leaf.cert.clone(), key: leaf.key.clone(), client_ca: client_ca.map(Path::to_path_buf) });
    config
}

async fn start_tls(config: Config) -> tandem_worker::Worker {
    let worker = tandem_worker::start(config).await.expect("worker starts");
    let mut readiness = worker.app().lifecycle.watch_readiness();
    tokio::time::timeout(BOUND, async {
        while *readiness.borrow_and_update() != ServingStatus::Serving {
            readiness.changed().await.unwrap();
        }
    })
    .await
    .expect("ready in time");
    worker
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn handshake(address: &str, connector: &tokio_rustls::TlsConnector) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(address).await?;
    connector.connect(rustls::ServerName::try_from("localhost").unwrap(), tcp).await
}

/// Whether a TLS client gets through: a handshake that completes and a
/// first call that answers (TLS 1.3 reports a refused client certificate
/// only after the client's side of the handshake is done).
async fn describe(address: &str, connector: &tokio_rustls::TlsConnector) -> Result<DescribeReply, String> {
    let stream = handshake(address, connector).await.map_err(|e| e.to_string())?;
    let (mut send, connection) = hyper::client::conn::Builder::new()
        .http2_only(true)
        .handshake::<_, hyper::Body>(stream)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://worker{}", accelerator_path("Describe")))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(hyper::Body::from(frame_bytes_of(&DescribeRequest {})))
        .unwrap();
    futures_util::future::poll_fn(|cx| send.poll_ready(cx)).await.map_err(|e| e.to_string())?;
    let response = send.send_request(request).await.map_err(|e| e.to_string())?;
    into_result(read_reply(response).await).map_err(|(code, m)| format!("{code:?}: {m}"))
}

fn leaf_of(stream: &Tls) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().expect("the worker's certificate")[0].0.clone()
}

fn rejections(worker: &tandem_worker::Worker, reason: &str) -> u64 {
    let text = worker.app().metrics.render();
    let prefix = format!("tandem_worker_rejections_total{{reason=\"{reason}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn serves_grpc_over_tls_with_h2_and_still_requires_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let leaf = ca.server(dir.path(), "worker-a");
    let worker = start_tls(config(&leaf, None)).await;
    let connector = certs::connector(&ca.cert, None);

    let stream = handshake(&worker.address, &connector).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(leaf_of(&stream), certs::der_certs(&leaf.cert)[0].0);
    let mut anonymous = Client::over(stream).await;
    let (code, message) = anonymous.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap_err();
    assert_eq!(code, Code::Unauthenticated, "{message}");

    let reply = describe(&worker.address, &connector).await.expect("Describe over TLS");
    assert!(reply.kernel_set.is_some());
    let mut client = Client::over(handshake(&worker.address, &connector).await.unwrap()).await.with_token(TOKEN);
    let hashed = client.invoke(&blake3_request(b"over tls", 32)).await.expect("a kernel call over TLS");
    assert_eq!(inline_bytes(&hashed.outputs[0]).as_ref(), blake3::hash(b"over tls").as_bytes());
    let metrics = worker.app().metrics.render();
    assert!(metrics.contains("tandem_worker_tls_certificate_not_after_seconds"), "{metrics}");
    worker.drain();
    worker.wait().await;
}

#[tokio::test]
async fn refuses_plaintext_clients_and_clients_that_do_not_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other-ca");
    let worker = start_tls(config(&ca.server(dir.path(), "worker-a"), None)).await;

    // An h2c client: closed before any HTTP/2, counted.
    let tcp = TcpStream::connect(&worker.address).await.unwrap();
    let plaintext = hyper::client::conn::Builder::new().http2_only(true).handshake::<_, hyper::Body>(tcp).await;
    if let Ok((mut send, connection)) = plaintext {
        tokio::spawn(connection);
        let request = http::Request::post(format!("http://worker{}", accelerator_path("Describe")))
            .header("content-type", "application/grpc")
            .body(hyper::Body::empty())
            .unwrap();
        let answered = futures_util::future::poll_fn(|cx| send.poll_ready(cx)).await.is_ok()
            && send.send_request(request).await.is_ok();
        assert!(!answered, "a plaintext request on the TLS port got an answer");
    }
    eventually(|| rejections(&worker, "tls_plaintext") >= 1, "the plaintext connection counted").await;

    // A client trusting another CA refuses the worker's certificate.
    let err = handshake(&worker.address, &certs::connector(&other.cert, None)).await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    eventually(|| rejections(&worker, "tls_handshake") >= 1, "the refused handshake counted").await;

    // The worker still serves.
    describe(&worker.address, &certs::connector(&ca.cert, None)).await.expect("still serving");
    worker.drain();
    worker.wait().await;
}

#[tokio::test]
async fn with_a_client_ca_requires_a_client_certificate_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other-ca");
    let worker = start_tls(config(&ca.server(dir.path(), "worker-a"), Some(&ca.cert))).await;

    let none = describe(&worker.address, &certs::connector(&ca.cert, None)).await;
    assert!(none.is_err(), "no client certificate: {none:?}");
    let foreign = other.client(dir.path(), "client-other");
    let wrong = describe(&worker.address, &certs::connector(&ca.cert, Some(&foreign))).await;
    assert!(wrong.is_err(), "a client certificate from another CA: {wrong:?}");
    assert!(rejections(&worker, "tls_handshake") >= 2);

    let good = ca.client(dir.path(), "client-good");
    describe(&worker.address, &certs::connector(&ca.cert, Some(&good)))
        .await
        .expect("a client certificate from the CA");
    worker.drain();
    worker.wait().await;
}

#[tokio::test]
async fn takes_rotated_certificates_without_a_restart_and_keeps_the_current_set_when_the_new_one_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let served = ca.server(dir.path(), "worker-a");
    let worker = start_tls(config(&served, None)).await;
    let connector = certs::connector(&ca.cert, None);
    let first = certs::der_certs(&served.cert)[0].0.clone();

    let mut open = Client::over(handshake(&worker.address, &connector).await.unwrap()).await.with_token(TOKEN);
    open.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap();

    // A rotation: the next connection gets the new certificate.
    let next = ca.server(dir.path(), "worker-b");
    let second = certs::der_certs(&next.cert)[0].0.clone();
    assert_ne!(first, second);
    certs::rotate(&next, &served);
    let stream = handshake(&worker.address, &connector).await.unwrap();
    assert_eq!(leaf_of(&stream), second, "the rotated certificate is served");
    // The connection opened before keeps working.
    open.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.expect("the old connection still serves");

    // Bad new files: not PEM, then a key of another certificate; the
    // current set stays.
    std::fs::write(&served.key, "not a key").unwrap();
    assert_eq!(leaf_of(&handshake(&worker.address, &connector).await.unwrap()), second);
    let unrelated = ca.server(dir.path(), "worker-c");
    std::fs::copy(&unrelated.key, &served.key).unwrap();
    assert_eq!(leaf_of(&handshake(&worker.address, &connector).await.unwrap()), second);
    describe(&worker.address, &connector).await.expect("still serving with the current set");

    // A later good set is taken.
    certs::rotate(&unrelated, &served);
    let third = certs::der_certs(&unrelated.cert)[0].0.clone();
    assert_eq!(leaf_of(&handshake(&worker.address, &connector).await.unwrap()), third);
    worker.drain();
    worker.wait().await;
}

#[tokio::test]
async fn refuses_to_start_on_a_bad_certificate_set() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let good = ca.server(dir.path(), "worker-a");
    let other = ca.server(dir.path(), "worker-b");
    let expired = ca.issue(dir.path(), "worker-x", "serverAuth", -1);
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let start_error = async |cert: &Path, key: &Path| -> String {
        let leaf = Leaf { cert: cert.to_path_buf(), key: key.to_path_buf() };
        match tandem_worker::start(config(&leaf, None)).await {
            Ok(_) => panic!("started with {cert:?} and {key:?}"),
            Err(e) => e.to_string(),
        }
    };
    let err = start_error(&good.cert, &other.key).await;
    assert!(err.contains("does not belong to the certificate"), "{err}");
    let err = start_error(&expired.cert, &expired.key).await;
    assert!(err.contains("expired"), "{err}");
    let err = start_error(&empty, &good.key).await;
    assert!(err.contains("no CERTIFICATE"), "{err}");
    let err = start_error(&good.cert, &empty).await;
    assert!(err.contains("no PRIVATE KEY"), "{err}");
    let err = start_error(&dir.path().join("missing.crt"), &good.key).await;
    assert!(err.contains("missing.crt") && err.contains("cannot read"), "{err}");

    let mut bad_ca = config(&good, Some(&empty));
    bad_ca.log_level = tandem_worker::log::Level::Error;
    let err = tandem_worker::start(bad_ca).await.err().expect("an empty client CA file is refused").to_string();
    assert!(err.contains("--tls-client-ca"), "{err}");
}

#[tokio::test]
async fn the_health_port_serves_only_health_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let mut config = config(&ca.server(dir.path(), "worker-a"), None);
    config.health_listen = Some("127.0.0.1:0".parse().unwrap());
    let worker = start_tls(config).await;
    let health = worker.health_address.expect("a health address").to_string();

    let mut probe = Client::connect_tcp(&health).await;
    let reply = probe.raw("/grpc.health.v1.Health/Check", &[], frame_bytes_of(&HealthCheckRequest::default())).await;
    let status: HealthCheckResponse = into_result(reply).expect("Check without TLS or token");
    assert_eq!(status.status, ServingStatus::Serving as i32);

    let mut intruder = Client::connect_tcp(&health).await.with_token(TOKEN);
    let (code, message) = intruder.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap_err();
    assert_eq!(code, Code::Unimplemented);
    assert!(message.contains("--health-listen"), "{message}");
    worker.drain();
    worker.wait().await;
}

fn frame_bytes_of(message: &impl prost::Message) -> Vec<u8> {
    tandem_worker::grpc::frame::frame_bytes(&message.encode_to_vec()).to_vec()
}
