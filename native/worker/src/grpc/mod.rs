//! gRPC over HTTP/2 without tonic: message framing, request metadata and
//! response bodies, following the gRPC-over-HTTP/2 protocol.

pub mod body;
pub mod frame;
pub mod metadata;
pub mod request;

pub use body::GrpcBody;
pub use frame::{encode_message, FrameDecoder};

/// A call's outcome on the wire: a code and a caller-facing message.
pub type Status = tandem_sdk::KernelError;

pub use tandem_sdk::Code;

/// Shorthand for a status with `code` and `message`.
pub fn status(code: Code, message: impl Into<String>) -> Status {
    Status::new(code, message)
}
