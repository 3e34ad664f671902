//! Warm-up derived from a descriptor, so that no kernel is left cold: every
//! symbol is sized 1, inputs (and the state's tensors, optional ones
//! omitted) hold ones, parameters take their defaults. A kernel whose
//! contract needs other values overrides [`crate::Kernel::warm_up`] and
//! calls [`WarmUp::run`] with its own.

use crate::context::CallContext;
use crate::descriptor::pb::dim;
use crate::descriptor::{symbol, KernelDescriptor, TensorSpec};
use crate::error::KernelError;
use crate::library::{Library, RegisteredKernel};
use crate::tensor::{DType, Param, TensorMut, TensorRef};

/// One kernel's warm-up, run by [`Library::warm_up`].
pub struct WarmUp<'a> {
    library: &'a Library,
    kernel: &'a RegisteredKernel,
}

/// A tensor of the warm-up call: its dtype, shape and bytes.
pub struct WarmTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl WarmTensor {
    /// A tensor whose every element is one, shaped by `spec` with each
    /// symbol sized 1.
    pub fn ones(spec: &TensorSpec) -> Result<WarmTensor, KernelError> {
        let dtype = DType::from_raw(spec.dtype as u32)
            .ok_or_else(|| KernelError::invalid(format!("tensor '{}' has no valid dtype", spec.name)))?;
        let shape: Vec<usize> = spec
            .shape
            .iter()
            .map(|d| match &d.kind {
                Some(dim::Kind::Fixed(n)) => *n as usize,
                _ => 1,
            })
            .collect();
        let count: usize = shape.iter().product();
        let one: &[u8] = match dtype {
            DType::U8 => &[1],
            DType::I32 => &1i32.to_le_bytes(),
            DType::I64 => &1i64.to_le_bytes(),
            DType::F32 => &1f32.to_le_bytes(),
            DType::F64 => &1f64.to_le_bytes(),
        };
        Ok(WarmTensor { dtype, shape, bytes: one.repeat(count) })
    }

    /// A tensor from `f64` values converted to `dtype`.
    pub fn from_f64s(dtype: DType, shape: &[usize], values: &[f64]) -> WarmTensor {
        let mut bytes = Vec::with_capacity(values.len() * dtype.size());
        for &v in values {
            match dtype {
                DType::U8 => bytes.push(v as u8),
                DType::I32 => bytes.extend_from_slice(&(v as i32).to_le_bytes()),
                DType::I64 => bytes.extend_from_slice(&(v as i64).to_le_bytes()),
                DType::F32 => bytes.extend_from_slice(&(v as f32).to_le_bytes()),
                DType::F64 => bytes.extend_from_slice(&v.to_le_bytes()),
            }
        }
        WarmTensor { dtype, shape: shape.to_vec(), bytes }
    }

    fn view(&self) -> TensorRef<'_> {
        TensorRef { dtype: self.dtype, shape: &self.shape, bytes: &self.bytes }
    }
}

impl<'a> WarmUp<'a> {
    pub(crate) fn new(library: &'a Library, kernel: &'a RegisteredKernel) -> WarmUp<'a> {
        WarmUp { library, kernel }
    }

    pub fn descriptor(&self) -> &KernelDescriptor {
        self.kernel.descriptor()
    }

    /// Parameters at their defaults, in descriptor order.
    pub fn default_params(&self) -> Vec<Param> {
        use crate::descriptor::pb::ParamType;
        self.descriptor()
            .params
            .iter()
            .map(|p| match ParamType::from_i32(p.r#type) {
                Some(ParamType::Float) => Param::Float(p.default_value),
                _ => Param::Int(p.default_value as i64),
            })
            .collect()
    }

    /// The call the descriptor implies (see the module docs).
    pub fn run_derived(&mut self) -> Result<(), KernelError> {
        let d = self.descriptor();
        let inputs = d.inputs.iter().map(WarmTensor::ones).collect::<Result<Vec<_>, _>>()?;
        let state = match d.state_kind.as_str() {
            "" => None,
            kind => {
                let spec = self
                    .library
                    .state_kinds()
                    .iter()
                    .find(|k| k.name == kind)
                    .ok_or_else(|| KernelError::not_found(format!("state kind '{kind}' is not registered")))?;
                let tensors =
                    spec.tensors
                        .iter()
                        .map(|t| {
                            if spec.optional_tensors.contains(&t.name) {
                                Ok(None)
                            } else {
                                WarmTensor::ones(t).map(Some)
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                Some((kind.to_owned(), tensors))
            }
        };
        let params = self.default_params();
        match &state {
            Some((kind, tensors)) => self.run(&inputs, &params, Some((kind, tensors))),
            None => self.run(&inputs, &params, None),
        }
    }

    /// Runs the kernel once on these inputs and parameters, with a state of
    /// `kind` built from `tensors` when given. Outputs are shaped from the
    /// descriptor: symbols bound by the inputs, or by the state (so `k`-like
    /// symbols see the state's size), others sized 1.
    pub fn run(
        &mut self,
        inputs: &[WarmTensor],
        params: &[Param],
        state: Option<(&str, &[Option<WarmTensor>])>,
    ) -> Result<(), KernelError> {
        let state = match state {
            Some((kind, tensors)) => {
                let views: Vec<Option<TensorRef<'_>>> =
                    tensors.iter().map(|t| t.as_ref().map(WarmTensor::view)).collect();
                Some(self.library.create_state(kind, &views)?)
            }
            None => None,
        };
        let views: Vec<TensorRef<'_>> = inputs.iter().map(WarmTensor::view).collect();
        let d = self.descriptor();
        let size_of = |name: &str| -> usize {
            for (spec, t) in d.inputs.iter().zip(inputs) {
                if let Some(axis) = spec.shape.iter().position(|dim| symbol(dim) == Some(name)) {
                    return t.shape[axis];
                }
            }
            1
        };
        let shapes: Vec<Vec<usize>> = d
            .outputs
            .iter()
            .map(|o| {
                o.shape
                    .iter()
                    .map(|dim| match &dim.kind {
                        Some(dim::Kind::Fixed(n)) => *n as usize,
                        Some(dim::Kind::Symbol(s)) => size_of(s),
                        None => 1,
                    })
                    .collect()
            })
            .collect();
        let lens: Vec<usize> = d
            .outputs
            .iter()
            .zip(&shapes)
            .map(|(o, shape)| DType::from_raw(o.dtype as u32).map_or(1, DType::size) * shape.iter().product::<usize>())
            .collect();
        // Outputs are written as numbers: back them with u64s so every dtype is aligned.
        let mut words: Vec<Vec<u64>> = lens.iter().map(|len| vec![0u64; len.div_ceil(8)]).collect();
        let mut outputs: Vec<TensorMut<'_>> = Vec::with_capacity(shapes.len());
        for (((o, shape), len), words) in d.outputs.iter().zip(&shapes).zip(&lens).zip(words.iter_mut()) {
            let dtype = DType::from_raw(o.dtype as u32).unwrap_or(DType::U8);
            // SAFETY: `words` is a live, exclusively borrowed allocation of at
            // least `len` bytes, and any byte pattern is a valid u8.
            let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), *len) };
            outputs.push(TensorMut { dtype, shape, bytes });
        }
        self.library.invoke(self.kernel, state.as_ref(), &views, params, &mut outputs, &CallContext::default())
    }
}
