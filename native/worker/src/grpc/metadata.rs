//! Request and response metadata: `grpc-timeout`, `traceparent` and the
//! percent-encoding of `grpc-message`.

use std::time::Duration;

/// Parses `grpc-timeout`: 1 to 8 ASCII digits and a unit (H M S m u n).
pub fn parse_timeout(value: &str) -> Option<Duration> {
    let bytes = value.as_bytes();
    let (digits, unit) = bytes.split_at(bytes.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(amount * 3600),
        b"M" => Duration::from_secs(amount * 60),
        b"S" => Duration::from_secs(amount),
        b"m" => Duration::from_millis(amount),
        b"u" => Duration::from_micros(amount),
        b"n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn parse_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(out)
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// `None` when the header is malformed or the ids are all zero.
pub fn parse_traceparent(value: &str) -> Option<[u8; 16]> {
    let parts: Vec<&[u8]> = value.trim().as_bytes().split(|b| *b == b'-').collect();
    if parts.len() < 4 {
        return None;
    }
    let version = parse_hex::<1>(parts[0])?;
    if version[0] == 0xff || (version[0] == 0 && parts.len() != 4) {
        return None;
    }
    let trace_id = parse_hex::<16>(parts[1])?;
    let parent_id = parse_hex::<8>(parts[2])?;
    parse_hex::<1>(parts[3])?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some(trace_id)
}

/// Percent-encodes a `grpc-message`: bytes outside printable ASCII and '%'.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`percent_encode`] (clients and tests); bad escapes stay as-is.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = [bytes[i + 1].to_ascii_lowercase(), bytes[i + 2].to_ascii_lowercase()];
            if let Some([v]) = parse_hex::<1>(&hex) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_every_unit() {
        assert_eq!(parse_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_timeout("0n"), Some(Duration::ZERO));
        assert_eq!(parse_timeout("99999999S"), Some(Duration::from_secs(99_999_999)));
    }

    #[test]
    fn timeouts_refuse_malformed_values() {
        for bad in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S", "5 S", "५S"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn traceparent_yields_the_trace_id() {
        let id = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(id[0], 0x4b);
        assert_eq!(id[15], 0x36);
    }

    #[test]
    fn traceparent_refuses_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn percent_encoding_round_trips() {
        assert_eq!(percent_encode("plain text"), "plain text");
        assert_eq!(percent_encode("100% ok"), "100%25 ok");
        assert_eq!(percent_encode("naïve\n"), "na%C3%AFve%0A");
        for text in ["", "a%b", "naïve\n", "日本", "%%"] {
            assert_eq!(percent_decode(&percent_encode(text)), text);
        }
    }
}
