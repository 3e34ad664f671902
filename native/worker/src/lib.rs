//! tandem-worker: Tandem's kernels served over gRPC (HTTP/2, h2c) as
//! `tandem.v1.Accelerator`, next to the standard `grpc.health.v1.Health`.
//!
//! Layout:
//! - [`args`]: command-line options.
//! - [`auth`]: the shared token required on TCP.
//! - [`tls`]: TLS on TCP, certificates reloaded when their files change.
//! - [`pb`]: wire types generated from `proto/`.
//! - [`grpc`]: framing, metadata, request reading and response bodies.
//! - [`server`]: HTTP/2 request handling and routing.
//! - [`fast`]: the local fast path, a second Unix socket with length-prefixed frames.
//! - [`calls`]: what a call goes through on either transport: dispatch,
//!   deadline, drain tracking, per-call logs and metrics.
//! - [`service`]: the Accelerator RPCs (invoke, streams, states, regions).
//! - [`health`]: readiness and liveness, Check and Watch.
//! - [`shm`]: registered shared-memory regions.
//! - [`states`]: named kernel states.
//! - [`admission`]: fixed fan-in and the compute-pool hand-off.
//! - [`lifecycle`]: readiness, drain and calls in flight.
//! - [`connections`]: the cap on open connections.
//! - [`log`], [`metrics`]: JSON logs on stderr, Prometheus metrics.
//!
//! See README.md for the command line and behaviour.
//!
//! [`start`] binds, warms up and serves; [`Worker::wait`] returns after a
//! drain (SIGTERM in the binary, or the Drain RPC) has finished.

pub mod admission;
pub mod args;
pub mod auth;
pub mod calls;
pub mod catalog;
pub mod connections;
pub mod fast;
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod health;
pub mod lifecycle;
pub mod log;
pub mod metrics;
pub mod pb;
pub mod server;
pub mod service;
pub mod shm;
pub mod states;
pub mod tls;

use args::{Config, Endpoint};
use hyper::server::conn::Http;
use hyper::service::service_fn;
use serde_json::json;
use service::App;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long open connections get to close after the drain.
const CONNECTION_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long cancelled calls get to notice their flag after the grace period.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

/// A running worker.
pub struct Worker {
    /// `unix:PATH` or `HOST:PORT`.
    pub address: String,
    pub metrics_address: Option<SocketAddr>,
    /// Where the plaintext health-only listener is (`--health-listen`).
    pub health_address: Option<SocketAddr>,
    app: Arc<App>,
    done: JoinHandle<()>,
}

impl Worker {
    /// Starts a drain, as SIGTERM does.
    pub fn drain(&self) {
        self.app.lifecycle.request_drain();
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Waits until the worker has drained and stopped serving.
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, Option<Arc<tls::Tls>>),
}

pub(crate) fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the socket path exists and is not a socket",
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "another process is serving on the socket"));
        }
        std::fs::remove_file(path)?;
    }
    // No umask change (process-wide, so it would race other threads creating
    // files): the socket is bound inside a fresh 0700 directory next to its
    // path, where nobody else can reach it, made 0600, then renamed into
    // place (atomic, same directory's filesystem).
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let private = parent.join(format!(".tb{}-{}", std::process::id(), BIND_COUNTER.fetch_add(1, Ordering::Relaxed)));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("s");
    let bound = match UnixListener::bind(&staged) {
        Ok(listener) => std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&staged, path))
            .map(|()| listener),
        // The staged path is a few bytes longer than `path`: when only `path`
        // fits a socket address, bind there and restrict it at once (a
        // socket needs write permission to connect, which the usual umask
        // already withholds from others).
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => UnixListener::bind(path).and_then(|listener| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map(|()| listener)
        }),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    bound
}

/// Makes each bind's private directory name unique within the process.
static BIND_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Binds, starts serving (liveness SERVING at once), warms every kernel up
/// in the background and then turns readiness SERVING.
pub async fn start(config: Config) -> std::io::Result<Worker> {
    log::set_level(config.log_level);
    check_authentication(&config)?;
    // Libraries first: a refused one must not leave a bound socket behind.
    let catalog = catalog::Catalog::load(&config.kernel_libraries)
        .map_err(|message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message))?;
    // Certificates before binding too, for the same reason.
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(
            tls::Tls::load(files.clone()).map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidInput, m))?,
        )),
        None => None,
    };
    let listener = match &config.endpoint {
        Endpoint::Unix(path) => Listener::Unix(bind_unix(path)?, path.clone()),
        Endpoint::Tcp(addr) => Listener::Tcp(TcpListener::bind(addr).await?, tls.clone()),
    };
    let address = match &listener {
        Listener::Unix(_, path) => format!("unix:{}", path.display()),
        Listener::Tcp(l, _) => l.local_addr()?.to_string(),
    };
    let health_listener = match config.health_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let health_address = match &health_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    // Only next to a Unix socket: the fast path is for clients on this host.
    let fast = match &listener {
        Listener::Unix(_, path) if config.fast_path => fast::bind(path),
        _ => None,
    };
    let metrics_config = config.metrics;
    let mut app = App::new(config, catalog);
    app.fast_path_socket = fast.as_ref().map(|(_, path)| path.clone());
    let app = Arc::new(app);
    let metrics_address = match metrics_config {
        Some(addr) => {
            let std_listener = std::net::TcpListener::bind(addr)?;
            std_listener.set_nonblocking(true)?;
            Some(metrics::serve(std_listener, Arc::clone(&app.metrics)).await.map_err(std::io::Error::other)?)
        }
        None => None,
    };
    if let Some(tls) = &tls {
        let expiry = app.metrics.tls_certificate_expiry();
        expiry.set(tls.not_after());
        tokio::spawn(watch_certificates(Arc::clone(tls), expiry, app.lifecycle.watch_shutdown()));
    }
    log::info(
        "listening",
        json!({ "address": address, "metrics": metrics_address.map(|a| a.to_string()), "instance": app.instance_id,
                "version": app.worker_version, "tls": tls.is_some(),
                "health": health_address.map(|a| a.to_string()),
                "fast_path": app.fast_path_socket.as_ref().map(|p| p.display().to_string()) }),
    );
    let limit = Arc::new(connections::ConnectionLimit::new(app.config.max_connections, Arc::clone(&app.metrics)));
    let grpc = accept_loop(listener, Arc::clone(&app), Arc::clone(&limit), Route::All);
    let fast =
        fast.map(|(fast_listener, path)| fast::accept_loop(fast_listener, path, Arc::clone(&app), Arc::clone(&limit)));
    let health =
        health_listener.map(|l| accept_loop(Listener::Tcp(l, None), Arc::clone(&app), limit, Route::HealthOnly));
    let accept = tokio::spawn(async move {
        let fast = async move {
            if let Some(fast) = fast {
                fast.await
            }
        };
        let health = async move {
            if let Some(health) = health {
                health.await
            }
        };
        tokio::join!(grpc, fast, health);
    });
    let warm = tokio::spawn(warm_up(Arc::clone(&app)));
    let done = tokio::spawn(run_lifecycle(Arc::clone(&app), accept, warm));
    Ok(Worker { address, metrics_address, health_address, app, done })
}

/// Takes changed certificate files even while no connection arrives (the
/// accept path checks before each handshake too), keeps the expiry gauge
/// current, and warns (once per certificate and state) when the served
/// certificate is within a week of its end of validity or past it: a
/// certificate in service is not refused as it expires, clients refuse it.
async fn watch_certificates(
    tls: Arc<tls::Tls>,
    expiry: prometheus::IntGauge,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(tls::RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned: Option<(i64, &str)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let tls = Arc::clone(&tls);
        // File reads and signature checks: off the I/O threads.
        if let Ok(not_after) = tokio::task::spawn_blocking(move || {
            tls.check_for_change();
            tls.not_after()
        })
        .await
        {
            expiry.set(not_after);
            let state = tls::expiry_state(tls::unix_now(), not_after);
            if let Some(state) = state.filter(|s| warned != Some((not_after, *s))) {
                log::warn(
                    &format!("tls certificate {state}; rotate it"),
                    json!({ "not_after": not_after, "seconds_left": not_after - tls::unix_now() }),
                );
                warned = Some((not_after, state));
            }
        }
    }
}

/// On TCP anyone who can reach the port could call Drain or CreateState:
/// a token is required there unless tests opt out explicitly on loopback.
fn check_authentication(config: &Config) -> std::io::Result<()> {
    let refuse = |message: String| Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, message));
    let Endpoint::Tcp(addr) = &config.endpoint else { return Ok(()) };
    match (&config.token, config.insecure_no_auth) {
        (Some(_), _) => Ok(()),
        (None, false) => refuse(format!(
            "--listen {addr} needs a token: write one (16 or more visible characters) to a file readable by its \
             owner only and pass --token-file PATH, or set ${}; --insecure-no-auth turns this off for tests on \
             loopback",
            auth::TOKEN_ENV
        )),
        (None, true) if !addr.ip().is_loopback() => refuse(format!(
            "--insecure-no-auth is allowed only on a loopback address, not --listen {addr}; give a token \
             (--token-file PATH or ${})",
            auth::TOKEN_ENV
        )),
        (None, true) => {
            log::warn(
                "authentication is off (--insecure-no-auth)",
                json!({ "address": addr.to_string(), "note": "any local process may call every RPC; tests only" }),
            );
            Ok(())
        }
    }
}

async fn warm_up(app: Arc<App>) {
    let started = std::time::Instant::now();
    match service::invoke::warm_up(&app).await {
        Ok(()) => log::info("warm-up done", json!({ "duration_us": started.elapsed().as_micros() as u64 })),
        Err(err) => log::warn("warm-up failed", json!({ "code": err.code.name(), "message": err.message })),
    }
    if app.lifecycle.set_serving() {
        app.metrics.ready.set(1);
        log::info("serving", json!({ "instance": app.instance_id }));
    }
}

async fn run_lifecycle(app: Arc<App>, accept: JoinHandle<()>, warm: JoinHandle<()>) {
    app.lifecycle.drain_requested().await;
    app.metrics.ready.set(0);
    let in_flight = app.lifecycle.in_flight();
    log::info("draining", json!({ "in_flight": in_flight, "grace_ms": app.config.grace.as_millis() as u64 }));
    if !app.lifecycle.wait_idle(app.config.grace).await {
        let cancelled = app.lifecycle.cancel_all();
        log::warn("grace period over; cancelling calls", json!({ "cancelled": cancelled }));
        app.lifecycle.wait_idle(CANCEL_TIMEOUT).await;
    }
    warm.abort();
    app.lifecycle.shut_down();
    let _ = accept.await;
    if let Endpoint::Unix(path) = &app.config.endpoint {
        let _ = std::fs::remove_file(path);
    }
    log::info("exit", json!({ "instance": app.instance_id }));
    log::flush();
}

fn http2(max_streams_per_connection: u32) -> Http {
    let mut http = Http::new();
    http.http2_only(true)
        .http2_initial_stream_window_size(1 << 20)
        .http2_initial_connection_window_size(4 << 20)
        .http2_max_frame_size(1 << 20)
        .http2_max_concurrent_streams(max_streams_per_connection);
    http
}

/// What a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    All,
    /// `--health-listen`: grpc.health.v1.Health only.
    HealthOnly,
}

async fn accept_loop(listener: Listener, app: Arc<App>, limit: Arc<connections::ConnectionLimit>, route: Route) {
    let mut shutdown = app.lifecycle.watch_shutdown();
    // Each connection holds a sender; when all are gone, `recv` yields None.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = async {
                match &listener {
                    Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Connection::Unix(s)),
                    Listener::Tcp(l, _) => l.accept().await.map(|(s, peer)| { let _ = s.set_nodelay(true); Connection::Tcp(s, peer) }),
                }
            } => accepted,
        };
        match accepted {
            Ok(Connection::Unix(stream)) => match limit.admit() {
                Some(permit) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&app), (open_tx.clone(), permit), route));
                }
                None => limit.refuse(stream.into_std()),
            },
            Ok(Connection::Tcp(stream, peer)) => match (limit.admit(), &listener) {
                (Some(permit), Listener::Tcp(_, Some(tls))) => {
                    // In the connection's task: a reload of changed files never holds up accepting.
                    let (app, open, tls) = (Arc::clone(&app), (open_tx.clone(), permit), Arc::clone(tls));
                    tokio::spawn(async move {
                        if let Some(stream) = handshake(&app, tls.acceptor(), stream, peer).await {
                            serve_connection(stream, app, open, route).await;
                        }
                    });
                }
                (Some(permit), _) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&app), (open_tx.clone(), permit), route));
                }
                (None, _) => limit.refuse(stream.into_std()),
            },
            Err(err) => {
                log::warn("accept failed", json!({ "error": err.to_string() }));
                // Out of descriptors, typically: back off instead of spinning.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    drop(open_tx);
    if tokio::time::timeout(CONNECTION_CLOSE_TIMEOUT, open_rx.recv()).await.is_err() {
        log::warn("connections still open at exit", json!({}));
    }
}

enum Connection {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, SocketAddr),
}

/// The TLS handshake of an accepted connection, bounded by
/// [`tls::HANDSHAKE_TIMEOUT`]. A client that speaks plaintext (its first
/// byte is not a TLS handshake record: an h2c preface starts with `P`) is
/// closed without a handshake. Failures are counted by reason and logged,
/// at most one line per second so a scanner cannot flood the log.
async fn handshake(
    app: &App,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let outcome = tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) => return Err(("closed", "the client closed the connection before its handshake".to_owned())),
            Ok(_) if first[0] != tls::HANDSHAKE_RECORD => {
                return Err((
                    "tls_plaintext",
                    "the client spoke plaintext to a TLS port (an h2c client?); it must use TLS".to_owned(),
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(("closed", e.to_string())),
        }
        acceptor.accept(stream).await.map_err(|e| ("tls_handshake", e.to_string()))
    })
    .await
    .unwrap_or_else(|_| Err(("tls_handshake", format!("no handshake within {:?}", tls::HANDSHAKE_TIMEOUT))));
    match outcome {
        Ok(stream) => Some(stream),
        Err((reason, error)) => {
            if reason != "closed" {
                app.metrics.reject(reason);
                if HANDSHAKE_LOG.allow() {
                    log::warn(
                        "tls connection refused",
                        json!({ "peer": peer.to_string(), "reason": reason, "error": error }),
                    );
                }
            }
            None
        }
    }
}

/// At most one handshake failure line per second.
static HANDSHAKE_LOG: log::RateLimit = log::RateLimit::per_second();

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    app: Arc<App>,
    _open: (mpsc::Sender<()>, connections::Permit),
    route: Route,
) {
    let mut shutdown = app.lifecycle.watch_shutdown();
    let max_streams = app.config.max_streams_per_connection;
    let service = service_fn(move |req| {
        let app = Arc::clone(&app);
        async move {
            Ok::<_, Infallible>(match route {
                Route::All => server::handle(app, req).await,
                Route::HealthOnly => server::handle_health_only(app, req).await,
            })
        }
    });
    let connection = http2(max_streams).serve_connection(stream, service);
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = async { while !*shutdown.borrow_and_update() { if shutdown.changed().await.is_err() { break } } } => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        log::event(log::Level::Debug, "connection ended", json!({ "error": err.to_string() }));
    }
}
