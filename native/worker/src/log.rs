//! Structured logs: one JSON object per line on stderr, with `ts`, `level`
//! and `msg` first and the event's fields after them.
//!
//! Info and debug lines (one `call` line per call) are written in batches:
//! a line waits at most [`FLUSH_INTERVAL`] in a buffer of at most
//! [`FLUSH_BYTES`], so a busy worker makes one write every few milliseconds
//! instead of one per call — and the supervising client, which reads the
//! worker's stderr, wakes once per batch rather than once per call (on two
//! cores, a line written per call cost a tiny call's round trip about 20 µs,
//! as much as the call itself; docs/performance.md).
//! Warnings and errors go out at once, after whatever was buffered, so the
//! order of lines is kept and nothing important waits.

use serde_json::{Map, Value};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest time an info or debug line waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Buffered bytes that are written at once, without waiting.
pub const FLUSH_BYTES: usize = 64 * 1024;

/// Lines not written yet, and the signal that wakes the flusher.
struct Pending {
    lines: Mutex<Vec<u8>>,
    ready: Condvar,
}

fn pending() -> &'static Pending {
    static PENDING: OnceLock<Pending> = OnceLock::new();
    PENDING.get_or_init(|| {
        // The flusher: waits for a first buffered line, lets more gather for
        // FLUSH_INTERVAL, writes them all. Without one (it could not start),
        // lines are written as they come.
        let started = std::thread::Builder::new().name("tandem-log".into()).spawn(|| loop {
            let pending = pending();
            {
                let Ok(lines) = pending.lines.lock() else { return };
                let Ok(_lines) = pending.ready.wait_while(lines, |l| l.is_empty()) else { return };
            }
            std::thread::sleep(FLUSH_INTERVAL);
            flush();
        });
        if started.is_err() {
            SYNCHRONOUS.store(true, Ordering::Relaxed);
        }
        Pending { lines: Mutex::new(Vec::new()), ready: Condvar::new() }
    })
}

static SYNCHRONOUS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes every buffered line now (at exit, and before a warning or error).
pub fn flush() {
    let batch = match pending().lines.lock() {
        Ok(mut lines) => std::mem::take(&mut *lines),
        Err(_) => return,
    };
    write_now(&batch);
}

fn write_now(bytes: &[u8]) {
    if !bytes.is_empty() {
        // A log line that cannot be written is dropped rather than failing a call.
        let _ = std::io::stderr().lock().write_all(bytes);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.to_ascii_lowercase().as_str() {
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" | "trace" => Level::Debug,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes one event; `fields` should be a JSON object.
pub fn event(level: Level, msg: &str, fields: Value) {
    if !enabled(level) {
        return;
    }
    let mut line = Map::new();
    line.insert("ts".into(), Value::String(timestamp()));
    line.insert("level".into(), Value::String(level.name().into()));
    line.insert("msg".into(), Value::String(msg.into()));
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    let mut text = Value::Object(line).to_string();
    text.push('\n');
    emit(level, text.as_bytes());
}

/// The fields of the per-call line.
pub struct CallLine<'a> {
    pub level: Level,
    pub method: &'a str,
    pub kernel: &'a str,
    pub transport: &'a str,
    /// All zero: none.
    pub trace_id: &'a [u8; 16],
    pub code: &'a str,
    pub queue_us: u64,
    pub compute_us: u64,
    pub duration_us: u64,
    pub instance: &'a str,
}

/// Writes the `call` line of one call: the same JSON an [`event`] would
/// write, built straight into its bytes (no JSON tree), since every call
/// pays for it.
pub fn call(line: &CallLine<'_>) {
    if enabled(line.level) {
        emit(line.level, &call_line(line));
    }
}

fn call_line(line: &CallLine<'_>) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    let mut text: Vec<u8> = Vec::with_capacity(320);
    let _ =
        write!(text, "{{\"ts\":\"{}\",\"level\":\"{}\",\"msg\":\"call\",\"method\":", timestamp(), line.level.name());
    let _ = serde_json::to_writer(&mut text, line.method);
    text.extend_from_slice(b",\"kernel\":");
    let _ = serde_json::to_writer(&mut text, line.kernel);
    text.extend_from_slice(b",\"transport\":");
    let _ = serde_json::to_writer(&mut text, line.transport);
    text.extend_from_slice(b",\"trace_id\":");
    if line.trace_id.iter().all(|b| *b == 0) {
        text.extend_from_slice(b"null");
    } else {
        text.push(b'"');
        for byte in line.trace_id {
            let _ = write!(text, "{byte:02x}");
        }
        text.push(b'"');
    }
    text.extend_from_slice(b",\"code\":");
    let _ = serde_json::to_writer(&mut text, line.code);
    let _ = write!(
        text,
        ",\"queue_us\":{},\"compute_us\":{},\"duration_us\":{},\"instance\":",
        line.queue_us, line.compute_us, line.duration_us
    );
    let _ = serde_json::to_writer(&mut text, line.instance);
    text.extend_from_slice(b"}\n");
    text
}

/// Buffers an info or debug line; writes a warning or error at once, after
/// what was buffered.
fn emit(level: Level, text: &[u8]) {
    if level <= Level::Warn || SYNCHRONOUS.load(Ordering::Relaxed) {
        flush();
        write_now(text);
        return;
    }
    let pending = pending();
    let full = match pending.lines.lock() {
        Ok(mut lines) => {
            let was_empty = lines.is_empty();
            lines.extend_from_slice(text);
            if was_empty {
                pending.ready.notify_one();
            }
            lines.len() >= FLUSH_BYTES
        }
        Err(_) => {
            write_now(text);
            false
        }
    };
    if full {
        flush();
    }
}

pub fn info(msg: &str, fields: Value) {
    event(Level::Info, msg, fields);
}

pub fn warn(msg: &str, fields: Value) {
    event(Level::Warn, msg, fields);
}

pub fn error(msg: &str, fields: Value) {
    event(Level::Error, msg, fields);
}

/// RFC 3339 UTC time with microseconds.
fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

/// Lets at most one log line per wall-clock second through, for events a
/// remote peer can trigger at will (refused handshakes).
pub struct RateLimit {
    last_second: std::sync::atomic::AtomicU64,
}

impl RateLimit {
    pub const fn per_second() -> RateLimit {
        RateLimit { last_second: std::sync::atomic::AtomicU64::new(0) }
    }

    /// True for the first caller in each second.
    pub fn allow(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last = self.last_second.load(Ordering::Relaxed);
        now > last && self.last_second.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_call_line_is_the_json_an_event_would_write() {
        let mut trace_id = [0u8; 16];
        trace_id[15] = 0xab;
        let line = super::CallLine {
            level: super::Level::Info,
            method: "Invoke",
            kernel: "a \"quoted\" kernel\n",
            transport: "fast",
            trace_id: &trace_id,
            code: "OK",
            queue_us: 1,
            compute_us: 2,
            duration_us: 3,
            instance: "7-1f",
        };
        let text = String::from_utf8(super::call_line(&line)).unwrap();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["msg"], "call");
        assert_eq!(value["kernel"], "a \"quoted\" kernel\n");
        assert_eq!(value["trace_id"], "000000000000000000000000000000ab");
        assert_eq!((value["queue_us"].as_u64(), value["duration_us"].as_u64()), (Some(1), Some(3)));
        assert_eq!(value["transport"], "fast");
        assert!(value["ts"].as_str().unwrap().ends_with('Z'));
        let none = super::CallLine { trace_id: &[0; 16], ..line };
        let value: serde_json::Value = serde_json::from_slice(&super::call_line(&none)).unwrap();
        assert!(value["trace_id"].is_null());
    }

    fn buffered(marker: &str) -> bool {
        let lines = super::pending().lines.lock().unwrap();
        String::from_utf8_lossy(&lines).contains(marker)
    }

    #[test]
    fn a_warning_writes_the_buffered_lines_before_itself() {
        super::info("buffered", serde_json::json!({ "marker": "b7c1e0" }));
        super::warn("urgent", serde_json::json!({}));
        assert!(!buffered("b7c1e0"), "the info line went out with the warning, in order");
        super::info("buffered", serde_json::json!({ "marker": "5d2a9f" }));
        super::flush();
        assert!(!buffered("5d2a9f"));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let ts = super::timestamp();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.starts_with("20") && ts.ends_with('Z') && &ts[10..11] == "T", "{ts}");
    }
}
