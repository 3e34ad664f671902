//! The built-in library: Tandem's reference kernels, called as Rust.

use super::{Source, WorkerState};
use std::any::Any;
use std::path::Path;
use tandem_sdk::descriptor::KernelSet;
use tandem_sdk::repository::{Repository, StateId};
use tandem_sdk::{CallContext, Code, KernelError, KernelStream, Library, Param, State, TensorMut, TensorRef};

pub struct Builtin {
    library: &'static Library,
    set: KernelSet,
}

impl Builtin {
    pub fn new() -> Builtin {
        let library = tandem_kernels::shared();
        Builtin { library, set: library.kernel_set() }
    }

    fn kernel(&self, index: usize) -> Result<&'static tandem_sdk::RegisteredKernel, KernelError> {
        self.library
            .kernels()
            .nth(index)
            .ok_or_else(|| KernelError::new(Code::Internal, format!("the built-in library has no kernel {index}")))
    }
}

impl Default for Builtin {
    fn default() -> Self {
        Self::new()
    }
}

impl Source for Builtin {
    fn kernel_set(&self) -> &KernelSet {
        &self.set
    }

    fn path(&self) -> Option<&Path> {
        None
    }

    fn invoke<'t>(
        &self,
        kernel: usize,
        state: Option<&WorkerState>,
        inputs: &[TensorRef<'t>],
        params: &[Param],
        outputs: &mut [TensorMut<'t>],
        ctx: &CallContext,
    ) -> Result<(), KernelError> {
        let state =
            match state {
                Some(state) => Some(state.value.downcast_ref::<State>().ok_or_else(|| {
                    KernelError::new(Code::Internal, "a built-in kernel got another library's state")
                })?),
                None => None,
            };
        self.library.invoke(self.kernel(kernel)?, state, inputs, params, outputs, ctx)
    }

    fn create_state(
        &self,
        kind: &str,
        tensors: &[Option<TensorRef<'_>>],
    ) -> Result<(u64, Box<dyn Any + Send + Sync>), KernelError> {
        let state = self.library.create_state(kind, tensors)?;
        Ok((state.size_bytes() as u64, Box::new(state)))
    }

    fn load_state(
        &self,
        root: &Path,
        _kind: &str,
        id: &StateId,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>), KernelError> {
        let state = self.library.load_state(&Repository::open(root)?, id)?;
        Ok((state.size_bytes() as u64, Box::new(state)))
    }

    fn open_stream(&self, kernel: usize) -> Result<Box<dyn KernelStream>, KernelError> {
        self.library.open_stream_value(self.kernel(kernel)?)
    }

    fn warm_up(&self, kernel: usize) -> Result<(), KernelError> {
        self.library.warm_up(self.kernel(kernel)?)
    }
}
