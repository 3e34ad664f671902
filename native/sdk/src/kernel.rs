//! The traits a kernel author implements: [`Kernel`] for a call over
//! tensors, and [`StreamingKernel`] / [`KernelStream`] for a kernel that
//! also runs incrementally (open → update* → finalize).

use crate::context::CallContext;
use crate::descriptor::KernelDescriptor;
use crate::error::{Code, KernelError};
use crate::state::State;
use crate::tensor::{Param, TensorMut, TensorRef};
use crate::validate::Bindings;
use crate::warmup::WarmUp;

/// One call of a kernel. Inputs and parameters were validated against the
/// descriptor before the kernel sees them; outputs are checked by the kernel
/// (their shapes may depend on parameters or the state), usually with
/// [`Invocation::output_shape`] and [`crate::validate::check_output`].
pub struct Invocation<'a, 't> {
    pub descriptor: &'a KernelDescriptor,
    pub state: Option<&'a State>,
    pub inputs: &'a [TensorRef<'t>],
    pub params: &'a [Param],
    pub outputs: &'a mut [TensorMut<'t>],
    pub ctx: &'a CallContext,
    pub bindings: Bindings<'a>,
}

impl<'a> Invocation<'a, '_> {
    /// The state the call reads, as the author's own type.
    pub fn state<T: 'static>(&self) -> Result<&'a T, KernelError> {
        let state = self.state.ok_or_else(|| {
            KernelError::invalid(format!(
                "kernel '{}' needs a '{}' state",
                self.descriptor.name, self.descriptor.state_kind
            ))
        })?;
        state.get::<T>().ok_or_else(|| {
            KernelError::new(
                Code::Internal,
                format!("state kind '{}' does not hold the type kernel '{}' reads", state.kind(), self.descriptor.name),
            )
        })
    }

    /// The size bound to `symbol` by the inputs, or by the outputs for a
    /// symbol only outputs use (such as `k`); 0 when no tensor uses it. The
    /// library checked every output against the descriptor before the call.
    pub fn symbol(&self, symbol: &str) -> usize {
        self.bindings.get(symbol).unwrap_or(0)
    }

    /// Parameter `index` as an integer (descriptor order).
    pub fn int(&self, index: usize) -> i64 {
        self.params.get(index).map_or(0, |p| p.as_i64())
    }

    /// Parameter `index` as a float (descriptor order).
    pub fn float(&self, index: usize) -> f64 {
        self.params.get(index).map_or(0.0, |p| p.as_f64())
    }

    /// Checks the number of outputs the caller provided. The library already
    /// did (with every output's dtype and shape) before calling the kernel;
    /// kept for kernels written before it did.
    pub fn expect_outputs(&self) -> Result<(), KernelError> {
        let want = self.descriptor.outputs.len();
        if self.outputs.len() != want {
            let names: Vec<&str> = self.descriptor.outputs.iter().map(|o| o.name.as_str()).collect();
            return Err(KernelError::invalid(format!(
                "{} writes {want} output(s) ({}), got {}",
                self.descriptor.name,
                names.join(", "),
                self.outputs.len()
            )));
        }
        Ok(())
    }
}

/// A named, versioned pure function over tensors.
pub trait Kernel: Send + Sync + 'static {
    /// The contract, built once when the library is built (see
    /// [`KernelDescriptor::builder`]).
    fn descriptor(&self) -> KernelDescriptor;

    /// Runs one call.
    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError>;

    /// The streaming form, for a descriptor with `streaming` set. A library
    /// whose streaming kernel returns `None` here is refused when built.
    fn stream(&self) -> Option<&dyn StreamingKernel> {
        None
    }

    /// Runs the kernel once before the host or worker reports ready. The
    /// default derives a small call from the descriptor (see [`WarmUp`]);
    /// override it when the kernel needs particular values.
    fn warm_up(&self, warm: &mut WarmUp<'_>) -> Result<(), KernelError> {
        warm.run_derived()
    }
}

/// Opens streams of a streaming kernel.
pub trait StreamingKernel: Send + Sync {
    fn open(&self) -> Result<Box<dyn KernelStream>, KernelError>;
}

/// One open stream. The SDK serialises calls on a stream, refuses updates
/// after `finalize` and frees it when the caller does.
pub trait KernelStream: Send {
    /// Appends a chunk (any length, including 0).
    fn update(&mut self, data: &[u8]) -> Result<(), KernelError>;

    /// Writes the result into `output` (its length is the caller's request;
    /// check it). Called at most once.
    fn finalize(&mut self, output: &mut [u8]) -> Result<(), KernelError>;
}
