//! Diagnostic kernels: `diagnostics.noop` measures the cost of crossing a
//! boundary with two tensor arguments; `diagnostics.panic` (registered only
//! with `TANDEM_TEST_KERNELS=1`) proves that a panic inside a kernel becomes
//! INTERNAL instead of aborting the host.

use tandem_sdk::descriptor::{Flags, KernelDescriptor, TensorSpec, D};
use tandem_sdk::{DType, Invocation, Kernel, KernelError, WarmUp};

/// `diagnostics.noop`: two u8 tensors in, nothing out.
pub struct Noop;

impl Noop {
    pub const NAME: &'static str = "diagnostics.noop";
}

impl Kernel for Noop {
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor::builder(Self::NAME, 1)
            .summary("Does nothing with two byte tensors: the cost of crossing a boundary.")
            .input(TensorSpec::new("a", DType::U8, [D::sym("a_len")]))
            .input(TensorSpec::new("b", DType::U8, [D::sym("b_len")]))
            .flags(Flags { idempotent: true, deterministic: true, ..Flags::default() })
            .build()
    }

    fn invoke(&self, _call: Invocation<'_, '_>) -> Result<(), KernelError> {
        Ok(())
    }
}

/// `diagnostics.panic`: panics, to prove containment (tests only).
pub struct Panic;

impl Panic {
    pub const NAME: &'static str = "diagnostics.panic";
}

impl Kernel for Panic {
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor::builder(Self::NAME, 1)
            .summary("Panics (fault injection; registered only with TANDEM_TEST_KERNELS=1).")
            .input(TensorSpec::new("input", DType::U8, [D::sym("len")]))
            .flags(Flags { deterministic: true, ..Flags::default() })
            .build()
    }

    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
        panic!("diagnostics.panic invoked with {} byte(s)", call.inputs[0].bytes.len());
    }

    /// Its only behaviour is the panic; warming it up would log one.
    fn warm_up(&self, _warm: &mut WarmUp<'_>) -> Result<(), KernelError> {
        Ok(())
    }
}
