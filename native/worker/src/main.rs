//! The tandem-worker binary: parses options, starts the worker, prints one
//! `listening` line on stdout, and drains on SIGTERM or SIGINT.

use std::io::Write;
use std::process::ExitCode;
use tandem_worker::args::{self, Command};

fn main() -> ExitCode {
    let (command, config) = match args::parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("tandem-worker: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Version => {
            let abi = tandem_kernels::ABI_VERSION;
            println!("tandem-worker {} (abi {}.{})", env!("CARGO_PKG_VERSION"), abi >> 16, abi & 0xffff);
            return ExitCode::SUCCESS;
        }
        Command::Help => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Run => {}
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
        ExitCode::SUCCESS
    })
}
