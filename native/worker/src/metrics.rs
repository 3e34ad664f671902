//! Prometheus metrics, served as text on a separate plain HTTP/1 port.

use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Method, Request, Response, StatusCode};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    invocations: IntCounterVec,
    queue_seconds: HistogramVec,
    compute_seconds: HistogramVec,
    pub in_flight: IntGauge,
    rejections: IntCounterVec,
    pub ready: IntGauge,
    pub connections: IntGauge,
    pub open_streams: IntGauge,
}

const BUCKETS: [f64; 14] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let invocations = IntCounterVec::new(
            Opts::new("tandem_worker_invocations_total", "Kernel calls by kernel and status code."),
            &["kernel", "code"],
        )
        .expect("static metric definition");
        let histogram = |name: &str, help: &str| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()), &["kernel"])
                .expect("static metric definition")
        };
        let queue_seconds = histogram("tandem_worker_queue_seconds", "Time calls waited for a compute slot.");
        let compute_seconds = histogram("tandem_worker_compute_seconds", "Time kernels ran.");
        let in_flight =
            IntGauge::new("tandem_worker_in_flight", "Calls being served now.").expect("static metric definition");
        let rejections = IntCounterVec::new(
            Opts::new(
                "tandem_worker_rejections_total",
                "Calls refused before running, connections refused, and calls ended early, by reason.",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let ready = IntGauge::new("tandem_worker_ready", "1 while the worker is ready to serve calls.")
            .expect("static metric definition");
        let connections = IntGauge::new("tandem_worker_connections", "Client connections open now.")
            .expect("static metric definition");
        let open_streams = IntGauge::new("tandem_worker_open_streams", "InvokeStream calls open now.")
            .expect("static metric definition");
        for collector in [
            Box::new(invocations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queue_seconds.clone()),
            Box::new(compute_seconds.clone()),
            Box::new(in_flight.clone()),
            Box::new(rejections.clone()),
            Box::new(ready.clone()),
            Box::new(connections.clone()),
            Box::new(open_streams.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        Metrics {
            registry,
            invocations,
            queue_seconds,
            compute_seconds,
            in_flight,
            rejections,
            ready,
            connections,
            open_streams,
        }
    }

    pub fn record_call(&self, kernel: &str, code: &str, queue: Duration, compute: Duration) {
        self.invocations.with_label_values(&[kernel, code]).inc();
        self.queue_seconds.with_label_values(&[kernel]).observe(queue.as_secs_f64());
        self.compute_seconds.with_label_values(&[kernel]).observe(compute.as_secs_f64());
    }

    pub fn reject(&self, reason: &str) {
        self.rejections.with_label_values(&[reason]).inc();
    }

    /// A gauge of the TLS certificate's end of validity (Unix seconds),
    /// registered only on a TLS worker, for expiry alerts.
    pub fn tls_certificate_expiry(&self) -> IntGauge {
        let gauge = IntGauge::new(
            "tandem_worker_tls_certificate_not_after_seconds",
            "When the TLS certificate served now stops being valid (Unix time).",
        )
        .expect("static metric definition");
        // Registered once per worker: a second call returns an unregistered gauge.
        let _ = self.registry.register(Box::new(gauge.clone()));
        gauge
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `GET /metrics` on `listener` until the process exits.
pub async fn serve(listener: std::net::TcpListener, metrics: Arc<Metrics>) -> Result<SocketAddr, hyper::Error> {
    let make = make_service_fn(move |_| {
        let metrics = Arc::clone(&metrics);
        async move {
            Ok::<_, Infallible>(service_fn(move |req: Request<Body>| {
                let metrics = Arc::clone(&metrics);
                async move {
                    let response = if req.method() == Method::GET && req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Body::from(metrics.render()))
                    } else {
                        Response::builder().status(StatusCode::NOT_FOUND).body(Body::from("not found\n"))
                    };
                    Ok::<_, Infallible>(response.unwrap_or_default())
                }
            }))
        }
    });
    let server = hyper::Server::from_tcp(listener)?.serve(make);
    let addr = server.local_addr();
    tokio::spawn(async move {
        if let Err(err) = server.await {
            crate::log::error("metrics server failed", serde_json::json!({ "error": err.to_string() }));
        }
    });
    Ok(addr)
}
