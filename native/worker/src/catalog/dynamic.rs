//! A kernel library loaded with `dlopen` (`--kernels PATH`) and called
//! through its C ABI — the same exports the .NET host binds — so the worker
//! serves a user's kernels without being rebuilt. The library is checked
//! when it is opened: ABI major, its own status (a registration that
//! panicked or a descriptor its SDK refused), and every descriptor: the
//! worker recomputes its hash and runs the SDK's checks on it.
//!
//! A loaded library is never unloaded (its compute threads and thread-local
//! destructors would outlive `dlclose`).

use super::foreign::{ErrorPtr, ErrorReader, ForeignCancel, ForeignState, ForeignStream};
use super::{Source, WorkerState};
use prost::Message;
use std::any::Any;
use std::ffi::{c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tandem_sdk::abi::{
    tandem_buffer_t, tandem_call_context_t, tandem_cancel_t, tandem_kernel_t, tandem_param_t, tandem_state_t,
    tandem_tensor_mut_t, tandem_tensor_t, TANDEM_MAX_PARAMS, TANDEM_MAX_RANK, TANDEM_MAX_TENSORS, TANDEM_PARAM_FLOAT,
    TANDEM_PARAM_INT,
};
use tandem_sdk::descriptor::{self, KernelSet};
use tandem_sdk::repository::{Repository, StateId};
use tandem_sdk::{CallContext, Code, KernelError, KernelStream, Param, TensorMut, TensorRef};

/// The exports the worker calls, resolved once.
struct Exports {
    errors: ErrorReader,
    kernel_find: unsafe extern "C" fn(*const u8, usize, *mut *const tandem_kernel_t) -> ErrorPtr,
    #[allow(clippy::type_complexity)]
    kernel_invoke: unsafe extern "C" fn(
        *const tandem_kernel_t,
        *const tandem_state_t,
        *const tandem_tensor_t,
        usize,
        *const tandem_param_t,
        usize,
        *const tandem_tensor_mut_t,
        usize,
        *const tandem_call_context_t,
    ) -> ErrorPtr,
    kernel_warm_up: unsafe extern "C" fn(*const tandem_kernel_t) -> ErrorPtr,
    state_create:
        unsafe extern "C" fn(*const u8, usize, *const tandem_tensor_t, usize, *mut *mut tandem_state_t) -> ErrorPtr,
    state_free: unsafe extern "C" fn(*mut tandem_state_t),
    stream_open: unsafe extern "C" fn(*const tandem_kernel_t, *mut u64) -> ErrorPtr,
    stream_update: unsafe extern "C" fn(u64, *const u8, usize) -> ErrorPtr,
    stream_finalize: unsafe extern "C" fn(u64, *mut u8, usize) -> ErrorPtr,
    stream_free: extern "C" fn(u64) -> ErrorPtr,
    cancel_new: extern "C" fn() -> *mut tandem_cancel_t,
    cancel_set: unsafe extern "C" fn(*const tandem_cancel_t),
    cancel_free: unsafe extern "C" fn(*mut tandem_cancel_t),
    /// `tandem_state_load`, since ABI 1.3; `None` in an older library.
    state_load: Option<StateLoad>,
}

type StateLoad = unsafe extern "C" fn(
    *const u8,
    usize,
    *const u8,
    usize,
    u64,
    *mut *mut tandem_state_t,
    *mut tandem_buffer_t,
) -> ErrorPtr;

pub struct DynamicLibrary {
    path: PathBuf,
    exports: Exports,
    set: KernelSet,
    /// `tandem_kernel_t*` per kernel, in `set` order; valid while the library is loaded (forever).
    kernels: Vec<usize>,
}

/// Resolves `name` in `handle` as a function pointer of type `F`.
///
/// # Safety
/// `handle` is a live `dlopen` handle and `F` is the export's true type.
unsafe fn symbol<F: Copy>(handle: *mut c_void, path: &Path, name: &str) -> Result<F, String> {
    let cname = CString::new(name).map_err(|_| format!("bad symbol name {name}"))?;
    // SAFETY: live handle and NUL-terminated name.
    let address = unsafe { libc::dlsym(handle, cname.as_ptr()) };
    if address.is_null() {
        return Err(format!("'{}' is not a Tandem kernel library: it exports no '{name}'", path.display()));
    }
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: the caller names the export's true function type, which is
    // pointer-sized (checked above).
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

fn dlerror_text() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl call on this thread.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        "unknown error".to_owned()
    } else {
        // SAFETY: non-null, NUL-terminated per dlerror's contract.
        unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
    }
}

impl DynamicLibrary {
    /// Loads and checks the library at `path`; the error names the path and what is wrong.
    pub fn open(path: &Path) -> Result<DynamicLibrary, String> {
        let started = Instant::now();
        let metadata =
            std::fs::metadata(path).map_err(|e| format!("kernel library '{}' cannot be read: {e}", path.display()))?;
        if !metadata.is_file() {
            return Err(format!("kernel library '{}' is not a file", path.display()));
        }
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("kernel library path '{}' contains a NUL byte", path.display()))?;
        // SAFETY: NUL-terminated path. RTLD_LOCAL keeps each library's
        // symbols to itself, so libraries exporting the same ABI coexist.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("kernel library '{}' cannot be loaded: {}", path.display(), dlerror_text()));
        }
        // SAFETY (every `symbol` call below): live handle; each type is the
        // export's signature in native/sdk/include/tandem.h.
        let abi_version: extern "C" fn() -> u32 = unsafe { symbol(handle, path, "tandem_abi_version") }?;
        let version = abi_version();
        let (major, minor) = (version >> 16, version & 0xffff);
        if major != tandem_sdk::ABI_VERSION >> 16 {
            return Err(format!(
                "kernel library '{}' speaks ABI {major}.{minor}; this worker needs ABI {}.x",
                path.display(),
                tandem_sdk::ABI_VERSION >> 16
            ));
        }
        let exports = unsafe {
            Exports {
                errors: ErrorReader {
                    code: symbol(handle, path, "tandem_error_code")?,
                    message: symbol(handle, path, "tandem_error_message")?,
                    free: symbol(handle, path, "tandem_error_free")?,
                },
                kernel_find: symbol(handle, path, "tandem_kernel_find")?,
                kernel_invoke: symbol(handle, path, "tandem_kernel_invoke")?,
                kernel_warm_up: symbol(handle, path, "tandem_kernel_warm_up")?,
                state_create: symbol(handle, path, "tandem_state_create")?,
                state_free: symbol(handle, path, "tandem_state_free")?,
                stream_open: symbol(handle, path, "tandem_stream_open")?,
                stream_update: symbol(handle, path, "tandem_stream_update")?,
                stream_finalize: symbol(handle, path, "tandem_stream_finalize")?,
                stream_free: symbol(handle, path, "tandem_stream_free")?,
                cancel_new: symbol(handle, path, "tandem_cancel_new")?,
                cancel_set: symbol(handle, path, "tandem_cancel_set")?,
                cancel_free: symbol(handle, path, "tandem_cancel_free")?,
                state_load: if minor >= 3 { Some(symbol(handle, path, "tandem_state_load")?) } else { None },
            }
        };
        let status: extern "C" fn() -> ErrorPtr = unsafe { symbol(handle, path, "tandem_library_status") }?;
        let describe: unsafe extern "C" fn(*mut tandem_buffer_t) -> ErrorPtr =
            unsafe { symbol(handle, path, "tandem_kernels_describe") }?;
        let buffer_free: unsafe extern "C" fn(*mut tandem_buffer_t) =
            unsafe { symbol(handle, path, "tandem_buffer_free") }?;
        let mut library =
            DynamicLibrary { path: path.to_owned(), exports, set: KernelSet::default(), kernels: Vec::new() };
        let refused = |e: KernelError| format!("kernel library '{}' refused to load: {}", path.display(), e.message);
        library.check(status()).map_err(refused)?;
        let mut buffer = tandem_buffer_t { data: std::ptr::null_mut(), len: 0, capacity: 0 };
        // SAFETY: `buffer` is writable; on success the library filled it and we free it below.
        library.check(unsafe { describe(&mut buffer) }).map_err(refused)?;
        let bytes = if buffer.data.is_null() {
            &[][..]
        } else {
            // SAFETY: the library filled `len` bytes at `data`, valid until buffer_free.
            unsafe { std::slice::from_raw_parts(buffer.data, buffer.len as usize) }
        };
        let decoded = KernelSet::decode(bytes);
        // SAFETY: the buffer came from this library's describe and is freed once.
        unsafe { buffer_free(&mut buffer) };
        library.set = decoded.map_err(|e| {
            format!("kernel library '{}' published descriptors that do not decode: {e}", path.display())
        })?;
        library.verify()?;
        for kernel in &library.set.kernels {
            let mut found: *const tandem_kernel_t = std::ptr::null();
            // SAFETY: valid name bytes and a writable out pointer.
            library
                .check(unsafe { (library.exports.kernel_find)(kernel.name.as_ptr(), kernel.name.len(), &mut found) })
                .map_err(refused)?;
            library.kernels.push(found as usize);
        }
        crate::log::info(
            "kernel library loaded",
            serde_json::json!({
                "library": library.set.library_name, "version": library.set.library_version,
                "path": path.display().to_string(), "abi": format!("{major}.{minor}"),
                "kernels": library.set.kernels.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
                "duration_us": started.elapsed().as_micros() as u64,
            }),
        );
        Ok(library)
    }

    /// Each descriptor passes the SDK's checks here too, and carries the
    /// hash its contents hash to (a library cannot claim another contract).
    fn verify(&self) -> Result<(), String> {
        let name = &self.set.library_name;
        let path = self.path.display();
        for kernel in &self.set.kernels {
            let kind = self.set.state_kinds.iter().find(|k| k.name == kernel.state_kind);
            let expected = descriptor::hash(kernel, kind);
            if kernel.hash != expected {
                return Err(format!(
                    "kernel library '{name}' ({path}) reports hash {} for kernel '{}' but its descriptor hashes to {expected}",
                    kernel.hash, kernel.name
                ));
            }
            let mut unhashed = kernel.clone();
            unhashed.hash.clear();
            unhashed.library.clear();
            tandem_sdk::check::kernel(&unhashed, kind, kernel.flags().streaming)
                .map_err(|e| format!("kernel library '{name}' ({path}) is invalid: {e}"))?;
        }
        Ok(())
    }

    fn check(&self, error: ErrorPtr) -> Result<(), KernelError> {
        self.exports.errors.check(error)
    }

    fn kernel(&self, index: usize) -> Result<*const tandem_kernel_t, KernelError> {
        self.kernels
            .get(index)
            .map(|&k| k as *const tandem_kernel_t)
            .ok_or_else(|| KernelError::new(Code::Internal, format!("library has no kernel {index}")))
    }
}

fn raw_shape(shape: &[usize]) -> Result<([i64; TANDEM_MAX_RANK], u32), KernelError> {
    if shape.len() > TANDEM_MAX_RANK {
        return Err(KernelError::invalid(format!("rank {} exceeds the C ABI's {TANDEM_MAX_RANK}", shape.len())));
    }
    let mut dims = [0i64; TANDEM_MAX_RANK];
    for (d, &s) in dims.iter_mut().zip(shape) {
        *d = s as i64;
    }
    Ok((dims, shape.len() as u32))
}

fn raw_input(t: &TensorRef<'_>) -> Result<tandem_tensor_t, KernelError> {
    let (shape, rank) = raw_shape(t.shape)?;
    Ok(tandem_tensor_t {
        data: t.bytes.as_ptr().cast(),
        byte_len: t.bytes.len() as u64,
        shape,
        rank,
        dtype: t.dtype as u32,
    })
}

impl Source for DynamicLibrary {
    fn kernel_set(&self) -> &KernelSet {
        &self.set
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
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
        let kernel = self.kernel(kernel)?;
        if inputs.len() > TANDEM_MAX_TENSORS || outputs.len() > TANDEM_MAX_TENSORS || params.len() > TANDEM_MAX_PARAMS {
            return Err(KernelError::invalid("too many tensors or parameters for one call"));
        }
        let raw_inputs = inputs.iter().map(raw_input).collect::<Result<Vec<_>, _>>()?;
        let mut raw_outputs = Vec::with_capacity(outputs.len());
        for t in outputs.iter_mut() {
            let (shape, rank) = raw_shape(t.shape)?;
            raw_outputs.push(tandem_tensor_mut_t {
                data: t.bytes.as_mut_ptr().cast(),
                byte_len: t.bytes.len() as u64,
                shape,
                rank,
                dtype: t.dtype as u32,
            });
        }
        let raw_params: Vec<tandem_param_t> = params
            .iter()
            .map(|p| match *p {
                Param::Int(v) => tandem_param_t { kind: TANDEM_PARAM_INT, reserved: 0, int_value: v, float_value: 0.0 },
                Param::Float(v) => {
                    tandem_param_t { kind: TANDEM_PARAM_FLOAT, reserved: 0, int_value: 0, float_value: v }
                }
            })
            .collect();
        let state = match state {
            Some(s) => {
                s.value
                    .downcast_ref::<ForeignState>()
                    .ok_or_else(|| {
                        KernelError::new(Code::Internal, "a library's kernel got a state it did not create")
                    })?
                    .handle as *const tandem_state_t
            }
            None => std::ptr::null(),
        };
        let cancel = Arc::new(ForeignCancel { token: (self.exports.cancel_new)(), free: self.exports.cancel_free });
        if let Some(flag) = &ctx.cancel {
            let (token, set) = (Arc::clone(&cancel), self.exports.cancel_set);
            // SAFETY: the hook holds its own reference, so the token is live when it runs.
            flag.on_cancel(move || unsafe { set(token.token) });
        }
        let timeout_ns = match ctx.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(KernelError::new(Code::DeadlineExceeded, "the call's deadline passed before it ran"));
                }
                u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
            }
            None => 0,
        };
        let raw_ctx = tandem_call_context_t {
            timeout_ns,
            cancel: cancel.token,
            trace_id: ctx.trace_id,
            span_id: [0; 8],
            flags: 0,
            reserved: 0,
        };
        // SAFETY: every pointer is live for the call: the inputs and outputs
        // borrow the caller's buffers (outputs exclusively), the arrays and
        // context live on this frame, and the state and kernel handles came
        // from this library.
        let error = unsafe {
            (self.exports.kernel_invoke)(
                kernel,
                state,
                raw_inputs.as_ptr(),
                raw_inputs.len(),
                raw_params.as_ptr(),
                raw_params.len(),
                raw_outputs.as_ptr(),
                raw_outputs.len(),
                &raw_ctx,
            )
        };
        self.check(error)
    }

    fn create_state(
        &self,
        kind: &str,
        tensors: &[Option<TensorRef<'_>>],
    ) -> Result<(u64, Box<dyn Any + Send + Sync>), KernelError> {
        const ABSENT: tandem_tensor_t =
            tandem_tensor_t { data: std::ptr::null(), byte_len: 0, shape: [0; TANDEM_MAX_RANK], rank: 0, dtype: 0 };
        let raw = tensors.iter().map(|t| t.as_ref().map_or(Ok(ABSENT), raw_input)).collect::<Result<Vec<_>, _>>()?;
        let mut handle: *mut tandem_state_t = std::ptr::null_mut();
        // SAFETY: kind bytes, tensor array and out pointer are live for the call.
        self.check(unsafe {
            (self.exports.state_create)(kind.as_ptr(), kind.len(), raw.as_ptr(), raw.len(), &mut handle)
        })?;
        let state = ForeignState { handle, free: self.exports.state_free };
        let size: u64 = tensors.iter().flatten().map(|t| t.bytes.len() as u64).sum();
        Ok((size, Box::new(state)))
    }

    fn load_state(
        &self,
        root: &Path,
        kind: &str,
        id: &StateId,
    ) -> Result<(u64, Box<dyn Any + Send + Sync>), KernelError> {
        let load = self.exports.state_load.ok_or_else(|| {
            KernelError::new(
                Code::FailedPrecondition,
                format!(
                    "kernel library '{}' (state kind '{kind}') predates the state repository (ABI 1.3); rebuild it against the current tandem-sdk",
                    self.set.library_name
                ),
            )
        })?;
        let root = root.as_os_str().as_bytes();
        let mut handle: *mut tandem_state_t = std::ptr::null_mut();
        // SAFETY: root and name bytes and the out pointer are live for the
        // call; a null manifest buffer is allowed.
        self.check(unsafe {
            load(
                root.as_ptr(),
                root.len(),
                id.name.as_ptr(),
                id.name.len(),
                id.version,
                &mut handle,
                std::ptr::null_mut(),
            )
        })?;
        let state = ForeignState { handle, free: self.exports.state_free };
        // What the file's tensors hold: the library may map rather than copy them.
        let size = Repository::open(Path::new(std::ffi::OsStr::from_bytes(root)))?.manifest(id)?.data_length;
        Ok((size, Box::new(state)))
    }

    fn open_stream(&self, kernel: usize) -> Result<Box<dyn KernelStream>, KernelError> {
        let kernel = self.kernel(kernel)?;
        let mut handle = 0u64;
        // SAFETY: live kernel handle and a writable out pointer.
        self.check(unsafe { (self.exports.stream_open)(kernel, &mut handle) })?;
        Ok(Box::new(ForeignStream {
            handle,
            update: self.exports.stream_update,
            finalize: self.exports.stream_finalize,
            free: self.exports.stream_free,
            errors: self.exports.errors,
        }))
    }

    fn warm_up(&self, kernel: usize) -> Result<(), KernelError> {
        let kernel = self.kernel(kernel)?;
        // SAFETY: live kernel handle.
        self.check(unsafe { (self.exports.kernel_warm_up)(kernel) })
    }
}
