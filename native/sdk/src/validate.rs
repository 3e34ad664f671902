//! Validation of an invocation against its kernel's descriptor: counts,
//! dtypes, ranks, symbolic dimensions, byte lengths, non-finite values,
//! parameter ranges, the output buffers' shapes, and the work bound the
//! descriptor declares. Runs before any kernel code; allocates only on error.

use crate::descriptor::pb::{dim, work_factor, ParamType};
use crate::descriptor::{KernelDescriptor, ParamSpec, TensorSpec};
use crate::error::{Code, KernelError};
use crate::tensor::{DType, Param, TensorMut, TensorRef};

/// Most distinct symbols one kernel may use.
pub const MAX_SYMBOLS: usize = 8;

/// The name messages give a descriptor's work bound (`WorkBound.max_per_call`).
pub const WORK_LIMIT: &str = "max_work_per_call";

/// Sizes bound to the descriptor's symbolic dimensions by the inputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bindings<'d> {
    names: &'d [String],
    sizes: [usize; MAX_SYMBOLS],
}

impl<'d> Bindings<'d> {
    /// Bindings a prepared call recorded when it was validated.
    pub(crate) fn from_sizes(names: &'d [String], sizes: [usize; MAX_SYMBOLS]) -> Self {
        Bindings { names, sizes }
    }

    pub(crate) fn sizes(&self) -> [usize; MAX_SYMBOLS] {
        self.sizes
    }

    pub fn get(&self, symbol: &str) -> Option<usize> {
        self.names.iter().position(|n| n == symbol).map(|i| self.sizes[i])
    }
}

/// Symbol bindings built by the descriptive (slow) checks.
#[derive(Default)]
struct NamedBindings<'d> {
    names: [&'d str; MAX_SYMBOLS],
    sizes: [usize; MAX_SYMBOLS],
    len: usize,
}

impl<'d> NamedBindings<'d> {
    fn get(&self, symbol: &str) -> Option<usize> {
        (0..self.len).find(|&i| self.names[i] == symbol).map(|i| self.sizes[i])
    }

    fn bind(&mut self, symbol: &'d str, size: usize, tensor: &str, axis: usize) -> Result<(), KernelError> {
        if let Some(bound) = self.get(symbol) {
            if bound != size {
                return Err(KernelError::invalid(format!(
                    "tensor '{tensor}' axis {axis} ('{symbol}') has size {size}, but another tensor set '{symbol}' = {bound}"
                )));
            }
            return Ok(());
        }
        if self.len == MAX_SYMBOLS {
            return Err(KernelError::new(crate::Code::Internal, "descriptor declares too many symbols"));
        }
        self.names[self.len] = symbol;
        self.sizes[self.len] = size;
        self.len += 1;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum DimCheck {
    Any,
    Fixed(usize),
    Symbol(usize),
}

#[derive(Clone, Debug)]
struct CompiledTensor {
    dtype: Option<DType>,
    rank: usize,
    dims: [DimCheck; crate::tensor::MAX_RANK],
    finite_only: bool,
}

/// A work factor as an index: into the compiled symbols or the parameters.
#[derive(Clone, Copy, Debug)]
enum CompiledFactor {
    Symbol(usize),
    Param(usize),
}

#[derive(Clone, Debug)]
struct CompiledWork {
    factors: Vec<CompiledFactor>,
    max: u64,
}

#[derive(Clone, Copy, Debug)]
struct CompiledParam {
    kind: ParamType,
    min: f64,
    max: f64,
}

/// A descriptor reduced to integers for the per-call checks: symbols become
/// indices, so validating a call compares numbers, not strings. Any failure
/// re-runs the descriptive checks to build the caller's message.
#[derive(Clone, Debug)]
pub struct CompiledDescriptor {
    inputs: Vec<CompiledTensor>,
    outputs: Vec<CompiledTensor>,
    params: Vec<CompiledParam>,
    symbols: Vec<String>,
    work: Option<CompiledWork>,
}

impl CompiledDescriptor {
    /// The symbol names bindings index into.
    pub(crate) fn symbols(&self) -> &[String] {
        &self.symbols
    }

    pub fn new(desc: &KernelDescriptor) -> CompiledDescriptor {
        let mut symbols: Vec<String> = Vec::new();
        // Inputs first: a symbol they bind is checked, not set, by the outputs.
        let inputs = desc.inputs.iter().map(|spec| compile_tensor(spec, &mut symbols)).collect();
        let outputs = desc.outputs.iter().map(|spec| compile_tensor(spec, &mut symbols)).collect();
        let params = desc
            .params
            .iter()
            .map(|p| CompiledParam {
                kind: ParamType::from_i32(p.r#type).unwrap_or(ParamType::Unspecified),
                min: p.min,
                max: p.max,
            })
            .collect();
        // A factor naming nothing (the SDK's checks refuse such a descriptor)
        // indexes past the end, counts as unbounded and refuses every call.
        let work = desc.work.as_ref().map(|w| CompiledWork {
            factors: w
                .factors
                .iter()
                .map(|f| match &f.kind {
                    Some(work_factor::Kind::Symbol(s)) => {
                        CompiledFactor::Symbol(symbols.iter().position(|n| n == s).unwrap_or(usize::MAX))
                    }
                    Some(work_factor::Kind::Param(p)) => {
                        CompiledFactor::Param(desc.params.iter().position(|n| &n.name == p).unwrap_or(usize::MAX))
                    }
                    None => CompiledFactor::Symbol(usize::MAX),
                })
                .collect(),
            max: u64::try_from(w.max_per_call).unwrap_or(0),
        });
        CompiledDescriptor { inputs, outputs, params, symbols, work }
    }

    /// The units of work a call asks for: the product of the descriptor's
    /// work factors, saturating at `u64::MAX`; `None` when it declares none.
    pub fn work(&self, bindings: &Bindings<'_>, params: &[Param]) -> Option<u64> {
        let work = self.work.as_ref()?;
        Some(work.factors.iter().fold(1u64, |product, &f| product.saturating_mul(factor_value(f, bindings, params))))
    }

    /// RESOURCE_EXHAUSTED when the call asks for more work than the
    /// descriptor's bound, naming each factor and the limit.
    #[inline]
    pub(crate) fn check_work(
        &self,
        desc: &KernelDescriptor,
        bindings: &Bindings<'_>,
        params: &[Param],
    ) -> Result<(), KernelError> {
        match self.work.as_ref() {
            None => Ok(()),
            Some(work) if self.work(bindings, params).is_some_and(|units| units <= work.max) => Ok(()),
            Some(_) => self.work_error(desc, bindings, params),
        }
    }

    #[cold]
    #[inline(never)]
    fn work_error(
        &self,
        desc: &KernelDescriptor,
        bindings: &Bindings<'_>,
        params: &[Param],
    ) -> Result<(), KernelError> {
        let (Some(work), Some(units)) = (self.work.as_ref(), self.work(bindings, params)) else {
            return Ok(());
        };
        if units <= work.max {
            return Ok(());
        }
        let factors: Vec<String> = work
            .factors
            .iter()
            .map(|&f| {
                let name = match f {
                    CompiledFactor::Symbol(i) => self.symbols.get(i).map_or("?", String::as_str),
                    CompiledFactor::Param(i) => desc.params.get(i).map_or("?", |p| p.name.as_str()),
                };
                format!("{name} {}", factor_value(f, bindings, params))
            })
            .collect();
        let asked = if units == u64::MAX { format!("more than {}", u64::MAX) } else { units.to_string() };
        Err(KernelError::new(
            Code::ResourceExhausted,
            format!(
                "kernel '{}' asks for {asked} units of work ({}); at most {} per call (limit {WORK_LIMIT}); split the call",
                desc.name,
                factors.join(" × "),
                work.max
            ),
        ))
    }

    /// Validates inputs, parameters and output buffers (count, dtype, rank,
    /// dimensions, byte length: a symbol only outputs use, such as `k`, must
    /// agree across them); returns the symbol bindings of all of them.
    pub fn check<'d>(
        &'d self,
        desc: &'d KernelDescriptor,
        inputs: &[TensorRef<'_>],
        params: &[Param],
        outputs: &[TensorMut<'_>],
    ) -> Result<Bindings<'d>, KernelError> {
        match self.check_fast(inputs, params, outputs) {
            Some(sizes) if self.symbols.len() <= MAX_SYMBOLS => {
                let bindings = Bindings { names: &self.symbols, sizes };
                self.check_work(desc, &bindings, params)?;
                Ok(bindings)
            }
            // Slow path: the descriptive checks find and name the problem.
            _ => {
                check_invocation(desc, inputs, params, outputs)?;
                Err(KernelError::new(crate::Code::Internal, "validation paths disagree about a call"))
            }
        }
    }

    fn check_fast(
        &self,
        inputs: &[TensorRef<'_>],
        params: &[Param],
        outputs: &[TensorMut<'_>],
    ) -> Option<[usize; MAX_SYMBOLS]> {
        if inputs.len() != self.inputs.len() || params.len() != self.params.len() || outputs.len() != self.outputs.len()
        {
            return None;
        }
        let mut sizes = [0usize; MAX_SYMBOLS];
        let mut bound = 0u32;
        for (spec, input) in self.inputs.iter().zip(inputs) {
            fits(spec, input.dtype, input.shape, input.bytes.len(), &mut sizes, &mut bound)?;
            if spec.finite_only && has_non_finite(input) {
                return None;
            }
        }
        for (spec, &value) in self.params.iter().zip(params) {
            let numeric = match (spec.kind, value) {
                (ParamType::Float, Param::Float(v)) if v.is_finite() => v,
                (ParamType::Float, Param::Int(v)) => v as f64,
                (ParamType::Int | ParamType::Bool | ParamType::Enum, Param::Int(v)) => v as f64,
                _ => return None,
            };
            if numeric < spec.min || numeric > spec.max {
                return None;
            }
        }
        for (spec, output) in self.outputs.iter().zip(outputs) {
            fits(spec, output.dtype, output.shape, output.bytes.len(), &mut sizes, &mut bound)?;
        }
        Some(sizes)
    }
}

/// One factor's value; a factor naming nothing is unbounded.
fn factor_value(factor: CompiledFactor, bindings: &Bindings<'_>, params: &[Param]) -> u64 {
    match factor {
        CompiledFactor::Symbol(i) => bindings.sizes.get(i).map_or(u64::MAX, |&s| s as u64),
        CompiledFactor::Param(i) => params.get(i).map_or(u64::MAX, |p| u64::try_from(p.as_i64()).unwrap_or(0)),
    }
}

fn compile_tensor(spec: &TensorSpec, symbols: &mut Vec<String>) -> CompiledTensor {
    let mut dims = [DimCheck::Any; crate::tensor::MAX_RANK];
    for (slot, d) in dims.iter_mut().zip(&spec.shape) {
        *slot = match &d.kind {
            Some(dim::Kind::Fixed(n)) => DimCheck::Fixed(*n as usize),
            Some(dim::Kind::Symbol(name)) => {
                let index = symbols.iter().position(|s| s == name).unwrap_or_else(|| {
                    symbols.push(name.clone());
                    symbols.len() - 1
                });
                DimCheck::Symbol(index)
            }
            None => DimCheck::Any,
        };
    }
    CompiledTensor { dtype: dtype_of(spec), rank: spec.shape.len(), dims, finite_only: spec.finite_only }
}

/// Whether one tensor matches its compiled spec, binding the symbols it sets first.
fn fits(
    spec: &CompiledTensor,
    dtype: DType,
    shape: &[usize],
    byte_len: usize,
    sizes: &mut [usize; MAX_SYMBOLS],
    bound: &mut u32,
) -> Option<()> {
    if Some(dtype) != spec.dtype || shape.len() != spec.rank {
        return None;
    }
    let mut elements: usize = 1;
    for (check, &size) in spec.dims.iter().zip(shape) {
        match *check {
            DimCheck::Fixed(n) if n != size => return None,
            DimCheck::Symbol(i) if i < MAX_SYMBOLS => {
                if *bound & (1 << i) != 0 {
                    if sizes[i] != size {
                        return None;
                    }
                } else {
                    sizes[i] = size;
                    *bound |= 1 << i;
                }
            }
            _ => {}
        }
        elements = elements.checked_mul(size)?;
    }
    (elements.checked_mul(dtype.size())? == byte_len).then_some(())
}

pub(crate) fn has_non_finite(input: &TensorRef<'_>) -> bool {
    let row_len = input.shape.iter().skip(1).product::<usize>().max(1);
    match input.dtype {
        DType::F32 => input.f32s("").map_or(true, |v| first_non_finite_row(v, row_len).is_some()),
        DType::F64 => input.f64s("").map_or(true, |v| v.iter().any(|x| !x.is_finite())),
        _ => false,
    }
}

fn dtype_of(spec: &TensorSpec) -> Option<DType> {
    DType::from_raw(spec.dtype as u32)
}

/// Checks one tensor's dtype, rank, dimensions and byte length against `spec`.
fn check_tensor<'d>(
    spec: &'d TensorSpec,
    dtype: DType,
    shape: &[usize],
    byte_len: usize,
    bindings: &mut NamedBindings<'d>,
) -> Result<(), KernelError> {
    let name = spec.name.as_str();
    let expected = dtype_of(spec).ok_or_else(|| KernelError::new(crate::Code::Internal, "descriptor has no dtype"))?;
    if dtype != expected {
        return Err(KernelError::invalid(format!("tensor '{name}' must be {}, got {}", expected.name(), dtype.name())));
    }
    if shape.len() != spec.shape.len() {
        return Err(KernelError::invalid(format!(
            "tensor '{name}' must have rank {}, got rank {}",
            spec.shape.len(),
            shape.len()
        )));
    }
    let mut elements: usize = 1;
    for (axis, (d, &size)) in spec.shape.iter().zip(shape).enumerate() {
        match &d.kind {
            Some(dim::Kind::Fixed(n)) if *n as usize != size => {
                return Err(KernelError::invalid(format!(
                    "tensor '{name}' axis {axis} must have size {n}, got {size}"
                )));
            }
            Some(dim::Kind::Symbol(s)) => bindings.bind(s, size, name, axis)?,
            _ => {}
        }
        elements = elements
            .checked_mul(size)
            .ok_or_else(|| KernelError::invalid(format!("tensor '{name}' shape overflows")))?;
    }
    let expected_len = elements
        .checked_mul(dtype.size())
        .ok_or_else(|| KernelError::invalid(format!("tensor '{name}' shape overflows")))?;
    if byte_len != expected_len {
        return Err(KernelError::invalid(format!(
            "tensor '{name}' has {byte_len} bytes but its shape {shape:?} of {} needs {expected_len}",
            dtype.name()
        )));
    }
    Ok(())
}

/// Validates inputs, parameters and outputs with messages that name the problem.
pub(crate) fn check_invocation(
    desc: &KernelDescriptor,
    inputs: &[TensorRef<'_>],
    params: &[Param],
    outputs: &[TensorMut<'_>],
) -> Result<(), KernelError> {
    if inputs.len() != desc.inputs.len() {
        return Err(KernelError::invalid(format!(
            "kernel '{}' takes {} input tensor(s), got {}",
            desc.name,
            desc.inputs.len(),
            inputs.len()
        )));
    }
    let mut bindings = NamedBindings::default();
    for (spec, input) in desc.inputs.iter().zip(inputs) {
        check_tensor(spec, input.dtype, input.shape, input.bytes.len(), &mut bindings)?;
        if spec.finite_only {
            check_finite(spec, input)?;
        }
    }
    if params.len() != desc.params.len() {
        return Err(KernelError::invalid(format!(
            "kernel '{}' takes {} parameter(s), got {}",
            desc.name,
            desc.params.len(),
            params.len()
        )));
    }
    for (spec, &value) in desc.params.iter().zip(params) {
        check_param(spec, value)?;
    }
    if outputs.len() != desc.outputs.len() {
        let names: Vec<&str> = desc.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(KernelError::invalid(format!(
            "kernel '{}' writes {} output(s) ({}), got {}",
            desc.name,
            desc.outputs.len(),
            names.join(", "),
            outputs.len()
        )));
    }
    for (spec, output) in desc.outputs.iter().zip(outputs) {
        check_tensor(spec, output.dtype, output.shape, output.bytes.len(), &mut bindings)?;
    }
    Ok(())
}

/// Checks tensors against their specs, symbols shared across all of them.
pub fn check_tensors(tensors: &[(&TensorSpec, TensorRef<'_>)]) -> Result<(), KernelError> {
    let mut bindings = NamedBindings::default();
    for (spec, t) in tensors {
        check_tensor(spec, t.dtype, t.shape, t.bytes.len(), &mut bindings)?;
    }
    Ok(())
}

/// Checks an output buffer's dtype and exact shape/length.
pub fn check_output(spec: &TensorSpec, output: &TensorMut<'_>, expected_shape: &[usize]) -> Result<(), KernelError> {
    let mut scratch = NamedBindings::default();
    check_tensor(spec, output.dtype, output.shape, output.bytes.len(), &mut scratch)?;
    if output.shape != expected_shape {
        return Err(KernelError::invalid(format!(
            "output '{}' must have shape {expected_shape:?}, got {:?}",
            spec.name, output.shape
        )));
    }
    Ok(())
}

fn check_param(spec: &ParamSpec, value: Param) -> Result<(), KernelError> {
    let name = spec.name.as_str();
    let kind = ParamType::from_i32(spec.r#type).unwrap_or(ParamType::Unspecified);
    let numeric = match (kind, value) {
        (ParamType::Float, Param::Float(v)) => {
            if !v.is_finite() {
                return Err(KernelError::invalid(format!("parameter '{name}' must be finite, got {v}")));
            }
            v
        }
        (ParamType::Float, Param::Int(v)) => v as f64,
        (ParamType::Int | ParamType::Bool | ParamType::Enum, Param::Int(v)) => v as f64,
        (_, Param::Float(v)) => {
            return Err(KernelError::invalid(format!("parameter '{name}' must be an integer, got {v}")));
        }
        (ParamType::Unspecified, _) => {
            return Err(KernelError::new(crate::Code::Internal, "descriptor parameter has no type"));
        }
    };
    if numeric < spec.min || numeric > spec.max {
        if kind == ParamType::Enum {
            return Err(KernelError::invalid(format!(
                "parameter '{name}' must be one of {} (0..{}), got {numeric}",
                spec.choices.join(", "),
                spec.choices.len()
            )));
        }
        return Err(KernelError::invalid(format!(
            "parameter '{name}' must be in [{}, {}], got {numeric}",
            spec.min, spec.max
        )));
    }
    Ok(())
}

pub(crate) fn check_finite(spec: &TensorSpec, input: &TensorRef<'_>) -> Result<(), KernelError> {
    let row_len: usize = input.shape.iter().skip(1).product::<usize>().max(1);
    let bad = match input.dtype {
        DType::F32 => first_non_finite_row(input.f32s(&spec.name)?, row_len),
        DType::F64 => input.f64s(&spec.name)?.iter().position(|v| !v.is_finite()).map(|i| i / row_len),
        _ => None,
    };
    match bad {
        Some(row) => Err(KernelError::invalid(format!("tensor '{}' row {row} contains NaN or infinity", spec.name))),
        None => Ok(()),
    }
}

/// Index of the first row holding a NaN or infinity.
pub fn first_non_finite_row(values: &[f32], row_len: usize) -> Option<usize> {
    // Branch-free per chunk: `x * 0` is 0 for finite x and NaN otherwise.
    let mut chunks = values.chunks_exact(64);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let mut acc = [0.0f32; 16];
        for lanes in chunk.chunks_exact(16) {
            for (a, &x) in acc.iter_mut().zip(lanes) {
                *a += x * 0.0;
            }
        }
        if acc.iter().any(|a| a.is_nan()) {
            return chunk.iter().position(|x| !x.is_finite()).map(|i| (base + i) / row_len);
        }
        base += 64;
    }
    chunks.remainder().iter().position(|x| !x.is_finite()).map(|i| (base + i) / row_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{ParamSpec, D, W};

    /// rows × paths × scale, at most 1000 per call.
    fn bounded() -> KernelDescriptor {
        KernelDescriptor::builder("t.work", 1)
            .input(TensorSpec::new("rows", DType::F64, [D::sym("batch")]))
            .output(TensorSpec::new("out", DType::F64, [D::sym("batch")]))
            .param(ParamSpec::int("paths", 1, i64::MAX, 1))
            .param(ParamSpec::int("scale", 0, i64::MAX, 1))
            .work(&[W::sym("batch"), W::param("paths"), W::param("scale")], 1000)
            .build()
    }

    fn check(rows: usize, paths: i64, scale: i64) -> Result<Option<u64>, KernelError> {
        let desc = bounded();
        let compiled = CompiledDescriptor::new(&desc);
        let input = vec![0.0f64; rows];
        let mut output = vec![0.0f64; rows];
        let shape = [rows];
        let params = [Param::Int(paths), Param::Int(scale)];
        let bindings =
            compiled.check(&desc, &[TensorRef::of(&shape, &input)], &params, &[TensorMut::of(&shape, &mut output)])?;
        Ok(compiled.work(&bindings, &params))
    }

    #[test]
    fn check_accepts_work_up_to_the_bound_and_reports_it() {
        assert_eq!(check(10, 100, 1), Ok(Some(1000)));
        assert_eq!(check(0, 100, 1), Ok(Some(0)));
    }

    #[test]
    fn check_refuses_work_over_the_bound_naming_factors_and_limit() {
        let error = check(10, 101, 1).unwrap_err();
        assert_eq!(error.code, Code::ResourceExhausted);
        assert_eq!(
            error.message,
            "kernel 't.work' asks for 1010 units of work (batch 10 × paths 101 × scale 1); \
             at most 1000 per call (limit max_work_per_call); split the call"
        );
    }

    #[test]
    fn check_saturates_an_overflowing_product_and_refuses_it() {
        // 3 × (2^62) × (2^62) wraps to a small number in u64; it must saturate instead.
        let error = check(3, 1 << 62, 1 << 62).unwrap_err();
        assert_eq!(error.code, Code::ResourceExhausted);
        assert!(error.message.contains("asks for more than 18446744073709551615 units of work"), "{error}");
        assert!(error.message.contains("paths 4611686018427387904 × scale 4611686018427387904"), "{error}");
        // 2^32 × 2^32 = 2^64 is exactly one past u64::MAX: wrapping would give 0.
        assert_eq!(check(1, 1 << 32, 1 << 32).unwrap_err().code, Code::ResourceExhausted);
    }

    #[test]
    fn check_lets_a_zero_factor_through_and_other_errors_win_over_the_bound() {
        assert_eq!(check(5, i64::MAX, 0), Ok(Some(0)));
        // An invalid parameter is INVALID_ARGUMENT even when the work would also be too much.
        assert_eq!(check(10, 1000, -1).unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn work_is_none_without_a_declared_bound() {
        let desc = KernelDescriptor::builder("t.free", 1).input(TensorSpec::new("x", DType::U8, [D::sym("n")])).build();
        let compiled = CompiledDescriptor::new(&desc);
        let data = [0u8; 4];
        let bindings = compiled.check(&desc, &[TensorRef::of(&[4], &data)], &[], &[]).unwrap();
        assert_eq!(compiled.work(&bindings, &[]), None);
    }
}
