//! A panic inside a kernel becomes INTERNAL with a correlation id, and the
//! worker keeps serving. Its own binary: the fault kernel is registered only
//! with TANDEM_TEST_KERNELS=1, read once per process.

mod common;

use common::*;
use tandem_sdk::Code;
use tandem_worker::pb::accelerator::InvokeRequest;

#[tokio::test]
async fn kernel_panic_is_internal_with_a_correlation_id() {
    std::env::set_var(tandem_kernels::TEST_KERNELS_ENV, "1");
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let req = InvokeRequest { kernel: "diagnostics.panic".into(), inputs: vec![u8_tensor(b"x")], ..Default::default() };
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::Internal);
    assert!(err.1.contains("correlation id"), "{}", err.1);
    assert!(!err.1.contains("panicked"), "details stay in the log: {}", err.1);
    client.invoke(&blake3_request(b"still alive", 32)).await.unwrap();
}
