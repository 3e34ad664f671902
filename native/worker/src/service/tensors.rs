//! Request tensors and output buffers: dtype and shape checks (rank, sign,
//! overflow), inline data copied into aligned storage, shared-memory
//! references resolved and bounds-checked, outputs allocated from their
//! specs within the call's byte budget.

use crate::grpc::{status, Code, Status};
use crate::pb::accelerator::{param_value, tensor, OutputSpec, ParamValue, Tensor};
use crate::shm::{Regions, Reservation, Span};
use bytes::Bytes;
use tandem_sdk::tensor::MAX_RANK;
use tandem_sdk::{DType, Param, TensorMut, TensorRef};

/// Most tensors or parameters one request may carry.
pub const MAX_ITEMS: usize = 16;

/// Large copy buffers kept for reuse: a fresh allocation of hundreds of MiB
/// costs more in page faults than the copy itself. At most `MAX_KEPT`
/// buffers of at least `MIN_WORDS` words, `MAX_KEPT_WORDS` in all.
mod spare {
    use std::sync::Mutex;

    pub const MIN_WORDS: usize = 1 << 17; // 1 MiB
    const MAX_KEPT: usize = 2;
    const MAX_KEPT_WORDS: usize = 1 << 26; // 512 MiB

    static KEPT: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());

    /// An empty vector with capacity for `words` when a kept one fits
    /// (without wasting more than half of it), else a new empty one.
    pub fn take(words: usize) -> Vec<u64> {
        if words >= MIN_WORDS {
            if let Ok(mut kept) = KEPT.lock() {
                if let Some(i) = kept.iter().position(|v| v.capacity() >= words && v.capacity() / 2 <= words) {
                    return kept.swap_remove(i);
                }
            }
        }
        Vec::new()
    }

    /// Keeps `words` (emptied) for a later copy when there is room.
    pub fn give(mut words: Vec<u64>) {
        if words.capacity() < MIN_WORDS {
            return;
        }
        words.clear();
        if let Ok(mut kept) = KEPT.lock() {
            let total: usize = kept.iter().map(Vec::capacity).sum();
            if kept.len() < MAX_KEPT && total + words.capacity() <= MAX_KEPT_WORDS {
                kept.push(words);
            }
        }
    }
}

/// Bytes kept 8-byte aligned, so every dtype can be viewed in place.
pub struct AlignedBuf {
    words: Vec<u64>,
    len: usize,
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        spare::give(std::mem::take(&mut self.words));
    }
}

impl AlignedBuf {
    pub fn zeroed(len: usize) -> Result<AlignedBuf, Status> {
        let words_len = len.div_ceil(8);
        let mut words = Vec::new();
        words
            .try_reserve_exact(words_len)
            .map_err(|_| status(Code::ResourceExhausted, format!("cannot allocate {len} bytes")))?;
        words.resize(words_len, 0);
        Ok(AlignedBuf { words, len })
    }

    /// A buffer holding bytes `[span.offset, span.offset + span.len)` of a
    /// shared-memory region, copied in one pass (no zeroing first).
    pub fn copy_of_shared(span: &Span) -> Result<AlignedBuf, Status> {
        let len = span.len;
        let words_len = len.div_ceil(8);
        let mut words = spare::take(words_len);
        if words.capacity() < words_len {
            words
                .try_reserve_exact(words_len)
                .map_err(|_| status(Code::ResourceExhausted, format!("cannot allocate {len} bytes")))?;
        }
        // SAFETY: the capacity holds `words_len` words; the last one is zeroed
        // first (its bytes past `len` are never copied), then `copy_out`
        // writes the first `len` bytes, so all `words_len` words are
        // initialised before `set_len`.
        unsafe {
            if words_len > 0 {
                words.as_mut_ptr().add(words_len - 1).write(0);
            }
            span.region.copy_out(span.offset, words.as_mut_ptr().cast::<u8>(), len);
            words.set_len(words_len);
        }
        Ok(AlignedBuf { words, len })
    }

    pub fn copy_of(bytes: &[u8]) -> Result<AlignedBuf, Status> {
        let mut buf = AlignedBuf::zeroed(bytes.len())?;
        buf.bytes_mut().copy_from_slice(bytes);
        Ok(buf)
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the words hold at least `len` initialised bytes; u8 has no
        // alignment or validity requirements.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the view exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

enum InputData {
    Inline(Bytes),
    Copied(AlignedBuf),
    /// A shared-memory range, copied out of the region when decoded (the
    /// client may write the region at any time; see crate::shm).
    Shared(Span, AlignedBuf),
}

/// A decoded input tensor that owns (or holds the region of) its bytes.
pub struct Input {
    pub dtype: DType,
    pub shape: Vec<usize>,
    data: InputData,
}

impl Input {
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            InputData::Inline(b) => b,
            InputData::Copied(b) | InputData::Shared(_, b) => b.bytes(),
        }
    }

    pub fn view(&self) -> TensorRef<'_> {
        TensorRef { dtype: self.dtype, shape: &self.shape, bytes: self.bytes() }
    }

    pub fn span(&self) -> Option<&Span> {
        match &self.data {
            InputData::Shared(span, _) => Some(span),
            _ => None,
        }
    }
}

enum OutputBuf {
    Inline(AlignedBuf),
    /// The kernel writes the private buffer; `publish` copies it into the
    /// shared range, which the reservation keeps other calls from writing.
    Shared(Span, AlignedBuf, Option<Reservation>),
}

/// An output buffer the kernel fills.
pub struct Output {
    pub dtype: DType,
    pub shape: Vec<usize>,
    buf: OutputBuf,
}

impl Output {
    pub fn view(&mut self) -> TensorMut<'_> {
        let bytes: &mut [u8] = match &mut self.buf {
            OutputBuf::Inline(b) | OutputBuf::Shared(_, b, _) => b.bytes_mut(),
        };
        TensorMut { dtype: self.dtype, shape: &self.shape, bytes }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.buf {
            OutputBuf::Inline(b) | OutputBuf::Shared(_, b, _) => b.bytes(),
        }
    }

    /// Reserves a shared output's range against other calls in flight
    /// (`Region::reserve`); inline outputs need nothing.
    pub fn reserve(&mut self, what: &str) -> Result<(), Status> {
        if let OutputBuf::Shared(span, _, reservation @ None) = &mut self.buf {
            *reservation = Some(span.region.reserve(span.offset, span.len, what)?);
        }
        Ok(())
    }

    /// Copies what the kernel wrote into the shared range, then releases its
    /// reservation; inline outputs need nothing.
    pub fn publish(&mut self) {
        if let OutputBuf::Shared(span, b, reservation) = &mut self.buf {
            span.region.copy_in(span.offset, b.bytes());
            *reservation = None;
        }
    }

    /// The reply tensor: inline bytes, or the filled (published) shared range.
    pub fn into_reply(self) -> Tensor {
        let data = match self.buf {
            OutputBuf::Inline(b) => tensor::Data::InlineData(Bytes::copy_from_slice(b.bytes())),
            OutputBuf::Shared(span, _, _) => tensor::Data::Shared(span.to_ref()),
        };
        Tensor { dtype: self.dtype as i32, shape: self.shape.iter().map(|d| *d as i64).collect(), data: Some(data) }
    }

    fn span(&self) -> Option<&Span> {
        match &self.buf {
            OutputBuf::Shared(span, _, _) => Some(span),
            OutputBuf::Inline(_) => None,
        }
    }
}

pub fn decode_dtype(raw: i32, what: &str) -> Result<DType, Status> {
    u32::try_from(raw)
        .ok()
        .and_then(DType::from_raw)
        .ok_or_else(|| status(Code::InvalidArgument, format!("{what} has unknown dtype {raw}")))
}

/// Checks a shape and returns it with its byte length for `dtype`.
pub fn decode_shape(dims: &[i64], dtype: DType, what: &str) -> Result<(Vec<usize>, usize), Status> {
    if dims.len() > MAX_RANK {
        return Err(status(
            Code::InvalidArgument,
            format!("{what} has rank {}; at most {MAX_RANK} is supported", dims.len()),
        ));
    }
    let mut shape = Vec::with_capacity(dims.len());
    let mut bytes = dtype.size();
    for (axis, &d) in dims.iter().enumerate() {
        let d = usize::try_from(d)
            .map_err(|_| status(Code::InvalidArgument, format!("{what} axis {axis} has negative size {d}")))?;
        bytes = bytes
            .checked_mul(d)
            .filter(|b| *b <= isize::MAX as usize)
            .ok_or_else(|| status(Code::InvalidArgument, format!("{what} shape {dims:?} is too large")))?;
        shape.push(d);
    }
    Ok((shape, bytes))
}

pub fn decode_input(t: &Tensor, regions: &Regions, what: &str) -> Result<Input, Status> {
    let dtype = decode_dtype(t.dtype, what)?;
    let (shape, len) = decode_shape(&t.shape, dtype, what)?;
    let data = match &t.data {
        None => InputData::Inline(Bytes::new()),
        Some(tensor::Data::InlineData(bytes)) if (bytes.as_ptr() as usize).is_multiple_of(dtype.size()) => {
            InputData::Inline(bytes.clone())
        }
        Some(tensor::Data::InlineData(bytes)) => InputData::Copied(AlignedBuf::copy_of(bytes)?),
        Some(tensor::Data::Shared(r)) => {
            let span = regions.resolve(r, dtype.size(), what)?;
            if span.len != len {
                return Err(status(
                    Code::InvalidArgument,
                    format!("{what} has {} data bytes; shape {:?} of {} needs {len}", span.len, t.shape, dtype.name()),
                ));
            }
            let copy = AlignedBuf::copy_of_shared(&span)?;
            InputData::Shared(span, copy)
        }
    };
    let input = Input { dtype, shape, data };
    let actual = input.bytes().len();
    if actual != len {
        return Err(status(
            Code::InvalidArgument,
            format!("{what} has {actual} data bytes; shape {:?} of {} needs {len}", t.shape, dtype.name()),
        ));
    }
    Ok(input)
}

pub fn decode_inputs(tensors: &[Tensor], regions: &Regions, what: &str) -> Result<Vec<Input>, Status> {
    if tensors.len() > MAX_ITEMS {
        return Err(status(Code::InvalidArgument, format!("{} {what}s given; at most {MAX_ITEMS}", tensors.len())));
    }
    tensors.iter().enumerate().map(|(i, t)| decode_input(t, regions, &format!("{what} {i}"))).collect()
}

pub fn decode_params(params: &[ParamValue]) -> Result<Vec<Param>, Status> {
    if params.len() > MAX_ITEMS {
        return Err(status(Code::InvalidArgument, format!("{} parameters given; at most {MAX_ITEMS}", params.len())));
    }
    params
        .iter()
        .enumerate()
        .map(|(i, p)| match p.value {
            Some(param_value::Value::IntValue(v)) => Ok(Param::Int(v)),
            Some(param_value::Value::FloatValue(v)) => Ok(Param::Float(v)),
            None => Err(status(Code::InvalidArgument, format!("parameter {i} has no value"))),
        })
        .collect()
}

/// An output checked against its spec, not allocated yet.
pub struct PlannedOutput {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub len: usize,
    pub span: Option<Span>,
}

/// Checks output specs and their byte budget before anything is allocated.
pub fn plan_outputs(
    specs: &[OutputSpec],
    regions: &Regions,
    inline_budget: usize,
) -> Result<Vec<PlannedOutput>, Status> {
    if specs.len() > MAX_ITEMS {
        return Err(status(Code::InvalidArgument, format!("{} outputs given; at most {MAX_ITEMS}", specs.len())));
    }
    let mut inline_total = 0usize;
    let mut plan = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let what = format!("output {i}");
        let dtype = decode_dtype(spec.dtype, &what)?;
        let (shape, len) = decode_shape(&spec.shape, dtype, &what)?;
        let span = match &spec.shared {
            Some(r) => {
                let span = regions.resolve(r, dtype.size(), &what)?;
                if span.len != len {
                    return Err(status(
                        Code::InvalidArgument,
                        format!("{what}: shared range is {} bytes, the output needs exactly {len}", span.len),
                    ));
                }
                Some(span)
            }
            None => {
                inline_total = inline_total.saturating_add(len);
                if inline_total > inline_budget {
                    return Err(status(
                        Code::ResourceExhausted,
                        format!(
                            "inline outputs need {inline_total}+ bytes, beyond the message limit of {inline_budget}"
                        ),
                    ));
                }
                None
            }
        };
        plan.push(PlannedOutput { dtype, shape, len, span });
    }
    Ok(plan)
}

/// Allocates planned outputs (zeroed inline buffers, or the shared ranges).
pub fn allocate_outputs(plan: Vec<PlannedOutput>) -> Result<Vec<Output>, Status> {
    plan.into_iter()
        .map(|PlannedOutput { dtype, shape, len, span }| {
            let buf = match span {
                Some(span) => OutputBuf::Shared(span, AlignedBuf::zeroed(len)?, None),
                None => OutputBuf::Inline(AlignedBuf::zeroed(len)?),
            };
            Ok(Output { dtype, shape, buf })
        })
        .collect()
}

/// Reserves every shared output's range against other calls in flight
/// (after `check_overlaps`, which names overlaps within the call).
pub fn reserve_outputs(outputs: &mut [Output]) -> Result<(), Status> {
    for (i, output) in outputs.iter_mut().enumerate() {
        output.reserve(&format!("output {i}"))?;
    }
    Ok(())
}

/// Refuses shared outputs that overlap an input or another output.
pub fn check_overlaps(inputs: &[Input], outputs: &[Output]) -> Result<(), Status> {
    for (i, out) in outputs.iter().enumerate() {
        let Some(o) = out.span() else { continue };
        for (j, other) in outputs.iter().enumerate().skip(i + 1) {
            if other.span().is_some_and(|s| s.overlaps(o)) {
                return Err(status(Code::InvalidArgument, format!("output {i} overlaps output {j} in shared memory")));
            }
        }
        for (j, input) in inputs.iter().enumerate() {
            if input.span().is_some_and(|s| s.overlaps(o)) {
                return Err(status(Code::InvalidArgument, format!("output {i} overlaps input {j} in shared memory")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_refuse_negative_deep_and_overflowing_dims() {
        assert_eq!(decode_shape(&[2, 3], DType::F32, "t").unwrap(), (vec![2, 3], 24));
        assert!(decode_shape(&[-1], DType::F32, "t").is_err());
        assert!(decode_shape(&[1, 1, 1, 1, 1], DType::U8, "t").is_err());
        assert!(decode_shape(&[i64::MAX, i64::MAX], DType::F64, "t").is_err());
        assert_eq!(decode_dtype(0, "t").unwrap_err().code, Code::InvalidArgument);
        assert_eq!(decode_dtype(-3, "t").unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn aligned_buffers_are_aligned() {
        let buf = AlignedBuf::copy_of(&[1, 2, 3]).unwrap();
        assert_eq!(buf.bytes(), &[1, 2, 3]);
        assert_eq!(buf.bytes().as_ptr() as usize % 8, 0);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::pb::accelerator::{InvokeRequest, SharedMemoryRef};
    use proptest::prelude::*;
    use prost::Message;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::OnceLock;

    /// A registry with one 4 KiB region "r" (or none when /dev/shm is missing).
    /// The file is deleted once mapped: a static is never dropped, so a
    /// directory kept here would outlive every test run.
    fn regions() -> &'static Regions {
        static REGIONS: OnceLock<Regions> = OnceLock::new();
        REGIONS.get_or_init(|| {
            let regions = Regions::new(std::path::Path::new("/dev/shm"));
            if let Ok(dir) = tempfile::Builder::new().prefix("tandem-prop-").tempdir_in("/dev/shm") {
                let path = dir.path().join("r");
                let mut file = std::fs::File::create(&path).unwrap();
                file.set_permissions(std::fs::Permissions::from_mode(0o600)).unwrap();
                file.write_all(&[0u8; 4096]).unwrap();
                regions.register("r", path.to_str().unwrap(), 4096).unwrap();
            }
            regions
        })
    }

    fn arb_ref() -> impl Strategy<Value = SharedMemoryRef> {
        (prop_oneof![Just("r".to_owned()), "[a-z]{0,3}"], any::<u64>(), any::<u64>(), 0u64..5000, 0u64..5000).prop_map(
            |(region, big_offset, big_len, offset, len)| {
                let (offset, length) = if big_offset % 4 == 0 { (big_offset, big_len) } else { (offset, len) };
                SharedMemoryRef { region, offset, length }
            },
        )
    }

    fn arb_tensor() -> impl Strategy<Value = Tensor> {
        let data = prop_oneof![
            Just(None),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Some(tensor::Data::InlineData(Bytes::from(b)))),
            arb_ref().prop_map(|r| Some(tensor::Data::Shared(r))),
        ];
        (-2i32..8, proptest::collection::vec(prop_oneof![-3i64..20, any::<i64>()], 0..6), data)
            .prop_map(|(dtype, shape, data)| Tensor { dtype, shape, data })
    }

    fn arb_output() -> impl Strategy<Value = OutputSpec> {
        (
            -2i32..8,
            proptest::collection::vec(prop_oneof![-3i64..20, any::<i64>()], 0..6),
            proptest::option::of(arb_ref()),
        )
            .prop_map(|(dtype, shape, shared)| OutputSpec { dtype, shape, shared })
    }

    /// Runs a request through every check the worker makes before a kernel.
    fn validate(req: &InvokeRequest) -> Result<(), Status> {
        let inputs = decode_inputs(&req.inputs, regions(), "input")?;
        decode_params(&req.params)?;
        let plan = plan_outputs(&req.outputs, regions(), 1 << 20)?;
        let outputs = allocate_outputs(plan)?;
        check_overlaps(&inputs, &outputs)?;
        for input in &inputs {
            assert_eq!(input.bytes().len(), input.dtype.size() * input.shape.iter().product::<usize>());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn structured_requests_map_to_a_status(
            inputs in proptest::collection::vec(arb_tensor(), 0..4),
            outputs in proptest::collection::vec(arb_output(), 0..4),
        ) {
            let req = InvokeRequest { kernel: "hash.blake3".into(), inputs, outputs, ..Default::default() };
            if let Err(err) = validate(&req) {
                prop_assert!(err.code != Code::Ok && !err.message.is_empty());
            }
        }

        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(req) = InvokeRequest::decode(Bytes::from(bytes)) {
                let _ = validate(&req);
            }
        }
    }
}
