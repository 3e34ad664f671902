//! The Accelerator service: what each RPC does, independent of transport.
//!
//! - [`tensors`]: decoding tensors and allocating outputs.
//! - [`invoke`]: `Invoke` and the start-up warm-up.
//! - [`stream`]: the `InvokeStream` RPC.
//! - [`admin`]: `Describe`, states, shared memory and `Drain`.

pub mod admin;
pub mod invoke;
pub mod stream;
pub mod tensors;

use crate::admission::Admission;
use crate::args::Config;
use crate::catalog::Catalog;
use crate::grpc::{status, Code, Status};
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::shm::Regions;
use crate::states::States;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tandem_sdk::CallContext;

/// Largest messages the worker buffers at once, across all calls.
pub const RECEIVE_BUDGET_MESSAGES: usize = 4;

/// Everything the handlers share.
pub struct App {
    pub config: Config,
    /// The kernels served: the built-in library and every `--kernels` library.
    pub catalog: Arc<Catalog>,
    pub instance_id: String,
    pub worker_version: String,
    pub states: States,
    pub regions: Regions,
    pub admission: Admission,
    pub lifecycle: Arc<Lifecycle>,
    pub metrics: Arc<Metrics>,
    /// Bytes of large request messages buffered at once, across all calls.
    pub receive_budget: Arc<tokio::sync::Semaphore>,
    /// InvokeStream calls open at once (`--max-open-streams`).
    pub open_streams: Arc<tokio::sync::Semaphore>,
    /// The fast path's socket, when the worker offers one (src/fast).
    pub fast_path_socket: Option<std::path::PathBuf>,
}

impl App {
    pub fn new(config: Config, catalog: Catalog) -> App {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let version = env!("CARGO_PKG_VERSION");
        App {
            instance_id: format!("{}-{started:x}", std::process::id()),
            worker_version: match &config.build_id {
                Some(id) => format!("{version}+{id}"),
                None => version.to_owned(),
            },
            catalog: Arc::new(catalog),
            states: States::new(config.max_states, config.max_state_bytes),
            regions: Regions::with_limit(&config.shm_dir, config.max_regions),
            admission: Admission::new(config.max_concurrency, config.max_queue),
            lifecycle: Arc::new(Lifecycle::new()),
            metrics: Arc::new(Metrics::new()),
            receive_budget: crate::grpc::request::receive_budget(
                config.max_message_bytes.saturating_mul(RECEIVE_BUDGET_MESSAGES),
            ),
            open_streams: Arc::new(tokio::sync::Semaphore::new(config.max_open_streams)),
            fast_path_socket: None,
            config,
        }
    }

    /// New work is refused while draining.
    pub fn refuse_if_draining(&self) -> Result<(), Status> {
        if self.lifecycle.is_draining() {
            self.metrics.reject("draining");
            return Err(status(Code::Unavailable, "worker is draining; send the call to another worker"));
        }
        Ok(())
    }
}

/// One call as the transport saw it, plus what the handler reports back.
pub struct Call {
    pub method: &'static str,
    pub ctx: CallContext,
    pub kernel: String,
    pub queue: Duration,
    pub compute: Duration,
    pub started: Instant,
}

impl Call {
    pub fn new(method: &'static str, ctx: CallContext) -> Call {
        Call {
            method,
            ctx,
            kernel: String::new(),
            queue: Duration::ZERO,
            compute: Duration::ZERO,
            started: Instant::now(),
        }
    }
}
