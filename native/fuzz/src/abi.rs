//! The C ABI target: fuzz bytes become calls of the exported `tandem_*`
//! functions — kernel names, tensor counts, dtypes, ranks, shapes, byte
//! lengths (which may disagree with the shapes), alignment, aliasing,
//! parameters, states and streams. Every pointer is a buffer this harness
//! owns and that is at least `byte_len` long: what is fuzzed is the ABI's
//! decoding and validation, not wild pointers. Every outcome must be null or
//! an error with a known code and a message; anything else aborts.

use crate::reader::Reader;
use std::ffi::{c_void, CStr};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;
use tandem_sdk::abi::*;
use tandem_sdk::descriptor::KernelSet;

/// Largest tensor buffer one input allocates.
const MAX_BUFFER: usize = 1 << 16;
/// Deadline of every fuzzed call, so large `paths` or `k` stay quick.
const CALL_TIMEOUT: Duration = Duration::from_millis(20);
const CODE_INTERNAL: i32 = 13;

/// The kernels and state kinds the library describes.
struct Catalog {
    kernels: Vec<String>,
    state_kinds: Vec<String>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut buffer = tandem_buffer_t { data: std::ptr::null_mut(), len: 0, capacity: 0 };
        // SAFETY: `buffer` is writable; on success the library filled it.
        let error = unsafe { tandem_kernels_describe(&mut buffer) };
        assert!(error.is_null(), "tandem_kernels_describe failed");
        // SAFETY: the library filled `len` readable bytes at `data`.
        let bytes = unsafe { std::slice::from_raw_parts(buffer.data, buffer.len as usize) };
        let set = <KernelSet as prost::Message>::decode(bytes).expect("the library's KernelSet decodes");
        // SAFETY: the buffer was filled by tandem_kernels_describe and is freed once.
        unsafe { tandem_buffer_free(&mut buffer) };
        Catalog {
            kernels: set.kernels.iter().map(|k| k.name.clone()).collect(),
            state_kinds: set.state_kinds.iter().map(|k| k.name.clone()).collect(),
        }
    })
}

/// Checks an ABI outcome and frees it: 0 for success, else the error code.
///
/// # Safety
/// `error` is null or an error the library just returned.
unsafe fn outcome(error: *mut tandem_error_t) -> i32 {
    if error.is_null() {
        trace(0, "");
        return 0;
    }
    // SAFETY: a live error per the caller.
    let code = unsafe { tandem_error_code(error) };
    // SAFETY: as above; the message lives until the error is freed.
    let message = unsafe { CStr::from_ptr(tandem_error_message(error)) }.to_string_lossy().into_owned();
    // SAFETY: freed once, after its last use.
    unsafe { tandem_error_free(error) };
    trace(code, &message);
    assert!((1..=16).contains(&code), "error code {code} outside the status taxonomy: {message}");
    // Panics abort in this build; INTERNAL could only be a contained fault.
    assert_ne!(code, CODE_INTERNAL, "INTERNAL from argument decoding: {message}");
    assert!(!message.is_empty(), "error {code} carries no message");
    code
}

/// With `TANDEM_FUZZ_TRACE=1`, every outcome on stderr (to see which paths
/// a seed reaches: `TANDEM_FUZZ_TRACE=1 .../abi corpus/abi/<seed>`).
fn trace(code: i32, message: &str) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("TANDEM_FUZZ_TRACE").is_some_and(|v| v == "1")) {
        eprintln!("tandem-fuzz: code {code} {message}");
    }
}

/// 8-byte aligned storage for one tensor's bytes.
struct Buffer {
    words: Vec<u64>,
}

impl Buffer {
    /// `len` bytes (plus a spare word), filled from `fill` as far as it goes.
    fn new(len: usize, fill: &[u8]) -> Buffer {
        // One spare word, so a misaligned view of `len` bytes still fits.
        let mut words = vec![0u64; len.div_ceil(8) + 1];
        let fill = &fill[..fill.len().min(len)];
        // SAFETY: `words` owns at least `len + 8` bytes; u8 has no alignment.
        let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) };
        bytes[..fill.len()].copy_from_slice(fill);
        Buffer { words }
    }

    fn ptr(&mut self, misaligned: bool) -> *mut c_void {
        // SAFETY: offset 1 stays inside the allocation (one spare word).
        unsafe { self.words.as_mut_ptr().cast::<u8>().add(usize::from(misaligned)).cast() }
    }
}

/// One decoded tensor header and the buffer its pointer refers to.
struct RawTensor {
    dtype: u32,
    rank: u32,
    shape: [i64; TANDEM_MAX_RANK],
    byte_len: u64,
    null: bool,
    misaligned: bool,
    /// Output only: point into input `alias`'s buffer instead of our own.
    alias: Option<usize>,
}

fn element_size(dtype: u32) -> usize {
    match dtype {
        TANDEM_DTYPE_U8 => 1,
        TANDEM_DTYPE_I32 | TANDEM_DTYPE_F32 => 4,
        _ => 8,
    }
}

fn read_tensor(r: &mut Reader<'_>, kernel_hint: u8) -> RawTensor {
    // dtype 0 (omitted) and 6 (unknown) are as likely as each real one.
    let dtype = u32::from(r.u8() % 7);
    let rank = u32::from(r.u8() % 6);
    let mut shape = [0i64; TANDEM_MAX_RANK];
    for dim in shape.iter_mut() {
        let mode = r.u8();
        *dim = if mode < 0xf0 { i64::from(mode % 9 + kernel_hint % 4) } else { r.i64() };
    }
    let elements =
        shape.iter().take(rank.min(4) as usize).try_fold(1usize, |n, &d| usize::try_from(d).ok()?.checked_mul(n));
    let consistent = elements.and_then(|n| n.checked_mul(element_size(dtype))).unwrap_or(usize::MAX);
    let mode = r.u8();
    let byte_len = match mode {
        0..=0xbf => consistent.min(MAX_BUFFER),
        // Off by a few bytes either way.
        0xc0..=0xdf => consistent.min(MAX_BUFFER).saturating_add(usize::from(mode & 7)).saturating_sub(4),
        _ => usize::from(r.u16()),
    };
    let flags = r.u8();
    RawTensor {
        dtype,
        rank,
        shape,
        byte_len: byte_len as u64,
        null: flags & 0x0f == 0x0f,
        misaligned: flags & 0x30 == 0x30,
        alias: (flags & 0xc0 == 0xc0).then_some(usize::from(flags & 7)),
    }
}

fn read_param(r: &mut Reader<'_>) -> tandem_param_t {
    let kind = u32::from(r.u8() % 4);
    let mode = r.u8();
    let int_value = if mode < 0xf0 { i64::from(mode) - 8 } else { r.i64() };
    let float_value = match r.u8() {
        0..=0x7f => f64::from(r.u8()) / 16.0,
        0x80..=0xef => -f64::from(r.u8()),
        _ => f64::from_bits(r.u64()),
    };
    tandem_param_t { kind, reserved: 0, int_value, float_value }
}

/// A kernel name: one of the library's, or raw bytes (maybe not UTF-8).
fn read_name<'a>(r: &mut Reader<'a>, known: &'a [String]) -> &'a [u8] {
    let pick = r.u8();
    if pick < 0xf0 && !known.is_empty() {
        known[usize::from(pick) % known.len()].as_bytes()
    } else {
        r.bytes(usize::from(pick & 0x0f) * 2)
    }
}

/// Looks a kernel up; `None` after a checked refusal.
fn find(name: &[u8]) -> Option<*const tandem_kernel_t> {
    let mut kernel: *const tandem_kernel_t = std::ptr::null();
    // SAFETY: `name` is readable for its length; `kernel` is writable.
    let code = unsafe { outcome(tandem_kernel_find(name.as_ptr(), name.len(), &mut kernel)) };
    (code == 0).then_some(kernel)
}

fn context(r: &mut Reader<'_>, cancel: *const tandem_cancel_t) -> tandem_call_context_t {
    let mut trace_id = [0u8; 16];
    trace_id[0] = r.u8();
    tandem_call_context_t {
        timeout_ns: CALL_TIMEOUT.as_nanos() as u64,
        cancel,
        trace_id,
        span_id: [0; 8],
        flags: 0,
        reserved: 0,
    }
}

/// The inputs or outputs of one call: headers plus the buffers behind them.
struct Tensors {
    raw: Vec<RawTensor>,
    buffers: Vec<Buffer>,
}

/// Headers, then (for inputs) each buffer's bytes; outputs start zeroed.
fn read_tensors(r: &mut Reader<'_>, hint: u8, fill: bool) -> Tensors {
    // 0..=9: up to one beyond TANDEM_MAX_TENSORS.
    let count = usize::from(r.u8() % 10);
    let raw: Vec<RawTensor> = (0..count).map(|_| read_tensor(r, hint)).collect();
    let buffers = raw
        .iter()
        .map(|t| {
            let len = t.byte_len as usize;
            Buffer::new(len, if fill { r.bytes(len) } else { &[] })
        })
        .collect();
    Tensors { raw, buffers }
}

impl Tensors {
    fn inputs(&mut self) -> Vec<tandem_tensor_t> {
        let mut out = Vec::with_capacity(self.raw.len());
        for (t, buffer) in self.raw.iter().zip(self.buffers.iter_mut()) {
            let data = if t.null { std::ptr::null() } else { buffer.ptr(t.misaligned).cast_const() };
            out.push(tandem_tensor_t { data, byte_len: t.byte_len, shape: t.shape, rank: t.rank, dtype: t.dtype });
        }
        out
    }

    /// Output headers; an aliasing output points into an input's buffer,
    /// within that buffer's length, to exercise the overlap checks.
    fn outputs(&mut self, inputs: &mut Tensors) -> Vec<tandem_tensor_mut_t> {
        let mut out = Vec::with_capacity(self.raw.len());
        for (t, buffer) in self.raw.iter().zip(self.buffers.iter_mut()) {
            let (data, byte_len) = match t.alias.filter(|&i| i < inputs.buffers.len()) {
                Some(i) => {
                    let len = t.byte_len.min(inputs.raw[i].byte_len);
                    (inputs.buffers[i].ptr(false), len)
                }
                None if t.null => (std::ptr::null_mut(), t.byte_len),
                None => (buffer.ptr(t.misaligned), t.byte_len),
            };
            out.push(tandem_tensor_mut_t { data, byte_len, shape: t.shape, rank: t.rank, dtype: t.dtype });
        }
        out
    }
}

/// Completion of a submitted call, signalled by [`on_complete`].
struct Completion {
    code: Mutex<Option<i32>>,
    done: Condvar,
}

unsafe extern "C" fn on_complete(user_data: *mut c_void, error: *mut tandem_error_t) {
    // SAFETY: `user_data` is the `Completion` that `call` keeps alive until
    // this callback has signalled; `error` is null or owned by us.
    let completion = unsafe { &*user_data.cast::<Completion>() };
    // SAFETY: as above.
    let code = unsafe { outcome(error) };
    *completion.code.lock().unwrap() = Some(code);
    completion.done.notify_all();
}

/// One invoke or submit of a kernel with fuzzed arguments.
fn call(r: &mut Reader<'_>, kernel: *const tandem_kernel_t, state: *const tandem_state_t, submit: bool) {
    let hint = r.u8();
    let mut inputs = read_tensors(r, hint, true);
    let mut outputs = read_tensors(r, hint, false);
    let params: Vec<tandem_param_t> = (0..r.u8() % 18).map(|_| read_param(r)).collect();
    let input_headers = inputs.inputs();
    let output_headers = outputs.outputs(&mut inputs);
    let cancel = if r.u8() & 3 == 3 { tandem_cancel_new() } else { std::ptr::null_mut() };
    if !cancel.is_null() && r.u8() & 1 == 1 {
        // SAFETY: a live token from tandem_cancel_new.
        unsafe { tandem_cancel_set(cancel) };
    }
    let ctx = context(r, cancel);
    let (ip, pp, op) = (input_headers.as_ptr(), params.as_ptr(), output_headers.as_ptr());
    let (ic, pc, oc) = (input_headers.len(), params.len(), output_headers.len());
    if submit {
        let completion = Completion { code: Mutex::new(None), done: Condvar::new() };
        let user_data = (&completion as *const Completion).cast_mut().cast::<c_void>();
        // SAFETY: every array is readable for its count; every data pointer
        // is a buffer owned here, alive until the completion below.
        let error =
            unsafe { tandem_kernel_submit(kernel, state, ip, ic, pp, pc, op, oc, &ctx, Some(on_complete), user_data) };
        // SAFETY: just returned by the library.
        if unsafe { outcome(error) } == 0 {
            let mut code = completion.code.lock().unwrap();
            while code.is_none() {
                code = completion.done.wait(code).unwrap();
            }
        }
    } else {
        // SAFETY: as for submit; the call returns before anything is freed.
        unsafe { outcome(tandem_kernel_invoke(kernel, state, ip, ic, pp, pc, op, oc, &ctx)) };
    }
    // SAFETY: null or a live token, freed once after the call finished.
    unsafe { tandem_cancel_free(cancel) };
}

fn state_create(r: &mut Reader<'_>) {
    let catalog = catalog();
    let kind = read_name(r, &catalog.state_kinds);
    let hint = r.u8();
    let mut tensors = read_tensors(r, hint, true);
    let headers = tensors.inputs();
    let mut state: *mut tandem_state_t = std::ptr::null_mut();
    // SAFETY: `kind` and `headers` are readable for their lengths, `state` writable.
    let code =
        unsafe { outcome(tandem_state_create(kind.as_ptr(), kind.len(), headers.as_ptr(), headers.len(), &mut state)) };
    if code != 0 {
        assert!(state.is_null(), "a failed tandem_state_create left a state behind");
        return;
    }
    let input_bytes: u64 = headers.iter().map(|t| t.byte_len).sum();
    drop(tensors);
    // SAFETY: a live state from tandem_state_create.
    let size = unsafe { tandem_state_size_bytes(state) };
    // A collection pads each row to 16 f32 lanes and makes ids 0..n when
    // they are omitted: a row of dimension 1 (4 bytes in) holds 64 + 8
    // bytes, 18 times its input (regressions/abi/state-padding-amplification).
    assert!(size <= input_bytes * 18 + 4096, "a state of {size} bytes from {input_bytes} bytes of input");
    if let Some(kernel) = find(read_name(r, &catalog.kernels)) {
        call(r, kernel, state, false);
    }
    // SAFETY: freed once; no call uses it any more.
    unsafe { tandem_state_free(state) };
}

fn stream(r: &mut Reader<'_>) {
    let Some(kernel) = find(read_name(r, &catalog().kernels)) else { return };
    let mut handle = 0u64;
    // SAFETY: `kernel` is a live handle, `handle` writable.
    if unsafe { outcome(tandem_stream_open(kernel, &mut handle)) } != 0 {
        return;
    }
    assert_ne!(handle, 0, "tandem_stream_open returned handle 0");
    for _ in 0..r.u8() % 6 {
        let op = r.u8();
        let target = if op & 0xe0 == 0xe0 { r.u64() } else { handle };
        match op % 4 {
            0 | 1 => {
                let len = usize::from(r.u8());
                let chunk = r.bytes(len);
                let (ptr, len) =
                    if op & 0x10 != 0 { (std::ptr::null(), chunk.len()) } else { (chunk.as_ptr(), chunk.len()) };
                // SAFETY: `ptr` is readable for `len` bytes, or null.
                unsafe { outcome(tandem_stream_update(target, ptr, len)) };
            }
            2 => {
                let mut out = vec![0u8; usize::from(r.u8())];
                let ptr = if op & 0x10 != 0 { std::ptr::null_mut() } else { out.as_mut_ptr() };
                // SAFETY: `ptr` is writable for `out.len()` bytes, or null.
                unsafe { outcome(tandem_stream_finalize(target, ptr, out.len())) };
            }
            _ => {
                // SAFETY: no pointers.
                unsafe { outcome(tandem_stream_free(target)) };
            }
        }
    }
    // Freed here or above; a second free is NOT_FOUND, never a crash.
    // SAFETY: no pointers.
    let code = unsafe { outcome(tandem_stream_free(handle)) };
    assert!(code == 0 || code == 5, "freeing a stream handle gave code {code}");
}

/// The target: byte 0 picks the entry point, the rest its arguments.
pub fn abi(data: &[u8]) {
    let mut r = Reader::new(data);
    match r.u8() % 4 {
        mode @ (0 | 1) => {
            let Some(kernel) = find(read_name(&mut r, &catalog().kernels)) else { return };
            call(&mut r, kernel, std::ptr::null(), mode == 1);
        }
        2 => state_create(&mut r),
        _ => stream(&mut r),
    }
}
