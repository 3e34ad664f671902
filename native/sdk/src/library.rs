//! A kernel library: the kernels and state kinds one crate registers, each
//! descriptor checked and hashed once, and the calls that validate and run
//! them. The C ABI ([`crate::abi`]) and the worker serve a [`Library`].

use crate::check;
use crate::context::CallContext;
use crate::descriptor::pb::StateManifest;
use crate::descriptor::{self, KernelDescriptor, KernelSet, StateKindDescriptor};
use crate::error::{Code, KernelError};
use crate::kernel::{Invocation, Kernel, KernelStream};
use crate::repository::{self, Repository, StateId};
use crate::state::{ErasedStateKind, State, StateKind};
use crate::streams::Streams;
use crate::tensor::{Param, TensorMut, TensorRef};
use crate::validate::{self, CompiledDescriptor};
use crate::warmup::WarmUp;
use crate::ABI_VERSION;

pub use crate::prepared::PreparedCall;
pub(crate) use crate::prepared::RawSlices;

/// Collects a library's kernels and state kinds; [`LibraryBuilder::build`]
/// checks every descriptor.
pub struct LibraryBuilder {
    name: String,
    version: String,
    kernels: Vec<Box<dyn Kernel>>,
    state_kinds: Vec<(StateKindDescriptor, Box<dyn ErasedStateKind>)>,
}

impl LibraryBuilder {
    pub fn new(name: &str, version: &str) -> LibraryBuilder {
        LibraryBuilder {
            name: name.to_owned(),
            version: version.to_owned(),
            kernels: Vec::new(),
            state_kinds: Vec::new(),
        }
    }

    pub fn kernel(&mut self, kernel: impl Kernel) -> &mut Self {
        self.kernels.push(Box::new(kernel));
        self
    }

    pub fn state_kind(&mut self, kind: impl StateKind) -> &mut Self {
        self.state_kinds.push((kind.descriptor(), Box::new(kind)));
        self
    }

    /// Checks every descriptor (FAILED_PRECONDITION naming the library and
    /// kernel for the first one the SDK refuses), then hashes them.
    pub fn build(self) -> Result<Library, KernelError> {
        let refuse = |what: String| {
            KernelError::new(Code::FailedPrecondition, format!("kernel library '{}' is invalid: {what}", self.name))
        };
        let kinds: Vec<&StateKindDescriptor> = self.state_kinds.iter().map(|(d, _)| d).collect();
        check::state_kinds(&kinds).map_err(refuse)?;
        let mut kernels: Vec<RegisteredKernel> = Vec::with_capacity(self.kernels.len());
        for kernel in self.kernels {
            let mut descriptor = kernel.descriptor();
            let state_kind = kinds.iter().find(|k| k.name == descriptor.state_kind).copied();
            check::kernel(&descriptor, state_kind, kernel.stream().is_some()).map_err(refuse)?;
            if kernels.iter().any(|k| k.descriptor.name == descriptor.name) {
                return Err(refuse(format!("kernel '{}' is registered twice", descriptor.name)));
            }
            descriptor.hash = descriptor::hash(&descriptor, state_kind);
            descriptor.library = self.name.clone();
            let compiled = CompiledDescriptor::new(&descriptor);
            kernels.push(RegisteredKernel { descriptor, compiled, kernel });
        }
        let (state_kind_descriptors, state_kinds) = self.state_kinds.into_iter().unzip();
        Ok(Library {
            name: self.name,
            version: self.version,
            kernels,
            state_kind_descriptors,
            state_kinds,
            streams: Streams::new(),
        })
    }
}

/// A kernel with its checked, hashed descriptor compiled for fast per-call
/// validation.
pub struct RegisteredKernel {
    pub(crate) descriptor: KernelDescriptor,
    pub(crate) compiled: CompiledDescriptor,
    pub(crate) kernel: Box<dyn Kernel>,
}

impl RegisteredKernel {
    pub fn descriptor(&self) -> &KernelDescriptor {
        &self.descriptor
    }

    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    pub fn streaming(&self) -> bool {
        self.kernel.stream().is_some()
    }

    /// Validates and runs one call: what [`Library::invoke`] does, for a
    /// caller that already holds the kernel (the C ABI's handles).
    pub(crate) fn invoke<'t>(
        &self,
        state: Option<&State>,
        inputs: &[TensorRef<'t>],
        params: &[Param],
        outputs: &mut [TensorMut<'t>],
        ctx: &CallContext,
    ) -> Result<(), KernelError> {
        let desc = &self.descriptor;
        let bindings = self.compiled.check(desc, inputs, params, outputs)?;
        check_state(desc, state)?;
        ctx.check()?;
        self.kernel.invoke(Invocation { descriptor: desc, state, inputs, params, outputs, ctx, bindings })
    }
}

/// The kernels and state kinds of one library, ready to serve.
pub struct Library {
    name: String,
    version: String,
    kernels: Vec<RegisteredKernel>,
    state_kind_descriptors: Vec<StateKindDescriptor>,
    state_kinds: Vec<Box<dyn ErasedStateKind>>,
    streams: Streams,
}

impl Library {
    /// Builds a library from a registration function, as `export!` does.
    /// A panic inside `register` is caught and reported.
    pub fn from_register(name: &str, version: &str, register: fn(&mut LibraryBuilder)) -> Result<Library, KernelError> {
        let mut builder = LibraryBuilder::new(name, version);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| register(&mut builder)));
        if let Err(payload) = outcome {
            let message = crate::abi::panic_message(payload.as_ref());
            return Err(KernelError::new(
                Code::FailedPrecondition,
                format!("kernel library '{name}' panicked while registering its kernels: {message}"),
            ));
        }
        builder.build()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn kernels(&self) -> impl Iterator<Item = &RegisteredKernel> {
        self.kernels.iter()
    }

    pub fn find(&self, name: &str) -> Option<&RegisteredKernel> {
        self.kernels.iter().find(|k| k.descriptor.name == name)
    }

    /// [`Library::find`], or NOT_FOUND listing the kernels this library has.
    pub fn kernel(&self, name: &str) -> Result<&RegisteredKernel, KernelError> {
        self.find(name).ok_or_else(|| {
            let known: Vec<&str> = self.kernels.iter().map(|k| k.name()).collect();
            KernelError::not_found(format!(
                "unknown kernel '{name}'; library '{}' has: {}",
                self.name,
                known.join(", ")
            ))
        })
    }

    pub fn state_kinds(&self) -> &[StateKindDescriptor] {
        &self.state_kind_descriptors
    }

    pub fn kernel_set(&self) -> KernelSet {
        KernelSet {
            abi_version: ABI_VERSION,
            kernels: self.kernels.iter().map(|k| k.descriptor.clone()).collect(),
            state_kinds: self.state_kind_descriptors.clone(),
            library_name: self.name.clone(),
            library_version: self.version.clone(),
        }
    }

    /// The index of state kind `kind`, NOT_FOUND naming the kinds there are.
    fn state_kind_index(&self, kind: &str) -> Result<usize, KernelError> {
        self.state_kind_descriptors.iter().position(|s| s.name == kind).ok_or_else(|| {
            let known: Vec<&str> = self.state_kind_descriptors.iter().map(|s| s.name.as_str()).collect();
            KernelError::not_found(format!(
                "unknown state kind '{kind}'; library '{}' has: {}",
                self.name,
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ))
        })
    }

    /// Checks a state's tensors against its kind's descriptor: their count,
    /// the required ones present, dtypes, shapes, shared symbols, finiteness.
    fn check_state_tensors(&self, index: usize, tensors: &[Option<TensorRef<'_>>]) -> Result<(), KernelError> {
        let spec = &self.state_kind_descriptors[index];
        let kind = &spec.name;
        if tensors.len() != spec.tensors.len() {
            return Err(KernelError::invalid(format!(
                "state kind '{kind}' takes {} tensor(s), got {}",
                spec.tensors.len(),
                tensors.len()
            )));
        }
        let mut shapes = Vec::with_capacity(tensors.len());
        for (tensor_spec, tensor) in spec.tensors.iter().zip(tensors) {
            match tensor {
                Some(t) => shapes.push((tensor_spec, *t)),
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
        for (tensor_spec, t) in &shapes {
            if tensor_spec.finite_only {
                validate::check_finite(tensor_spec, t)?;
            }
        }
        Ok(())
    }

    /// Builds a state of `kind` from its tensors (`None` for an omitted
    /// optional tensor), validated against the state kind's descriptor.
    pub fn create_state(&self, kind: &str, tensors: &[Option<TensorRef<'_>>]) -> Result<State, KernelError> {
        let index = self.state_kind_index(kind)?;
        self.check_state_tensors(index, tensors)?;
        self.state_kinds[index].create(kind, tensors)
    }

    /// Builds a state of `kind` exactly as [`Library::create_state`] does —
    /// every check of the descriptor and of the kind itself — and then writes
    /// its tensors to `repository` as `id` (ALREADY_EXISTS if taken). Returns
    /// the built state, so the writer serves it without reading it back.
    pub fn store_state(
        &self,
        repository: &Repository,
        kind: &str,
        id: &StateId,
        tensors: &[Option<TensorRef<'_>>],
    ) -> Result<(State, StateManifest), KernelError> {
        repository::check_name(&id.name)?;
        let index = self.state_kind_index(kind)?;
        self.check_state_tensors(index, tensors)?;
        let state = self.state_kinds[index].create(kind, tensors)?;
        let manifest = repository.put(&self.state_kind_descriptors[index], id, tensors)?;
        Ok((state, manifest))
    }

    /// Loads state `id` from `repository`: the file mapped and verified, its
    /// kind one this library declares with the same descriptor it was
    /// written with (FAILED_PRECONDITION otherwise), its tensors checked as
    /// at creation, and the state built by the kind's
    /// [`StateKind::load`](crate::state::StateKind::load), zero-copy where
    /// the kind allows.
    pub fn load_state(&self, repository: &Repository, id: &StateId) -> Result<State, KernelError> {
        self.load_state_with_manifest(repository, id).map(|(state, _)| state)
    }

    /// [`load_state`](Library::load_state), also returning the state's manifest.
    pub fn load_state_with_manifest(
        &self,
        repository: &Repository,
        id: &StateId,
    ) -> Result<(State, StateManifest), KernelError> {
        let stored = repository.load(id)?;
        let kind = stored.manifest().kind.clone();
        let index = self.state_kind_index(&kind).map_err(|_| {
            KernelError::new(
                Code::FailedPrecondition,
                format!(
                    "state '{}' version {} is of kind '{kind}', which library '{}' does not declare",
                    id.name, id.version, self.name
                ),
            )
        })?;
        let spec = &self.state_kind_descriptors[index];
        if stored.manifest().kind_hash != repository::kind_hash(spec) {
            return Err(KernelError::new(
                Code::FailedPrecondition,
                format!(
                    "state '{}' version {} was written for another descriptor of kind '{kind}' than library '{}' declares; write it again with this library",
                    id.name, id.version, self.name
                ),
            ));
        }
        let tensors = stored.tensors_for(spec);
        self.check_state_tensors(index, &tensors)?;
        let state = self.state_kinds[index].load(&kind, &tensors, &stored)?;
        Ok((state, stored.manifest().clone()))
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
        kernel.invoke(state, inputs, params, outputs, ctx)
    }

    /// Validates a call's shapes, dtypes and parameters once — everything
    /// [`Library::invoke`] checks, the data included — without running the
    /// kernel, and keeps what a repeat of the call needs: see [`PreparedCall`].
    pub fn prepare<'k>(
        &self,
        kernel: &'k RegisteredKernel,
        inputs: &[TensorRef<'_>],
        params: &[Param],
        outputs: &[TensorMut<'_>],
    ) -> Result<PreparedCall<'k>, KernelError> {
        PreparedCall::new(kernel, inputs, params, outputs)
    }

    /// Runs a kernel's warm-up (derived from its descriptor unless the
    /// kernel supplies its own).
    pub fn warm_up(&self, kernel: &RegisteredKernel) -> Result<(), KernelError> {
        let mut warm = WarmUp::new(self, kernel);
        kernel.kernel.warm_up(&mut warm)
    }

    /// Opens a stream of a streaming kernel; returns its handle (never 0).
    pub fn open_stream(&self, kernel: &RegisteredKernel) -> Result<u64, KernelError> {
        let stream = self.open_stream_value(kernel)?;
        self.streams.insert(kernel.name(), stream)
    }

    /// Opens a stream the caller owns directly (the worker keeps its own).
    pub fn open_stream_value(&self, kernel: &RegisteredKernel) -> Result<Box<dyn KernelStream>, KernelError> {
        let factory = kernel.kernel.stream().ok_or_else(|| {
            KernelError::new(Code::Unimplemented, format!("kernel '{}' has no streaming form", kernel.name()))
        })?;
        factory.open()
    }

    pub fn stream_update(&self, handle: u64, data: &[u8]) -> Result<(), KernelError> {
        self.streams.update(handle, data)
    }

    pub fn stream_finalize(&self, handle: u64, out: &mut [u8]) -> Result<(), KernelError> {
        self.streams.finalize(handle, out)
    }

    pub fn stream_free(&self, handle: u64) -> Result<(), KernelError> {
        self.streams.free(handle)
    }

    /// Streams currently open (for leak checks in tests).
    pub fn open_streams(&self) -> usize {
        self.streams.open_count()
    }
}

/// A stateful kernel gets a state of its kind; a stateless one ignores one.
#[inline]
pub(crate) fn check_state(desc: &KernelDescriptor, state: Option<&State>) -> Result<(), KernelError> {
    let needed = desc.state_kind.as_str();
    match state {
        _ if needed.is_empty() => Ok(()),
        Some(s) if s.kind() == needed => Ok(()),
        _ => Err(wrong_state(desc, state)),
    }
}

#[cold]
fn wrong_state(desc: &KernelDescriptor, state: Option<&State>) -> KernelError {
    let needed = &desc.state_kind;
    match state {
        None => KernelError::invalid(format!("kernel '{}' needs a '{needed}' state", desc.name)),
        Some(s) => {
            KernelError::invalid(format!("kernel '{}' needs a '{needed}' state, got a '{}' state", desc.name, s.kind()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{Flags, TensorSpec, D};
    use crate::tensor::DType;

    struct Echo(&'static str);

    impl Kernel for Echo {
        fn descriptor(&self) -> KernelDescriptor {
            KernelDescriptor::builder(self.0, 1)
                .input(TensorSpec::new("x", DType::U8, [D::sym("n")]))
                .output(TensorSpec::new("y", DType::U8, [D::sym("n")]))
                .flags(Flags { idempotent: true, ..Flags::default() })
                .build()
        }

        fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
            call.expect_outputs()?;
            call.outputs[0].bytes.copy_from_slice(call.inputs[0].bytes);
            Ok(())
        }
    }

    struct Bytes;

    impl StateKind for Bytes {
        type State = Vec<u8>;

        fn descriptor(&self) -> StateKindDescriptor {
            StateKindDescriptor::new("bytes", vec![TensorSpec::new("data", DType::U8, [D::sym("n")])], &[])
        }

        fn create(&self, tensors: &[Option<TensorRef<'_>>]) -> Result<Vec<u8>, KernelError> {
            Ok(tensors[0].map(|t| t.bytes.to_vec()).unwrap_or_default())
        }

        fn size_bytes(&self, state: &Vec<u8>) -> usize {
            state.len()
        }
    }

    /// Two outputs sharing a symbol only outputs use: `k`.
    struct Pairs;

    impl Kernel for Pairs {
        fn descriptor(&self) -> KernelDescriptor {
            KernelDescriptor::builder("test.pairs", 1)
                .input(TensorSpec::new("x", DType::F64, [D::sym("batch")]))
                .output(TensorSpec::new("ids", DType::I64, [D::sym("batch"), D::sym("k")]))
                .output(TensorSpec::new("scores", DType::F64, [D::sym("batch"), D::sym("k")]))
                .output_symbol("k", 16, "columns the caller asks for")
                .build()
        }

        fn invoke(&self, call: Invocation<'_, '_>) -> Result<(), KernelError> {
            let k = call.symbol("k");
            call.outputs[0].i64s_mut("ids")?.fill(k as i64);
            Ok(())
        }
    }

    fn invoke_pairs(
        ids: &mut [i64],
        ids_shape: &[usize],
        scores: &mut [f64],
        scores_shape: &[usize],
    ) -> Result<(), KernelError> {
        let library = build(|l| {
            l.kernel(Pairs);
        })?;
        let kernel = library.kernel("test.pairs")?;
        let x = [1.0f64, 2.0];
        let inputs = [TensorRef::of(&[2], &x)];
        let mut outputs = [TensorMut::of(ids_shape, ids), TensorMut::of(scores_shape, scores)];
        library.invoke(kernel, None, &inputs, &[], &mut outputs, &CallContext::default())
    }

    #[test]
    fn invoke_checks_outputs_before_the_kernel_and_binds_their_symbols() {
        let (mut ids, mut scores) = ([0i64; 6], [0f64; 6]);
        invoke_pairs(&mut ids, &[2, 3], &mut scores, &[2, 3]).unwrap();
        assert_eq!(ids, [3; 6], "the kernel reads k = 3 from the outputs");
    }

    #[test]
    fn invoke_refuses_outputs_that_disagree_with_the_descriptor_naming_them() {
        let cases: [(&[usize], &[usize], &str); 3] = [
            // k differs between the two outputs.
            (&[2, 3], &[2, 2], "'scores' axis 1 ('k') has size 2, but another tensor set 'k' = 3"),
            // batch differs from the input's.
            (&[3, 2], &[3, 2], "'ids' axis 0 ('batch') has size 3, but another tensor set 'batch' = 2"),
            // rank.
            (&[6], &[2, 3], "tensor 'ids' must have rank 2"),
        ];
        for (ids_shape, scores_shape, text) in cases {
            let (mut ids, mut scores) =
                (vec![0i64; ids_shape.iter().product()], vec![0f64; scores_shape.iter().product()]);
            let error = invoke_pairs(&mut ids, ids_shape, &mut scores, scores_shape).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument, "{text}");
            assert!(error.message.contains(text), "{text}: {error}");
            assert!(ids.iter().all(|&v| v == 0), "the kernel never ran: {text}");
        }
    }

    #[test]
    fn invoke_refuses_a_missing_output_naming_every_one() {
        let library = build(|l| {
            l.kernel(Pairs);
        })
        .unwrap();
        let x = [1.0f64];
        let error = library
            .invoke(
                library.kernel("test.pairs").unwrap(),
                None,
                &[TensorRef::of(&[1], &x)],
                &[],
                &mut [],
                &CallContext::default(),
            )
            .unwrap_err();
        assert!(error.message.contains("writes 2 output(s) (ids, scores), got 0"), "{error}");
    }

    #[test]
    fn tensor_views_over_typed_slices_carry_their_dtype_and_bytes() {
        let values = [1.5f64, -2.0];
        let view = TensorRef::of(&[2], &values);
        assert_eq!((view.dtype, view.bytes.len()), (DType::F64, 16));
        assert_eq!(view.f64s("v").unwrap(), values);
        let mut out = [0i32; 3];
        TensorMut::of(&[3], &mut out).bytes[..4].copy_from_slice(&7i32.to_le_bytes());
        assert_eq!(out, [7, 0, 0]);
    }

    fn build(register: fn(&mut LibraryBuilder)) -> Result<Library, KernelError> {
        Library::from_register("test-lib", "1.2.3", register)
    }

    #[test]
    fn from_register_hashes_names_and_warms_up_every_kernel() {
        let library = build(|l| {
            l.kernel(Echo("a.echo")).kernel(Echo("b.echo"));
        })
        .unwrap();
        let set = library.kernel_set();
        assert_eq!((set.library_name.as_str(), set.library_version.as_str()), ("test-lib", "1.2.3"));
        for kernel in library.kernels() {
            assert_eq!(kernel.descriptor().library, "test-lib");
            assert_eq!(kernel.descriptor().hash, descriptor::hash(kernel.descriptor(), None));
            library.warm_up(kernel).unwrap();
        }
    }

    #[test]
    fn from_register_refuses_a_panicking_registration_naming_the_library() {
        let error = build(|_| panic!("no config file")).err().unwrap();
        assert_eq!(error.code, Code::FailedPrecondition);
        assert!(error.message.contains("'test-lib' panicked while registering its kernels: no config file"), "{error}");
    }

    #[test]
    fn build_refuses_a_kernel_registered_twice() {
        let error = build(|l| {
            l.kernel(Echo("a.echo")).kernel(Echo("a.echo"));
        })
        .err()
        .unwrap();
        assert_eq!(error.code, Code::FailedPrecondition);
        assert!(error.message.contains("kernel library 'test-lib' is invalid: kernel 'a.echo' is registered twice"));
    }

    #[test]
    fn create_state_builds_the_authors_type_and_names_unknown_kinds() {
        let library = build(|l| {
            l.state_kind(Bytes);
        })
        .unwrap();
        let data = [1u8, 2, 3];
        let view = TensorRef { dtype: DType::U8, shape: &[3], bytes: &data };
        let state = library.create_state("bytes", &[Some(view)]).unwrap();
        assert_eq!((state.kind(), state.size_bytes()), ("bytes", 3));
        assert_eq!(state.get::<Vec<u8>>().unwrap(), &vec![1, 2, 3]);
        assert!(state.get::<String>().is_none());
        let error = library.create_state("nope", &[]).unwrap_err();
        assert_eq!(error.code, Code::NotFound);
        assert!(error.message.contains("library 'test-lib' has: bytes"), "{error}");
    }

    #[test]
    fn open_stream_of_a_kernel_without_one_is_unimplemented() {
        let library = build(|l| {
            l.kernel(Echo("a.echo"));
        })
        .unwrap();
        let error = library.open_stream(library.kernel("a.echo").unwrap()).unwrap_err();
        assert_eq!(error.code, Code::Unimplemented);
        assert_eq!(library.kernel("zzz").err().unwrap().code, Code::NotFound);
    }
}
