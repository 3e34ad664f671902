//! Prepared calls: a call's shapes, dtypes and parameters validated once
//! (`tandem_kernel_prepare`), then invoked many times with only its data
//! pointers (`tandem_prepared_invoke`). A repeat does no allocation, no
//! descriptor walk and no string work: it checks the pointers against the
//! lengths fixed at preparation, the overlaps, the inputs a descriptor wants
//! finite (data, so every time), the state and the context — at the
//! prepared row count in one pass, which hands anything it would refuse to
//! the checks that name the problem. Since ABI 1.2.

use crate::abi::error::{guard, guard_lazy, invalid, tandem_error_t};
use crate::abi::kernel::{
    call_context, check_overlaps_by, fill_call_args, raw_arrays, tandem_kernel_t, trace_of, CallArgs,
};
use crate::abi::library;
use crate::abi::stack::StackVec;
use crate::abi::state::tandem_state_t;
use crate::abi::types::*;
use crate::library::{PreparedCall, RawSlices};
use crate::{CallContext, Code, KernelError, State};
use std::ffi::c_void;
use std::time::Instant;

/// Opaque handle to a prepared call; owned by the caller, released with
/// `tandem_prepared_free`. Immutable once made, so any number of threads may
/// invoke it at once.
pub struct tandem_prepared_t {
    call: PreparedCall<'static>,
}

/// Validates a call exactly as `tandem_kernel_invoke` would — counts,
/// dtypes, shapes, byte lengths, symbols, parameter ranges, the work bound,
/// non-finite inputs, overlaps — without running the kernel, and on success
/// writes a handle to `*out` that repeats the call on new data of the same
/// lengths. Nothing is retained of the data, and the outputs are not written.
///
/// # Safety
/// As for `tandem_kernel_invoke` (the data is read during this call only);
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_kernel_prepare(
    kernel: *const tandem_kernel_t,
    inputs: *const tandem_tensor_t,
    input_count: usize,
    params: *const tandem_param_t,
    param_count: usize,
    outputs: *const tandem_tensor_mut_t,
    output_count: usize,
    out: *mut *mut tandem_prepared_t,
) -> *mut tandem_error_t {
    // SAFETY: `kernel` is null or a handle from tandem_kernel_find.
    let handle = match unsafe { kernel.as_ref() } {
        Some(handle) => handle,
        None => return tandem_error_t::boxed(invalid("argument 'kernel' is null")),
    };
    let kernel = handle.registered();
    guard(kernel.name(), &[0; 16], || {
        if out.is_null() {
            return Err(invalid("argument 'out' is null"));
        }
        // SAFETY: forwarded caller guarantees.
        let (inputs, params, outputs) =
            unsafe { raw_arrays(inputs, input_count, params, param_count, outputs, output_count) }?;
        let mut args = CallArgs::new();
        // SAFETY: forwarded caller guarantees.
        unsafe { fill_call_args(&mut args, inputs, params, outputs) }?;
        let call =
            library()?.prepare(kernel, args.inputs.as_slice(), args.params.as_slice(), args.outputs.as_slice())?;
        let prepared = Box::into_raw(Box::new(tandem_prepared_t { call }));
        // SAFETY: `out` is non-null and writable per the caller.
        unsafe { *out = prepared };
        Ok(())
    })
}

/// Runs a prepared call on the calling thread with new data. `rows` is the
/// repeat's row count (axis 0 of every tensor) for a batchable kernel, or
/// `TANDEM_ROWS_AS_PREPARED`; `inputs[i]` and `outputs[i]` give each
/// buffer's data and length, which must be what the prepared shape needs at
/// that row count. Counts or lengths that differ, a row count over the work
/// bound, overlapping outputs, non-finite inputs a descriptor forbids, or a
/// missing or wrong state are refused as `tandem_kernel_invoke` would.
///
/// # Safety
/// `prepared` is null or live (not yet freed); `state` is null or live;
/// `inputs` and `outputs` are readable arrays of `input_count` and
/// `output_count` slices (or null with count 0), each readable (inputs) or
/// writable (outputs) for its `byte_len` during the call; `ctx` is null or
/// readable.
#[no_mangle]
pub unsafe extern "C" fn tandem_prepared_invoke(
    prepared: *const tandem_prepared_t,
    state: *const tandem_state_t,
    rows: u64,
    inputs: *const tandem_slice_t,
    input_count: usize,
    outputs: *const tandem_slice_mut_t,
    output_count: usize,
    ctx: *const tandem_call_context_t,
) -> *mut tandem_error_t {
    // SAFETY: `prepared` is null or live per the caller.
    let Some(prepared) = (unsafe { prepared.as_ref() }) else {
        return tandem_error_t::boxed(invalid("argument 'prepared' is null"));
    };
    let repeat = Repeat { state, rows, inputs, input_count, outputs, output_count, ctx };
    // The per-call log switch: one relaxed load; the logged path is out of line.
    if crate::abi::log::calls_enabled() {
        // SAFETY: forwarded caller guarantees.
        return unsafe { run_logged(&prepared.call, &repeat) };
    }
    // SAFETY: forwarded caller guarantees.
    unsafe { run(&prepared.call, &repeat) }
}

/// The context of a call given none: no cancel token, no deadline, no trace.
static NO_CONTEXT: CallContext = CallContext { cancel: None, deadline: None, trace_id: [0; 16] };

/// One repeat's arguments, as `tandem_prepared_invoke` received them.
#[derive(Clone, Copy)]
struct Repeat {
    state: *const tandem_state_t,
    rows: u64,
    inputs: *const tandem_slice_t,
    input_count: usize,
    outputs: *const tandem_slice_mut_t,
    output_count: usize,
    ctx: *const tandem_call_context_t,
}

/// Runs a repeat inside the panic guard: at the prepared row count through
/// the one-pass check ([`PreparedCall::invoke_as_prepared`]), and whatever
/// that pass does not accept (or another row count) through the checks that
/// name the problem.
///
/// # Safety
/// As for `tandem_prepared_invoke`.
#[inline(always)]
unsafe fn run(call: &PreparedCall<'static>, repeat: &Repeat) -> *mut tandem_error_t {
    // SAFETY: forwarded caller guarantees.
    guard_lazy(|| (call.kernel().name(), trace_of(repeat.ctx)), || unsafe { body(call, repeat) })
}

/// What [`run`] guards, out of line so that the guard itself inlines into
/// the export and costs the happy path one call.
///
/// # Safety
/// As for `tandem_prepared_invoke`.
#[inline(never)]
unsafe fn body(call: &PreparedCall<'static>, repeat: &Repeat) -> Result<(), KernelError> {
    let owned;
    let ctx = if repeat.ctx.is_null() {
        &NO_CONTEXT
    } else {
        // SAFETY: forwarded caller guarantees.
        owned = unsafe { call_context(repeat.ctx) };
        &owned
    };
    // SAFETY: `state` is null or live for the call.
    let state = unsafe { repeat.state.as_ref() }.map(|s| &*s.state);
    // A batch of the prepared row count is the prepared call itself.
    if call.rows_as_prepared(repeat.rows) {
        let (inputs, outputs) =
            (RawSlices::new(repeat.inputs, repeat.input_count), RawSlices::new(repeat.outputs, repeat.output_count));
        // SAFETY: the arrays are readable for their counts, and each slice's
        // data readable (inputs) or writable (outputs) for its `byte_len`
        // during the call, per the caller.
        if let Some(result) = unsafe { call.invoke_as_prepared(state, inputs, outputs, ctx) } {
            return result;
        }
    }
    // SAFETY: forwarded caller guarantees.
    unsafe { run_checked(call, state, repeat, ctx) }
}

/// [`run`] with the call's log line (kernel, trace id, code, duration).
///
/// # Safety
/// As for `tandem_prepared_invoke`.
#[cold]
#[inline(never)]
unsafe fn run_logged(call: &PreparedCall<'static>, repeat: &Repeat) -> *mut tandem_error_t {
    let started = Instant::now();
    // SAFETY: forwarded caller guarantees.
    let error = unsafe { run(call, repeat) };
    let code = if error.is_null() {
        Code::Ok
    } else {
        // SAFETY: a non-null error is the live one this call just created.
        Code::from_raw(unsafe { crate::abi::error::tandem_error_code(error) })
    };
    crate::abi::log::call(call.kernel().name(), &trace_of(repeat.ctx), code, started.elapsed().as_micros());
    error
}

/// Every check of a repeat, in the order an unprepared call makes them, each
/// refusal naming what to fix; then the kernel.
///
/// # Safety
/// As for `tandem_prepared_invoke`.
#[inline(never)]
unsafe fn run_checked(
    call: &PreparedCall<'static>,
    state: Option<&State>,
    repeat: &Repeat,
    ctx: &CallContext,
) -> Result<(), KernelError> {
    let &Repeat { rows, inputs, input_count, outputs, output_count, .. } = repeat;
    // SAFETY: readable arrays of their counts per the caller (or null with 0).
    let (input_slices, output_slices) =
        unsafe { (slices(inputs, input_count, "input")?, slices(outputs, output_count, "output")?) };
    check_overlaps_by(
        input_count,
        |i| (input_slices[i].data as usize, input_slices[i].byte_len as usize),
        output_count,
        |i| (output_slices[i].data as usize, output_slices[i].byte_len as usize),
    )?;
    let mut data: StackVec<&[u8], TANDEM_MAX_TENSORS> = StackVec::new();
    for (i, slice) in input_slices.iter().enumerate() {
        // SAFETY: readable for `byte_len` during the call, per the caller.
        data.push(unsafe { region(slice.data.cast_mut(), slice.byte_len, "input", i) }?);
    }
    let mut out: StackVec<&mut [u8], TANDEM_MAX_TENSORS> = StackVec::new();
    for (i, slice) in output_slices.iter().enumerate() {
        // SAFETY: writable for `byte_len` during the call, per the caller,
        // and disjoint from every other buffer (checked above), so this is
        // the only reference to those bytes.
        out.push(unsafe { region_mut(slice.data, slice.byte_len, i) }?);
    }
    let rows = match rows {
        TANDEM_ROWS_AS_PREPARED => None,
        rows => Some(usize::try_from(rows).map_err(|_| invalid(format!("{rows} rows is beyond this machine")))?),
    };
    call.invoke(state, rows, data.as_slice(), out.as_mut_slice(), ctx)
}

/// 1 when a repeat of `prepared` may give another row count (its kernel is
/// batchable and the batch symbol sizes nothing but axis 0), else 0 (and 0
/// for null): what a host keys its prepared calls by.
///
/// # Safety
/// `prepared` is null or live.
#[no_mangle]
pub unsafe extern "C" fn tandem_prepared_varies_rows(prepared: *const tandem_prepared_t) -> u32 {
    // SAFETY: null or live per the caller.
    unsafe { prepared.as_ref() }.map_or(0, |p| u32::from(p.call.varies_rows()))
}

/// Releases a prepared call. Null is ignored.
///
/// # Safety
/// `prepared` is null or came from `tandem_kernel_prepare` and is freed once,
/// after every call using it has returned.
#[no_mangle]
pub unsafe extern "C" fn tandem_prepared_free(prepared: *mut tandem_prepared_t) {
    if !prepared.is_null() {
        // SAFETY: a pointer from Box::into_raw in tandem_kernel_prepare, freed once.
        drop(unsafe { Box::from_raw(prepared) });
    }
}

/// # Safety
/// `ptr` is null with `count` 0, or readable for `count` slices.
unsafe fn slices<'a, S>(ptr: *const S, count: usize, what: &str) -> Result<&'a [S], KernelError> {
    if count == 0 {
        return Ok(&[]);
    }
    if count > TANDEM_MAX_TENSORS {
        return Err(invalid(format!("{count} {what}s given; at most {TANDEM_MAX_TENSORS} are supported")));
    }
    if ptr.is_null() {
        return Err(invalid(format!("the {what} array is null but its count is {count}")));
    }
    // SAFETY: non-null and readable for `count` slices per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// # Safety
/// `ptr` is readable for `len` bytes during `'a` (or `len` is 0).
unsafe fn region<'a>(ptr: *mut c_void, len: u64, what: &str, index: usize) -> Result<&'a [u8], KernelError> {
    match (len, ptr.is_null()) {
        (0, _) => Ok(&[]),
        (len, _) if len > isize::MAX as u64 => {
            Err(invalid(format!("{what} {index} is {len} bytes long, beyond any valid allocation")))
        }
        (len, true) => Err(invalid(format!("{what} {index} data is null but its length is {len}"))),
        // SAFETY: non-null, readable for `len` ≤ isize::MAX bytes per the caller.
        (len, false) => Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize) }),
    }
}

/// # Safety
/// `ptr` is writable for `len` bytes during `'a` and aliased by nothing else
/// (or `len` is 0).
unsafe fn region_mut<'a>(ptr: *mut c_void, len: u64, index: usize) -> Result<&'a mut [u8], KernelError> {
    match (len, ptr.is_null()) {
        (0, _) => Ok(&mut []),
        (len, _) if len > isize::MAX as u64 => {
            Err(invalid(format!("output {index} is {len} bytes long, beyond any valid allocation")))
        }
        (len, true) => Err(invalid(format!("output {index} data is null but its length is {len}"))),
        // SAFETY: non-null, writable and unaliased for `len` ≤ isize::MAX bytes per the caller.
        (len, false) => Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len as usize) }),
    }
}
