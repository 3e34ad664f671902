//! The built binary: flags, the listening line, metrics, and SIGTERM with a
//! call in flight (the call completes, the process exits 0, the socket goes).

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tandem_worker::pb::accelerator::InvokeRequest;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-worker");

#[test]
fn version_and_bad_flags() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let abi = tandem_sdk::ABI_VERSION;
    assert_eq!(
        text.trim(),
        format!("tandem-worker {} (abi {}.{})", env!("CARGO_PKG_VERSION"), abi >> 16, abi & 0xFFFF)
    );
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("--max-concurrency"));
    let out = Command::new(BIN).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("usage:"));
}

#[tokio::test]
async fn sigterm_drains_a_call_in_flight_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("w.sock");
    let metrics_port = free_port();
    let mut child = Command::new(BIN)
        .args(["--socket", socket.to_str().unwrap(), "--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .args(["--grace", "30", "--log-level", "warn"])
        .env("TANDEM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["event"], "listening");
    assert_eq!(event["address"], format!("unix:{}", socket.display()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    let mut client = Client::connect(&socket).await;
    let slow: InvokeRequest = montecarlo_request(1, 100_000_000);
    let call = tokio::spawn(async move { client.invoke(&slow).await });
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let text = scrape(metrics_port).await;
        if text.contains("tandem_worker_in_flight 1") {
            assert!(text.contains("tandem_worker_ready 1"), "{text}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the call never started: {text}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // SAFETY: kill with a child's pid and SIGTERM has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let reply = call.await.unwrap().expect("the call in flight completes OK");
    assert_eq!(reply.outputs.len(), 2);

    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed at exit");
}
