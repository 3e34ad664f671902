//! Structured JSON log lines on stderr, carrying the caller's trace id.

use crate::Code;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

/// 0 = errors only (default), 1 = also one line per kernel call.
static LEVEL: AtomicU32 = AtomicU32::new(0);

/// Sets what the library logs: 0 = internal errors only, 1 = every kernel
/// call too (kernel, trace id, code, microseconds). Returns the previous level.
#[no_mangle]
pub extern "C" fn tandem_log_set_level(level: u32) -> u32 {
    LEVEL.swap(level.min(1), Ordering::Relaxed)
}

pub(crate) fn calls_enabled() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 1
}

/// One line per completed call, when enabled.
pub fn call(kernel: &str, trace_id: &[u8; 16], code: Code, micros: u128) {
    let line = call_line(kernel, trace_id, code, micros);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn call_line(kernel: &str, trace_id: &[u8; 16], code: Code, micros: u128) -> String {
    let trace: String = trace_id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{{\"ts\":{:.6},\"level\":\"info\",\"target\":\"tandem\",\"kernel\":\"{}\",\"trace_id\":\"{}\",\"code\":\"{}\",\"duration_us\":{micros}}}\n",
        now(),
        escape(kernel),
        trace,
        code.name()
    )
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One error line: what failed, its code, the correlation id and detail.
pub fn error(operation: &str, trace_id: Option<&str>, code: Code, correlation_id: &str, detail: &str) {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let line = format!(
        "{{\"ts\":{ts:.6},\"level\":\"error\",\"target\":\"tandem\",\"operation\":\"{}\",\"trace_id\":\"{}\",\"code\":\"{}\",\"correlation_id\":\"{}\",\"detail\":\"{}\"}}\n",
        escape(operation),
        trace_id.unwrap_or(""),
        code.name(),
        correlation_id,
        escape(detail)
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// One warning line: a setting the library ignored and why (the host keeps
/// running; `detail` says what was used instead).
pub fn warning(operation: &str, detail: &str) {
    let line = warning_line(operation, detail);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn warning_line(operation: &str, detail: &str) -> String {
    format!(
        "{{\"ts\":{:.6},\"level\":\"warn\",\"target\":\"tandem\",\"operation\":\"{}\",\"detail\":\"{}\"}}\n",
        now(),
        escape(operation),
        escape(detail)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_lines_are_json_with_the_callers_trace_id() {
        let mut trace = [0u8; 16];
        trace[0] = 0xab;
        trace[15] = 0x01;
        let line = call_line("similarity.topk", &trace, Code::Ok, 42);
        assert!(line.contains("\"trace_id\":\"ab000000000000000000000000000001\""), "{line}");
        assert!(line.contains("\"kernel\":\"similarity.topk\""));
        assert!(line.contains("\"code\":\"OK\""));
        assert!(line.contains("\"duration_us\":42"));
        assert!(line.ends_with("}\n"));
    }

    #[test]
    fn warning_lines_are_json_naming_the_operation() {
        let line = warning_line("simd.detect", "TANDEM_ISA='x' is \"bad\"");
        assert!(line.contains("\"level\":\"warn\""), "{line}");
        assert!(line.contains("\"operation\":\"simd.detect\""), "{line}");
        assert!(line.contains("is \\\"bad\\\""), "{line}");
        assert!(line.ends_with("}\n"));
    }

    #[test]
    fn the_level_switch_reports_the_previous_level() {
        let before = tandem_log_set_level(1);
        assert!(calls_enabled());
        assert_eq!(tandem_log_set_level(before), 1);
    }
}
