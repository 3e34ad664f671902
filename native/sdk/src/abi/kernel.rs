//! Kernel exports: describe the kernel set, find a kernel, invoke it
//! synchronously (short calls) or submit it to the compute pool with a
//! completion callback (long calls).

use crate::abi::cancel::tandem_cancel_t;
use crate::abi::error::{guard, guard_lazy, invalid, panic_error, tandem_error_t};
use crate::abi::library;
use crate::abi::stack::StackVec;
use crate::abi::state::tandem_state_t;
use crate::abi::types::*;
use crate::library::Library;
use crate::pool::{self, pool};
use crate::simd::Isa;
use crate::{CallContext, Code, DType, KernelError, Param, RegisteredKernel, State, TensorMut, TensorRef};
use prost::Message;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Opaque handle to a registered kernel; valid for the life of the process.
pub struct tandem_kernel_t {
    kernel: &'static RegisteredKernel,
}

/// Completion callback of `tandem_kernel_submit`: `error` is null on success,
/// otherwise owned by the callee (free it with `tandem_error_free`). It runs
/// on a compute-pool thread and must not block.
pub type tandem_completion_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, error: *mut tandem_error_t)>;

/// Environment variable bounding queued + running submissions.
pub const MAX_PENDING_ENV: &str = "TANDEM_MAX_PENDING";
const DEFAULT_MAX_PENDING: u32 = 1024;

static KERNELS: OnceLock<Vec<tandem_kernel_t>> = OnceLock::new();
static MAX_PENDING: OnceLock<u32> = OnceLock::new();
static PENDING: AtomicU32 = AtomicU32::new(0);

impl tandem_kernel_t {
    pub(crate) fn registered(&self) -> &'static RegisteredKernel {
        self.kernel
    }
}

fn kernels() -> Result<&'static [tandem_kernel_t], KernelError> {
    let library = library()?;
    Ok(KERNELS.get_or_init(|| library.kernels().map(|kernel| tandem_kernel_t { kernel }).collect()))
}

fn max_pending() -> u32 {
    *MAX_PENDING.get_or_init(|| {
        std::env::var(MAX_PENDING_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_PENDING)
    })
}

/// Reads a UTF-8 string argument.
///
/// # Safety
/// `ptr` is readable for `len` bytes, or null with `len` 0.
pub(crate) unsafe fn str_arg<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a str, KernelError> {
    // SAFETY: forwarded caller guarantee.
    let bytes = unsafe { bytes_arg(ptr, len, name) }?;
    std::str::from_utf8(bytes).map_err(|_| invalid(format!("argument '{name}' is not valid UTF-8")))
}

/// # Safety
/// `ptr` is readable for `len` bytes, or null with `len` 0.
unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], KernelError> {
    if len == 0 {
        return Ok(&[]);
    }
    if len > isize::MAX as usize {
        return Err(invalid(format!("argument '{name}' is {len} bytes long, beyond any valid allocation")));
    }
    if ptr.is_null() {
        return Err(invalid(format!("argument '{name}' is null but its length is {len}")));
    }
    // SAFETY: non-null and readable for `len` bytes per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Checks one raw tensor's header and writes its shape into `shape`.
fn read_header(
    dtype: u32,
    rank: u32,
    dims: &[i64; TANDEM_MAX_RANK],
    shape: &mut [usize; TANDEM_MAX_RANK],
    what: &str,
    index: usize,
) -> Result<(DType, usize), KernelError> {
    let dtype =
        DType::from_raw(dtype).ok_or_else(|| invalid(format!("{what} {index} has unknown dtype code {dtype}")))?;
    let rank = rank as usize;
    if rank > TANDEM_MAX_RANK {
        return Err(invalid(format!("{what} {index} has rank {rank}; at most {TANDEM_MAX_RANK} is supported")));
    }
    for axis in 0..rank {
        let d = dims[axis];
        if d < 0 {
            return Err(invalid(format!("{what} {index} axis {axis} has negative size {d}")));
        }
        shape[axis] = d as usize;
    }
    Ok((dtype, rank))
}

/// # Safety
/// `ptr` points to `count` readable structs (or is null with `count` 0).
unsafe fn raw_slice<'a, T>(ptr: *const T, count: usize, what: &str, max: usize) -> Result<&'a [T], KernelError> {
    if count > max {
        return Err(invalid(format!("{count} {what}s given; at most {max} are supported")));
    }
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(invalid(format!("the {what} array is null but its count is {count}")));
    }
    // SAFETY: non-null, `count` readable structs per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// Reads input tensors, treating dtype 0 as an omitted tensor.
///
/// # Safety
/// As for `tandem_state_create`'s `tensors`.
pub(crate) unsafe fn optional_tensors<'a>(
    ptr: *const tandem_tensor_t,
    count: usize,
    shapes: &'a mut [[usize; TANDEM_MAX_RANK]; TANDEM_MAX_TENSORS],
) -> Result<[Option<TensorRef<'a>>; TANDEM_MAX_TENSORS], KernelError> {
    // SAFETY: forwarded caller guarantee.
    let raw = unsafe { raw_slice(ptr, count, "tensor", TANDEM_MAX_TENSORS) }?;
    let mut meta = [(DType::U8, 0usize, false); TANDEM_MAX_TENSORS];
    for (i, t) in raw.iter().enumerate() {
        if t.dtype == 0 {
            continue;
        }
        let (dtype, rank) = read_header(t.dtype, t.rank, &t.shape, &mut shapes[i], "tensor", i)?;
        meta[i] = (dtype, rank, true);
    }
    let mut out = [None; TANDEM_MAX_TENSORS];
    for (i, t) in raw.iter().enumerate() {
        let (dtype, rank, present) = meta[i];
        if present {
            // SAFETY: forwarded caller guarantee on data/byte_len.
            let bytes = unsafe { bytes_arg(t.data.cast(), t.byte_len as usize, "tensor data") }?;
            out[i] = Some(TensorRef { dtype, shape: &shapes[i][..rank], bytes });
        }
    }
    Ok(out)
}

/// Borrowed views over one call's raw arguments, on the stack.
pub(crate) struct CallArgs<'a> {
    pub(crate) inputs: StackVec<TensorRef<'a>, TANDEM_MAX_TENSORS>,
    pub(crate) outputs: StackVec<TensorMut<'a>, TANDEM_MAX_TENSORS>,
    pub(crate) params: StackVec<Param, TANDEM_MAX_PARAMS>,
}

/// Refuses outputs that overlap each other or an input: the kernel would
/// otherwise hold aliased `&mut` and `&` views of the same bytes.
fn check_overlaps(inputs: &[tandem_tensor_t], outputs: &[tandem_tensor_mut_t]) -> Result<(), KernelError> {
    check_overlaps_by(
        inputs.len(),
        |i| (inputs[i].data as usize, inputs[i].byte_len as usize),
        outputs.len(),
        |i| (outputs[i].data as usize, outputs[i].byte_len as usize),
    )
}

/// [`check_overlaps`] over (address, length) pairs, however the caller holds them.
pub(crate) fn check_overlaps_by(
    input_count: usize,
    input: impl Fn(usize) -> (usize, usize),
    output_count: usize,
    output: impl Fn(usize) -> (usize, usize),
) -> Result<(), KernelError> {
    let range = |(data, len): (usize, usize)| (data, data.saturating_add(len));
    // Empty ranges overlap nothing.
    let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < a.1 && b.0 < b.1 && a.0 < b.1 && b.0 < a.1;
    for i in 0..output_count {
        let o = range(output(i));
        for j in i + 1..output_count {
            if overlaps(o, range(output(j))) {
                return Err(invalid(format!("output {i} overlaps output {j}; outputs need distinct buffers")));
            }
        }
        for j in 0..input_count {
            if overlaps(o, range(input(j))) {
                return Err(invalid(format!("output {i} overlaps input {j}; outputs need their own buffers")));
            }
        }
    }
    Ok(())
}

/// Checks a raw header and views its shape as `usize`s in place.
fn shape_of<'a>(
    dtype: u32,
    rank: u32,
    dims: &'a [i64; TANDEM_MAX_RANK],
    what: &str,
    index: usize,
) -> Result<(DType, &'a [usize]), KernelError> {
    let mut scratch = [0usize; TANDEM_MAX_RANK];
    let (dtype, rank) = read_header(dtype, rank, dims, &mut scratch, what, index)?;
    // SAFETY: i64 and usize have the same size and alignment on the 64-bit
    // targets this library supports, and read_header rejected negative sizes,
    // so every value reads back unchanged.
    let shape = unsafe { std::slice::from_raw_parts(dims.as_ptr().cast::<usize>(), rank) };
    Ok((dtype, shape))
}

const _: () = assert!(std::mem::size_of::<usize>() == std::mem::size_of::<i64>());

/// # Safety
/// Every data pointer is readable (inputs) / writable (outputs) for its
/// `byte_len` for `'a`, and output buffers do not overlap anything else.
pub(crate) unsafe fn fill_call_args<'a>(
    args: &mut CallArgs<'a>,
    inputs: &'a [tandem_tensor_t],
    params: &[tandem_param_t],
    outputs: &'a [tandem_tensor_mut_t],
) -> Result<(), KernelError> {
    for (i, t) in inputs.iter().enumerate() {
        let (dtype, shape) = shape_of(t.dtype, t.rank, &t.shape, "input", i)?;
        // SAFETY: forwarded caller guarantee.
        let bytes = unsafe { bytes_arg(t.data.cast(), t.byte_len as usize, "input data") }?;
        args.inputs.push(TensorRef { dtype, shape, bytes });
    }
    for (i, t) in outputs.iter().enumerate() {
        let (dtype, shape) = shape_of(t.dtype, t.rank, &t.shape, "output", i)?;
        let len = t.byte_len as usize;
        let bytes: &mut [u8] = if len == 0 {
            &mut []
        } else if len > isize::MAX as usize {
            return Err(invalid(format!("output {i} is {len} bytes long, beyond any valid allocation")));
        } else if t.data.is_null() {
            return Err(invalid(format!("output {i} data is null but its length is {len}")));
        } else {
            // SAFETY: non-null, writable for `len` bytes, not aliased.
            unsafe { std::slice::from_raw_parts_mut(t.data.cast::<u8>(), len) }
        };
        args.outputs.push(TensorMut { dtype, shape, bytes });
    }
    check_overlaps(inputs, outputs)?;
    for (i, p) in params.iter().enumerate() {
        args.params.push(match p.kind {
            TANDEM_PARAM_INT => Param::Int(p.int_value),
            TANDEM_PARAM_FLOAT => Param::Float(p.float_value),
            other => return Err(invalid(format!("parameter {i} has unknown kind {other}"))),
        });
    }
    Ok(())
}

impl CallArgs<'_> {
    pub(crate) fn new() -> Self {
        CallArgs { inputs: StackVec::new(), outputs: StackVec::new(), params: StackVec::new() }
    }
}

/// # Safety
/// `ctx` is null or readable; its cancel token is null or live.
pub(crate) unsafe fn call_context(ctx: *const tandem_call_context_t) -> CallContext {
    // SAFETY: forwarded caller guarantee.
    let ctx = match unsafe { ctx.as_ref() } {
        Some(ctx) => ctx,
        None => return CallContext::default(),
    };
    // SAFETY: the token is null or live per the caller.
    let cancel = unsafe { ctx.cancel.as_ref() }.map(|t: &tandem_cancel_t| Arc::clone(&t.flag));
    let deadline = match ctx.timeout_ns {
        0 => None,
        ns => Instant::now().checked_add(Duration::from_nanos(ns)),
    };
    CallContext { cancel, deadline, trace_id: ctx.trace_id }
}

pub(crate) fn trace_of(ctx: *const tandem_call_context_t) -> [u8; 16] {
    // SAFETY: read only when non-null; callers pass null or a readable ctx.
    unsafe { ctx.as_ref() }.map_or([0; 16], |c| c.trace_id)
}

/// Writes the encoded `tandem.v1.KernelSet` into `*out` (owned by the caller
/// on success; release with `tandem_buffer_free`).
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_kernels_describe(out: *mut tandem_buffer_t) -> *mut tandem_error_t {
    guard("tandem_kernels_describe", &[0; 16], || {
        // SAFETY: `out` is null or writable per the contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| invalid("argument 'out' is null"))?;
        let mut bytes = library()?.kernel_set().encode_to_vec();
        bytes.shrink_to_fit();
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        *out = tandem_buffer_t { data: bytes.as_mut_ptr(), len: bytes.len() as u64, capacity: bytes.capacity() as u64 };
        Ok(())
    })
}

/// Releases a buffer's bytes and nulls it, so a second free is harmless.
///
/// # Safety
/// `buffer` is null or points to a buffer this library filled.
#[no_mangle]
pub unsafe extern "C" fn tandem_buffer_free(buffer: *mut tandem_buffer_t) {
    // SAFETY: the caller guarantees `buffer` is null or a live buffer.
    let buffer = match unsafe { buffer.as_mut() } {
        Some(buffer) => buffer,
        None => return,
    };
    if !buffer.data.is_null() {
        // SAFETY: data/len/capacity came from a Vec<u8> leaked above.
        drop(unsafe { Vec::from_raw_parts(buffer.data, buffer.len as usize, buffer.capacity as usize) });
    }
    *buffer = tandem_buffer_t { data: std::ptr::null_mut(), len: 0, capacity: 0 };
}

/// Looks a kernel up by name (UTF-8, `name_len` bytes).
///
/// # Safety
/// `name` is readable for `name_len` bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_kernel_find(
    name: *const u8,
    name_len: usize,
    out: *mut *const tandem_kernel_t,
) -> *mut tandem_error_t {
    guard("tandem_kernel_find", &[0; 16], || {
        if out.is_null() {
            return Err(invalid("argument 'out' is null"));
        }
        // SAFETY: forwarded caller guarantee.
        let name = unsafe { str_arg(name, name_len, "name") }?;
        let kernels = kernels()?;
        let found = kernels.iter().find(|k| k.kernel.name() == name).ok_or_else(|| {
            let known: Vec<&str> = kernels.iter().map(|k| k.kernel.name()).collect();
            KernelError::not_found(format!(
                "unknown kernel '{name}'; library '{}' has: {}",
                library().map_or("", Library::name),
                known.join(", ")
            ))
        })?;
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = found };
        Ok(())
    })
}

/// Runs a kernel on the calling thread (its parallel parts on the compute
/// pool) and returns when it has finished. Use for short calls.
///
/// # Safety
/// `kernel` comes from `tandem_kernel_find`; `state` is null or live;
/// array pointers are readable for their counts; tensor data is readable
/// (inputs) or writable (outputs) for `byte_len` bytes during the call.
#[no_mangle]
pub unsafe extern "C" fn tandem_kernel_invoke(
    kernel: *const tandem_kernel_t,
    state: *const tandem_state_t,
    inputs: *const tandem_tensor_t,
    input_count: usize,
    params: *const tandem_param_t,
    param_count: usize,
    outputs: *const tandem_tensor_mut_t,
    output_count: usize,
    ctx: *const tandem_call_context_t,
) -> *mut tandem_error_t {
    // SAFETY: `kernel` is null or a handle from tandem_kernel_find.
    let handle = match unsafe { kernel.as_ref() } {
        Some(handle) => handle,
        None => return tandem_error_t::boxed(invalid("argument 'kernel' is null")),
    };
    let call = SyncCall { state, inputs, input_count, params, param_count, outputs, output_count, ctx };
    // The per-call log switch: one relaxed load; the logged path is out of line.
    if crate::abi::log::calls_enabled() {
        // SAFETY: forwarded caller guarantees.
        return unsafe { invoke_logged(handle.kernel, &call) };
    }
    // SAFETY: forwarded caller guarantees.
    unsafe { invoke_guarded(handle.kernel, &call) }
}

/// One synchronous call's arguments, as `tandem_kernel_invoke` received them.
struct SyncCall {
    state: *const tandem_state_t,
    inputs: *const tandem_tensor_t,
    input_count: usize,
    params: *const tandem_param_t,
    param_count: usize,
    outputs: *const tandem_tensor_mut_t,
    output_count: usize,
    ctx: *const tandem_call_context_t,
}

/// # Safety
/// As for `tandem_kernel_invoke`.
#[inline(always)]
unsafe fn invoke_guarded(kernel: &'static RegisteredKernel, call: &SyncCall) -> *mut tandem_error_t {
    // SAFETY: forwarded caller guarantees.
    guard_lazy(|| (kernel.name(), trace_of(call.ctx)), || unsafe { invoke_body(kernel, call) })
}

/// Decodes the call's headers in place, validates them against the compiled
/// descriptor and runs the kernel; out of line so that the guard inlines.
///
/// # Safety
/// As for `tandem_kernel_invoke`.
#[inline(never)]
unsafe fn invoke_body(kernel: &'static RegisteredKernel, call: &SyncCall) -> Result<(), KernelError> {
    // SAFETY: forwarded caller guarantees.
    let (inputs, params, outputs) = unsafe {
        raw_arrays(call.inputs, call.input_count, call.params, call.param_count, call.outputs, call.output_count)
    }?;
    let mut args = CallArgs::new();
    // SAFETY: forwarded caller guarantees.
    unsafe { fill_call_args(&mut args, inputs, params, outputs) }?;
    // SAFETY: forwarded caller guarantees.
    let ctx = unsafe { call_context(call.ctx) };
    // SAFETY: `state` is null or live for the call.
    let state = unsafe { call.state.as_ref() }.map(|s| &*s.state);
    // The handle exists, so the library was built: no need to look it up again.
    kernel.invoke(state, args.inputs.as_slice(), args.params.as_slice(), args.outputs.as_mut_slice(), &ctx)
}

/// [`invoke_guarded`] with the call's log line (kernel, trace id, code, duration).
///
/// # Safety
/// As for `tandem_kernel_invoke`.
#[cold]
#[inline(never)]
unsafe fn invoke_logged(kernel: &'static RegisteredKernel, call: &SyncCall) -> *mut tandem_error_t {
    let started = Instant::now();
    // SAFETY: forwarded caller guarantees.
    let error = unsafe { invoke_guarded(kernel, call) };
    let code = if error.is_null() {
        Code::Ok
    } else {
        // SAFETY: a non-null error is the live one this call just created.
        Code::from_raw(unsafe { crate::abi::error::tandem_error_code(error) })
    };
    crate::abi::log::call(kernel.name(), &trace_of(call.ctx), code, started.elapsed().as_micros());
    error
}

pub(crate) type RawArrays<'a> = (&'a [tandem_tensor_t], &'a [tandem_param_t], &'a [tandem_tensor_mut_t]);

/// # Safety
/// Each pointer is readable for its count (or null with count 0).
pub(crate) unsafe fn raw_arrays<'a>(
    inputs: *const tandem_tensor_t,
    input_count: usize,
    params: *const tandem_param_t,
    param_count: usize,
    outputs: *const tandem_tensor_mut_t,
    output_count: usize,
) -> Result<RawArrays<'a>, KernelError> {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        Ok((
            raw_slice(inputs, input_count, "input", TANDEM_MAX_TENSORS)?,
            raw_slice(params, param_count, "parameter", TANDEM_MAX_PARAMS)?,
            raw_slice(outputs, output_count, "output", TANDEM_MAX_TENSORS)?,
        ))
    }
}

fn run(
    kernel: &RegisteredKernel,
    state: Option<&State>,
    args: &mut CallArgs<'_>,
    ctx: &CallContext,
) -> Result<(), KernelError> {
    library()?.invoke(kernel, state, args.inputs.as_slice(), args.params.as_slice(), args.outputs.as_mut_slice(), ctx)
}

/// A submitted call: copies of the argument headers; the data stays borrowed.
struct Job {
    kernel: &'static RegisteredKernel,
    state: Option<Arc<State>>,
    inputs: [tandem_tensor_t; TANDEM_MAX_TENSORS],
    input_count: usize,
    params: [tandem_param_t; TANDEM_MAX_PARAMS],
    param_count: usize,
    outputs: [tandem_tensor_mut_t; TANDEM_MAX_TENSORS],
    output_count: usize,
    ctx: CallContext,
    callback: unsafe extern "C" fn(*mut c_void, *mut tandem_error_t),
    user_data: *mut c_void,
    /// Set when per-call logging is on.
    started: Option<Instant>,
}

// SAFETY: the raw pointers in a Job are the caller's buffers, which the
// caller keeps valid and untouched until the completion callback runs.
unsafe impl Send for Job {}

/// Queues a kernel call on the compute pool and returns at once. On success
/// (null return) `callback(user_data, error)` runs exactly once when the call
/// completes; on an error return it never runs. A full queue returns
/// RESOURCE_EXHAUSTED.
///
/// # Safety
/// As for `tandem_kernel_invoke`, except that tensor data must stay valid
/// and untouched until the callback has run; the argument arrays themselves
/// are copied before this returns.
#[no_mangle]
pub unsafe extern "C" fn tandem_kernel_submit(
    kernel: *const tandem_kernel_t,
    state: *const tandem_state_t,
    inputs: *const tandem_tensor_t,
    input_count: usize,
    params: *const tandem_param_t,
    param_count: usize,
    outputs: *const tandem_tensor_mut_t,
    output_count: usize,
    ctx: *const tandem_call_context_t,
    callback: tandem_completion_fn,
    user_data: *mut c_void,
) -> *mut tandem_error_t {
    // SAFETY: `kernel` is null or a handle from tandem_kernel_find.
    let handle = match unsafe { kernel.as_ref() } {
        Some(handle) => handle,
        None => return tandem_error_t::boxed(invalid("argument 'kernel' is null")),
    };
    let kernel = handle.kernel;
    guard(&kernel.descriptor().name, &trace_of(ctx), || {
        let callback = callback.ok_or_else(|| invalid("argument 'callback' is null"))?;
        // SAFETY: forwarded caller guarantees.
        let (inputs, params, outputs) =
            unsafe { raw_arrays(inputs, input_count, params, param_count, outputs, output_count) }?;
        let mut job = Job {
            kernel,
            // SAFETY: `state` is null or live; the job takes its own reference.
            state: unsafe { state.as_ref() }.map(|s| Arc::clone(&s.state)),
            inputs: [EMPTY_TENSOR; TANDEM_MAX_TENSORS],
            input_count,
            params: [EMPTY_PARAM; TANDEM_MAX_PARAMS],
            param_count,
            outputs: [EMPTY_TENSOR_MUT; TANDEM_MAX_TENSORS],
            output_count,
            // SAFETY: forwarded caller guarantees.
            ctx: unsafe { call_context(ctx) },
            callback,
            user_data,
            started: crate::abi::log::calls_enabled().then(Instant::now),
        };
        job.inputs[..input_count].copy_from_slice(inputs);
        job.params[..param_count].copy_from_slice(params);
        job.outputs[..output_count].copy_from_slice(outputs);

        let limit = max_pending();
        if PENDING.fetch_add(1, Ordering::AcqRel) >= limit {
            PENDING.fetch_sub(1, Ordering::AcqRel);
            return Err(KernelError::new(
                Code::ResourceExhausted,
                format!("the native compute queue is full ({limit} calls pending); retry later or lower concurrency"),
            ));
        }
        // Moved into the pool's own boxed closure: one allocation per call, not two.
        pool().spawn(move || complete(job));
        Ok(())
    })
}

const EMPTY_TENSOR: tandem_tensor_t =
    tandem_tensor_t { data: std::ptr::null(), byte_len: 0, shape: [0; TANDEM_MAX_RANK], rank: 0, dtype: 0 };
const EMPTY_TENSOR_MUT: tandem_tensor_mut_t =
    tandem_tensor_mut_t { data: std::ptr::null_mut(), byte_len: 0, shape: [0; TANDEM_MAX_RANK], rank: 0, dtype: 0 };
const EMPTY_PARAM: tandem_param_t =
    tandem_param_t { kind: TANDEM_PARAM_INT, reserved: 0, int_value: 0, float_value: 0.0 };

fn complete(job: Job) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut args = CallArgs::new();
        // SAFETY: the submitter keeps the buffers valid until the callback.
        unsafe {
            fill_call_args(
                &mut args,
                &job.inputs[..job.input_count],
                &job.params[..job.param_count],
                &job.outputs[..job.output_count],
            )
        }?;
        run(job.kernel, job.state.as_deref(), &mut args, &job.ctx)
    }));
    if let Some(started) = job.started {
        let code = match &outcome {
            Ok(Ok(())) => Code::Ok,
            Ok(Err(err)) => err.code,
            Err(_) => Code::Internal,
        };
        crate::abi::log::call(&job.kernel.descriptor().name, &job.ctx.trace_id, code, started.elapsed().as_micros());
    }
    let error = match outcome {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(err)) => tandem_error_t::boxed(err),
        Err(payload) => {
            tandem_error_t::boxed(panic_error(&job.kernel.descriptor().name, &job.ctx.trace_id, payload.as_ref()))
        }
    };
    let (callback, user_data) = (job.callback, job.user_data);
    drop(job);
    PENDING.fetch_sub(1, Ordering::AcqRel);
    // SAFETY: the submitter provided a callback valid until it has run once.
    unsafe { callback(user_data, error) };
}

/// Fills `*out` with facts about the runtime (threads, queue bound, ISA).
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_runtime_info(out: *mut tandem_runtime_info_t) -> *mut tandem_error_t {
    guard("tandem_runtime_info", &[0; 16], || {
        // SAFETY: `out` is null or writable per the contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| invalid("argument 'out' is null"))?;
        *out = tandem_runtime_info_t {
            abi_version: crate::ABI_VERSION,
            compute_threads: pool::threads() as u32,
            max_pending: max_pending(),
            isa: match Isa::detect() {
                Isa::Avx512 => 1,
                Isa::Avx2Fma => 2,
                Isa::Portable => 3,
            },
        };
        Ok(())
    })
}

/// Runs the kernel's warm-up (derived from its descriptor unless the kernel
/// supplies its own) on the calling thread.
///
/// # Safety
/// `kernel` is null or comes from `tandem_kernel_find`.
#[no_mangle]
pub unsafe extern "C" fn tandem_kernel_warm_up(kernel: *const tandem_kernel_t) -> *mut tandem_error_t {
    // SAFETY: `kernel` is null or a handle from tandem_kernel_find.
    let handle = match unsafe { kernel.as_ref() } {
        Some(handle) => handle,
        None => return tandem_error_t::boxed(invalid("argument 'kernel' is null")),
    };
    guard(handle.kernel.name(), &[0; 16], || library()?.warm_up(handle.kernel))
}

/// Null when the library's kernels registered and passed the SDK's checks;
/// otherwise the error that every other call of this library also returns
/// (FAILED_PRECONDITION naming the library and the first problem).
#[no_mangle]
pub extern "C" fn tandem_library_status() -> *mut tandem_error_t {
    guard("tandem_library_status", &[0; 16], || library().map(|_| ()))
}
