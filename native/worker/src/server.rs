//! The HTTP/2 side: accepting connections (Unix socket or TCP), checking
//! each request against the gRPC-over-HTTP/2 protocol, routing it to its
//! handler under the call's deadline, and logging and counting every call.

use crate::auth::{Verdict, HOW_TO_AUTHENTICATE};
use crate::calls::{self, CancelOnDrop, GrpcFraming, Record};
use crate::grpc::body::{http_error, trailers_only, unary_response};
use crate::grpc::metadata::{parse_timeout, parse_traceparent};
use crate::grpc::request::RequestMessages;
use crate::grpc::{encode_message, status, Code, GrpcBody, Status};
use crate::health;
use crate::pb::health::HealthCheckRequest;
use crate::service::{stream, App, Call};
use http::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Instant;
use tandem_sdk::context::CancelFlag;
use tandem_sdk::CallContext;

const ACCELERATOR: &str = "/tandem.v1.Accelerator/";
const HEALTH: &str = "/grpc.health.v1.Health/";

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

/// Serves one request on the `--health-listen` port: the health service
/// only (plaintext and without a token, for Kubernetes gRPC probes).
pub async fn handle_health_only(app: Arc<App>, req: Request<hyper::Body>) -> Response<GrpcBody> {
    if !req.uri().path().starts_with(HEALTH) {
        return trailers_only(&status(
            Code::Unimplemented,
            format!(
                "'{}': this port (--health-listen) serves only grpc.health.v1.Health; call the worker on its --listen \
                 address",
                req.uri().path()
            ),
        ));
    }
    handle(app, req).await
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
    let mut record = Record::new(&app, Call::new(method, ctx), "grpc");
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

    if timeout.is_some_and(|t| t.is_zero()) {
        record.finish(Code::DeadlineExceeded);
        return trailers_only(&calls::expired());
    }
    if method == "Watch" {
        let response = match messages.unary::<HealthCheckRequest>().await {
            Ok(req) => Ok(health::watch(&app.lifecycle, &req.service)),
            Err(err) => Err(err),
        };
        record.finish(response.as_ref().map_or_else(|e| e.code, |_| Code::Ok));
        return response.unwrap_or_else(|err| trailers_only(&err));
    }

    let _in_flight = calls::track(&app, method, call_flag);
    let deadline = record.call.ctx.deadline;
    let outcome = calls::within_deadline(deadline, dispatch(&app, method, &mut messages, &mut record.call)).await;
    if messages.idle_expired() {
        app.metrics.reject("idle");
    }
    calls::log_internal(method, &outcome);
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

/// The one streaming request method; every other method is unary and served
/// by [`calls::dispatch_unary`], as on the fast path.
async fn dispatch(
    app: &Arc<App>,
    method: &'static str,
    messages: &mut RequestMessages,
    call: &mut Call,
) -> Result<bytes::Bytes, Status> {
    if method == "InvokeStream" {
        return Ok(encode_message(&stream::invoke_stream(app, messages, call).await?));
    }
    let request = messages.unary_bytes().await?;
    calls::dispatch_unary(app, method, request, call, &GrpcFraming).await
}
