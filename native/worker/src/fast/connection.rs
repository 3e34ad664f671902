//! One fast-path connection: the handshake, then a reader that turns frames
//! into calls (each its own task, so a slow call never holds up the others),
//! a table of the calls in flight by id (for `CANCEL`), and a writer that
//! sends the replies in the order they finish, coalescing those that are
//! ready together into one write.

use super::frame::{self, Decoder, Event, Header, Malformed};
use crate::auth::Verdict;
use crate::calls::{self, CancelOnDrop, Framing, Record};
use crate::connections::Permit;
use crate::grpc::request::{BUDGET_THRESHOLD, BUDGET_UNIT};
use crate::grpc::{status, Code, Status};
use crate::service::{App, Call};
use bytes::{Bytes, BytesMut};
use prost::Message;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_sdk::context::CancelFlag;
use tandem_sdk::CallContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// How long a new connection may take to send its `HELLO`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `HELLO` body: the version, the token's length and the token.
const MAX_HELLO_BODY: usize = 4 + crate::auth::MAX_TOKEN_CHARS;
/// Bytes read from the socket at a time (more when a frame needs it).
const READ_CHUNK: usize = 64 * 1024;
/// Replies coalesced into one write when they are ready together, up to this size.
const COALESCE_BYTES: usize = 64 * 1024;
/// Room in the reply queue beyond one reply per call: refusals, the last word.
const OUTBOX_SLACK: usize = 8;

/// What a refused connection is sent: a connection-level STATUS.
pub fn refusal(reason: &str) -> Bytes {
    frame::status_frame(0, 0, &status(Code::ResourceExhausted, reason))
}

/// A call in flight: its task (aborted by `CANCEL`) and its place among the
/// connection's calls, given back the moment the call leaves the table — on
/// `CANCEL` at once, not when the aborted task is next polled, so a client
/// that cancels and calls again never finds its place still taken.
struct InFlightCall {
    task: JoinHandle<()>,
    _place: OwnedSemaphorePermit,
}

/// The calls in flight on one connection, by id.
type CallTable = Arc<Mutex<HashMap<u32, InFlightCall>>>;

/// Serves one connection until the client closes it, it breaks, or the
/// worker shuts down; every call still in flight is then cancelled.
pub async fn serve(stream: UnixStream, app: Arc<App>, _open: (mpsc::Sender<()>, Permit)) {
    let (mut reader, writer) = stream.into_split();
    let max_in_flight = app.config.max_streams_per_connection as usize;
    // Every call reserves its reply's room before it starts, so replies never
    // wait and a client that stops reading stops the reader (backpressure).
    let (outbox, replies) = mpsc::channel::<Bytes>(max_in_flight + OUTBOX_SLACK);
    let write = tokio::spawn(write_loop(writer, replies));
    let calls: CallTable = Arc::new(Mutex::new(HashMap::new()));
    let mut connection = Connection {
        app: Arc::clone(&app),
        outbox,
        calls: Arc::clone(&calls),
        in_flight: Arc::new(Semaphore::new(max_in_flight)),
        max_in_flight,
        admitted: None,
    };
    let ended = connection.run(&mut reader).await;
    let aborted = abort_all(&calls);
    match &ended {
        Ended::Closed => {}
        Ended::Malformed(reason) => crate::log::warn(
            "fast-path connection closed",
            json!({ "reason": reason.0, "calls_cancelled": aborted, "note": "the client sent bytes that are not a frame" }),
        ),
        Ended::Refused(status) => crate::log::event(
            crate::log::Level::Info,
            "fast-path connection refused",
            json!({ "code": status.code.name(), "reason": status.message }),
        ),
        Ended::Broken(err) => crate::log::event(
            crate::log::Level::Debug,
            "fast-path connection ended",
            json!({ "error": err, "calls_cancelled": aborted }),
        ),
    }
    // Why, for the client, when the queue has room (it never waits on a
    // client that stopped reading).
    let last_word = match &ended {
        Ended::Malformed(reason) => Some(status(Code::Internal, format!("malformed frame: {}", reason.0))),
        Ended::Refused(refusal) => Some(refusal.clone()),
        Ended::Closed | Ended::Broken(_) => None,
    };
    if let Some(last_word) = last_word {
        let _ = connection.outbox.try_send(frame::status_frame(0, 0, &last_word));
    }
    // The writer ends once every sender (the reader's, the calls') is gone.
    drop(connection);
    let _ = tokio::time::timeout(super::CONNECTION_CLOSE_TIMEOUT, write).await;
}

fn abort_all(calls: &CallTable) -> usize {
    let aborted: Vec<InFlightCall> =
        calls.lock().map(|mut c| c.drain().map(|(_, call)| call).collect()).unwrap_or_default();
    for call in &aborted {
        call.task.abort();
    }
    aborted.len()
}

enum Ended {
    /// The client closed the connection, or the worker shut down.
    Closed,
    Broken(String),
    Malformed(Malformed),
    /// The handshake was refused (version, token).
    Refused(Status),
}

struct Connection {
    app: Arc<App>,
    outbox: mpsc::Sender<Bytes>,
    calls: CallTable,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// What the frame being read took when its header was admitted.
    admitted: Option<Admitted>,
}

/// A call's place on the connection, and the receive budget its message
/// holds for the rest of the call (as on gRPC).
struct Admitted {
    place: OwnedSemaphorePermit,
    budget: Option<OwnedSemaphorePermit>,
}

impl Connection {
    async fn run(&mut self, reader: &mut OwnedReadHalf) -> Ended {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match self.handshake(reader, &mut buf).await {
            Ok(()) => {}
            Err(ended) => return ended,
        }
        let mut shutdown = self.app.lifecycle.watch_shutdown();
        let mut decoder = Decoder::new(self.app.config.max_message_bytes + frame::CALL_PREFIX_LEN);
        loop {
            loop {
                let event = {
                    let (app, in_flight, admitted) = (&self.app, &self.in_flight, &mut self.admitted);
                    let max_in_flight = self.max_in_flight;
                    decoder.next(&mut buf, |header| admit(app, in_flight, max_in_flight, admitted, header))
                };
                match event {
                    Ok(Some(event)) => {
                        if let Err(malformed) = self.handle(event).await {
                            return Ended::Malformed(malformed);
                        }
                    }
                    Ok(None) => break,
                    Err(malformed) => return Ended::Malformed(malformed),
                }
            }
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) if buf.is_empty() => return Ended::Closed,
                    Ok(0) => return Ended::Malformed(Malformed(format!(
                        "the connection ended inside a frame ({} byte(s) of it)", buf.len()
                    ))),
                    Ok(_) => {}
                    Err(err) => return Ended::Broken(err.to_string()),
                },
                _ = async { while !*shutdown.borrow_and_update() { if shutdown.changed().await.is_err() { break } } } => {
                    return Ended::Closed;
                }
            }
        }
    }

    /// Reads the `HELLO`, checks version and token, answers `WELCOME`.
    async fn handshake(&mut self, reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<(), Ended> {
        let mut decoder = Decoder::new(MAX_HELLO_BODY);
        let first = async {
            loop {
                match decoder.next(buf, |_| Ok(())) {
                    Ok(Some(Event::Frame(header, body))) => return Ok((header, body)),
                    Ok(Some(Event::Refused(..))) => {
                        return Err(Ended::Malformed(Malformed(format!(
                            "the first frame must be a HELLO of at most {MAX_HELLO_BODY} bytes"
                        ))))
                    }
                    Ok(None) => {}
                    Err(malformed) => return Err(Ended::Malformed(malformed)),
                }
                match reader.read_buf(buf).await {
                    Ok(0) => return Err(Ended::Closed),
                    Ok(_) => {}
                    Err(err) => return Err(Ended::Broken(err.to_string())),
                }
            }
        };
        let (header, body) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, first).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Ended::Malformed(Malformed(format!(
                    "no HELLO within {} s of connecting",
                    HANDSHAKE_TIMEOUT.as_secs()
                ))))
            }
        };
        if header.kind != frame::HELLO {
            return Err(Ended::Malformed(Malformed(format!(
                "the first frame must be a HELLO (kind {}), got kind {}",
                frame::HELLO,
                header.kind
            ))));
        }
        let hello = frame::parse_hello(body).map_err(Ended::Malformed)?;
        if hello.version != frame::VERSION {
            return Err(Ended::Refused(status(
                Code::FailedPrecondition,
                format!(
                    "fast-path protocol version {} is not supported; this worker speaks version {}",
                    hello.version,
                    frame::VERSION
                ),
            )));
        }
        if let Some(token) = &self.app.config.token {
            let problem = match token.check_secret(&hello.token) {
                Verdict::Allowed => None,
                Verdict::Missing => Some("this worker requires a token and the HELLO carried none"),
                Verdict::Wrong => Some("the token the HELLO carried is not this worker's"),
            };
            if let Some(problem) = problem {
                self.app.metrics.reject("unauthenticated");
                return Err(Ended::Refused(status(
                    Code::Unauthenticated,
                    format!("{problem}; {}", crate::auth::HOW_TO_AUTHENTICATE),
                )));
            }
        }
        let welcome = frame::welcome(self.max_in_flight as u32, self.app.config.max_message_bytes as u32);
        self.outbox.send(welcome).await.map_err(|_| Ended::Broken("the writer stopped".into()))
    }

    /// Acts on one frame; `Err` closes the connection.
    async fn handle(&mut self, event: Event) -> Result<(), Malformed> {
        match event {
            Event::Refused(header, refusal) if header.kind == frame::CALL => {
                self.send(frame::status_frame(header.id, header.method, &refusal)).await;
                Ok(())
            }
            Event::Refused(header, _) => {
                Err(Malformed(format!("a frame of kind {} announced {} body bytes", header.kind, header.body_len)))
            }
            Event::Frame(header, body) => match header.kind {
                frame::CALL => self.call(header, body).await,
                frame::CANCEL => {
                    let call = self.calls.lock().ok().and_then(|mut calls| calls.remove(&header.id));
                    if let Some(call) = call {
                        call.task.abort();
                    }
                    Ok(())
                }
                frame::HELLO => Err(Malformed("a second HELLO on a connection".into())),
                kind => {
                    let refusal = status(Code::Unimplemented, format!("unknown frame kind {kind}"));
                    self.send(frame::status_frame(header.id, header.method, &refusal)).await;
                    Ok(())
                }
            },
        }
    }

    async fn call(&mut self, header: Header, body: Bytes) -> Result<(), Malformed> {
        let admitted = self.admitted.take();
        let request = frame::parse_call(&header, body)?;
        let method = match frame::method_name(request.method) {
            Some("InvokeStream") => Err(status(
                Code::Unimplemented,
                "InvokeStream is a stream, which the fast path does not carry; call it over gRPC",
            )),
            Some(method) => Ok(method),
            None => Err(status(Code::Unimplemented, format!("unknown method number {}", request.method))),
        };
        let (method, admitted) = match (method, admitted) {
            (Ok(method), Some(admitted)) => (method, admitted),
            (Err(refusal), _) => {
                self.send(frame::status_frame(request.id, request.method, &refusal)).await;
                return Ok(());
            }
            (Ok(_), None) => return Err(Malformed("a call frame arrived without its header being read".into())),
        };
        if self.calls.lock().map_or(true, |calls| calls.contains_key(&request.id)) {
            return Err(Malformed(format!("call id {} is already in flight on this connection", request.id)));
        }
        // Waits while the queue is full of replies the client has not read.
        let Ok(reply_slot) = self.outbox.clone().reserve_owned().await else {
            return Err(Malformed("the connection's writer stopped".into()));
        };
        let Ok(mut calls) = self.calls.lock() else {
            return Err(Malformed("the call table is unusable".into()));
        };
        // Spawned under the table's lock, so the call cannot finish (and
        // remove itself) before its entry is in.
        let id = request.id;
        let task = tokio::spawn(serve_call(
            Arc::clone(&self.app),
            request,
            method,
            admitted.budget,
            Arc::clone(&self.calls),
            reply_slot,
        ));
        calls.insert(id, InFlightCall { task, _place: admitted.place });
        Ok(())
    }

    async fn send(&self, bytes: Bytes) {
        let _ = self.outbox.send(bytes).await;
    }
}

/// Decides from a frame's header whether its body may be buffered: a call
/// needs a place on the connection and, when large, receive budget.
fn admit(
    app: &App,
    in_flight: &Arc<Semaphore>,
    max_in_flight: usize,
    admitted: &mut Option<Admitted>,
    header: &Header,
) -> Result<(), Status> {
    if header.kind != frame::CALL {
        return Ok(());
    }
    let place = Arc::clone(in_flight).try_acquire_owned().map_err(|_| {
        app.metrics.reject("streams");
        status(
            Code::ResourceExhausted,
            format!(
                "this connection has {max_in_flight} calls in flight, its limit (--max-streams-per-connection); \
                 wait for replies before sending more"
            ),
        )
    })?;
    let message_len = header.body_len.saturating_sub(frame::CALL_PREFIX_LEN);
    let budget = if message_len >= BUDGET_THRESHOLD {
        let units = u32::try_from(message_len.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
        Some(Arc::clone(&app.receive_budget).try_acquire_many_owned(units).map_err(|_| {
            status(
                Code::ResourceExhausted,
                "the worker is receiving too much request data at once; retry later or pass large tensors \
                 through shared memory",
            )
        })?)
    } else {
        None
    };
    *admitted = Some(Admitted { place, budget });
    Ok(())
}

/// The fast path's reply frames for one call.
struct FastFraming {
    id: u32,
    method: u8,
}

impl Framing for FastFraming {
    fn frame(&self, message: &impl Message) -> Bytes {
        frame::reply(self.id, self.method, message)
    }
}

/// One call, as `server::handle` serves a gRPC one: record, deadline,
/// drain tracking, the shared dispatch; then its reply.
async fn serve_call(
    app: Arc<App>,
    request: frame::CallFrame,
    method: &'static str,
    budget: Option<OwnedSemaphorePermit>,
    calls: CallTable,
    reply_slot: mpsc::OwnedPermit<Bytes>,
) {
    let (id, number) = (request.id, request.method);
    let cancel = Arc::new(CancelFlag::default());
    let started = Instant::now();
    let ctx = CallContext {
        cancel: Some(Arc::clone(&cancel)),
        deadline: request.timeout.and_then(|t| started.checked_add(t)),
        trace_id: request.trace_id,
    };
    let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
    let mut record = Record::new(&app, Call::new(method, ctx), "fast");
    let outcome = if request.timeout.is_some_and(|t| t.is_zero()) {
        Err(calls::expired())
    } else {
        let _in_flight = calls::track(&app, method, cancel);
        let deadline = record.call.ctx.deadline;
        let framing = FastFraming { id, method: number };
        let work = calls::dispatch_unary(&app, method, request.message, &mut record.call, &framing);
        calls::within_deadline(deadline, work).await
    };
    calls::log_internal(method, &outcome);
    record.finish(outcome.as_ref().map_or_else(|e| e.code, |_| Code::Ok));
    drop(budget);
    let reply = outcome.unwrap_or_else(|err| frame::status_frame(id, number, &err));
    // Out of the table (its place given back) before the reply is queued, so
    // a client that has the reply may reuse the id and the place at once.
    let entry = calls.lock().ok().and_then(|mut calls| calls.remove(&id));
    let still_wanted = entry.is_some();
    drop(entry);
    // A call cancelled meanwhile sends nothing: its client has moved on.
    if still_wanted {
        reply_slot.send(reply);
    }
}

/// Writes replies as they come; those already waiting are gathered into
/// one write (up to [`COALESCE_BYTES`]).
async fn write_loop(mut writer: OwnedWriteHalf, mut replies: mpsc::Receiver<Bytes>) {
    let mut batch = BytesMut::with_capacity(COALESCE_BYTES);
    while let Some(first) = replies.recv().await {
        let mut next = Some(first);
        while let Some(bytes) = next.take() {
            if bytes.len() >= COALESCE_BYTES {
                if !batch.is_empty() && writer.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
            } else {
                if batch.len() + bytes.len() > COALESCE_BYTES {
                    if writer.write_all(&batch).await.is_err() {
                        return;
                    }
                    batch.clear();
                }
                batch.extend_from_slice(&bytes);
            }
            next = replies.try_recv().ok();
        }
        if !batch.is_empty() {
            if writer.write_all(&batch).await.is_err() {
                return;
            }
            batch.clear();
        }
    }
    let _ = writer.shutdown().await;
}
