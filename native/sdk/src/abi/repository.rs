//! The durable state repository through the C ABI (ABI 1.3): store a state
//! once, load it by name and version (memory-mapped, checksum verified), list
//! and remove what a repository holds, and read a stored state's tensors in
//! place (for a host that builds the state elsewhere, such as a managed twin).
//!
//! Every function takes the repository's root directory (UTF-8 path bytes)
//! rather than a handle: a repository is a directory, any number of
//! libraries and processes share it, and there is nothing to open or leak.
//! Manifests come back as encoded `tandem.v1.StateManifest` (or
//! `tandem.v1.StateList`) in a `tandem_buffer_t` the caller frees.

use crate::abi::error::{guard, invalid, tandem_error_t};
use crate::abi::kernel::{optional_tensors, str_arg};
use crate::abi::library;
use crate::abi::state::tandem_state_t;
use crate::abi::types::{tandem_buffer_t, tandem_tensor_t, TANDEM_MAX_RANK, TANDEM_MAX_TENSORS};
use crate::descriptor::pb::{StateList, StateManifest};
use crate::error::KernelError;
use crate::repository::{Repository, StateId, StoredState};
use prost::Message;
use std::sync::Arc;

/// Opaque; a verified stored state mapped read-only, from
/// `tandem_stored_open`, released by `tandem_stored_free`.
pub struct tandem_stored_t {
    stored: Arc<StoredState>,
}

/// # Safety
/// `root` is readable for `root_len` bytes.
unsafe fn repository_arg(root: *const u8, root_len: usize) -> Result<Repository, KernelError> {
    // SAFETY: forwarded caller guarantee.
    let root = unsafe { str_arg(root, root_len, "root") }?;
    if root.is_empty() {
        return Err(invalid("argument 'root' is empty; give the state repository's directory"));
    }
    Repository::open(root)
}

/// `version` 0 means the newest version of `name`.
fn id_arg(repository: &Repository, name: &str, version: u64) -> Result<StateId, KernelError> {
    match version {
        0 => repository.latest(name),
        v => Ok(StateId { name: name.to_owned(), version: v }),
    }
}

/// Hands `bytes` to the caller through `out`.
fn give(out: &mut tandem_buffer_t, bytes: Vec<u8>) {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    *out = tandem_buffer_t { data: bytes.as_mut_ptr(), len: bytes.len() as u64, capacity: bytes.capacity() as u64 };
}

/// Writes `manifest` into `out` when the caller asked for it.
///
/// # Safety
/// `out` is null or writable.
unsafe fn give_manifest(out: *mut tandem_buffer_t, manifest: &StateManifest) {
    // SAFETY: forwarded caller guarantee.
    if let Some(out) = unsafe { out.as_mut() } {
        give(out, manifest.encode_to_vec());
    }
}

/// Nulls the outputs a failed call leaves behind.
///
/// # Safety
/// Each pointer is null or writable.
unsafe fn clear_outputs<T>(out: *mut *mut T, manifest: *mut tandem_buffer_t) {
    // SAFETY: forwarded caller guarantee.
    if let Some(out) = unsafe { out.as_mut() } {
        *out = std::ptr::null_mut();
    }
    // SAFETY: forwarded caller guarantee.
    if let Some(m) = unsafe { manifest.as_mut() } {
        *m = tandem_buffer_t { data: std::ptr::null_mut(), len: 0, capacity: 0 };
    }
}

/// Builds a state of kind `kind` from `tensors` (as `tandem_state_create`)
/// and stores it in the repository at `root` as (`name`, `version`),
/// `version` ≥ 1: written once, flushed to disk and published atomically;
/// ALREADY_EXISTS if that version exists, however close the race. Nothing is
/// stored when the tensors are refused. On success `*out` owns the state
/// (with `out` null the state is built only to check the tensors, then
/// dropped: a host that serves the state elsewhere stores it this way) and,
/// when `manifest` is non-null, it holds the encoded `tandem.v1.StateManifest`.
///
/// # Safety
/// `root`, `kind` and `name` are readable for their lengths; `tensors` as in
/// `tandem_state_create`; `out` and `manifest` are null or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tandem_state_store(
    root: *const u8,
    root_len: usize,
    kind: *const u8,
    kind_len: usize,
    name: *const u8,
    name_len: usize,
    version: u64,
    tensors: *const tandem_tensor_t,
    count: usize,
    out: *mut *mut tandem_state_t,
    manifest: *mut tandem_buffer_t,
) -> *mut tandem_error_t {
    guard("tandem_state_store", &[0; 16], || {
        // SAFETY: `out` and `manifest` are null or writable.
        unsafe { clear_outputs(out, manifest) };
        // SAFETY: forwarded caller guarantees.
        let (kind, name) = unsafe { (str_arg(kind, kind_len, "kind")?, str_arg(name, name_len, "name")?) };
        if version == 0 {
            return Err(invalid("state version 0 is not allowed when storing; versions start at 1"));
        }
        // SAFETY: forwarded caller guarantee.
        let repository = unsafe { repository_arg(root, root_len) }?;
        let mut shapes = [[0usize; TANDEM_MAX_RANK]; TANDEM_MAX_TENSORS];
        // SAFETY: forwarded caller guarantees.
        let present = unsafe { optional_tensors(tensors, count, &mut shapes) }?;
        let id = StateId { name: name.to_owned(), version };
        let (state, stored) = library()?.store_state(&repository, kind, &id, &present[..count])?;
        // SAFETY: `manifest` is null or writable.
        unsafe { give_manifest(manifest, &stored) };
        // SAFETY: `out` is null or writable.
        if let Some(out) = unsafe { out.as_mut() } {
            *out = Box::into_raw(Box::new(tandem_state_t { state: Arc::new(state) }));
        }
        Ok(())
    })
}

/// Loads state (`name`, `version`) from the repository at `root` (`version`
/// 0: the newest): the file mapped and its checksum verified (DATA_LOSS when
/// it does not match, NOT_FOUND naming the versions held when it is not
/// there), its kind one this library declares with the descriptor it was
/// written with (FAILED_PRECONDITION otherwise), built zero-copy where the
/// kind allows. On success `*out` owns the state and, when `manifest` is
/// non-null, it holds the encoded `tandem.v1.StateManifest`.
///
/// # Safety
/// `root` and `name` are readable for their lengths; `out` is writable;
/// `manifest` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_state_load(
    root: *const u8,
    root_len: usize,
    name: *const u8,
    name_len: usize,
    version: u64,
    out: *mut *mut tandem_state_t,
    manifest: *mut tandem_buffer_t,
) -> *mut tandem_error_t {
    guard("tandem_state_load", &[0; 16], || {
        if out.is_null() {
            return Err(invalid("argument 'out' is null"));
        }
        // SAFETY: `out` is non-null and writable, `manifest` null or writable.
        unsafe { clear_outputs(out, manifest) };
        // SAFETY: forwarded caller guarantees.
        let (repository, name) = unsafe { (repository_arg(root, root_len)?, str_arg(name, name_len, "name")?) };
        let id = id_arg(&repository, name, version)?;
        let library = library()?;
        let (state, stored) = library.load_state_with_manifest(&repository, &id)?;
        // SAFETY: `manifest` is null or writable.
        unsafe { give_manifest(manifest, &stored) };
        let handle = Box::new(tandem_state_t { state: Arc::new(state) });
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Writes into `*out` (owned by the caller on success; release with
/// `tandem_buffer_free`) the encoded `tandem.v1.StateList` of every state
/// the repository at `root` holds, each manifest read from its file's header
/// without verifying the checksum; an unreadable one is listed with its name
/// and version only.
///
/// # Safety
/// `root` is readable for `root_len` bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_repository_list(
    root: *const u8,
    root_len: usize,
    out: *mut tandem_buffer_t,
) -> *mut tandem_error_t {
    guard("tandem_repository_list", &[0; 16], || {
        // SAFETY: `out` is null or writable per the contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| invalid("argument 'out' is null"))?;
        *out = tandem_buffer_t { data: std::ptr::null_mut(), len: 0, capacity: 0 };
        // SAFETY: forwarded caller guarantee.
        let repository = unsafe { repository_arg(root, root_len) }?;
        let states = repository
            .list()?
            .into_iter()
            .map(|id| {
                repository.manifest(&id).unwrap_or_else(|_| StateManifest {
                    name: id.name,
                    version: id.version,
                    ..StateManifest::default()
                })
            })
            .collect();
        give(out, StateList { states }.encode_to_vec());
        Ok(())
    })
}

/// Removes state (`name`, `version`) from the repository at `root`
/// (`version` 0: every version of `name`). States already loaded from it
/// keep their mapping. NOT_FOUND if there is nothing to remove.
///
/// # Safety
/// `root` and `name` are readable for their lengths.
#[no_mangle]
pub unsafe extern "C" fn tandem_repository_remove(
    root: *const u8,
    root_len: usize,
    name: *const u8,
    name_len: usize,
    version: u64,
) -> *mut tandem_error_t {
    guard("tandem_repository_remove", &[0; 16], || {
        // SAFETY: forwarded caller guarantees.
        let (repository, name) = unsafe { (repository_arg(root, root_len)?, str_arg(name, name_len, "name")?) };
        if version != 0 {
            return repository.remove(&StateId { name: name.to_owned(), version });
        }
        let versions = repository.versions(name)?;
        if versions.is_empty() {
            return Err(KernelError::not_found(format!(
                "state '{}' is not in the repository; nothing was removed",
                name.escape_debug()
            )));
        }
        for version in versions {
            match repository.remove(&StateId { name: name.to_owned(), version }) {
                // Removed meanwhile by another writer: the goal holds.
                Err(e) if e.code == crate::Code::NotFound => {}
                other => other?,
            }
        }
        Ok(())
    })
}

/// Maps and verifies stored state (`name`, `version`) (`version` 0: the
/// newest) without building it, for reading its tensors in place with
/// `tandem_stored_tensors`. Errors as `tandem_state_load`, except that the
/// kind need not be one this library declares.
///
/// # Safety
/// `root` and `name` are readable for their lengths; `out` is writable;
/// `manifest` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_stored_open(
    root: *const u8,
    root_len: usize,
    name: *const u8,
    name_len: usize,
    version: u64,
    out: *mut *mut tandem_stored_t,
    manifest: *mut tandem_buffer_t,
) -> *mut tandem_error_t {
    guard("tandem_stored_open", &[0; 16], || {
        if out.is_null() {
            return Err(invalid("argument 'out' is null"));
        }
        // SAFETY: `out` is non-null and writable, `manifest` null or writable.
        unsafe { clear_outputs(out, manifest) };
        // SAFETY: forwarded caller guarantees.
        let (repository, name) = unsafe { (repository_arg(root, root_len)?, str_arg(name, name_len, "name")?) };
        let id = id_arg(&repository, name, version)?;
        let stored = repository.load(&id)?;
        // SAFETY: `manifest` is null or writable.
        unsafe { give_manifest(manifest, stored.manifest()) };
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(Box::new(tandem_stored_t { stored })) };
        Ok(())
    })
}

/// Fills `out[0..n]` with views of the stored state's tensors, in its
/// manifest's order, and writes n to `*count`; the views stay valid until
/// `tandem_stored_free`. INVALID_ARGUMENT (nothing written) when `capacity`
/// is smaller than n.
///
/// # Safety
/// `stored` is live; `out` is writable for `capacity` structs; `count` is writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_stored_tensors(
    stored: *const tandem_stored_t,
    out: *mut tandem_tensor_t,
    capacity: usize,
    count: *mut usize,
) -> *mut tandem_error_t {
    guard("tandem_stored_tensors", &[0; 16], || {
        // SAFETY: the caller guarantees `stored` is null or live.
        let stored = &unsafe { stored.as_ref() }.ok_or_else(|| invalid("argument 'stored' is null"))?.stored;
        // SAFETY: `count` is null or writable per the contract.
        let count = unsafe { count.as_mut() }.ok_or_else(|| invalid("argument 'count' is null"))?;
        let tensors = &stored.manifest().tensors;
        *count = tensors.len();
        if tensors.len() > capacity {
            return Err(invalid(format!(
                "stored state '{}' has {} tensors but 'out' has room for {capacity}",
                stored.manifest().name,
                tensors.len()
            )));
        }
        if out.is_null() && !tensors.is_empty() {
            return Err(invalid("argument 'out' is null"));
        }
        for (i, spec) in tensors.iter().enumerate() {
            let view = stored.tensor(&spec.name).expect("a manifest entry names its own tensor");
            if view.shape.len() > TANDEM_MAX_RANK {
                return Err(invalid(format!(
                    "stored tensor '{}' has rank {}, beyond the ABI's {TANDEM_MAX_RANK}",
                    spec.name,
                    view.shape.len()
                )));
            }
            let mut shape = [0i64; TANDEM_MAX_RANK];
            for (d, &n) in shape.iter_mut().zip(view.shape) {
                *d = i64::try_from(n).map_err(|_| invalid(format!("stored tensor '{}' is too large", spec.name)))?;
            }
            let header = tandem_tensor_t {
                data: view.bytes.as_ptr().cast(),
                byte_len: view.bytes.len() as u64,
                shape,
                rank: view.shape.len() as u32,
                dtype: view.dtype as u32,
            };
            // SAFETY: `out` is writable for `capacity` > i structs.
            unsafe { out.add(i).write(header) };
        }
        Ok(())
    })
}

/// Releases a stored state (its mapping, once no state built from it holds it).
///
/// # Safety
/// `stored` is null or a pointer from `tandem_stored_open`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tandem_stored_free(stored: *mut tandem_stored_t) {
    if !stored.is_null() {
        // SAFETY: the pointer came from Box::into_raw and is freed once;
        // dropping an Arc and a mapping cannot panic.
        drop(unsafe { Box::from_raw(stored) });
    }
}
