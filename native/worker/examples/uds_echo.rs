//! The latency floor for the Remote backend: a Rust process that echoes
//! fixed-size messages over a Unix socket, one thread per connection, no
//! framing beyond the fixed size. `bench/Tandem.Benchmarks -- roundtrip`
//! ping-pongs 64 bytes with it from .NET, side by side with the real calls.
//!
//! Usage: cargo run --release -p tandem-worker --example uds_echo -- SOCKET [SIZE]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: uds_echo SOCKET [SIZE]");
        std::process::exit(2);
    };
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("uds_echo: cannot bind {path}: {e}");
            std::process::exit(1);
        }
    };
    println!("{{\"event\":\"listening\",\"address\":\"{path}\"}}");
    let _ = std::io::stdout().flush();
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buffer = vec![0u8; size];
            while stream.read_exact(&mut buffer).is_ok() {
                if stream.write_all(&buffer).is_err() {
                    break;
                }
            }
        });
    }
}
