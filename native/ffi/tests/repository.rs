//! The state repository through the C ABI of libtandem (ABI 1.3): a state
//! stored and loaded back answers exactly as one created from the same
//! tensors; manifests, listing, removal and the stored tensor views agree
//! with what was written; every bad argument and every damaged file is
//! refused with its own code, and a refused call leaves nothing behind.

mod common;

use common::{find, ok, take, tensor, tensor_mut};
use prost::Message;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use tandem::*;
use tandem_sdk::descriptor::pb::{StateList, StateManifest};

const KIND: &str = "vector_collection";
const DIM: usize = 16;
const ROWS: usize = 5;
const INVALID_ARGUMENT: i32 = 3;
const NOT_FOUND: i32 = 5;
const ALREADY_EXISTS: i32 = 6;
const FAILED_PRECONDITION: i32 = 9;
const DATA_LOSS: i32 = 15;

/// A repository directory removed when the test ends.
struct Root(PathBuf);

impl Root {
    fn new(test: &str) -> Root {
        let path = std::env::temp_dir().join(format!("tandem-ffi-repo-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Root(path)
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_os_str().as_encoded_bytes()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Collection {
    vectors: Vec<f32>,
    ids: Vec<i64>,
}

impl Collection {
    fn new() -> Collection {
        let vectors = (0..ROWS * DIM).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
        Collection { vectors, ids: vec![40, 10, 30, 20, 50] }
    }

    fn tensors(&self) -> [tandem_tensor_t; 2] {
        [
            tensor(&self.vectors, &[ROWS as i64, DIM as i64], TANDEM_DTYPE_F32),
            tensor(&self.ids, &[ROWS as i64], TANDEM_DTYPE_I64),
        ]
    }
}

fn store(
    root: &Root,
    name: &str,
    version: u64,
    tensors: &[tandem_tensor_t],
) -> Result<(*mut tandem_state_t, Vec<u8>), (i32, String)> {
    let mut state = null_mut();
    let mut manifest = tandem_buffer_t { data: null_mut(), len: 0, capacity: 0 };
    let root = root.bytes();
    // SAFETY: every pointer is valid for its length; outputs are writable.
    let error = unsafe {
        tandem_state_store(
            root.as_ptr(),
            root.len(),
            KIND.as_ptr(),
            KIND.len(),
            name.as_ptr(),
            name.len(),
            version,
            tensors.as_ptr(),
            tensors.len(),
            &mut state,
            &mut manifest,
        )
    };
    finish(error, state, manifest)
}

fn load(root: &Root, name: &str, version: u64) -> Result<(*mut tandem_state_t, Vec<u8>), (i32, String)> {
    let mut state = null_mut();
    let mut manifest = tandem_buffer_t { data: null_mut(), len: 0, capacity: 0 };
    let root = root.bytes();
    // SAFETY: every pointer is valid for its length; outputs are writable.
    let error = unsafe {
        tandem_state_load(root.as_ptr(), root.len(), name.as_ptr(), name.len(), version, &mut state, &mut manifest)
    };
    finish(error, state, manifest)
}

/// The outcome of a call that hands out a handle and a manifest: on failure
/// both must be left null.
fn finish<T>(
    error: *mut tandem_error_t,
    handle: *mut T,
    mut manifest: tandem_buffer_t,
) -> Result<(*mut T, Vec<u8>), (i32, String)> {
    if let Some(failure) = take(error) {
        assert!(handle.is_null(), "a refused call handed out a handle");
        assert!(manifest.data.is_null() && manifest.len == 0, "a refused call handed out a manifest");
        return Err(failure);
    }
    // SAFETY: the library filled the buffer; it is freed once, here.
    let bytes = unsafe { std::slice::from_raw_parts(manifest.data, manifest.len as usize) }.to_vec();
    // SAFETY: as above.
    unsafe { tandem_buffer_free(&mut manifest) };
    Ok((handle, bytes))
}

fn list(root: &Root) -> StateList {
    let mut out = tandem_buffer_t { data: null_mut(), len: 0, capacity: 0 };
    let root = root.bytes();
    // SAFETY: valid root and writable out.
    ok(unsafe { tandem_repository_list(root.as_ptr(), root.len(), &mut out) });
    // SAFETY: the library filled the buffer; freed once.
    let list = StateList::decode(unsafe { std::slice::from_raw_parts(out.data, out.len as usize) }).unwrap();
    // SAFETY: as above.
    unsafe { tandem_buffer_free(&mut out) };
    list
}

fn remove(root: &Root, name: &str, version: u64) -> Option<(i32, String)> {
    let root = root.bytes();
    // SAFETY: valid pointers for their lengths.
    take(unsafe { tandem_repository_remove(root.as_ptr(), root.len(), name.as_ptr(), name.len(), version) })
}

/// The top-3 ids and scores of two queries over `state`.
fn top3(state: *const tandem_state_t) -> (Vec<i64>, Vec<f32>) {
    let queries: Vec<f32> = (0..2 * DIM).map(|i| (i % 5) as f32 - 2.0).collect();
    let (mut ids, mut scores) = (vec![0i64; 6], vec![0f32; 6]);
    let inputs = [tensor(&queries, &[2, DIM as i64], TANDEM_DTYPE_F32)];
    let params = [
        tandem_param_t { kind: TANDEM_PARAM_INT, reserved: 0, int_value: 3, float_value: 0.0 },
        tandem_param_t { kind: TANDEM_PARAM_INT, reserved: 0, int_value: 0, float_value: 0.0 },
    ];
    let outputs = [tensor_mut(&mut ids, &[2, 3], TANDEM_DTYPE_I64), tensor_mut(&mut scores, &[2, 3], TANDEM_DTYPE_F32)];
    // SAFETY: the kernel and state are live; every tensor is valid for the call.
    ok(unsafe {
        tandem_kernel_invoke(
            find("similarity.topk"),
            state,
            inputs.as_ptr(),
            1,
            params.as_ptr(),
            2,
            outputs.as_ptr(),
            2,
            null(),
        )
    });
    (ids, scores)
}

fn created(collection: &Collection) -> *mut tandem_state_t {
    let tensors = collection.tensors();
    let mut state = null_mut();
    // SAFETY: valid kind, tensors and out.
    ok(unsafe { tandem_state_create(KIND.as_ptr(), KIND.len(), tensors.as_ptr(), 2, &mut state) });
    state
}

fn file(root: &Root, name: &str, version: u64) -> PathBuf {
    root.0.join(name).join(format!("{version}.tstate"))
}

#[test]
fn a_stored_state_loads_back_and_answers_as_a_created_one() {
    let root = Root::new("roundtrip");
    let collection = Collection::new();
    let reference = created(&collection);
    let (stored, manifest) = store(&root, "docs", 1, &collection.tensors()).unwrap();
    let manifest = StateManifest::decode(&manifest[..]).unwrap();
    assert_eq!((manifest.name.as_str(), manifest.version, manifest.kind.as_str()), ("docs", 1, KIND));
    assert_eq!(manifest.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["vectors", "ids"]);
    assert_eq!(manifest.tensors[0].shape, [ROWS as u64, DIM as u64]);

    let (loaded, loaded_manifest) = load(&root, "docs", 1).unwrap();
    assert_eq!(StateManifest::decode(&loaded_manifest[..]).unwrap(), manifest);
    // Version 0 is the newest.
    let (newest, _) = load(&root, "docs", 0).unwrap();
    let expected = top3(reference);
    assert_eq!(top3(stored), expected);
    assert_eq!(top3(loaded), expected);
    assert_eq!(top3(newest), expected);
    // SAFETY: each handle is live and freed once.
    unsafe {
        assert!(tandem_state_size_bytes(loaded) > 0);
        for state in [reference, stored, loaded, newest] {
            tandem_state_free(state);
        }
    }
}

#[test]
fn listing_reads_every_manifest_and_removal_takes_one_version_or_all() {
    let root = Root::new("list");
    let collection = Collection::new();
    for (name, version) in [("b", 1), ("a", 2), ("a", 1)] {
        let (state, _) = store(&root, name, version, &collection.tensors()).unwrap();
        // SAFETY: live, freed once.
        unsafe { tandem_state_free(state) };
    }
    // Stored without keeping a state (`out` null).
    let tensors = collection.tensors();
    let r = root.bytes();
    // SAFETY: valid pointers for their lengths; null outputs are allowed.
    ok(unsafe {
        tandem_state_store(
            r.as_ptr(),
            r.len(),
            KIND.as_ptr(),
            KIND.len(),
            b"c".as_ptr(),
            1,
            1,
            tensors.as_ptr(),
            2,
            null_mut(),
            null_mut(),
        )
    });
    std::fs::create_dir_all(root.0.join("not-a-state")).unwrap();
    std::fs::write(root.0.join("not-a-state").join("junk.txt"), b"x").unwrap();
    let ids: Vec<(String, u64, String)> = list(&root).states.into_iter().map(|m| (m.name, m.version, m.kind)).collect();
    assert_eq!(
        ids,
        [
            ("a".into(), 1, KIND.into()),
            ("a".into(), 2, KIND.into()),
            ("b".into(), 1, KIND.into()),
            ("c".into(), 1, KIND.into())
        ]
    );
    assert_eq!(remove(&root, "c", 1), None);

    assert_eq!(remove(&root, "a", 1), None);
    let (code, message) = remove(&root, "a", 1).unwrap();
    assert_eq!(code, NOT_FOUND, "{message}");
    assert_eq!(remove(&root, "b", 0), None);
    let (code, message) = remove(&root, "b", 0).unwrap();
    assert_eq!(code, NOT_FOUND, "{message}");
    assert!(message.contains("nothing was removed"), "{message}");
    let names: Vec<(String, u64)> = list(&root).states.into_iter().map(|m| (m.name, m.version)).collect();
    assert_eq!(names, [("a".into(), 2)]);
}

#[test]
fn stored_views_expose_the_written_tensors_in_place() {
    let root = Root::new("views");
    let collection = Collection::new();
    let (state, _) = store(&root, "views", 3, &collection.tensors()).unwrap();
    // SAFETY: live, freed once.
    unsafe { tandem_state_free(state) };
    let mut stored = null_mut();
    let mut manifest = tandem_buffer_t { data: null_mut(), len: 0, capacity: 0 };
    let r = root.bytes();
    // SAFETY: valid pointers; outputs writable.
    let error = unsafe { tandem_stored_open(r.as_ptr(), r.len(), b"views".as_ptr(), 5, 0, &mut stored, &mut manifest) };
    let (stored, manifest) = finish(error, stored, manifest).unwrap();
    assert_eq!(StateManifest::decode(&manifest[..]).unwrap().version, 3);

    let mut views = [tensor::<u8>(&[], &[], 0); 2];
    let mut count = 0;
    // Too small a buffer: refused, the count says how many are needed.
    // SAFETY: `stored` live; `views` writable for 1.
    let (code, message) = take(unsafe { tandem_stored_tensors(stored, views.as_mut_ptr(), 1, &mut count) }).unwrap();
    assert_eq!((code, count), (INVALID_ARGUMENT, 2), "{message}");
    // SAFETY: `stored` live; `views` writable for 2.
    ok(unsafe { tandem_stored_tensors(stored, views.as_mut_ptr(), 2, &mut count) });
    assert_eq!(count, 2);
    assert_eq!(
        (views[0].dtype, views[0].rank, &views[0].shape[..2]),
        (TANDEM_DTYPE_F32, 2, &[ROWS as i64, DIM as i64][..])
    );
    assert_eq!(views[0].data as usize % 64, 0, "stored tensors are 64-byte aligned");
    // SAFETY: the views are valid until tandem_stored_free.
    let (vectors, ids) = unsafe {
        (
            std::slice::from_raw_parts(views[0].data.cast::<f32>(), ROWS * DIM),
            std::slice::from_raw_parts(views[1].data.cast::<i64>(), ROWS),
        )
    };
    assert_eq!(vectors, &collection.vectors[..]);
    assert_eq!(ids, &collection.ids[..]);
    // SAFETY: freed once; a null free is harmless.
    unsafe {
        tandem_stored_free(stored);
        tandem_stored_free(null_mut());
    }
}

#[test]
fn bad_arguments_are_refused_with_their_own_codes_and_nothing_is_written() {
    let root = Root::new("bad");
    let collection = Collection::new();
    let tensors = collection.tensors();
    let refused = |result: Result<(*mut tandem_state_t, Vec<u8>), (i32, String)>, code: i32, needle: &str| {
        let (got, message) = result.expect_err("refused");
        assert_eq!(got, code, "{message}");
        assert!(message.contains(needle), "'{message}' does not mention '{needle}'");
    };
    refused(store(&root, "x", 0, &tensors), INVALID_ARGUMENT, "versions start at 1");
    refused(store(&root, ".hidden", 1, &tensors), INVALID_ARGUMENT, "not starting with '.'");
    refused(store(&root, "a/b", 1, &tensors), INVALID_ARGUMENT, "is not allowed");
    refused(store(&root, &"n".repeat(201), 1, &tensors), INVALID_ARGUMENT, "1 to 200");
    let nan: Vec<f32> = collection.vectors.iter().map(|_| f32::NAN).collect();
    let bad = [tensor(&nan, &[ROWS as i64, DIM as i64], TANDEM_DTYPE_F32), tensors[1]];
    refused(store(&root, "nan", 1, &bad), INVALID_ARGUMENT, "NaN");
    let duplicate = vec![1i64; ROWS];
    let bad = [tensors[0], tensor(&duplicate, &[ROWS as i64], TANDEM_DTYPE_I64)];
    refused(store(&root, "dup", 1, &bad), INVALID_ARGUMENT, "ids must be unique");
    let wrong = [tensor(&collection.ids, &[ROWS as i64], TANDEM_DTYPE_I64)];
    refused(store(&root, "wrong", 1, &wrong), INVALID_ARGUMENT, "takes 2 tensor(s), got 1");
    assert!(list(&root).states.is_empty(), "a refused store left a state behind");

    let (state, _) = store(&root, "once", 1, &tensors).unwrap();
    // SAFETY: live, freed once.
    unsafe { tandem_state_free(state) };
    refused(store(&root, "once", 1, &tensors), ALREADY_EXISTS, "never changes");
    refused(load(&root, "once", 2), NOT_FOUND, "version(s) 1");
    refused(load(&root, "never", 0), NOT_FOUND, "no version");

    // Null and empty arguments.
    let mut state = null_mut();
    // SAFETY: deliberately null and empty arguments; `state` writable.
    unsafe {
        let (code, _) = take(tandem_state_load(null(), 0, b"once".as_ptr(), 4, 1, &mut state, null_mut())).unwrap();
        assert_eq!(code, INVALID_ARGUMENT);
        let (code, _) = take(tandem_state_load(null(), 5, b"once".as_ptr(), 4, 1, &mut state, null_mut())).unwrap();
        assert_eq!(code, INVALID_ARGUMENT);
        let r = root.bytes();
        let (code, _) =
            take(tandem_state_load(r.as_ptr(), r.len(), b"once".as_ptr(), 4, 1, null_mut(), null_mut())).unwrap();
        assert_eq!(code, INVALID_ARGUMENT);
        let (code, _) = take(tandem_repository_list(r.as_ptr(), r.len(), null_mut())).unwrap();
        assert_eq!(code, INVALID_ARGUMENT);
        let mut count = 0;
        let (code, _) = take(tandem_stored_tensors(null(), null_mut(), 0, &mut count)).unwrap();
        assert_eq!(code, INVALID_ARGUMENT);
        let bad_utf8 = [0xffu8, 0xfe];
        let (code, message) =
            take(tandem_state_load(r.as_ptr(), r.len(), bad_utf8.as_ptr(), 2, 1, &mut state, null_mut())).unwrap();
        assert_eq!(code, INVALID_ARGUMENT, "{message}");
        assert!(state.is_null());
    }
}

/// Flips one byte of a stored file (it is read-only once published).
fn corrupt(path: &Path, at: impl Fn(usize) -> usize) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_or_foreign_files_are_refused_and_never_mapped_as_valid() {
    let root = Root::new("damaged");
    let collection = Collection::new();
    for version in 1..=3 {
        let (state, _) = store(&root, "docs", version, &collection.tensors()).unwrap();
        // SAFETY: live, freed once.
        unsafe { tandem_state_free(state) };
    }
    // A flipped data byte: the checksum catches it.
    corrupt(&file(&root, "docs", 1), |len| len - 100);
    let (code, message) = load(&root, "docs", 1).err().unwrap();
    assert_eq!(code, DATA_LOSS, "{message}");
    assert!(message.contains("checksum"), "{message}");
    // Truncated.
    let path = file(&root, "docs", 2);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (code, message) = load(&root, "docs", 2).err().unwrap();
    assert_eq!(code, DATA_LOSS, "{message}");
    // The stored views refuse the same files.
    let mut stored = null_mut();
    let r = root.bytes();
    // SAFETY: valid pointers; `stored` writable.
    let (code, _) =
        take(unsafe { tandem_stored_open(r.as_ptr(), r.len(), b"docs".as_ptr(), 4, 1, &mut stored, null_mut()) })
            .unwrap();
    assert_eq!(code, DATA_LOSS);
    assert!(stored.is_null());
    // A listing still names them (the header of the first is intact; the
    // second's too), and the intact version still loads.
    assert_eq!(list(&root).states.len(), 3);
    let (state, _) = load(&root, "docs", 3).unwrap();
    // SAFETY: live, freed once.
    unsafe { tandem_state_free(state) };
    // A header that does not decode is listed by name and version only.
    corrupt(&file(&root, "docs", 3), |_| 0);
    let listed = list(&root).states;
    assert_eq!((listed[2].version, listed[2].kind.as_str()), (3, ""));
    let (code, _) = load(&root, "docs", 3).err().unwrap();
    assert_eq!(code, DATA_LOSS);
}

#[test]
fn a_state_of_a_kind_this_library_lacks_is_refused_at_load() {
    let root = Root::new("foreign");
    let collection = Collection::new();
    let (state, manifest) = store(&root, "docs", 1, &collection.tensors()).unwrap();
    // SAFETY: live, freed once.
    unsafe { tandem_state_free(state) };
    // Rewrite the file as another kind's, with a valid checksum: only the
    // kind check can refuse it.
    let mut manifest = StateManifest::decode(&manifest[..]).unwrap();
    manifest.kind = "some_other_kind".into();
    let path = file(&root, "docs", 1);
    let bytes = std::fs::read(&path).unwrap();
    let old_len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let encoded = manifest.encode_to_vec();
    assert!(16 + encoded.len() <= manifest.data_offset as usize);
    let mut rewritten = bytes[..8].to_vec();
    rewritten.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
    rewritten.extend_from_slice(&encoded);
    rewritten.resize(16 + old_len.max(encoded.len()), 0);
    rewritten.resize(manifest.data_offset as usize, 0);
    rewritten.extend_from_slice(&bytes[manifest.data_offset as usize..bytes.len() - 40]);
    let hash = blake3_of(&rewritten);
    rewritten.extend_from_slice(&hash);
    rewritten.extend_from_slice(b"TNDMEND1");
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, rewritten).unwrap();
    let (code, message) = load(&root, "docs", 1).err().unwrap();
    assert_eq!(code, FAILED_PRECONDITION, "{message}");
    assert!(message.contains("some_other_kind"), "{message}");
}

/// BLAKE3 through the library's own streaming kernel, so the test needs no
/// hashing crate of its own.
fn blake3_of(bytes: &[u8]) -> [u8; 32] {
    let kernel = find("hash.blake3");
    let mut stream = 0u64;
    let mut out = [0u8; 32];
    // SAFETY: a live kernel, valid buffers; the stream is freed once.
    unsafe {
        ok(tandem_stream_open(kernel, &mut stream));
        ok(tandem_stream_update(stream, bytes.as_ptr(), bytes.len()));
        ok(tandem_stream_finalize(stream, out.as_mut_ptr(), 32));
        ok(tandem_stream_free(stream));
    }
    out
}
