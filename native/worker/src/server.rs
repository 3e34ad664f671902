//! The HTTP/2 side: accepting connections (Unix socket or TCP), checking
//! each request against the gRPC-over-HTTP/2 protocol, routing it to its
//! handler under the call's deadline, and logging and counting every call.

use crate::auth::{Verdict, HOW_TO_AUTHENTICATE};
use crate::grpc::body::{http_error, trailers_only, unary_response};
use crate::grpc::metadata::{parse_timeout, parse_traceparent};
use crate::grpc::request::RequestMessages;
use crate::grpc::{encode_message, status, Code, GrpcBody, Status};
use crate::health;
use crate::pb::health::HealthCheckRequest;
use crate::service::{admin, invoke, stream, App, Call};
use http::{Method, Request, Response, StatusCode};
use prost::Message;
use std::sync::Arc;
use std::time::Instant;
use tandem_sdk::context::CancelFlag;
use tandem_sdk::CallContext;

const ACCELERATOR: &str = "/tandem.v1.Accelerator/";
const HEALTH: &str = "/grpc.health.v1.Health/";

/// Sets the call's cancel flag when the handler is dropped, e.g. because
/// the client reset the stream or the deadline passed.
struct CancelOnDrop(Arc<CancelFlag>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Logs and counts a call once: on completion, or as CANCELLED when the
/// handler is dropped first.
struct Record<'a> {
    app: &'a App,
    call: Call,
    done: bool,
}

impl Record<'_> {
    fn finish(&mut self, code: Code) {
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
        crate::log::event(
            level,
            "call",
            serde_json::json!({
                "method": call.method,
                "kernel": call.kernel,
                "trace_id": call.ctx.trace_id_hex(),
                "code": code.name(),
                "queue_us": queue_us,
                "compute_us": compute_us,
                "duration_us": call.started.elapsed().as_micros() as u64,
                "instance": self.app.instance_id,
            }),
        );
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// Counts a call in a gauge until dropped, even when the client leaves.
struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    fn inc(gauge: &prometheus::IntGauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn method_name(path: &str) -> Option<&'static str> {
    const METHODS: [&str; 12] = [
        "Describe",
        "Invoke",
        "InvokeStream",
        "CreateState",
        "DropState",
        "ListStates",
        "RegisterSharedMemory",
        "UnregisterSharedMemory",
        "ListSharedMemory",
        "Drain",
        "Check",
        "Watch",
    ];
    let (service, method) = if let Some(m) = path.strip_prefix(ACCELERATOR) {
        (ACCELERATOR, m)
    } else if let Some(m) = path.strip_prefix(HEALTH) {
        (HEALTH, m)
    } else {
        return None;
    };
    let is_health = matches!(method, "Check" | "Watch");
    if (service == HEALTH) != is_health {
        return None;
    }
    METHODS.iter().copied().find(|m| *m == method)
}

/// Serves one HTTP/2 request.
pub async fn handle(app: Arc<App>, req: Request<hyper::Body>) -> Response<GrpcBody> {
    if req.method() != Method::POST {
        return http_error(StatusCode::METHOD_NOT_ALLOWED, "gRPC requests use POST\n");
    }
    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/grpc") {
        return http_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type must be application/grpc\n");
    }
    let Some(method) = method_name(req.uri().path()) else {
        return trailers_only(&status(Code::Unimplemented, format!("unknown method '{}'", req.uri().path())));
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(encoding) = header("grpc-encoding") {
        if encoding != "identity" {
            return trailers_only(&status(
                Code::Unimplemented,
                format!("message encoding '{encoding}' is not supported; use identity"),
            ));
        }
    }
    let cancel = Arc::new(CancelFlag::default());
    let mut ctx = CallContext { cancel: Some(Arc::clone(&cancel)), ..CallContext::default() };
    ctx.trace_id = header("traceparent").and_then(parse_traceparent).unwrap_or([0; 16]);
    let timeout = match header("grpc-timeout").map(|v| (v, parse_timeout(v))) {
        None => None,
        Some((_, Some(timeout))) => Some(timeout),
        Some((value, None)) => {
            return trailers_only(&status(Code::Internal, format!("malformed grpc-timeout '{value}'")));
        }
    };
    let started = Instant::now();
    ctx.deadline = timeout.and_then(|t| started.checked_add(t));
    let call_flag = Arc::clone(&cancel);
    let _cancel_on_drop = CancelOnDrop(cancel);
    let mut record = Record { app: &app, call: Call::new(method, ctx), done: false };
    // The standard health service stays open, so that probes need no
    // secret; it tells only whether the worker serves.
    if let (Some(token), false) = (&app.config.token, matches!(method, "Check" | "Watch")) {
        let presented = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        let problem = match token.check(presented) {
            Verdict::Allowed => None,
            Verdict::Missing => Some("this worker requires a token and the call carried none"),
            Verdict::Wrong => Some("the token the call carried is not this worker's"),
        };
        if let Some(problem) = problem {
            app.metrics.reject("unauthenticated");
            record.finish(Code::Unauthenticated);
            drain_small_body(req.into_body()).await;
            return trailers_only(&status(Code::Unauthenticated, format!("{problem}; {HOW_TO_AUTHENTICATE}")));
        }
    }
    let mut messages = RequestMessages::new(req.into_body(), app.config.max_message_bytes)
        .with_budget(Arc::clone(&app.receive_budget))
        .with_idle_timeout(app.config.stream_idle_timeout);

    let expired = status(Code::DeadlineExceeded, "the call's deadline passed before it completed");
    if timeout.is_some_and(|t| t.is_zero()) {
        record.finish(Code::DeadlineExceeded);
        return trailers_only(&expired);
    }
    if method == "Watch" {
        let response = match messages.unary::<HealthCheckRequest>().await {
            Ok(req) => Ok(health::watch(&app.lifecycle, &req.service)),
            Err(err) => Err(err),
        };
        record.finish(response.as_ref().map_or_else(|e| e.code, |_| Code::Ok));
        return response.unwrap_or_else(|err| trailers_only(&err));
    }

    let tracked = matches!(method, "Invoke" | "InvokeStream" | "CreateState");
    let _in_flight = tracked.then(|| (app.lifecycle.track(call_flag), GaugeGuard::inc(&app.metrics.in_flight)));
    let deadline = record.call.ctx.deadline;
    let work = dispatch(&app, method, &mut messages, &mut record.call);
    let outcome = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work).await.unwrap_or_else(|_| Err(expired.clone())),
        None => work.await,
    };
    if messages.idle_expired() {
        app.metrics.reject("idle");
    }
    let outcome = outcome.inspect_err(|err| {
        // A deadline or cancellation seen inside the kernel keeps its code.
        if err.code == Code::Internal {
            crate::log::warn("internal error", serde_json::json!({ "method": method, "message": err.message }));
        }
    });
    record.finish(outcome.as_ref().map_or_else(|e| e.code, |_| Code::Ok));
    match outcome {
        Ok(bytes) => unary_response(bytes),
        Err(err) => trailers_only(&err),
    }
}

/// Most request bytes read (and dropped) before a refusal is sent.
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;
/// Longest wait for them.
const REFUSAL_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads a refused call's request (a unary request is small) before the
/// refusal goes out: a reply sent while the client still sends makes the
/// server reset the request side, and a client busy sending may then report
/// the reset instead of the status. Bounded in bytes and time, so a refused
/// client cannot hold the call open.
async fn drain_small_body(mut body: hyper::Body) {
    use hyper::body::HttpBody;
    let mut read = 0;
    let drain = async {
        while let Some(Ok(chunk)) = body.data().await {
            read += chunk.len();
            if read >= REFUSAL_DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_DRAIN_TIMEOUT, drain).await;
}

fn encode(message: &impl Message) -> Result<bytes::Bytes, Status> {
    Ok(encode_message(message))
}

async fn dispatch(
    app: &Arc<App>,
    method: &'static str,
    messages: &mut RequestMessages,
    call: &mut Call,
) -> Result<bytes::Bytes, Status> {
    match method {
        "Describe" => {
            messages.unary::<crate::pb::accelerator::DescribeRequest>().await?;
            encode(&admin::describe(app))
        }
        "Invoke" => {
            let req = messages.unary().await?;
            encode(&invoke::invoke(app, req, call).await?)
        }
        "InvokeStream" => encode(&stream::invoke_stream(app, messages, call).await?),
        "CreateState" => {
            let req = messages.unary().await?;
            encode(&admin::create_state(app, req).await?)
        }
        "DropState" => encode(&admin::drop_state(app, messages.unary().await?)?),
        "ListStates" => {
            messages.unary::<crate::pb::accelerator::ListStatesRequest>().await?;
            encode(&admin::list_states(app)?)
        }
        "RegisterSharedMemory" => encode(&admin::register_shared_memory(app, messages.unary().await?)?),
        "UnregisterSharedMemory" => encode(&admin::unregister_shared_memory(app, messages.unary().await?)?),
        "ListSharedMemory" => {
            messages.unary::<crate::pb::accelerator::ListSharedMemoryRequest>().await?;
            encode(&admin::list_shared_memory(app)?)
        }
        "Drain" => {
            messages.unary::<crate::pb::accelerator::DrainRequest>().await?;
            encode(&admin::drain(app))
        }
        "Check" => {
            let req: HealthCheckRequest = messages.unary().await?;
            encode(&health::check(&app.lifecycle, &req.service)?)
        }
        _ => Err(status(Code::Unimplemented, format!("method '{method}' is not implemented"))),
    }
}
