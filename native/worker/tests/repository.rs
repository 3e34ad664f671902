//! CreateState naming a stored state (`--repository`): the worker loads it
//! from the state repository — memory-mapped, checksum verified — with the
//! library that declares its kind (built in, or a `--kernels` library
//! through its C ABI), and it answers as the same state sent as tensors.
//! Every way the reference can be wrong is refused with its own code.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use tandem_sdk::repository::{Repository, StateId};
use tandem_sdk::{Code, DType, TensorRef};
use tandem_worker::pb::accelerator::*;

const DIM: usize = 16;

fn vectors() -> Vec<f32> {
    (0..4 * DIM).map(|i| ((i * 31) % 17) as f32 - 8.0).collect()
}

/// Stores a 4-row collection as (`name`, `version`) in `root`.
fn store(root: &Path, name: &str, version: u64) {
    let data = vectors();
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let shape = [4, DIM];
    let tensors = [Some(TensorRef { dtype: DType::F32, shape: &shape, bytes: &bytes }), None];
    let id = StateId { name: name.into(), version };
    tandem_kernels::shared().store_state(&Repository::open(root).unwrap(), "vector_collection", &id, &tensors).unwrap();
}

fn stored(id: &str, name: &str, version: u64) -> CreateStateRequest {
    CreateStateRequest {
        state_id: id.into(),
        kind: String::new(),
        tensors: vec![],
        stored: Some(StoredStateRef { name: name.into(), version }),
    }
}

fn topk(state: &str) -> InvokeRequest {
    InvokeRequest {
        kernel: "similarity.topk".into(),
        kernel_version: 1,
        state_id: state.into(),
        inputs: vec![f32_tensor(&[1, DIM as i64], &vectors()[DIM..2 * DIM])],
        params: vec![int(3), int(0)],
        outputs: vec![output(DType::I64, &[1, 3]), output(DType::F32, &[1, 3])],
        work: 0,
    }
}

#[tokio::test]
async fn a_stored_state_loads_by_name_and_answers_as_the_same_tensors_sent_inline() {
    let root = tempfile::tempdir().unwrap();
    store(root.path(), "docs", 1);
    store(root.path(), "docs", 2);
    let w = start_with(|c| c.repository = Some(root.path().to_owned())).await;
    let mut client = Client::connect(&w.socket).await;
    let described: DescribeReply = client.unary("Describe", &DescribeRequest {}).await.unwrap();
    assert!(described.state_repository);

    let created: CreateStateReply = client.unary("CreateState", &stored("from-file", "docs", 0)).await.unwrap();
    assert!(created.size_bytes >= (4 * DIM * 4) as u64);
    let inline = CreateStateRequest {
        state_id: "inline".into(),
        kind: "vector_collection".into(),
        tensors: vec![f32_tensor(&[4, DIM as i64], &vectors())],
        stored: None,
    };
    let _: CreateStateReply = client.unary("CreateState", &inline).await.unwrap();
    let from_file = client.invoke(&topk("from-file")).await.unwrap();
    let sent = client.invoke(&topk("inline")).await.unwrap();
    assert_eq!(from_file.outputs, sent.outputs);
    assert_eq!(i64s(&from_file.outputs[0])[0], 1, "a row is its own best match");

    // An exact version, and the kind given matching the file's.
    let mut exact = stored("v1", "docs", 1);
    exact.kind = "vector_collection".into();
    let _: CreateStateReply = client.unary("CreateState", &exact).await.unwrap();
    let listed: ListStatesReply = client.unary("ListStates", &ListStatesRequest {}).await.unwrap();
    assert_eq!(listed.states.len(), 3);
}

#[tokio::test]
async fn every_wrong_reference_is_refused_with_its_own_code() {
    let root = tempfile::tempdir().unwrap();
    store(root.path(), "docs", 1);
    let w = start_with(|c| {
        c.repository = Some(root.path().to_owned());
        c.max_state_bytes = 1 << 20;
    })
    .await;
    let mut client = Client::connect(&w.socket).await;
    let refused = async |client: &mut Client, req: &CreateStateRequest, code: Code, needle: &str| {
        let (got, message) = client.unary::<_, CreateStateReply>("CreateState", req).await.unwrap_err();
        assert_eq!(got, code, "{message}");
        assert!(message.contains(needle), "'{message}' does not mention '{needle}'");
    };
    refused(&mut client, &stored("a", "missing", 0), Code::NotFound, "no version").await;
    refused(&mut client, &stored("a", "docs", 9), Code::NotFound, "version(s) 1").await;
    refused(&mut client, &stored("a", "../etc", 1), Code::InvalidArgument, "not allowed").await;
    let mut wrong_kind = stored("a", "docs", 1);
    wrong_kind.kind = "fixture.table".into();
    refused(&mut client, &wrong_kind, Code::FailedPrecondition, "is of kind 'vector_collection'").await;
    let mut both = stored("a", "docs", 1);
    both.tensors = vec![f32_tensor(&[1, 1], &[1.0])];
    refused(&mut client, &both, Code::InvalidArgument, "one or the other").await;

    // A file bigger than the worker's state budget: refused before it is mapped.
    let big = vec![0.5f32; 64 * 1024 * 5];
    let bytes: Vec<u8> = big.iter().flat_map(|v| v.to_le_bytes()).collect();
    let shape = [5 * 1024, 64];
    let tensors = [Some(TensorRef { dtype: DType::F32, shape: &shape, bytes: &bytes }), None];
    let id = StateId { name: "big".into(), version: 1 };
    tandem_kernels::shared()
        .store_state(&Repository::open(root.path()).unwrap(), "vector_collection", &id, &tensors)
        .unwrap();
    refused(&mut client, &stored("a", "big", 1), Code::ResourceExhausted, "").await;

    // A damaged file is DATA_LOSS, and nothing is held afterwards.
    let file = root.path().join("docs").join("1.tstate");
    let mut data = std::fs::read(&file).unwrap();
    let middle = data.len() - 100;
    data[middle] ^= 1;
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, data).unwrap();
    refused(&mut client, &stored("a", "docs", 1), Code::DataLoss, "checksum").await;
    let listed: ListStatesReply = client.unary("ListStates", &ListStatesRequest {}).await.unwrap();
    assert!(listed.states.is_empty());
}

#[tokio::test]
async fn a_worker_without_a_repository_says_how_to_give_it_one() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let described: DescribeReply = client.unary("Describe", &DescribeRequest {}).await.unwrap();
    assert!(!described.state_repository);
    let (code, message) =
        client.unary::<_, CreateStateReply>("CreateState", &stored("a", "docs", 1)).await.unwrap_err();
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(message.contains("--repository"), "{message}");
}

#[tokio::test]
async fn a_user_library_loads_its_own_stored_state_through_its_c_abi() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libtandem_fixture_kernels.so");
    assert!(fixture.exists(), "{} is missing: run make build first", fixture.display());
    let catalog = tandem_worker::catalog::Catalog::load(std::slice::from_ref(&fixture)).unwrap();
    let kind = catalog.state_kind("fixture.table").unwrap().clone();
    let root = tempfile::tempdir().unwrap();
    let values: Vec<u8> = [10.0f64, 20.0, 30.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = [Some(TensorRef { dtype: DType::F64, shape: &[3], bytes: &values })];
    Repository::open(root.path()).unwrap().put(&kind, &StateId { name: "table".into(), version: 1 }, &tensors).unwrap();

    let w = start_with(|c| {
        c.repository = Some(root.path().to_owned());
        c.kernel_libraries = vec![fixture.clone()];
    })
    .await;
    let mut client = Client::connect(&w.socket).await;
    let _: CreateStateReply = client.unary("CreateState", &stored("table", "table", 0)).await.unwrap();
    let lookup = fixture_lookup("table", &[2, 0]);
    assert_eq!(f64s(&client.invoke(&lookup).await.unwrap().outputs[0]), vec![30.0, 10.0]);
}
