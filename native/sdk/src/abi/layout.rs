//! Publishes the size, alignment and field offsets of every struct shared
//! with C#, so tests on the .NET side compare them with their own layouts.

use crate::abi::types::*;
use std::ffi::{c_char, CString};
use std::mem::{align_of, offset_of, size_of};
use std::sync::OnceLock;

macro_rules! layout_line {
    ($t:ty, $($field:ident),+) => {
        format!(
            "{} size={} align={}{}",
            stringify!($t),
            size_of::<$t>(),
            align_of::<$t>(),
            [$(format!(" {}={}", stringify!($field), offset_of!($t, $field))),+].concat()
        )
    };
}

/// One line per struct: `name size=N align=N field=offset ...`.
pub fn layout_table() -> String {
    [
        layout_line!(tandem_tensor_t, data, byte_len, shape, rank, dtype),
        layout_line!(tandem_tensor_mut_t, data, byte_len, shape, rank, dtype),
        layout_line!(tandem_param_t, kind, reserved, int_value, float_value),
        layout_line!(tandem_call_context_t, timeout_ns, cancel, trace_id, span_id, flags, reserved),
        layout_line!(tandem_buffer_t, data, len, capacity),
        layout_line!(tandem_runtime_info_t, abi_version, compute_threads, max_pending, isa),
        layout_line!(tandem_slice_t, data, byte_len),
        layout_line!(tandem_slice_mut_t, data, byte_len),
    ]
    .join("\n")
}

static TABLE: OnceLock<CString> = OnceLock::new();

/// The layout table as a static NUL-terminated string (never freed).
#[no_mangle]
pub extern "C" fn tandem_layout_table() -> *const c_char {
    TABLE.get_or_init(|| CString::new(layout_table()).unwrap_or_default()).as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_documented_abi() {
        assert_eq!(size_of::<tandem_tensor_t>(), 56);
        assert_eq!(size_of::<tandem_tensor_mut_t>(), 56);
        assert_eq!(size_of::<tandem_param_t>(), 24);
        assert_eq!(size_of::<tandem_call_context_t>(), 48);
        assert_eq!(size_of::<tandem_buffer_t>(), 24);
        assert_eq!(size_of::<tandem_runtime_info_t>(), 16);
        assert_eq!(size_of::<tandem_slice_t>(), 16);
        assert_eq!(size_of::<tandem_slice_mut_t>(), 16);
        assert!(layout_table().contains("tandem_tensor_t size=56 align=8 data=0 byte_len=8 shape=16 rank=48 dtype=52"));
    }
}
