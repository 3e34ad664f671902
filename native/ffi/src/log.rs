//! Structured JSON log lines on stderr, carrying the caller's trace id.

use std::io::Write;
use tandem_kernels::Code;

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
