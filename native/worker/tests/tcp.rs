//! The worker binary on TCP: it refuses to start without a token, every RPC
//! but health needs the token, the token never reaches the log, and a flood
//! of connections beyond `--max-connections` is refused without harming the
//! connections already open or leaking descriptors.

mod common;

use common::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use tandem_sdk::Code;
use tandem_worker::pb::accelerator::*;
use tandem_worker::pb::health::{health_check_response::ServingStatus, HealthCheckRequest, HealthCheckResponse};
use tokio::io::AsyncReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-worker");
const TOKEN: &str = "tcp-test-token-9f8e7d6c5b4a3210";
const WRONG: &str = "not-the-token-0000000000000000";

fn worker(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_remove(tandem_worker::auth::TOKEN_ENV).env("TANDEM_THREADS", "1");
    command
}

/// Runs a worker that must refuse to start; returns its stderr.
fn refused(command: &mut Command) -> String {
    let out = command.stdout(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn tcp_without_a_token_refuses_to_start_and_says_how_to_give_one() {
    let err = refused(&mut worker(&["--listen", "127.0.0.1:0"]));
    assert!(err.contains("--token-file") && err.contains("TANDEM_WORKER_TOKEN"), "{err}");
    assert!(err.contains("--insecure-no-auth"), "{err}");

    let err = refused(&mut worker(&["--listen", "0.0.0.0:0", "--insecure-no-auth"]));
    assert!(err.contains("loopback"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, TOKEN).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused(&mut worker(&["--listen", "127.0.0.1:0", "--token-file", file.to_str().unwrap()]));
    assert!(err.contains("chmod 600") && !err.contains(TOKEN), "{err}");

    let err = refused(worker(&["--listen", "127.0.0.1:0"]).env(tandem_worker::auth::TOKEN_ENV, "short"));
    assert!(err.contains("16 to 1024"), "{err}");
    let err = refused(&mut worker(&["--token", TOKEN]));
    assert!(err.contains("--token-file") && !err.contains(TOKEN), "{err}");
}

/// A TCP worker reading its token from a 0600 file, logging at debug into
/// `log`; returns the child, its address and its metrics port.
fn start_tcp(dir: &std::path::Path, extra: &[&str], log: Stdio) -> (Child, String, u16) {
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let metrics_port = free_port();
    let mut child = worker(&["--listen", "127.0.0.1:0", "--token-file", file.to_str().unwrap()])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}"), "--log-level", "debug"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let address = read_listening(child.stdout.take().unwrap());
    (child, address, metrics_port)
}

async fn check(client: &mut Client) -> CallResult<ServingStatus> {
    let reply: HealthCheckResponse =
        client.unary("/grpc.health.v1.Health/Check", &HealthCheckRequest { service: String::new() }).await?;
    Ok(ServingStatus::from_i32(reply.status).unwrap())
}

#[tokio::test]
async fn every_rpc_but_health_needs_the_token_and_the_token_is_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (child, address, metrics_port) = start_tcp(dir.path(), &[], Stdio::from(log));

    let mut anonymous = Client::connect_tcp(&address).await;
    let mut wrong = Client::connect_tcp(&address).await.with_token(WRONG);
    // Probes need no secret.
    eventually_serving(&mut anonymous).await;
    let err = anonymous.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap_err();
    assert_eq!(err.0, Code::Unauthenticated, "{}", err.1);
    assert!(err.1.contains("authorization: Bearer") && err.1.contains("WorkerToken"), "{}", err.1);
    let create =
        CreateStateRequest { state_id: "s".into(), kind: "vector_collection".into(), tensors: vec![], stored: None };
    let register = RegisterSharedMemoryRequest { name: "r".into(), path: "/dev/shm/none".into(), size: 64 };
    for client in [&mut anonymous, &mut wrong] {
        let codes = [
            client.unary::<_, CreateStateReply>("CreateState", &create).await.unwrap_err().0,
            client
                .unary::<_, DropStateReply>("DropState", &DropStateRequest { state_id: "s".into() })
                .await
                .unwrap_err()
                .0,
            client.unary::<_, RegisterSharedMemoryReply>("RegisterSharedMemory", &register).await.unwrap_err().0,
            client.invoke(&blake3_request(b"x", 32)).await.unwrap_err().0,
            client.unary::<_, DrainReply>("Drain", &DrainRequest {}).await.unwrap_err().0,
        ];
        assert_eq!(codes, [Code::Unauthenticated; 5]);
    }
    let err = wrong.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap_err();
    assert!(err.1.contains("not this worker's"), "{}", err.1);
    let metrics = scrape(metrics_port).await;
    assert!(metrics.contains("tandem_worker_rejections_total{reason=\"unauthenticated\"} 12"), "{metrics}");

    let mut client = Client::connect_tcp(&address).await.with_token(TOKEN);
    client.unary::<_, DescribeReply>("Describe", &DescribeRequest {}).await.unwrap();
    let reply = client.invoke(&blake3_request(b"authenticated", 32)).await.unwrap();
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), blake3::hash(b"authenticated").as_bytes());
    client.unary::<_, DrainReply>("Drain", &DrainRequest {}).await.unwrap();
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");

    let mut text = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut text).unwrap();
    assert!(text.contains("UNAUTHENTICATED") && text.contains("\"code\":\"OK\""), "both kinds of call are logged");
    assert!(!text.contains(TOKEN) && !text.contains(WRONG), "a token reached the log:\n{text}");
}

async fn eventually_serving(client: &mut Client) {
    eventually_async(async || check(client).await.unwrap() == ServingStatus::Serving, "the worker to become ready")
        .await;
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn gauge(metrics: &str, name: &str) -> Option<i64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// What one connection beyond the cap sees: the bytes the worker sent
/// before closing it (a GOAWAY naming the limit), or `None` if the
/// connection could not even be made.
async fn attempt(address: &str) -> Option<Vec<u8>> {
    let mut socket = tokio::net::TcpStream::connect(address).await.ok()?;
    let mut seen = Vec::new();
    // Until the worker closes it (end of file or a reset).
    let _ = tokio::time::timeout(BOUND, socket.read_to_end(&mut seen)).await.expect("the worker closes it");
    Some(seen)
}

#[tokio::test]
async fn five_thousand_connections_beyond_the_cap_are_refused_and_the_worker_keeps_serving() {
    const CAP: usize = 8;
    const ATTEMPTS: usize = 5_000;
    const AT_ONCE: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let (child, address, metrics_port) = start_tcp(dir.path(), &["--max-connections", "8"], Stdio::null());
    let mut client = Client::connect_tcp(&address).await.with_token(TOKEN);
    eventually_serving(&mut client).await;
    client.invoke(&blake3_request(b"before", 32)).await.unwrap();
    let baseline = open_descriptors(child.id());

    let mut held = Vec::new();
    for _ in 1..CAP {
        held.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    eventually_async(
        async || gauge(&scrape(metrics_port).await, "tandem_worker_connections") == Some(CAP as i64),
        "the held connections to be accepted",
    )
    .await;

    let mut refused = 0;
    let mut goaway = Vec::new();
    for _ in 0..ATTEMPTS / AT_ONCE {
        let batch: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                tokio::spawn({
                    let address = address.clone();
                    async move { attempt(&address).await }
                })
            })
            .collect();
        for outcome in batch {
            if let Some(seen) = outcome.await.unwrap() {
                refused += 1;
                if goaway.is_empty() && !seen.is_empty() {
                    goaway = seen;
                }
            }
        }
    }
    assert!(refused > ATTEMPTS / 2, "most attempts reach the worker: {refused}");
    let reason = String::from_utf8_lossy(&goaway);
    assert!(reason.contains("--max-connections"), "the GOAWAY names the limit: {reason:?}");
    let metrics = scrape(metrics_port).await;
    assert!(
        metrics.contains(&format!("tandem_worker_rejections_total{{reason=\"connections\"}} {refused}")),
        "{metrics}"
    );

    // The connection already open kept serving, and places come back.
    client.invoke(&blake3_request(b"during", 32)).await.unwrap();
    drop(held);
    eventually_async(
        async || gauge(&scrape(metrics_port).await, "tandem_worker_connections") == Some(1),
        "the held connections to be released",
    )
    .await;
    let mut late = Client::connect_tcp(&address).await.with_token(TOKEN);
    late.invoke(&blake3_request(b"after", 32)).await.unwrap();
    drop(late);
    let pid = child.id();
    eventually(|| open_descriptors(pid) <= baseline, &format!("open descriptors to return to {baseline} (a leak)"))
        .await;
    terminate(child).await;
}
