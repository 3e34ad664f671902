//! Prepared calls: a kernel call validated once ([`crate::Library::prepare`]
//! runs every check an unprepared call does) and repeated on new data. A
//! repeat at the prepared row count takes one pass over its buffers —
//! each length against the prepared one, each null pointer and overlap,
//! the inputs a descriptor wants finite — and goes straight to the kernel;
//! anything that pass does not accept runs [`PreparedCall::invoke`], whose
//! checks name the problem in the order an unprepared call would. What a
//! repeat must check besides its buffers (the state) is decided at
//! preparation, so a stateless call pays nothing for it.

use crate::abi::stack::StackVec;
use crate::abi::types::{tandem_slice_mut_t, tandem_slice_t, TANDEM_MAX_TENSORS};
use crate::context::CallContext;
use crate::descriptor::{self, KernelDescriptor};
use crate::error::{Code, KernelError};
use crate::kernel::{Invocation, Kernel};
use crate::library::{check_state, RegisteredKernel};
use crate::state::State;
use crate::tensor::{DType, Param, TensorMut, TensorRef, MAX_RANK};
use crate::validate::{self, Bindings};
use std::mem::MaybeUninit;

/// One tensor's header as a prepared call fixed it.
#[derive(Clone, Copy, Debug)]
struct Header {
    dtype: DType,
    rank: usize,
    shape: [usize; MAX_RANK],
    /// Bytes of one row (axis 0), for a repeat with another row count.
    row_bytes: usize,
    byte_len: usize,
    finite_only: bool,
}

impl Header {
    fn new(dtype: DType, shape: &[usize], byte_len: usize, finite_only: bool) -> Header {
        let mut fixed = [0; MAX_RANK];
        fixed[..shape.len()].copy_from_slice(shape);
        // The validated byte length is the shape's, so this cannot overflow.
        let row_bytes = shape.iter().skip(1).product::<usize>() * dtype.size();
        Header { dtype, rank: shape.len(), shape: fixed, row_bytes, byte_len, finite_only }
    }

    /// The byte length of this tensor with `rows` rows (`None`: as prepared).
    fn len_at(&self, rows: Option<usize>) -> Option<usize> {
        match rows {
            None => Some(self.byte_len),
            Some(rows) => self.row_bytes.checked_mul(rows),
        }
    }

    /// The prepared shape.
    fn shape(&self) -> &[usize] {
        &self.shape[..self.rank]
    }

    /// Whether a buffer of `byte_len` bytes at `data` can stand for this
    /// tensor at the prepared row count: the prepared length, and data that
    /// is not null unless the length is 0.
    #[inline(always)]
    fn takes(&self, data: *const std::ffi::c_void, byte_len: u64) -> bool {
        byte_len == self.byte_len as u64 && (byte_len == 0 || !data.is_null())
    }
}

/// A caller's array of `count` slices, as the C ABI received it.
#[derive(Clone, Copy)]
pub(crate) struct RawSlices<S> {
    ptr: *const S,
    count: usize,
}

impl<S> RawSlices<S> {
    pub(crate) fn new(ptr: *const S, count: usize) -> Self {
        RawSlices { ptr, count }
    }

    /// The array when it holds exactly `count` slices (and is not null
    /// unless empty); `None` otherwise.
    ///
    /// # Safety
    /// `ptr` is null, or readable for `self.count` slices during `'a`.
    #[inline(always)]
    unsafe fn get<'a>(self, count: usize) -> Option<&'a [S]> {
        match self.count {
            n if n != count => None,
            0 => Some(&[]),
            _ if self.ptr.is_null() => None,
            // SAFETY: non-null and readable for `count` slices per the caller.
            n => Some(unsafe { std::slice::from_raw_parts(self.ptr, n) }),
        }
    }
}

/// A view of `len` bytes at `data`; empty (and never dereferenced) for 0.
///
/// # Safety
/// `data` is readable for `len` ≤ isize::MAX bytes during `'a`, or `len` is 0.
#[inline(always)]
unsafe fn bytes<'a>(data: *const std::ffi::c_void, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: non-null (the caller checked) and readable per the caller.
    unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
}

/// As [`bytes`], writable.
///
/// # Safety
/// `data` is writable for `len` ≤ isize::MAX bytes during `'a` and aliased
/// by nothing else, or `len` is 0.
#[inline(always)]
unsafe fn bytes_mut<'a>(data: *mut std::ffi::c_void, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: non-null (the caller checked), writable and unaliased per the caller.
    unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), len) }
}

/// Whether the non-empty byte range `[start, end)` overlaps the buffer
/// `other` (address, length; an empty one overlaps nothing), as
/// `check_overlaps_by` decides it.
#[inline(always)]
fn overlaps(start: usize, end: usize, (other_start, other_len): (usize, usize)) -> bool {
    let other_end = other_start.saturating_add(other_len);
    other_start < other_end && start < other_end && other_start < end
}

/// A call validated once and invoked many times: the kernel, every tensor's
/// dtype and shape, the parameter values and the symbol bindings are fixed;
/// a repeat supplies only the data — and, for a batchable kernel, a new row
/// count (axis 0, as dynamic batches differ). Invoking checks what can
/// change between repeats — the counts, each buffer's length, the row count
/// against the work bound, the inputs a descriptor wants finite (data, so
/// checked every time), the state and the context — and skips the
/// descriptor walk, the shape matching and the parameter ranges, which
/// cannot change. It does not allocate.
///
/// A stateless kernel's call skips the state check (a stateless kernel
/// ignores a state it is given, prepared or not); a context without a
/// cancel token or deadline costs two comparisons.
#[derive(Clone)]
pub struct PreparedCall<'k> {
    kernel: &'k RegisteredKernel,
    inputs: Vec<Header>,
    outputs: Vec<Header>,
    params: Vec<Param>,
    sizes: [usize; validate::MAX_SYMBOLS],
    /// The batch symbol's index when the row count may vary: the kernel is
    /// batchable and the symbol sizes nothing but axis 0.
    batch: Option<usize>,
    /// The prepared shapes, so a repeat at the prepared row count copies none.
    input_shapes: Shapes,
    output_shapes: Shapes,
    /// Whether the kernel needs a state, so a repeat checks the one it gets.
    stateful: bool,
    /// Whether any input must be finite, so a repeat looks at the data.
    finite_inputs: bool,
    /// What a repeat hands the kernel, looked up once.
    descriptor: &'k KernelDescriptor,
    symbols: &'k [String],
    code: &'k dyn Kernel,
}

/// Where a repeat's tensors are: at most [`TANDEM_MAX_TENSORS`] of each.
type Shapes = [[usize; MAX_RANK]; TANDEM_MAX_TENSORS];

impl<'k> PreparedCall<'k> {
    pub(crate) fn new(
        kernel: &'k RegisteredKernel,
        inputs: &[TensorRef<'_>],
        params: &[Param],
        outputs: &[TensorMut<'_>],
    ) -> Result<PreparedCall<'k>, KernelError> {
        let desc = &kernel.descriptor;
        let bindings = kernel.compiled.check(desc, inputs, params, outputs)?;
        let finite = |i: usize| desc.inputs.get(i).is_some_and(|spec| spec.finite_only);
        let inputs: Vec<Header> =
            inputs.iter().enumerate().map(|(i, t)| Header::new(t.dtype, t.shape, t.bytes.len(), finite(i))).collect();
        let outputs: Vec<Header> =
            outputs.iter().map(|t| Header::new(t.dtype, t.shape, t.bytes.len(), false)).collect();
        let shapes = |headers: &[Header]| {
            let mut shapes: Shapes = Default::default();
            for (shape, header) in shapes.iter_mut().zip(headers) {
                *shape = header.shape;
            }
            shapes
        };
        Ok(PreparedCall {
            kernel,
            input_shapes: shapes(&inputs),
            output_shapes: shapes(&outputs),
            inputs,
            outputs,
            params: params.to_vec(),
            sizes: bindings.sizes(),
            batch: row_symbol(kernel),
            stateful: !desc.state_kind.is_empty(),
            finite_inputs: desc.inputs.iter().any(|spec| spec.finite_only),
            descriptor: desc,
            symbols: kernel.compiled.symbols(),
            code: kernel.kernel.as_ref(),
        })
    }

    pub fn kernel(&self) -> &'k RegisteredKernel {
        self.kernel
    }

    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// Whether a repeat may give another row count (axis 0).
    pub fn varies_rows(&self) -> bool {
        self.batch.is_some()
    }

    /// Whether a repeat's raw row count (`TANDEM_ROWS_AS_PREPARED`, or axis
    /// 0) is the prepared one, so the repeat is the prepared call itself:
    /// the same shapes, bindings and work (checked at preparation).
    #[inline(always)]
    pub(crate) fn rows_as_prepared(&self, rows: u64) -> bool {
        rows == crate::abi::types::TANDEM_ROWS_AS_PREPARED
            || self.batch.is_some_and(|batch| self.sizes[batch] as u64 == rows)
    }

    /// Runs a repeat at the prepared row count in one pass over its buffers,
    /// when that pass finds nothing to refuse: the counts and every length
    /// as prepared, no null data behind a length, no output overlapping
    /// another buffer, finite data where the descriptor wants it, and (for a
    /// stateful kernel) a state of its kind. `None`, with nothing run, when
    /// any of that differs: [`PreparedCall::invoke`] then refuses the call
    /// with the message an unprepared call would give. `Some` holds the
    /// context's refusal or the kernel's result.
    ///
    /// # Safety
    /// Each input slice's data is readable, and each output slice's data is
    /// writable, for its `byte_len` bytes during the call.
    #[inline]
    pub(crate) unsafe fn invoke_as_prepared(
        &self,
        state: Option<&State>,
        inputs: RawSlices<tandem_slice_t>,
        outputs: RawSlices<tandem_slice_mut_t>,
        ctx: &CallContext,
    ) -> Option<Result<(), KernelError>> {
        // Slicing by the prepared counts (at most TANDEM_MAX_TENSORS each,
        // which preparation checked) cannot fail.
        let mut views = [const { MaybeUninit::<TensorRef<'_>>::uninit() }; TANDEM_MAX_TENSORS];
        let mut out_views = [const { MaybeUninit::<TensorMut<'_>>::uninit() }; TANDEM_MAX_TENSORS];
        let (views, out_views) = (&mut views[..self.inputs.len()], &mut out_views[..self.outputs.len()]);
        // SAFETY: readable for their counts per the caller.
        let (Some(inputs), Some(outputs)) =
            (unsafe { inputs.get(views.len()) }, unsafe { outputs.get(out_views.len()) })
        else {
            return None;
        };
        for ((header, slice), view) in self.inputs.iter().zip(inputs).zip(views.iter_mut()) {
            if !header.takes(slice.data, slice.byte_len) {
                return None;
            }
            // SAFETY: readable for `byte_len` (the prepared length, at most
            // isize::MAX) during the call, per the caller; non-null unless 0.
            let bytes = unsafe { bytes(slice.data, header.byte_len) };
            view.write(TensorRef { dtype: header.dtype, shape: header.shape(), bytes });
        }
        // SAFETY: the loop wrote every slot (one per prepared input, and the
        // counts are equal), and TensorRef needs no drop.
        let views: &[TensorRef<'_>] =
            unsafe { &*(views as *const [MaybeUninit<TensorRef<'_>>] as *const [TensorRef<'_>]) };
        if self.finite_inputs
            && self.inputs.iter().zip(views).any(|(header, view)| header.finite_only && validate::has_non_finite(view))
        {
            return None;
        }
        for (i, ((header, slice), view)) in self.outputs.iter().zip(outputs).zip(out_views.iter_mut()).enumerate() {
            if !header.takes(slice.data, slice.byte_len) {
                return None;
            }
            let start = slice.data as usize;
            let end = start.saturating_add(header.byte_len);
            // Outputs are disjoint from every input and each other (only an
            // output written before this one can be compared yet; the pair
            // is the same either way round).
            let earlier = outputs[..i].iter().map(|o| (o.data as usize, o.byte_len as usize));
            if start < end
                && views
                    .iter()
                    .map(|v| (v.bytes.as_ptr() as usize, v.bytes.len()))
                    .chain(earlier)
                    .any(|o| overlaps(start, end, o))
            {
                return None;
            }
            // SAFETY: writable for `byte_len` (the prepared length) during the
            // call per the caller, non-null unless 0, and disjoint from every
            // other buffer of the call (checked above, for the pairs with the
            // outputs after this one as they are viewed), so this is the only
            // reference to those bytes.
            let bytes = unsafe { bytes_mut(slice.data, header.byte_len) };
            view.write(TensorMut { dtype: header.dtype, shape: header.shape(), bytes });
        }
        // SAFETY: the loop wrote every slot, as for the inputs; TensorMut
        // needs no drop, so leaving them is no leak.
        let out_views: &mut [TensorMut<'_>] =
            unsafe { &mut *(out_views as *mut [MaybeUninit<TensorMut<'_>>] as *mut [TensorMut<'_>]) };
        if self.stateful && check_state(self.descriptor, state).is_err() {
            return None;
        }
        if let Err(err) = ctx.check() {
            return Some(Err(err));
        }
        Some(self.run(state, views, out_views, ctx, Bindings::from_sizes(self.symbols, self.sizes)))
    }

    /// The kernel itself, on views the caller checked.
    #[inline(always)]
    fn run<'t>(
        &self,
        state: Option<&State>,
        inputs: &[TensorRef<'t>],
        outputs: &mut [TensorMut<'t>],
        ctx: &CallContext,
        bindings: Bindings<'_>,
    ) -> Result<(), KernelError> {
        self.code.invoke(Invocation {
            descriptor: self.descriptor,
            state,
            inputs,
            params: &self.params,
            outputs,
            ctx,
            bindings,
        })
    }

    /// Runs the prepared call on new data: `rows` is the repeat's row count
    /// (`None`: as prepared); `inputs[i]` and `outputs[i]` must have the
    /// lengths the prepared shapes give at that row count (INVALID_ARGUMENT
    /// naming the tensor otherwise).
    pub fn invoke(
        &self,
        state: Option<&State>,
        rows: Option<usize>,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        ctx: &CallContext,
    ) -> Result<(), KernelError> {
        let desc = &self.kernel.descriptor;
        if inputs.len() != self.inputs.len() || outputs.len() != self.outputs.len() {
            return Err(KernelError::invalid(format!(
                "the prepared call of kernel '{}' takes {} input(s) and {} output(s), got {} and {}",
                desc.name,
                self.inputs.len(),
                self.outputs.len(),
                inputs.len(),
                outputs.len()
            )));
        }
        let sizes = self.sizes_for(rows)?;
        let bindings = Bindings::from_sizes(self.kernel.compiled.symbols(), sizes);
        // At the prepared row count the prepared shapes serve as they are.
        let (mut in_rows, mut out_rows): (Shapes, Shapes);
        let (in_shapes, out_shapes) = match rows {
            None => (&self.input_shapes, &self.output_shapes),
            Some(rows) => {
                self.kernel.compiled.check_work(desc, &bindings, &self.params)?;
                (in_rows, out_rows) = (self.input_shapes, self.output_shapes);
                in_rows
                    .iter_mut()
                    .take(self.inputs.len())
                    .chain(out_rows.iter_mut().take(self.outputs.len()))
                    .for_each(|s| s[0] = rows);
                (&in_rows, &out_rows)
            }
        };
        for (i, header) in self.inputs.iter().enumerate() {
            let len = header.len_at(rows).ok_or_else(|| self.too_many_rows(rows))?;
            if inputs[i].len() != len {
                return Err(self.length_error("input", i, inputs[i].len(), len));
            }
        }
        for (i, header) in self.outputs.iter().enumerate() {
            let len = header.len_at(rows).ok_or_else(|| self.too_many_rows(rows))?;
            if outputs[i].len() != len {
                return Err(self.length_error("output", i, outputs[i].len(), len));
            }
        }
        let mut views: StackVec<TensorRef<'_>, TANDEM_MAX_TENSORS> = StackVec::new();
        for ((header, shape), &bytes) in self.inputs.iter().zip(in_shapes).zip(inputs) {
            let view = TensorRef { dtype: header.dtype, shape: &shape[..header.rank], bytes };
            if header.finite_only && validate::has_non_finite(&view) {
                // The descriptive check names the tensor and the first bad row.
                return Err(self.describe_error(in_shapes, inputs));
            }
            views.push(view);
        }
        let mut out_views: StackVec<TensorMut<'_>, TANDEM_MAX_TENSORS> = StackVec::new();
        for ((header, shape), bytes) in self.outputs.iter().zip(out_shapes).zip(outputs.iter_mut()) {
            out_views.push(TensorMut { dtype: header.dtype, shape: &shape[..header.rank], bytes });
        }
        if self.stateful {
            check_state(desc, state)?;
        }
        ctx.check()?;
        self.run(state, views.as_slice(), out_views.as_mut_slice(), ctx, bindings)
    }

    /// The symbol sizes of a repeat with `rows` rows.
    fn sizes_for(&self, rows: Option<usize>) -> Result<[usize; validate::MAX_SYMBOLS], KernelError> {
        let mut sizes = self.sizes;
        match (rows, self.batch) {
            (None, _) => {}
            (Some(rows), Some(batch)) => sizes[batch] = rows,
            (Some(rows), None) => {
                let prepared = self.inputs.first().or(self.outputs.first()).map_or(0, |h| h.shape[0]);
                if self.inputs.iter().chain(&self.outputs).any(|h| h.rank == 0 || h.shape[0] != rows) {
                    return Err(KernelError::invalid(format!(
                        "kernel '{}' is not batchable (or its batch symbol sizes more than axis 0), so its prepared call runs only with the shapes it was prepared with ({prepared} rows), not {rows}; prepare a new call",
                        self.kernel.descriptor.name
                    )));
                }
            }
        }
        Ok(sizes)
    }

    fn too_many_rows(&self, rows: Option<usize>) -> KernelError {
        KernelError::invalid(format!(
            "{} rows overflow a buffer length for kernel '{}'",
            rows.unwrap_or(0),
            self.kernel.descriptor.name
        ))
    }

    fn length_error(&self, what: &str, index: usize, got: usize, expected: usize) -> KernelError {
        let name = match what {
            "input" => self.kernel.descriptor.inputs.get(index),
            _ => self.kernel.descriptor.outputs.get(index),
        }
        .map_or("?", |spec| spec.name.as_str());
        KernelError::invalid(format!(
            "{what} {index} ('{name}') of the prepared call of kernel '{}' is {got} bytes; its prepared shape needs {expected}; prepare a new call for a new shape",
            self.kernel.descriptor.name
        ))
    }

    /// The slow path's message for inputs the fast check refused.
    fn describe_error(&self, shapes: &Shapes, inputs: &[&[u8]]) -> KernelError {
        let desc = &self.kernel.descriptor;
        for (((spec, header), shape), &bytes) in desc.inputs.iter().zip(&self.inputs).zip(shapes).zip(inputs) {
            if header.finite_only {
                let view = TensorRef { dtype: header.dtype, shape: &shape[..header.rank], bytes };
                if let Err(err) = validate::check_finite(spec, &view) {
                    return err;
                }
            }
        }
        KernelError::new(Code::Internal, "validation paths disagree about a prepared call")
    }
}

/// The batch symbol's index in the compiled symbols when a prepared call of
/// `kernel` may vary its row count: the kernel is batchable (every tensor's
/// axis 0 is one symbol, [`check`] made sure) and no other axis uses it.
fn row_symbol(kernel: &RegisteredKernel) -> Option<usize> {
    let desc = &kernel.descriptor;
    if !desc.flags.as_ref().is_some_and(|f| f.batchable) {
        return None;
    }
    let name = |d: &descriptor::pb::Dim| match &d.kind {
        Some(descriptor::pb::dim::Kind::Symbol(s)) => Some(s.clone()),
        _ => None,
    };
    let tensors: Vec<&descriptor::TensorSpec> = desc.inputs.iter().chain(&desc.outputs).collect();
    let batch = name(tensors.first()?.shape.first()?)?;
    let elsewhere = tensors.iter().any(|t| t.shape.iter().skip(1).any(|d| name(d).as_deref() == Some(batch.as_str())));
    if elsewhere {
        return None;
    }
    kernel.compiled.symbols().iter().position(|s| *s == batch)
}
