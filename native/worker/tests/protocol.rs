//! The gRPC-over-HTTP/2 rules: content type, framing, limits, compression,
//! deadlines, unknown methods, trailers-only errors, panics as INTERNAL.

mod common;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use prost::Message;
use tandem_sdk::Code;
use tandem_worker::grpc::frame::frame_bytes;
use tandem_worker::pb::accelerator::*;

#[tokio::test]
async fn replies_carry_headers_message_and_trailers() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let reply = client.raw("/tandem.v1.Accelerator/ListStates", &[], frame_bytes(&[])).await;
    assert_eq!(reply.http, StatusCode::OK);
    assert_eq!(reply.headers.get("content-type").unwrap(), "application/grpc");
    assert_eq!(reply.messages.len(), 1);
    assert_eq!(reply.trailers.as_ref().unwrap().get("grpc-status").unwrap(), "0");
}

#[tokio::test]
async fn wrong_content_type_is_http_415() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let reply =
        client.raw("/tandem.v1.Accelerator/Describe", &[("content-type", "application/json")], frame_bytes(&[])).await;
    assert_eq!(reply.http, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A content-type with a subtype is gRPC too.
    let reply = client
        .raw("/tandem.v1.Accelerator/Describe", &[("content-type", "application/grpc+proto")], frame_bytes(&[]))
        .await;
    assert_eq!(reply.code(), Code::Ok);
}

#[tokio::test]
async fn unknown_methods_are_unimplemented_trailers_only() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    for path in ["/tandem.v1.Accelerator/Nope", "/tandem.v1.Other/Describe", "/grpc.health.v1.Health/Describe"] {
        let reply = client.raw(path, &[], frame_bytes(&[])).await;
        assert_eq!(reply.code(), Code::Unimplemented, "{path}");
        assert!(reply.is_trailers_only(), "{path}");
    }
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let reply = client.raw("/tandem.v1.Accelerator/Invoke", &[], frame_bytes(&[0x0a, 0xff, 0xff])).await;
    assert_eq!(reply.code(), Code::InvalidArgument);
    assert!(reply.message().contains("malformed"), "{}", reply.message());
}

#[tokio::test]
async fn truncated_frame_is_internal() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let reply = client.raw("/tandem.v1.Accelerator/Describe", &[], Bytes::from_static(&[0, 0, 0, 0, 9, 1, 2])).await;
    assert_eq!(reply.code(), Code::Internal);
    assert!(reply.message().contains("ended inside a message"), "{}", reply.message());
    let reply = client.raw("/tandem.v1.Accelerator/Describe", &[], Bytes::new()).await;
    assert_eq!(reply.code(), Code::Internal);
}

#[tokio::test]
async fn oversize_message_is_resource_exhausted() {
    let w = start_with(|c| c.max_message_bytes = 4096).await;
    let mut client = Client::connect(&w.socket).await;
    let req = blake3_request(&[7u8; 8192], 32);
    let err = client.invoke(&req).await.unwrap_err();
    assert_eq!(err.0, Code::ResourceExhausted, "{}", err.1);
}

#[tokio::test]
async fn compressed_messages_are_unimplemented() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let mut framed = frame_bytes(&[]).to_vec();
    framed[0] = 1;
    let reply = client.raw("/tandem.v1.Accelerator/Describe", &[], framed.clone()).await;
    assert_eq!(reply.code(), Code::Unimplemented);
    let reply = client.raw("/tandem.v1.Accelerator/Describe", &[("grpc-encoding", "gzip")], framed).await;
    assert_eq!(reply.code(), Code::Unimplemented);
}

#[tokio::test]
async fn expired_timeout_is_deadline_exceeded() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    let req = montecarlo_request(1, 1000);
    let err = client.unary_with::<_, InvokeReply>("Invoke", &req, &[("grpc-timeout", "0n")]).await.unwrap_err();
    assert_eq!(err.0, Code::DeadlineExceeded);
    // A long call under a short deadline stops with DEADLINE_EXCEEDED too.
    let req = montecarlo_request(4, 1_000_000_000);
    let err = client.unary_with::<_, InvokeReply>("Invoke", &req, &[("grpc-timeout", "50m")]).await.unwrap_err();
    assert_eq!(err.0, Code::DeadlineExceeded, "{}", err.1);
    // A generous deadline and a trace context change nothing.
    let headers = [("grpc-timeout", "10S"), ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")];
    client.unary_with::<_, InvokeReply>("Invoke", &montecarlo_request(1, 100), &headers).await.unwrap();
    let err = client.unary_with::<_, InvokeReply>("Invoke", &req, &[("grpc-timeout", "soon")]).await.unwrap_err();
    assert_eq!(err.0, Code::Internal);
}

#[tokio::test]
async fn non_post_is_refused() {
    let w = start().await;
    let stream = tokio::net::UnixStream::connect(&w.socket).await.unwrap();
    let (mut send, conn) = hyper::client::conn::Builder::new().http2_only(true).handshake(stream).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("http://worker/tandem.v1.Accelerator/Describe")
        .header("content-type", "application/grpc")
        .body(hyper::Body::empty())
        .unwrap();
    let response = send.send_request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_message_decoded_field_by_field_never_panics() {
    let w = start().await;
    let mut client = Client::connect(&w.socket).await;
    // Valid framing around protobuf that decodes to odd but legal requests.
    let weird = InvokeRequest {
        kernel: "hash.blake3".into(),
        inputs: vec![Tensor { dtype: 1, shape: vec![], data: None }],
        params: vec![ParamValue { value: None }],
        outputs: vec![OutputSpec { dtype: 1, shape: vec![0], shared: None }],
        ..Default::default()
    };
    let reply = client.raw("/tandem.v1.Accelerator/Invoke", &[], frame_bytes(&weird.encode_to_vec())).await;
    assert_eq!(reply.code(), Code::InvalidArgument);
}
