//! What every call goes through on either transport (gRPC in [`crate::server`],
//! the local fast path in [`crate::fast`]): the unary methods' dispatch, the
//! deadline, the in-flight count a drain waits for, the cancel flag a dropped
//! handler sets, and the one `call` log line and counters per call. Only the
//! framing of the reply differs, so each transport passes its own
//! [`Framing`] and the reply is encoded once, straight into its frame.

use crate::grpc::{encode_message, status, Code, Status};
use crate::health;
use crate::lifecycle::InFlight;
use crate::pb::accelerator::{DescribeRequest, DrainRequest, ListSharedMemoryRequest, ListStatesRequest};
use crate::pb::health::HealthCheckRequest;
use crate::service::{admin, invoke, App, Call};
use bytes::Bytes;
use prost::Message;
use std::sync::Arc;
use std::time::Instant;
use tandem_sdk::context::CancelFlag;

/// The unary methods, served the same way on both transports.
pub const UNARY_METHODS: [&str; 10] = [
    "Describe",
    "Invoke",
    "CreateState",
    "DropState",
    "ListStates",
    "RegisterSharedMemory",
    "UnregisterSharedMemory",
    "ListSharedMemory",
    "Drain",
    "Check",
];

/// How a transport frames one reply message.
pub trait Framing {
    fn frame(&self, message: &impl Message) -> Bytes;
}

/// gRPC's length prefix: a compressed flag and a 4-byte big-endian length.
pub struct GrpcFraming;

impl Framing for GrpcFraming {
    fn frame(&self, message: &impl Message) -> Bytes {
        encode_message(message)
    }
}

/// Sets the call's cancel flag when the handler is dropped, e.g. because
/// the client reset the stream, cancelled the call or the deadline passed.
pub struct CancelOnDrop(pub Arc<CancelFlag>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Logs and counts a call once: on completion, or as CANCELLED when the
/// handler is dropped first.
pub struct Record<'a> {
    app: &'a App,
    pub call: Call,
    /// `grpc` or `fast`, in the log line.
    transport: &'static str,
    done: bool,
}

impl<'a> Record<'a> {
    pub fn new(app: &'a App, call: Call, transport: &'static str) -> Record<'a> {
        Record { app, call, transport, done: false }
    }

    pub fn finish(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        let call = &self.call;
        let queue_us = call.queue.as_micros() as u64;
        let compute_us = call.compute.as_micros() as u64;
        let is_kernel_call = matches!(call.method, "Invoke" | "InvokeStream");
        if is_kernel_call {
            let kernel = if call.kernel.is_empty() { "unknown" } else { call.kernel.as_str() };
            self.app.metrics.record_call(kernel, code.name(), call.queue, call.compute);
        }
        let level = if code == Code::Internal { crate::log::Level::Warn } else { crate::log::Level::Info };
        crate::log::call(&crate::log::CallLine {
            level,
            method: call.method,
            kernel: &call.kernel,
            transport: self.transport,
            trace_id: &call.ctx.trace_id,
            code: code.name(),
            queue_us,
            compute_us,
            duration_us: call.started.elapsed().as_micros() as u64,
            instance: &self.app.instance_id,
        });
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// Counts a call in a gauge until dropped, even when the client leaves.
pub struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    pub fn inc(gauge: &prometheus::IntGauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts the calls a drain waits for (kernel calls and state creation) as
/// in flight, with the flag that cancels them when the grace period ends.
pub fn track(app: &App, method: &str, cancel: Arc<CancelFlag>) -> Option<(InFlight, GaugeGuard)> {
    matches!(method, "Invoke" | "InvokeStream" | "CreateState")
        .then(|| (app.lifecycle.track(cancel), GaugeGuard::inc(&app.metrics.in_flight)))
}

/// The status of a call whose deadline passed.
pub fn expired() -> Status {
    status(Code::DeadlineExceeded, "the call's deadline passed before it completed")
}

/// Runs `work` until `deadline`, then DEADLINE_EXCEEDED (dropping `work`,
/// which sets the call's cancel flag).
pub async fn within_deadline<T>(
    deadline: Option<Instant>,
    work: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work).await.unwrap_or_else(|_| Err(expired())),
        None => work.await,
    }
}

/// Logs an INTERNAL failure once; a deadline or cancellation seen inside the
/// kernel keeps its own code and is not logged here.
pub fn log_internal<T>(method: &str, outcome: &Result<T, Status>) {
    if let Err(err) = outcome {
        if err.code == Code::Internal {
            crate::log::warn("internal error", serde_json::json!({ "method": method, "message": err.message }));
        }
    }
}

/// Decodes a request message; malformed bytes are INVALID_ARGUMENT.
fn decode<M: Message + Default>(bytes: Bytes) -> Result<M, Status> {
    crate::grpc::request::decode(bytes)
}

/// Serves one unary method on its request message; the reply comes back
/// framed by `framing`.
pub async fn dispatch_unary(
    app: &Arc<App>,
    method: &'static str,
    request: Bytes,
    call: &mut Call,
    framing: &impl Framing,
) -> Result<Bytes, Status> {
    match method {
        "Describe" => {
            decode::<DescribeRequest>(request)?;
            Ok(framing.frame(&admin::describe(app)))
        }
        "Invoke" => Ok(framing.frame(&invoke::invoke(app, decode(request)?, call).await?)),
        "CreateState" => Ok(framing.frame(&admin::create_state(app, decode(request)?).await?)),
        "DropState" => Ok(framing.frame(&admin::drop_state(app, decode(request)?)?)),
        "ListStates" => {
            decode::<ListStatesRequest>(request)?;
            Ok(framing.frame(&admin::list_states(app)?))
        }
        "RegisterSharedMemory" => Ok(framing.frame(&admin::register_shared_memory(app, decode(request)?)?)),
        "UnregisterSharedMemory" => Ok(framing.frame(&admin::unregister_shared_memory(app, decode(request)?)?)),
        "ListSharedMemory" => {
            decode::<ListSharedMemoryRequest>(request)?;
            Ok(framing.frame(&admin::list_shared_memory(app)?))
        }
        "Drain" => {
            decode::<DrainRequest>(request)?;
            Ok(framing.frame(&admin::drain(app)))
        }
        "Check" => {
            let req: HealthCheckRequest = decode(request)?;
            Ok(framing.frame(&health::check(&app.lifecycle, &req.service)?))
        }
        _ => Err(status(Code::Unimplemented, format!("method '{method}' is not implemented"))),
    }
}
