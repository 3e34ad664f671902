//! The kernels this worker serves: its built-in library (Tandem's reference
//! kernels) and every kernel library given with `--kernels PATH`, loaded
//! through the C ABI and checked like the .NET host checks them (ABI major,
//! the library's own status, each descriptor's hash recomputed here, the
//! SDK's descriptor checks). Kernel and state kind names are unique across
//! libraries; a clash refuses to start, naming both libraries.
//!
//! - [`builtin`]: the built-in library, called as Rust.
//! - [`dynamic`]: a library loaded with `dlopen`, called through its C ABI
//!   (what it hands out — errors, cancel tokens, states, streams — is owned
//!   by the types in `foreign`).

pub mod builtin;
pub mod dynamic;
mod foreign;

use crate::grpc::{status, Code, Status};
use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tandem_sdk::descriptor::{KernelDescriptor, KernelSet, StateKindDescriptor};
use tandem_sdk::repository::{Repository, StateId};
use tandem_sdk::{CallContext, KernelError, KernelStream, Param, TensorMut, TensorRef};

/// Most kernel libraries one worker loads.
pub const MAX_LIBRARIES: usize = 64;

/// A state as the worker holds it: which library made it, and that
/// library's own value (downcast only by that library's [`Source`]).
pub struct WorkerState {
    pub library: usize,
    pub kind: String,
    pub size_bytes: u64,
    pub value: Box<dyn Any + Send + Sync>,
}

/// A library the worker serves kernels from.
pub trait Source: Send + Sync {
    fn kernel_set(&self) -> &KernelSet;

    /// Where it was loaded from (`None` for the built-in library).
    fn path(&self) -> Option<&Path>;

    fn invoke<'t>(
        &self,
        kernel: usize,
        state: Option<&WorkerState>,
        inputs: &[TensorRef<'t>],
        params: &[Param],
        outputs: &mut [TensorMut<'t>],
        ctx: &CallContext,
    ) -> Result<(), KernelError>;

    fn create_state(
        &self,
        kind: &str,
        tensors: &[Option<TensorRef<'_>>],
    ) -> Result<(u64, Box<dyn Any + Send + Sync>), KernelError>;

    /// Loads stored state `id` of `kind` (a kind this library declares) from
    /// the repository at `root`: `(bytes it holds, the state)`.
    fn load_state(
        &self,
        root: &Path,
        kind: &str,
        id: &StateId,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>), KernelError>;

    fn open_stream(&self, kernel: usize) -> Result<Box<dyn KernelStream>, KernelError>;

    fn warm_up(&self, kernel: usize) -> Result<(), KernelError>;
}

/// One kernel: its library and its index there.
#[derive(Clone, Copy, Debug)]
pub struct KernelRef {
    pub library: usize,
    pub index: usize,
}

/// Every library the worker serves and the names they own.
pub struct Catalog {
    libraries: Vec<Arc<dyn Source>>,
    kernels: HashMap<String, KernelRef>,
    state_kinds: HashMap<String, usize>,
    set: KernelSet,
}

fn describe_source(source: &dyn Source) -> String {
    let name = &source.kernel_set().library_name;
    match source.path() {
        Some(path) => format!("'{name}' ({})", path.display()),
        None => format!("'{name}' (built in)"),
    }
}

impl Catalog {
    /// The built-in library plus the libraries at `paths`, in order.
    pub fn load(paths: &[PathBuf]) -> Result<Catalog, String> {
        if paths.len() > MAX_LIBRARIES {
            return Err(format!("{} kernel libraries given; at most {MAX_LIBRARIES}", paths.len()));
        }
        let mut sources: Vec<Arc<dyn Source>> = vec![Arc::new(builtin::Builtin::new())];
        for path in paths {
            sources.push(Arc::new(dynamic::DynamicLibrary::open(path)?));
        }
        Catalog::from_sources(sources)
    }

    pub fn from_sources(libraries: Vec<Arc<dyn Source>>) -> Result<Catalog, String> {
        let mut kernels: HashMap<String, KernelRef> = HashMap::new();
        let mut state_kinds: HashMap<String, usize> = HashMap::new();
        let mut set = KernelSet { abi_version: tandem_sdk::ABI_VERSION, ..KernelSet::default() };
        for (library, source) in libraries.iter().enumerate() {
            let published = source.kernel_set();
            for (index, kernel) in published.kernels.iter().enumerate() {
                if let Some(other) = kernels.get(&kernel.name) {
                    return Err(format!(
                        "kernel '{}' is exported by both {} and {}; kernel names must be unique across libraries",
                        kernel.name,
                        describe_source(libraries[other.library].as_ref()),
                        describe_source(source.as_ref())
                    ));
                }
                kernels.insert(kernel.name.clone(), KernelRef { library, index });
                let mut listed = kernel.clone();
                listed.library.clone_from(&published.library_name);
                set.kernels.push(listed);
            }
            for kind in &published.state_kinds {
                if let Some(&other) = state_kinds.get(&kind.name) {
                    return Err(format!(
                        "state kind '{}' is declared by both {} and {}",
                        kind.name,
                        describe_source(libraries[other].as_ref()),
                        describe_source(source.as_ref())
                    ));
                }
                state_kinds.insert(kind.name.clone(), library);
                set.state_kinds.push(kind.clone());
            }
        }
        set.library_name = "tandem-worker".into();
        set.library_version = env!("CARGO_PKG_VERSION").into();
        Ok(Catalog { libraries, kernels, state_kinds, set })
    }

    /// Every kernel and state kind, each kernel naming its library.
    pub fn kernel_set(&self) -> &KernelSet {
        &self.set
    }

    pub fn libraries(&self) -> &[Arc<dyn Source>] {
        &self.libraries
    }

    /// Finds a kernel and checks the caller's descriptor version.
    pub fn find(&self, name: &str, version: u32) -> Result<(&KernelRef, &KernelDescriptor), Status> {
        let kernel = self.kernels.get(name).ok_or_else(|| {
            let mut known: Vec<&str> = self.kernels.keys().map(String::as_str).collect();
            known.sort_unstable();
            status(Code::NotFound, format!("unknown kernel '{name}'; this worker has: {}", known.join(", ")))
        })?;
        let descriptor = self.descriptor(kernel);
        let served = descriptor.version;
        if version != 0 && version != served {
            return Err(status(
                Code::FailedPrecondition,
                format!("kernel '{name}' is version {served} here; the caller was written against version {version}"),
            ));
        }
        Ok((kernel, descriptor))
    }

    pub fn descriptor(&self, kernel: &KernelRef) -> &KernelDescriptor {
        &self.libraries[kernel.library].kernel_set().kernels[kernel.index]
    }

    pub fn state_kind(&self, name: &str) -> Option<&StateKindDescriptor> {
        self.set.state_kinds.iter().find(|k| k.name == name)
    }

    pub fn invoke<'t>(
        &self,
        kernel: &KernelRef,
        state: Option<&WorkerState>,
        inputs: &[TensorRef<'t>],
        params: &[Param],
        outputs: &mut [TensorMut<'t>],
        ctx: &CallContext,
    ) -> Result<(), KernelError> {
        if let Some(state) = state {
            if state.library != kernel.library {
                let descriptor = self.descriptor(kernel);
                return Err(KernelError::invalid(format!(
                    "kernel '{}' needs a '{}' state, got a '{}' state of another library",
                    descriptor.name, descriptor.state_kind, state.kind
                )));
            }
        }
        self.libraries[kernel.library].invoke(kernel.index, state, inputs, params, outputs, ctx)
    }

    /// Builds a state of `kind` with the library that declares it.
    pub fn create_state(&self, kind: &str, tensors: &[Option<TensorRef<'_>>]) -> Result<WorkerState, KernelError> {
        let library = self.library_of_kind(kind)?;
        let (size_bytes, value) = self.libraries[library].create_state(kind, tensors)?;
        Ok(WorkerState { library, kind: kind.to_owned(), size_bytes, value })
    }

    /// Loads stored state `name` (`version` 0: the newest) from the
    /// repository at `root` with the library that declares its kind, after
    /// reading its kind from the file's header; `kind`, when not empty, must
    /// match it.
    pub fn load_state(&self, root: &Path, kind: &str, name: &str, version: u64) -> Result<WorkerState, KernelError> {
        let repository = Repository::open(root)?;
        let id = match version {
            0 => repository.latest(name)?,
            v => StateId { name: name.to_owned(), version: v },
        };
        let stored_kind = repository.manifest(&id)?.kind;
        if !kind.is_empty() && kind != stored_kind {
            return Err(KernelError::new(
                tandem_sdk::Code::FailedPrecondition,
                format!("stored state '{}' version {} is of kind '{stored_kind}', not '{kind}'", id.name, id.version),
            ));
        }
        let library = self.library_of_kind(&stored_kind)?;
        let (size_bytes, value) = self.libraries[library].load_state(root, &stored_kind, &id)?;
        Ok(WorkerState { library, kind: stored_kind, size_bytes, value })
    }

    fn library_of_kind(&self, kind: &str) -> Result<usize, KernelError> {
        self.state_kinds.get(kind).copied().ok_or_else(|| {
            let mut known: Vec<&str> = self.state_kinds.keys().map(String::as_str).collect();
            known.sort_unstable();
            KernelError::not_found(format!("unknown state kind '{kind}'; this worker has: {}", known.join(", ")))
        })
    }

    pub fn open_stream(&self, kernel: &KernelRef) -> Result<Box<dyn KernelStream>, KernelError> {
        self.libraries[kernel.library].open_stream(kernel.index)
    }

    pub fn warm_up(&self, kernel: &KernelRef) -> Result<(), KernelError> {
        self.libraries[kernel.library].warm_up(kernel.index)
    }

    /// Every kernel, in Describe order.
    pub fn kernel_refs(&self) -> Vec<(String, &KernelRef)> {
        self.set.kernels.iter().map(|k| (k.name.clone(), &self.kernels[&k.name])).collect()
    }
}
