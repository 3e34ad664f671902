//! Reading request messages from an HTTP/2 body, one at a time, so a
//! streaming call holds at most one message in memory.

use super::frame::FrameDecoder;
use super::{status, Code, Status};
use bytes::Bytes;
use hyper::body::HttpBody;
use prost::Message;

pub struct RequestMessages {
    body: hyper::Body,
    decoder: FrameDecoder,
    ended: bool,
}

impl RequestMessages {
    pub fn new(body: hyper::Body, max_message_bytes: usize) -> RequestMessages {
        RequestMessages { body, decoder: FrameDecoder::new(max_message_bytes), ended: false }
    }

    /// The next message, `None` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Status> {
        loop {
            if let Some(message) = self.decoder.next_message()? {
                return Ok(Some(message));
            }
            if self.ended {
                self.decoder.finish()?;
                return Ok(None);
            }
            match self.body.data().await {
                Some(Ok(chunk)) => self.decoder.push(&chunk),
                Some(Err(err)) => {
                    return Err(status(Code::Cancelled, format!("the client stopped sending the request: {err}")))
                }
                None => self.ended = true,
            }
        }
    }

    /// The single message of a unary request, decoded.
    pub async fn unary<M: Message + Default>(&mut self) -> Result<M, Status> {
        let message = self.next().await?.ok_or_else(|| status(Code::Internal, "the request carried no message"))?;
        if self.next().await?.is_some() {
            return Err(status(Code::Internal, "a unary request carried more than one message"));
        }
        decode(message)
    }
}

/// Decodes a message; malformed bytes are INVALID_ARGUMENT.
pub fn decode<M: Message + Default>(bytes: Bytes) -> Result<M, Status> {
    M::decode(bytes).map_err(|err| status(Code::InvalidArgument, format!("malformed request message: {err}")))
}
