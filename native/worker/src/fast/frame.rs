//! The fast path's frames (protocol version 1). Every integer is
//! little-endian; a frame is
//!
//! ```text
//! len: u32 | kind: u8 | method: u8 | flags: u16 | id: u32 | body: [len - 8 bytes]
//! ```
//!
//! `len` counts the bytes after itself. Client to worker:
//!
//! - `HELLO` (id 0): `version: u16 | token_len: u16 | token` — first, once.
//! - `CALL`: `timeout_us: u64 | trace_id: [u8; 16] | request message`;
//!   `method` is one of [`METHODS`], flag [`FLAG_DEADLINE`] says whether
//!   `timeout_us` is a deadline (the semantics of `grpc-timeout`: relative,
//!   0 is already expired), a zero `trace_id` means none.
//! - `CANCEL`: no body; cancels call `id` (no reply follows).
//!
//! Worker to client:
//!
//! - `WELCOME` (id 0): `version: u16 | reserved: u16 | max_in_flight: u32 |
//!   max_message_bytes: u32`.
//! - `REPLY`: the reply message of call `id`.
//! - `STATUS`: `code: u32 | message (UTF-8)` — call `id` failed; id 0 is
//!   about the connection, which the worker then closes.
//!
//! The [`Decoder`] never buffers more than one frame, refuses a frame
//! beyond the limit from its header (its bytes are skipped, not held), and
//! reports anything that cannot be a frame as [`Malformed`].

use super::super::grpc::{status, Code, Status};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use std::time::Duration;

/// The protocol version this worker speaks.
pub const VERSION: u16 = 1;

/// Bytes of a frame before its body (the length field included).
pub const HEADER_LEN: usize = 12;
/// Bytes of a `CALL` body before the request message.
pub const CALL_PREFIX_LEN: usize = 24;

pub const HELLO: u8 = 1;
pub const CALL: u8 = 2;
pub const CANCEL: u8 = 3;
pub const WELCOME: u8 = 0x81;
pub const REPLY: u8 = 0x82;
pub const STATUS: u8 = 0x83;

/// `CALL` flag: `timeout_us` is the call's deadline.
pub const FLAG_DEADLINE: u16 = 1;

/// Method numbers on the wire. `InvokeStream` and `Watch` are streams,
/// which stay on gRPC: a `CALL` naming them is UNIMPLEMENTED.
pub const METHODS: [(u8, &str); 11] = [
    (1, "Describe"),
    (2, "Invoke"),
    (3, "InvokeStream"),
    (4, "CreateState"),
    (5, "DropState"),
    (6, "ListStates"),
    (7, "RegisterSharedMemory"),
    (8, "UnregisterSharedMemory"),
    (9, "ListSharedMemory"),
    (10, "Drain"),
    (11, "Check"),
];

/// The method a number names.
pub fn method_name(number: u8) -> Option<&'static str> {
    METHODS.iter().find(|(n, _)| *n == number).map(|(_, name)| *name)
}

/// The number of a method.
pub fn method_number(name: &str) -> Option<u8> {
    METHODS.iter().find(|(_, n)| *n == name).map(|(number, _)| *number)
}

/// Bytes that cannot be a frame: the connection closes with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Bytes of the body.
    pub body_len: usize,
    pub kind: u8,
    pub method: u8,
    pub flags: u16,
    pub id: u32,
}

/// A frame's header, once its 12 bytes are there.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, Malformed> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len < HEADER_LEN - 4 {
        return Err(Malformed(format!("a frame's length must count its 8 header bytes, got {len}")));
    }
    Ok(Some(Header {
        body_len: len - (HEADER_LEN - 4),
        kind: buf[4],
        method: buf[5],
        flags: u16::from_le_bytes([buf[6], buf[7]]),
        id: u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]),
    }))
}

/// What the decoder found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole frame.
    Frame(Header, Bytes),
    /// A frame refused from its header (too large, or `admit` said no): its
    /// body is skipped as it arrives; the caller answers `header.id`.
    Refused(Header, Status),
}

/// Splits a byte stream into frames of at most `max_body` body bytes.
pub struct Decoder {
    max_body: usize,
    /// Body bytes of a refused frame still to be skipped.
    skipping: usize,
    /// Whether the frame at the front was admitted already.
    admitted: bool,
}

impl Decoder {
    pub fn new(max_body: usize) -> Decoder {
        Decoder { max_body, skipping: 0, admitted: false }
    }

    /// The next event from the front of `buf` (consumed), `None` when more
    /// bytes are needed. `admit` is asked once per frame, from its header,
    /// before its body is buffered (the caller reserves memory for it there).
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        mut admit: impl FnMut(&Header) -> Result<(), Status>,
    ) -> Result<Option<Event>, Malformed> {
        if self.skipping > 0 {
            let n = self.skipping.min(buf.len());
            buf.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        let Some(header) = parse_header(buf)? else { return Ok(None) };
        if !self.admitted {
            let verdict = if header.body_len > self.max_body {
                Err(status(
                    Code::ResourceExhausted,
                    format!(
                        "received message of {} bytes exceeds the limit of {} bytes (--max-message-bytes)",
                        header.body_len.saturating_sub(CALL_PREFIX_LEN),
                        self.max_body.saturating_sub(CALL_PREFIX_LEN)
                    ),
                ))
            } else {
                admit(&header)
            };
            if let Err(refusal) = verdict {
                buf.advance(HEADER_LEN);
                self.skipping = header.body_len;
                // Whatever of the body is here already goes at once.
                let n = self.skipping.min(buf.len());
                buf.advance(n);
                self.skipping -= n;
                return Ok(Some(Event::Refused(header, refusal)));
            }
            self.admitted = true;
        }
        let total = HEADER_LEN + header.body_len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        self.admitted = false;
        buf.advance(HEADER_LEN);
        Ok(Some(Event::Frame(header, buf.split_to(header.body_len).freeze())))
    }
}

/// A `HELLO` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    pub token: Bytes,
}

pub fn parse_hello(mut body: Bytes) -> Result<Hello, Malformed> {
    if body.len() < 4 {
        return Err(Malformed(format!("a HELLO body has at least 4 bytes, got {}", body.len())));
    }
    let version = body.get_u16_le();
    let token_len = body.get_u16_le() as usize;
    if body.len() != token_len {
        return Err(Malformed(format!("a HELLO announced a {token_len}-byte token and carried {}", body.len())));
    }
    Ok(Hello { version, token: body })
}

/// A `CALL` frame, parsed.
#[derive(Debug)]
pub struct CallFrame {
    pub id: u32,
    pub method: u8,
    pub timeout: Option<Duration>,
    pub trace_id: [u8; 16],
    pub message: Bytes,
}

pub fn parse_call(header: &Header, mut body: Bytes) -> Result<CallFrame, Malformed> {
    if body.len() < CALL_PREFIX_LEN {
        return Err(Malformed(format!("a CALL body has at least {CALL_PREFIX_LEN} bytes, got {}", body.len())));
    }
    let timeout_us = body.get_u64_le();
    let mut trace_id = [0u8; 16];
    body.copy_to_slice(&mut trace_id);
    let timeout = (header.flags & FLAG_DEADLINE != 0).then(|| Duration::from_micros(timeout_us));
    Ok(CallFrame { id: header.id, method: header.method, timeout, trace_id, message: body })
}

fn put_header(out: &mut BytesMut, body_len: usize, kind: u8, method: u8, flags: u16, id: u32) {
    out.put_u32_le((HEADER_LEN - 4 + body_len) as u32);
    out.put_u8(kind);
    out.put_u8(method);
    out.put_u16_le(flags);
    out.put_u32_le(id);
}

/// Most body bytes a frame can announce.
pub const MAX_BODY: usize = u32::MAX as usize - (HEADER_LEN - 4);

/// A `REPLY` carrying `message`, or, when it cannot be framed, a `STATUS`.
pub fn reply(id: u32, method: u8, message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    if len > MAX_BODY {
        return status_frame(
            id,
            method,
            &status(Code::ResourceExhausted, format!("the reply of {len} bytes is too large for one frame")),
        );
    }
    let mut out = BytesMut::with_capacity(HEADER_LEN + len);
    put_header(&mut out, len, REPLY, method, 0, id);
    // Encoding into a buffer with enough capacity cannot fail.
    let _ = message.encode(&mut out);
    out.freeze()
}

/// Longest status message sent; a longer one is cut at a character boundary.
const MAX_STATUS_MESSAGE: usize = 16 * 1024;

/// A `STATUS` frame for call `id` (0: the connection).
pub fn status_frame(id: u32, method: u8, status: &Status) -> Bytes {
    let mut text = status.message.as_str();
    if text.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text = &text[..end];
    }
    let mut out = BytesMut::with_capacity(HEADER_LEN + 4 + text.len());
    put_header(&mut out, 4 + text.len(), STATUS, method, 0, id);
    out.put_u32_le(status.code as u32);
    out.extend_from_slice(text.as_bytes());
    out.freeze()
}

pub fn welcome(max_in_flight: u32, max_message_bytes: u32) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + 12);
    put_header(&mut out, 12, WELCOME, 0, 0, 0);
    out.put_u16_le(VERSION);
    out.put_u16_le(0);
    out.put_u32_le(max_in_flight);
    out.put_u32_le(max_message_bytes);
    out.freeze()
}

/// A `HELLO` (clients and tests).
pub fn hello(version: u16, token: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + 4 + token.len());
    put_header(&mut out, 4 + token.len(), HELLO, 0, 0, 0);
    out.put_u16_le(version);
    out.put_u16_le(token.len() as u16);
    out.extend_from_slice(token);
    out.freeze()
}

/// A `CALL` (clients and tests).
pub fn call(id: u32, method: u8, timeout: Option<Duration>, trace_id: [u8; 16], message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + CALL_PREFIX_LEN + message.len());
    let flags = if timeout.is_some() { FLAG_DEADLINE } else { 0 };
    put_header(&mut out, CALL_PREFIX_LEN + message.len(), CALL, method, flags, id);
    out.put_u64_le(timeout.map_or(0, |t| t.as_micros().min(u64::MAX as u128) as u64));
    out.extend_from_slice(&trace_id);
    out.extend_from_slice(message);
    out.freeze()
}

/// A `CANCEL` (clients and tests).
pub fn cancel(id: u32) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN);
    put_header(&mut out, 0, CANCEL, 0, 0, id);
    out.freeze()
}

/// A `STATUS` body: the code and message.
pub fn parse_status(mut body: Bytes) -> Result<Status, Malformed> {
    if body.len() < 4 {
        return Err(Malformed(format!("a STATUS body has at least 4 bytes, got {}", body.len())));
    }
    let code = Code::from_raw(body.get_u32_le() as i32);
    Ok(status(code, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit_all(_: &Header) -> Result<(), Status> {
        Ok(())
    }

    fn decode_all(decoder: &mut Decoder, buf: &mut BytesMut) -> Result<Vec<Event>, Malformed> {
        let mut events = Vec::new();
        while let Some(event) = decoder.next(buf, admit_all)? {
            events.push(event);
        }
        Ok(events)
    }

    #[test]
    fn frames_split_byte_by_byte_decode_as_whole() {
        let mut wire = call(7, 2, Some(Duration::from_millis(5)), [1; 16], b"request").to_vec();
        wire.extend_from_slice(&cancel(7));
        wire.extend_from_slice(&hello(VERSION, b"token-0123456789abcdef"));
        let mut decoder = Decoder::new(1024);
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        for byte in wire {
            buf.put_u8(byte);
            events.extend(decode_all(&mut decoder, &mut buf).unwrap());
        }
        assert_eq!(events.len(), 3);
        let Event::Frame(header, body) = &events[0] else { panic!("{:?}", events[0]) };
        assert_eq!((header.kind, header.method, header.id), (CALL, 2, 7));
        let call = parse_call(header, body.clone()).unwrap();
        assert_eq!(call.timeout, Some(Duration::from_millis(5)));
        assert_eq!(call.trace_id, [1; 16]);
        assert_eq!(&call.message[..], b"request");
        let Event::Frame(header, body) = &events[1] else { panic!() };
        assert_eq!((header.kind, header.id, body.len()), (CANCEL, 7, 0));
        let Event::Frame(header, body) = &events[2] else { panic!() };
        assert_eq!(header.kind, HELLO);
        assert_eq!(
            parse_hello(body.clone()).unwrap(),
            Hello { version: 1, token: Bytes::from_static(b"token-0123456789abcdef") }
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn a_frame_beyond_the_limit_is_refused_and_skipped_not_buffered() {
        let mut decoder = Decoder::new(CALL_PREFIX_LEN + 4);
        let big = call(3, 2, None, [0; 16], &[9; 100]);
        let after = call(4, 2, None, [0; 16], b"ok");
        let mut buf = BytesMut::from(&big[..20]);
        let Some(Event::Refused(header, refusal)) = decoder.next(&mut buf, admit_all).unwrap() else { panic!() };
        assert_eq!(header.id, 3);
        assert_eq!(refusal.code, Code::ResourceExhausted);
        assert!(
            refusal.message.contains("100 bytes exceeds the limit of 4 bytes (--max-message-bytes)"),
            "{}",
            refusal.message
        );
        assert!(buf.is_empty(), "the refused body is not kept");
        buf.extend_from_slice(&big[20..]);
        buf.extend_from_slice(&after);
        let events = decode_all(&mut decoder, &mut buf).unwrap();
        assert!(matches!(&events[..], [Event::Frame(h, _)] if h.id == 4), "{events:?}");
    }

    #[test]
    fn admit_is_asked_once_per_frame_and_can_refuse() {
        let mut decoder = Decoder::new(1 << 20);
        let wire = call(5, 2, None, [0; 16], &[1; 64]);
        let mut buf = BytesMut::from(&wire[..30]);
        let mut asked = 0;
        assert!(decoder
            .next(&mut buf, |_| {
                asked += 1;
                Ok(())
            })
            .unwrap()
            .is_none());
        buf.extend_from_slice(&wire[30..]);
        assert!(matches!(
            decoder
                .next(&mut buf, |_| {
                    asked += 1;
                    Ok(())
                })
                .unwrap(),
            Some(Event::Frame(..))
        ));
        assert_eq!(asked, 1);
        buf.extend_from_slice(&wire);
        let refused = decoder.next(&mut buf, |_| Err(status(Code::ResourceExhausted, "busy"))).unwrap();
        assert!(matches!(refused, Some(Event::Refused(h, s)) if h.id == 5 && s.message == "busy"));
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_headers_and_bodies_are_reported() {
        let mut decoder = Decoder::new(64);
        let mut buf = BytesMut::from(&[3u8, 0, 0, 0, 2, 2, 0, 0, 1, 0, 0, 0][..]);
        assert!(decoder.next(&mut buf, admit_all).unwrap_err().0.contains("8 header bytes"));
        let header = Header { body_len: 3, kind: CALL, method: 2, flags: 0, id: 1 };
        assert!(parse_call(&header, Bytes::from_static(b"abc")).unwrap_err().0.contains("at least 24"));
        assert!(parse_hello(Bytes::from_static(&[1, 0, 5, 0, b'x'])).unwrap_err().0.contains("5-byte token"));
        assert!(parse_status(Bytes::from_static(&[1])).is_err());
    }

    #[test]
    fn replies_and_statuses_round_trip() {
        let reply_bytes = reply(9, 2, &crate::pb::accelerator::DrainReply { in_flight: 3 });
        let mut buf = BytesMut::from(&reply_bytes[..]);
        let Some(Event::Frame(header, body)) = Decoder::new(64).next(&mut buf, admit_all).unwrap() else { panic!() };
        assert_eq!((header.kind, header.id, header.method), (REPLY, 9, 2));
        assert_eq!(crate::pb::accelerator::DrainReply::decode(body).unwrap().in_flight, 3);
        let long = "é".repeat(MAX_STATUS_MESSAGE);
        let frame = status_frame(1, 2, &status(Code::NotFound, long));
        let mut buf = BytesMut::from(&frame[..]);
        let Some(Event::Frame(_, body)) = Decoder::new(1 << 20).next(&mut buf, admit_all).unwrap() else { panic!() };
        let parsed = parse_status(body).unwrap();
        assert_eq!(parsed.code, Code::NotFound);
        assert!(parsed.message.len() <= MAX_STATUS_MESSAGE && parsed.message.starts_with('é'));
    }

    #[test]
    fn method_numbers_match_the_unary_methods() {
        for name in crate::calls::UNARY_METHODS {
            assert_eq!(method_name(method_number(name).unwrap()), Some(name));
        }
        assert_eq!(method_name(0), None);
        assert_eq!(method_name(12), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_or_hold_more_than_a_frame(
            chunks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..48), 0..12),
            refuse_every in 1usize..4,
        ) {
            let mut decoder = Decoder::new(40);
            let mut buf = BytesMut::new();
            let mut asked = 0usize;
            'outer: for chunk in &chunks {
                buf.extend_from_slice(chunk);
                loop {
                    let admit = |_: &Header| { asked += 1; if asked.is_multiple_of(refuse_every) { Err(status(Code::ResourceExhausted, "no")) } else { Ok(()) } };
                    match decoder.next(&mut buf, admit) {
                        Ok(Some(Event::Frame(header, body))) => {
                            proptest::prop_assert!(body.len() <= 40);
                            proptest::prop_assert_eq!(body.len(), header.body_len);
                            let _ = parse_call(&header, body.clone());
                            let _ = parse_hello(body.clone());
                            let _ = parse_status(body);
                        }
                        Ok(Some(Event::Refused(..))) => {}
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
                proptest::prop_assert!(buf.len() <= HEADER_LEN + 40 + 48);
            }
        }

        #[test]
        fn any_split_of_valid_frames_decodes_the_same(
            bodies in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..32), 1..6),
            cut in 0usize..400,
        ) {
            let mut wire = Vec::new();
            for (i, body) in bodies.iter().enumerate() {
                wire.extend_from_slice(&call(i as u32 + 1, 2, None, [0; 16], body));
            }
            let cut = cut.min(wire.len());
            let mut decoder = Decoder::new(64);
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = decode_all(&mut decoder, &mut buf).unwrap();
            buf.extend_from_slice(&wire[cut..]);
            got.extend(decode_all(&mut decoder, &mut buf).unwrap());
            proptest::prop_assert_eq!(got.len(), bodies.len());
            for (event, body) in got.into_iter().zip(&bodies) {
                let Event::Frame(header, frame_body) = event else { panic!("refused") };
                let call = parse_call(&header, frame_body).unwrap();
                proptest::prop_assert_eq!(&call.message[..], &body[..]);
            }
        }
    }
}
