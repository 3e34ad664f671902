//! Diagnostic kernels: `diagnostics.noop` measures the cost of crossing a
//! boundary with two tensor arguments; `diagnostics.panic` (registered only
//! with `TANDEM_TEST_KERNELS=1`) proves that a panic inside a kernel becomes
//! INTERNAL instead of aborting the host.

use crate::descriptor::{self, tensor, KernelDescriptor, D};
use crate::error::KernelError;
use crate::registry::{Invocation, Kernel};
use crate::tensor::DType;

pub struct Noop {
    descriptor: KernelDescriptor,
}

impl Noop {
    pub const NAME: &'static str = "diagnostics.noop";

    pub fn new() -> Self {
        Self {
            descriptor: KernelDescriptor {
                name: Self::NAME.into(),
                version: 1,
                inputs: vec![
                    tensor("a", DType::U8, &[D::Sym("a_len")], false),
                    tensor("b", DType::U8, &[D::Sym("b_len")], false),
                ],
                outputs: vec![],
                params: vec![],
                state_kind: String::new(),
                flags: descriptor::flags(true, false, true, false),
            },
        }
    }
}

impl Default for Noop {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernel for Noop {
    fn descriptor(&self) -> &KernelDescriptor {
        &self.descriptor
    }

    fn invoke(&self, _call: Invocation<'_, '_>) -> Result<(), KernelError> {
        Ok(())
    }
}

pub struct Panic {
    descriptor: KernelDescriptor,
}

impl Panic {
    pub const NAME: &'static str = "diagnostics.panic";

    pub fn new() -> Self {
        Self {
            descriptor: KernelDescriptor {
                name: Self::NAME.into(),
                version: 1,
                inputs: vec![tensor("input", DType::U8, &[D::Sym("len")], false)],
                outputs: vec![],
                params: vec![],
                state_kind: String::new(),
                flags: descriptor::flags(false, false, true, false),
            },
        }
    }
}

impl Default for Panic {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernel for Panic {
    fn descriptor(&self) -> &KernelDescriptor {
        &self.descriptor
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        panic!("diagnostics.panic invoked with {} byte(s)", call.inputs[0].bytes.len());
    }
}
