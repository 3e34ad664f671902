//! `grpc.health.v1.Health`: readiness under "" and "tandem.v1.Accelerator",
//! liveness under "liveness". Watch streams the current status at once and
//! every change after it, until the client leaves or the worker exits.

use crate::grpc::body::{streaming_response, Chunk};
use crate::grpc::{encode_message, status, Code, GrpcBody, Status};
use crate::lifecycle::Lifecycle;
use crate::pb::health::health_check_response::ServingStatus;
use crate::pb::health::HealthCheckResponse;
use http::Response;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

pub const ACCELERATOR: &str = "tandem.v1.Accelerator";
pub const LIVENESS: &str = "liveness";

enum Service {
    Readiness,
    Liveness,
}

fn service(name: &str) -> Option<Service> {
    match name {
        "" | ACCELERATOR => Some(Service::Readiness),
        LIVENESS => Some(Service::Liveness),
        _ => None,
    }
}

fn reply(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: status as i32 }
}

pub fn check(lifecycle: &Lifecycle, name: &str) -> Result<HealthCheckResponse, Status> {
    match service(name) {
        Some(Service::Readiness) => Ok(reply(lifecycle.readiness())),
        Some(Service::Liveness) => Ok(reply(ServingStatus::Serving)),
        None => Err(status(Code::NotFound, format!("unknown health service '{name}'"))),
    }
}

async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

pub fn watch(lifecycle: &Arc<Lifecycle>, name: &str) -> Response<GrpcBody> {
    let (tx, rx) = mpsc::channel(4);
    let mut shutdown = lifecycle.watch_shutdown();
    let (mut readiness, fixed) = match service(name) {
        Some(Service::Readiness) => (Some(lifecycle.watch_readiness()), ServingStatus::Serving),
        Some(Service::Liveness) => (None, ServingStatus::Serving),
        None => (None, ServingStatus::ServiceUnknown),
    };
    tokio::spawn(async move {
        let mut last = None;
        // A drain flips readiness and, with nothing in flight, shuts down at
        // once; `select!` may see the shutdown first, so every way out passes
        // through one more read of the status before the stream ends.
        let mut ending = false;
        loop {
            let current = readiness.as_mut().map_or(fixed, |r| *r.borrow_and_update());
            if last != Some(current) {
                last = Some(current);
                if tx.send(Chunk::Message(encode_message(&reply(current)))).await.is_err() {
                    return;
                }
            }
            if ending {
                break;
            }
            tokio::select! {
                changed = async {
                    match readiness.as_mut() {
                        Some(r) => r.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => ending = !changed,
                _ = shutdown_signalled(&mut shutdown) => ending = true,
                _ = tx.closed() => return,
            }
        }
        let _ = tx.send(Chunk::End(status(Code::Unavailable, "the worker is shutting down"))).await;
    });
    streaming_response(rx)
}
