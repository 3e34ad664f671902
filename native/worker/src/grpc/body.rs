//! Response bodies: messages then trailers, as gRPC needs; and the
//! response heads (normal and trailers-only).

use super::metadata::percent_encode;
use super::{Code, Status};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// One piece of a streamed response.
pub enum Chunk {
    Message(Bytes),
    /// The final status; nothing follows it.
    End(Status),
}

/// A response body: queued messages, or a channel of chunks, then trailers.
pub struct GrpcBody {
    messages: VecDeque<Bytes>,
    stream: Option<mpsc::Receiver<Chunk>>,
    trailers: Option<HeaderMap>,
}

impl GrpcBody {
    pub fn empty() -> GrpcBody {
        GrpcBody { messages: VecDeque::new(), stream: None, trailers: None }
    }

    /// One message followed by an OK status.
    pub fn unary(message: Bytes) -> GrpcBody {
        GrpcBody { messages: VecDeque::from([message]), stream: None, trailers: Some(status_headers(&ok())) }
    }

    /// Messages from `stream` until it sends `Chunk::End` or closes (then the
    /// status is CANCELLED: the producer went away).
    pub fn streaming(stream: mpsc::Receiver<Chunk>) -> GrpcBody {
        GrpcBody { messages: VecDeque::new(), stream: Some(stream), trailers: None }
    }

    pub fn plain(text: &'static str) -> GrpcBody {
        GrpcBody { messages: VecDeque::from([Bytes::from_static(text.as_bytes())]), stream: None, trailers: None }
    }
}

fn ok() -> Status {
    Status::new(Code::Ok, "")
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_data(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        if let Some(message) = self.messages.pop_front() {
            return Poll::Ready(Some(Ok(message)));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match stream.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Chunk::Message(bytes))) => Poll::Ready(Some(Ok(bytes))),
            Poll::Ready(Some(Chunk::End(status))) => {
                self.stream = None;
                self.trailers = Some(status_headers(&status));
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.stream = None;
                self.trailers = Some(status_headers(&Status::new(Code::Cancelled, "the stream ended early")));
                Poll::Ready(None)
            }
        }
    }

    fn poll_trailers(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<Option<HeaderMap>, Infallible>> {
        Poll::Ready(Ok(self.trailers.take()))
    }

    fn is_end_stream(&self) -> bool {
        self.messages.is_empty() && self.stream.is_none() && self.trailers.is_none()
    }
}

/// `grpc-status` and `grpc-message` headers for `status`.
pub fn status_headers(status: &Status) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", HeaderValue::from(status.code as i32));
    if !status.message.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&percent_encode(&status.message)) {
            headers.insert("grpc-message", value);
        }
    }
    headers
}

fn grpc_head(body: GrpcBody) -> Response<GrpcBody> {
    let mut response = Response::new(body);
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

/// A successful unary response: headers, the message, trailers.
pub fn unary_response(message: Bytes) -> Response<GrpcBody> {
    grpc_head(GrpcBody::unary(message))
}

pub fn streaming_response(stream: mpsc::Receiver<Chunk>) -> Response<GrpcBody> {
    grpc_head(GrpcBody::streaming(stream))
}

/// A failure before any message: one HEADERS frame that ends the stream.
pub fn trailers_only(status: &Status) -> Response<GrpcBody> {
    let mut response = grpc_head(GrpcBody::empty());
    response.headers_mut().extend(status_headers(status));
    if status.code == Code::Unimplemented {
        response.headers_mut().insert("grpc-accept-encoding", HeaderValue::from_static("identity"));
    }
    response
}

/// A plain HTTP error (not a gRPC request at all).
pub fn http_error(code: StatusCode, text: &'static str) -> Response<GrpcBody> {
    let mut response = Response::new(GrpcBody::plain(text));
    *response.status_mut() = code;
    response
}
