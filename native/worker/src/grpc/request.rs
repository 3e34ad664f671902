//! Reading request messages from an HTTP/2 body, one at a time, so a
//! streaming call holds at most one message in memory. Large messages also
//! take their size from a process-wide receive budget before they are
//! buffered, so many concurrent large requests cannot exhaust memory: a
//! request that does not fit is RESOURCE_EXHAUSTED at once. A client that
//! stops sending for longer than the idle timeout (`--stream-idle-timeout`)
//! ends its call with DEADLINE_EXCEEDED, so it cannot hold what the call
//! holds (a stream's state, an open-stream place) for as long as it pleases.

use super::frame::FrameDecoder;
use super::{status, Code, Status};
use bytes::Bytes;
use hyper::body::HttpBody;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Messages at least this long count against the receive budget.
pub const BUDGET_THRESHOLD: usize = 64 * 1024;
/// The budget's unit, in bytes.
pub const BUDGET_UNIT: usize = 1024;

/// A receive budget of `bytes` (rounded up to whole units).
pub fn receive_budget(bytes: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(bytes.div_ceil(BUDGET_UNIT)))
}

pub struct RequestMessages {
    body: hyper::Body,
    decoder: FrameDecoder,
    ended: bool,
    budget: Option<Arc<Semaphore>>,
    /// The budget taken by the current message, released at the next one.
    held: Option<OwnedSemaphorePermit>,
    /// Longest wait for more of the body.
    idle_timeout: Option<Duration>,
    idle_expired: bool,
}

impl RequestMessages {
    pub fn new(body: hyper::Body, max_message_bytes: usize) -> RequestMessages {
        RequestMessages {
            body,
            decoder: FrameDecoder::new(max_message_bytes),
            ended: false,
            budget: None,
            held: None,
            idle_timeout: None,
            idle_expired: false,
        }
    }

    /// Ends the call with DEADLINE_EXCEEDED when no body data arrives for
    /// `timeout` while a message is awaited.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> RequestMessages {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Whether the call ended because its client sent nothing for the idle timeout.
    pub fn idle_expired(&self) -> bool {
        self.idle_expired
    }

    /// Counts large messages against `budget` (see [`receive_budget`]).
    pub fn with_budget(mut self, budget: Arc<Semaphore>) -> RequestMessages {
        self.budget = Some(budget);
        self
    }

    fn reserve(&mut self) -> Result<(), Status> {
        let (Some(budget), None, Some(len)) = (&self.budget, &self.held, self.decoder.announced_len()) else {
            return Ok(());
        };
        if len < BUDGET_THRESHOLD {
            return Ok(());
        }
        let units = u32::try_from(len.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
        let permit = Arc::clone(budget).try_acquire_many_owned(units).map_err(|_| {
            status(
                Code::ResourceExhausted,
                "the worker is receiving too much request data at once; retry later or pass large tensors \
                 through shared memory",
            )
        })?;
        self.held = Some(permit);
        Ok(())
    }

    /// The next message, `None` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Status> {
        self.held = None;
        loop {
            if let Some(message) = self.decoder.next_message()? {
                return Ok(Some(message));
            }
            self.reserve()?;
            if self.ended {
                self.decoder.finish()?;
                return Ok(None);
            }
            let data = match self.idle_timeout {
                None => self.body.data().await,
                Some(timeout) => match tokio::time::timeout(timeout, self.body.data()).await {
                    Ok(data) => data,
                    Err(_) => {
                        self.idle_expired = true;
                        return Err(status(
                            Code::DeadlineExceeded,
                            format!(
                                "the client sent nothing for {:.3} s while the worker waited for the next message \
                                 (--stream-idle-timeout); send chunks sooner or raise the limit",
                                timeout.as_secs_f64()
                            ),
                        ));
                    }
                },
            };
            match data {
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
        decode(self.unary_bytes().await?)
    }

    /// The single message of a unary request, still encoded.
    pub async fn unary_bytes(&mut self) -> Result<Bytes, Status> {
        let message = self.next().await?.ok_or_else(|| status(Code::Internal, "the request carried no message"))?;
        // The message's budget stays taken for the rest of the call.
        let held = self.held.take();
        if self.next().await?.is_some() {
            return Err(status(Code::Internal, "a unary request carried more than one message"));
        }
        self.held = held;
        Ok(message)
    }
}

/// Decodes a message; malformed bytes are INVALID_ARGUMENT.
pub fn decode<M: Message + Default>(bytes: Bytes) -> Result<M, Status> {
    M::decode(bytes).map_err(|err| status(Code::InvalidArgument, format!("malformed request message: {err}")))
}
