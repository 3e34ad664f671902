//! The tandem-worker binary: parses options, starts the worker, prints one
//! `listening` line on stdout, and drains on SIGTERM or SIGINT (or, with
//! `--supervised`, when stdin closes).

use std::io::{Read, Write};
use std::process::ExitCode;
use tandem_worker::args::{self, Command};

fn main() -> ExitCode {
    let (command, mut config) = match args::parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("tandem-worker: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Version => {
            let abi = tandem_sdk::ABI_VERSION;
            println!("tandem-worker {} (abi {}.{})", env!("CARGO_PKG_VERSION"), abi >> 16, abi & 0xffff);
            return ExitCode::SUCCESS;
        }
        Command::Help => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Run => {}
    }
    let from_env = std::env::var_os(tandem_worker::auth::TOKEN_ENV);
    config.token = match tandem_worker::auth::Token::resolve(config.token_file.as_deref(), from_env) {
        Ok(token) => token,
        Err(message) => {
            eprintln!("tandem-worker: {message}");
            return ExitCode::from(2);
        }
    };
    let supervised = config.supervised;
    if supervised {
        // Own process group: a terminal's Ctrl-C reaches the supervisor only,
        // which drains its workers in order instead of racing their restarts.
        // SAFETY: setpgid(0, 0) moves this process into a new group; it touches no memory.
        unsafe { libc::setpgid(0, 0) };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("tandem-io").build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tandem-worker: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let worker = match tandem_worker::start(config).await {
            Ok(worker) => worker,
            Err(err) if err.kind() == std::io::ErrorKind::InvalidInput => {
                // A kernel library was refused: a configuration error, like a bad flag.
                tandem_worker::log::error("cannot start", serde_json::json!({ "error": err.to_string() }));
                return ExitCode::from(2);
            }
            Err(err) => {
                tandem_worker::log::error("cannot listen", serde_json::json!({ "error": err.to_string() }));
                return ExitCode::FAILURE;
            }
        };
        let line = serde_json::json!({ "event": "listening", "address": worker.address });
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
        drop(stdout);
        let app = std::sync::Arc::clone(worker.app());
        if supervised {
            // The supervisor holds our stdin open and never writes: end of
            // file means it is gone (even killed with SIGKILL), so drain
            // rather than serve on as an orphan.
            let app = std::sync::Arc::clone(&app);
            std::thread::spawn(move || {
                let mut sink = [0u8; 64];
                while matches!(std::io::stdin().lock().read(&mut sink), Ok(n) if n > 0) {}
                tandem_worker::log::info("supervisor gone", serde_json::json!({ "stdin": "closed" }));
                app.lifecycle.request_drain();
            });
        }
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                return;
            };
            let name = tokio::select! { _ = term.recv() => "SIGTERM", _ = int.recv() => "SIGINT" };
            tandem_worker::log::info("signal", serde_json::json!({ "signal": name }));
            app.lifecycle.request_drain();
        });
        worker.wait().await;
        tandem_worker::log::flush();
        ExitCode::SUCCESS
    })
}
