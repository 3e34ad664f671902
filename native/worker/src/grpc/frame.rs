//! Length-prefixed messages: a 1-byte compressed flag, a 4-byte big-endian
//! length, then the message. The decoder refuses a length beyond the limit
//! before buffering it, so a peer cannot make the worker hold more than one
//! oversize frame header.

use super::{status, Code, Status};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

/// Bytes before each message.
pub const PREFIX_LEN: usize = 5;

pub struct FrameDecoder {
    buffer: BytesMut,
    max_message_bytes: usize,
}

impl FrameDecoder {
    pub fn new(max_message_bytes: usize) -> FrameDecoder {
        FrameDecoder { buffer: BytesMut::new(), max_message_bytes }
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete message, `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < PREFIX_LEN {
            return Ok(None);
        }
        let flag = self.buffer[0];
        let len = u32::from_be_bytes([self.buffer[1], self.buffer[2], self.buffer[3], self.buffer[4]]) as usize;
        match flag {
            0 => {}
            1 => {
                return Err(status(
                    Code::Unimplemented,
                    "compressed messages are not supported; send them uncompressed (grpc-encoding identity)",
                ))
            }
            other => return Err(status(Code::Internal, format!("invalid message prefix: compressed flag is {other}"))),
        }
        if len > self.max_message_bytes {
            return Err(status(
                Code::ResourceExhausted,
                format!("received message of {len} bytes exceeds the limit of {} bytes", self.max_message_bytes),
            ));
        }
        if self.buffer.len() < PREFIX_LEN + len {
            self.buffer.reserve(PREFIX_LEN + len - self.buffer.len());
            return Ok(None);
        }
        self.buffer.advance(PREFIX_LEN);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// The length the next, still incomplete, message announced.
    pub fn announced_len(&self) -> Option<usize> {
        if self.buffer.len() < PREFIX_LEN || self.buffer[0] != 0 {
            return None;
        }
        Some(u32::from_be_bytes([self.buffer[1], self.buffer[2], self.buffer[3], self.buffer[4]]) as usize)
    }

    /// Checks that the stream ended on a message boundary.
    pub fn finish(&self) -> Result<(), Status> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        Err(status(
            Code::Internal,
            format!("the request stream ended inside a message ({} byte(s) of an incomplete frame)", self.buffer.len()),
        ))
    }
}

/// Frames one message.
pub fn encode_message(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(PREFIX_LEN + len);
    out.put_u8(0);
    out.put_u32(len as u32);
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = message.encode(&mut out);
    out.freeze()
}

/// Frames raw bytes as one uncompressed message (clients and tests).
pub fn frame_bytes(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(PREFIX_LEN + payload.len());
    out.put_u8(0);
    out.put_u32(payload.len() as u32);
    out.extend_from_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_messages_split_across_chunks() {
        let mut wire = frame_bytes(b"hello").to_vec();
        wire.extend_from_slice(&frame_bytes(b""));
        let mut decoder = FrameDecoder::new(16);
        let mut got = Vec::new();
        for byte in wire {
            decoder.push(&[byte]);
            while let Some(m) = decoder.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![Bytes::from_static(b"hello"), Bytes::new()]);
        decoder.finish().unwrap();
    }

    #[test]
    fn refuses_oversize_compressed_and_truncated_frames() {
        let mut decoder = FrameDecoder::new(4);
        decoder.push(&frame_bytes(b"hello"));
        assert_eq!(decoder.next_message().unwrap_err().code, Code::ResourceExhausted);
        let mut decoder = FrameDecoder::new(4);
        decoder.push(&[1, 0, 0, 0, 0]);
        assert_eq!(decoder.next_message().unwrap_err().code, Code::Unimplemented);
        let mut decoder = FrameDecoder::new(4);
        decoder.push(&[0, 0, 0, 0, 3, 1]);
        assert!(decoder.next_message().unwrap().is_none());
        assert_eq!(decoder.finish().unwrap_err().code, Code::Internal);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..64), 0..8)) {
            let mut decoder = FrameDecoder::new(32);
            for chunk in &chunks {
                decoder.push(chunk);
                while let Ok(Some(m)) = decoder.next_message() {
                    proptest::prop_assert!(m.len() <= 32);
                }
            }
            let _ = decoder.finish();
        }
    }
}
