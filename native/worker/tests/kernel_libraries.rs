//! `--kernels PATH`: a kernel library that is not Tandem's (native/fixtures)
//! served next to the built-in kernels — Describe, Invoke, states, streams —
//! and every library the worker must refuse at start, each with a message
//! naming the library. `make build` builds the fixture before the tests.

mod common;

use bytes::Bytes;
use common::*;
use prost::Message;
use std::path::PathBuf;
use std::process::Command;
use tandem_sdk::{Code, DType};
use tandem_worker::args::{Config, Endpoint};
use tandem_worker::catalog::Catalog;
use tandem_worker::grpc::frame::frame_bytes;
use tandem_worker::pb::accelerator::*;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-worker");

fn target_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --release --workspace` (make build) first", path.display());
    path
}

fn fixture() -> PathBuf {
    target_file("libtandem_fixture_kernels.so")
}

fn float(v: f64) -> ParamValue {
    ParamValue { value: Some(param_value::Value::FloatValue(v)) }
}

#[tokio::test]
async fn describe_lists_the_librarys_kernels_with_their_library() {
    let w = start_with(|c| c.kernel_libraries = vec![fixture()]).await;
    let mut client = Client::connect(&w.socket).await;
    let reply: DescribeReply = client.unary("Describe", &DescribeRequest {}).await.unwrap();
    let set = reply.kernel_set.unwrap();
    let library_of = |name: &str| set.kernels.iter().find(|k| k.name == name).map(|k| k.library.clone());
    assert_eq!(library_of("fixture.scale").as_deref(), Some("tandem-fixture-kernels"));
    assert_eq!(library_of("fixture.bytesum").as_deref(), Some("tandem-fixture-kernels"));
    assert_eq!(library_of("similarity.topk").as_deref(), Some("tandem"));
    assert!(set.state_kinds.iter().any(|k| k.name == "fixture.table"));
    assert!(set.kernels.iter().all(|k| k.hash.len() == 32));
}

#[tokio::test]
async fn invoke_runs_a_library_kernel_and_validates_its_inputs() {
    let w = start_with(|c| c.kernel_libraries = vec![fixture()]).await;
    let mut client = Client::connect(&w.socket).await;
    let mut req = InvokeRequest {
        kernel: "fixture.scale".into(),
        kernel_version: 1,
        inputs: vec![f64_tensor(&[3], &[1.0, -2.0, 0.5])],
        params: vec![float(3.0)],
        outputs: vec![output(DType::F64, &[3])],
        ..Default::default()
    };
    let reply = client.invoke(&req).await.unwrap();
    assert_eq!(f64s(&reply.outputs[0]), vec![3.0, -6.0, 1.5]);

    req.params = vec![float(2e6)];
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument);
    assert!(err.1.contains("parameter 'factor' must be in"), "{}", err.1);

    req.params = vec![float(1.0)];
    req.inputs = vec![f64_tensor(&[1], &[f64::NAN])];
    req.outputs = vec![output(DType::F64, &[1])];
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument);
    assert!(err.1.contains("NaN"), "{}", err.1);
}

#[tokio::test]
async fn a_library_state_kind_is_created_and_read_by_its_kernel_only() {
    let w = start_with(|c| c.kernel_libraries = vec![fixture()]).await;
    let mut client = Client::connect(&w.socket).await;
    let create = CreateStateRequest {
        state_id: "table".into(),
        kind: "fixture.table".into(),
        tensors: vec![f64_tensor(&[3], &[10.0, 20.0, 30.0])],
        stored: None,
    };
    let created: CreateStateReply = client.unary("CreateState", &create).await.unwrap();
    assert_eq!(created.size_bytes, 24);
    let lookup = fixture_lookup("table", &[2, 0]);
    assert_eq!(f64s(&client.invoke(&lookup).await.unwrap().outputs[0]), vec![30.0, 10.0]);

    // A built-in kernel refuses another library's state by kind.
    let topk = InvokeRequest {
        kernel: "similarity.topk".into(),
        state_id: "table".into(),
        inputs: vec![f32_tensor(&[1, 1], &[1.0])],
        params: vec![int(1), int(0)],
        outputs: vec![output(DType::I64, &[1, 1]), output(DType::F32, &[1, 1])],
        ..Default::default()
    };
    let err = client.invoke(&topk).await.unwrap_err();
    assert_eq!(err.0, Code::InvalidArgument);
    assert!(err.1.contains("needs a 'vector_collection' state"), "{}", err.1);

    let dropped: DropStateReply =
        client.unary("DropState", &DropStateRequest { state_id: "table".into() }).await.unwrap();
    assert!(dropped.dropped);
}

#[tokio::test]
async fn invoke_stream_feeds_a_library_stream() {
    let w = start_with(|c| c.kernel_libraries = vec![fixture()]).await;
    let mut client = Client::connect(&w.socket).await;
    let header =
        StreamHeader { kernel: "fixture.bytesum".into(), outputs: vec![output(DType::U8, &[8])], ..Default::default() };
    let mut frames =
        vec![frame_bytes(&StreamRequest { part: Some(stream_request::Part::Header(header)) }.encode_to_vec())];
    for chunk in [&[1u8, 2, 3][..], &[], &[250]] {
        let part = stream_request::Part::Data(Bytes::copy_from_slice(chunk));
        frames.push(frame_bytes(&StreamRequest { part: Some(part) }.encode_to_vec()));
    }
    let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
    let reply = client.raw("/tandem.v1.Accelerator/InvokeStream", &[], hyper::Body::wrap_stream(stream)).await;
    let reply = into_result::<InvokeReply>(reply).unwrap();
    assert_eq!(inline_bytes(&reply.outputs[0]).as_ref(), 256u64.to_le_bytes());
}

#[test]
fn load_refuses_a_library_that_exports_a_built_in_kernel_naming_both() {
    let error = Catalog::load(&[target_file("libtandem.so")]).err().unwrap();
    assert!(error.contains("kernel 'similarity.topk' is exported by both 'tandem' (built in) and 'tandem'"), "{error}");
    assert!(error.contains("libtandem.so"), "{error}");
}

#[test]
fn load_refuses_missing_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.so");
    assert!(Catalog::load(&[missing]).err().unwrap().contains("cannot be read"));
    let text = dir.path().join("text.so");
    std::fs::write(&text, "not a library").unwrap();
    assert!(Catalog::load(std::slice::from_ref(&text)).err().unwrap().contains("cannot be loaded"));
    let libc = PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6");
    if libc.exists() {
        let error = Catalog::load(&[libc]).err().unwrap();
        assert!(error.contains("is not a Tandem kernel library: it exports no 'tandem_abi_version'"), "{error}");
    }
}

/// Starts the worker binary with a broken fixture and returns (exit code, stderr).
fn start_broken(mode: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    // A copy per mode, so no earlier load of the fixture is reused.
    let library = dir.path().join(format!("libfixture-{mode}.so"));
    std::fs::copy(fixture(), &library).unwrap();
    let out = Command::new(BIN)
        .arg("--socket")
        .arg(dir.path().join("w.sock"))
        .arg("--kernels")
        .arg(&library)
        .env("TANDEM_FIXTURE_MODE", mode)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn worker_refuses_to_start_with_a_library_the_sdk_refuses() {
    for (mode, text) in [
        ("panic", "panicked while registering its kernels"),
        ("duplicate-tensor", "declares tensor 'x' twice"),
        ("unknown-symbol", "output symbol 'm' is bound by no input"),
        ("min-above-max", "min 10 > max 1"),
        ("streaming-without-stream", "marked streaming but has no stream implementation"),
        ("clash", "kernel 'similarity.topk' is exported by both 'tandem' (built in) and 'tandem-fixture-kernels'"),
    ] {
        let (code, stderr) = start_broken(mode);
        assert_eq!(code, Some(2), "{mode}: {stderr}");
        assert!(stderr.contains(text), "{mode}: {stderr}");
        assert!(stderr.contains("tandem-fixture-kernels") || stderr.contains("libfixture"), "{mode}: {stderr}");
    }
}

#[tokio::test]
async fn start_fails_without_binding_when_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("w.sock");
    let mut config = Config::new(Endpoint::Unix(socket.clone()));
    config.kernel_libraries = vec![dir.path().join("missing.so")];
    let error = tandem_worker::start(config).await.err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!socket.exists());
}
