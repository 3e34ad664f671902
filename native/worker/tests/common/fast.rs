//! A fast-path client for the tests: raw frames over the worker's
//! `PATH.fast` socket, one call at a time or by hand.

use super::{CallResult, BOUND};
use bytes::{Bytes, BytesMut};
use prost::Message;
use std::path::Path;
use std::time::Duration;
use tandem_sdk::Code;
use tandem_worker::fast::frame::{self, Decoder, Event, Header};
use tandem_worker::pb::accelerator::{InvokeReply, InvokeRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub struct FastClient {
    stream: UnixStream,
    buf: BytesMut,
    decoder: Decoder,
    next_id: u32,
}

/// What the worker answered a `HELLO` with.
#[derive(Debug)]
pub struct Welcome {
    pub version: u16,
    pub max_in_flight: u32,
    pub max_message_bytes: u32,
}

impl FastClient {
    /// Connects to the fast path of the worker on `socket` (its gRPC socket) and says HELLO.
    pub async fn connect(socket: &Path) -> FastClient {
        let (client, welcome) = FastClient::connect_with(socket, frame::VERSION, b"").await.expect("welcome");
        assert_eq!(welcome.version, frame::VERSION);
        client
    }

    /// Connects without saying anything yet.
    pub async fn open(socket: &Path) -> FastClient {
        let stream =
            UnixStream::connect(tandem_worker::fast::socket_path(socket)).await.expect("connect to the fast path");
        FastClient { stream, buf: BytesMut::new(), decoder: Decoder::new(usize::MAX >> 1), next_id: 1 }
    }

    /// HELLO with `version` and `token`: the WELCOME, or the connection's STATUS.
    pub async fn connect_with(socket: &Path, version: u16, token: &[u8]) -> CallResult<(FastClient, Welcome)> {
        let mut client = FastClient::open(socket).await;
        client.send(&frame::hello(version, token)).await;
        let (header, mut body) = client.read().await.expect("an answer to HELLO");
        match header.kind {
            frame::WELCOME => {
                use bytes::Buf;
                let version = body.get_u16_le();
                body.advance(2);
                let welcome =
                    Welcome { version, max_in_flight: body.get_u32_le(), max_message_bytes: body.get_u32_le() };
                Ok((client, welcome))
            }
            frame::STATUS => {
                let status = frame::parse_status(body).unwrap();
                assert_eq!(header.id, 0);
                Err((status.code, status.message))
            }
            other => panic!("unexpected frame kind {other}"),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to the fast path");
    }

    /// The next frame, `None` when the worker closed the connection (bounded).
    pub async fn read(&mut self) -> Option<(Header, Bytes)> {
        tokio::time::timeout(BOUND, async {
            loop {
                match self.decoder.next(&mut self.buf, |_| Ok(())).expect("well-formed frames") {
                    Some(Event::Frame(header, body)) => return Some((header, body)),
                    Some(Event::Refused(..)) => unreachable!("the test client refuses nothing"),
                    None => {}
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("a frame or the end of the connection in time")
    }

    /// Reads until the worker closes the connection; returns the connection STATUS it sent, if any.
    pub async fn closed(&mut self) -> Option<(Code, String)> {
        let mut last = None;
        while let Some((header, body)) = self.read().await {
            if header.kind == frame::STATUS && header.id == 0 {
                let status = frame::parse_status(body).unwrap();
                last = Some((status.code, status.message));
            }
        }
        last
    }

    /// Sends a CALL of `method`; returns its id.
    pub async fn start(&mut self, method: &str, req: &impl Message, timeout: Option<Duration>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let number = frame::method_number(method).expect("a known method");
        self.send(&frame::call(id, number, timeout, [0; 16], &req.encode_to_vec())).await;
        id
    }

    /// The result of a REPLY or STATUS frame.
    pub fn result<Resp: Message + Default>(header: &Header, body: Bytes) -> CallResult<Resp> {
        match header.kind {
            frame::REPLY => Ok(Resp::decode(body).expect("a valid reply")),
            frame::STATUS => {
                let status = frame::parse_status(body).unwrap();
                Err((status.code, status.message))
            }
            other => panic!("unexpected frame kind {other}"),
        }
    }

    /// The reply to call `id` (the next frame must be it).
    pub async fn finish<Resp: Message + Default>(&mut self, id: u32) -> CallResult<Resp> {
        let (header, body) = self.read().await.expect("a reply before the connection closed");
        assert_eq!(header.id, id, "replies arrive for the call that was made");
        FastClient::result(&header, body)
    }

    pub async fn unary<Req: Message, Resp: Message + Default>(&mut self, method: &str, req: &Req) -> CallResult<Resp> {
        self.unary_within(method, req, None).await
    }

    pub async fn unary_within<Req: Message, Resp: Message + Default>(
        &mut self,
        method: &str,
        req: &Req,
        timeout: Option<Duration>,
    ) -> CallResult<Resp> {
        let id = self.start(method, req, timeout).await;
        self.finish(id).await
    }

    pub async fn invoke(&mut self, req: &InvokeRequest) -> CallResult<InvokeReply> {
        self.unary("Invoke", req).await
    }
}
