//! The kernel trait, kernel states and the process-wide registry that the C
//! ABI and the worker serve.

use crate::context::CallContext;
use crate::descriptor::{KernelDescriptor, KernelSet, StateKindDescriptor};
use crate::error::{Code, KernelError};
use crate::similarity::{self, Collection};
use crate::tensor::{Param, TensorMut, TensorRef};
use crate::validate::{self, Bindings, CompiledDescriptor};
use crate::{diagnostics, hashing, montecarlo, ABI_VERSION};
use std::sync::OnceLock;

/// Environment variable that adds fault-injection kernels (tests only).
pub const TEST_KERNELS_ENV: &str = "TANDEM_TEST_KERNELS";

/// One call of a kernel, validated against its descriptor.
pub struct Invocation<'a, 't> {
    pub state: Option<&'a State>,
    pub inputs: &'a [TensorRef<'t>],
    pub params: &'a [Param],
    pub outputs: &'a mut [TensorMut<'t>],
    pub ctx: &'a CallContext,
    pub bindings: Bindings<'a>,
}

/// A named, versioned pure function over tensors.
pub trait Kernel: Send + Sync {
    fn descriptor(&self) -> &KernelDescriptor;

    /// Runs the kernel. Inputs and parameters are already validated; the
    /// kernel validates its outputs (their shapes may depend on the state).
    fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError>;

    /// Whether the kernel also runs as a stream (open → append* → finalize).
    fn streaming(&self) -> bool {
        false
    }
}

/// Long-lived data a kernel reads, such as a vector collection.
#[derive(Debug)]
pub enum State {
    Collection(Collection),
}

impl State {
    pub fn kind(&self) -> &'static str {
        match self {
            State::Collection(_) => similarity::COLLECTION_KIND,
        }
    }

    pub fn as_collection(&self) -> Option<&Collection> {
        match self {
            State::Collection(c) => Some(c),
        }
    }
}

/// A kernel with its descriptor compiled for fast per-call validation.
pub struct RegisteredKernel {
    kernel: Box<dyn Kernel>,
    compiled: CompiledDescriptor,
}

impl RegisteredKernel {
    pub fn descriptor(&self) -> &KernelDescriptor {
        self.kernel.descriptor()
    }

    pub fn streaming(&self) -> bool {
        self.kernel.streaming()
    }
}

pub struct Registry {
    kernels: Vec<RegisteredKernel>,
    state_kinds: Vec<StateKindDescriptor>,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The process-wide registry (fault kernels only when `TANDEM_TEST_KERNELS=1`).
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| Registry::new(std::env::var(TEST_KERNELS_ENV).map(|v| v == "1").unwrap_or(false)))
}

impl Registry {
    pub fn new(with_test_kernels: bool) -> Registry {
        let mut kernels: Vec<Box<dyn Kernel>> = vec![
            Box::new(similarity::TopK::new()),
            Box::new(montecarlo::European::new()),
            Box::new(hashing::Blake3::new()),
            Box::new(diagnostics::Noop::new()),
        ];
        if with_test_kernels {
            kernels.push(Box::new(diagnostics::Panic::new()));
        }
        let kernels = kernels
            .into_iter()
            .map(|kernel| RegisteredKernel { compiled: CompiledDescriptor::new(kernel.descriptor()), kernel })
            .collect();
        Registry { kernels, state_kinds: vec![similarity::collection_kind_descriptor()] }
    }

    pub fn kernels(&self) -> impl Iterator<Item = &RegisteredKernel> {
        self.kernels.iter()
    }

    pub fn find(&self, name: &str) -> Option<&RegisteredKernel> {
        self.kernels().find(|k| k.descriptor().name == name)
    }

    pub fn kernel_set(&self) -> KernelSet {
        KernelSet {
            abi_version: ABI_VERSION,
            kernels: self.kernels().map(|k| k.descriptor().clone()).collect(),
            state_kinds: self.state_kinds.clone(),
        }
    }

    /// Builds a state of `kind` from its tensors (`None` for an omitted
    /// optional tensor), validated against the state kind's descriptor.
    pub fn create_state(&self, kind: &str, tensors: &[Option<TensorRef<'_>>]) -> Result<State, KernelError> {
        let spec = self.state_kinds.iter().find(|s| s.name == kind).ok_or_else(|| {
            let known: Vec<&str> = self.state_kinds.iter().map(|s| s.name.as_str()).collect();
            KernelError::not_found(format!("unknown state kind '{kind}'; known: {}", known.join(", ")))
        })?;
        if tensors.len() != spec.tensors.len() {
            return Err(KernelError::invalid(format!(
                "state kind '{kind}' takes {} tensor(s), got {}",
                spec.tensors.len(),
                tensors.len()
            )));
        }
        let mut shapes = Vec::new();
        for (tensor_spec, tensor) in spec.tensors.iter().zip(tensors) {
            match tensor {
                Some(t) => {
                    shapes.push((tensor_spec, *t));
                }
                None if spec.optional_tensors.contains(&tensor_spec.name) => {}
                None => {
                    return Err(KernelError::invalid(format!(
                        "state kind '{kind}' requires tensor '{}'",
                        tensor_spec.name
                    )))
                }
            }
        }
        validate::check_tensors(&shapes)?;
        match kind {
            similarity::COLLECTION_KIND => Ok(State::Collection(Collection::from_tensors(tensors)?)),
            _ => Err(KernelError::new(Code::Internal, format!("state kind '{kind}' has no constructor"))),
        }
    }

    /// Validates and runs one call.
    pub fn invoke<'t>(
        &self,
        kernel: &RegisteredKernel,
        state: Option<&State>,
        inputs: &[TensorRef<'t>],
        params: &[Param],
        outputs: &mut [TensorMut<'t>],
        ctx: &CallContext,
    ) -> Result<(), KernelError> {
        let desc = kernel.descriptor();
        let bindings = kernel.compiled.check(desc, inputs, params)?;
        match (desc.state_kind.as_str(), state) {
            ("", _) => {}
            (needed, None) => {
                return Err(KernelError::invalid(format!("kernel '{}' needs a '{needed}' state", desc.name)));
            }
            (needed, Some(s)) if s.kind() != needed => {
                return Err(KernelError::invalid(format!(
                    "kernel '{}' needs a '{needed}' state, got a '{}' state",
                    desc.name,
                    s.kind()
                )));
            }
            _ => {}
        }
        ctx.check()?;
        kernel.kernel.invoke(Invocation { state, inputs, params, outputs, ctx, bindings })
    }
}
