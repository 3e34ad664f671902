//! The durable state repository: states written once, atomically, to a
//! directory that may be a shared volume, and loaded by name and version
//! memory-mapped after their checksum is verified (docs/architecture.md,
//! "The state repository").
//!
//! Layout under the root:
//!
//! ```text
//! <root>/<name>/<version>.tstate        one state, immutable once visible
//! <root>/<name>/.incoming-<unique>      a write in progress, never read
//! ```
//!
//! A `.tstate` file, all integers little-endian:
//!
//! ```text
//! 0        8   magic "TNDMST01"
//! 8        8   manifest length M
//! 16       M   manifest: tandem.v1.StateManifest (proto/tandem/v1/repository.proto)
//! ...          zero padding up to the data section
//! D            data section (D a multiple of 4096): each tensor at its manifest
//!              offset from D, 64-byte aligned, zero padding between
//! end − 40 32  BLAKE3 of every byte before it
//! end − 8  8   magic "TNDMEND1"
//! ```
//!
//! A write goes to an `.incoming-` file, is flushed to disk (`fsync`), made
//! read-only and published with a hard link to its final name, which fails
//! if that name exists: of two writers of one (name, version), on one host
//! or on two sharing the volume, exactly one succeeds and the other gets
//! ALREADY_EXISTS. A reader never sees a partial file: until the link, the
//! state has no name; after it, the file is complete.

use crate::descriptor::pb::{StateManifest, StoredTensor};
use crate::descriptor::StateKindDescriptor;
use crate::error::{Code, KernelError};
use crate::tensor::{DType, TensorRef};
use prost::Message;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The format this code writes and reads.
pub const FORMAT: u32 = 1;
/// Longest state name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Largest manifest a file may declare.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Most tensors one stored state may hold.
pub const MAX_TENSORS: usize = 64;
/// Alignment of every tensor in the data section.
pub const TENSOR_ALIGN: u64 = 64;

const MAGIC: &[u8; 8] = b"TNDMST01";
const END_MAGIC: &[u8; 8] = b"TNDMEND1";
const HEADER: u64 = 16;
const TRAILER: u64 = 40;
const PAGE: u64 = 4096;
const SUFFIX: &str = ".tstate";
const INCOMING: &str = ".incoming-";
/// From this size the checksum is computed on every thread of the compute pool.
const PARALLEL_HASH_BYTES: usize = 1 << 20;

/// A repository rooted at a directory.
#[derive(Clone, Debug)]
pub struct Repository {
    root: PathBuf,
}

/// One (name, version) the repository holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StateId {
    pub name: String,
    pub version: u64,
}

/// A verified state file, mapped read-only: its manifest and its tensors.
/// The mapping lives as long as the last `Arc` to it, including states that
/// keep views into it ([`StoredState::share`]); removing the file from the
/// repository does not unmap it.
pub struct StoredState {
    manifest: StateManifest,
    shapes: Vec<Vec<usize>>,
    map: memmap2::Mmap,
}

/// Bytes of a stored state that a state keeps without copying them.
#[derive(Clone)]
pub struct SharedBytes {
    stored: Arc<StoredState>,
    start: usize,
    len: usize,
}

impl SharedBytes {
    pub fn as_bytes(&self) -> &[u8] {
        &self.stored.map[self.start..self.start + self.len]
    }

    /// The bytes as f32 values (the data section and every tensor in it are
    /// 64-byte aligned, so a whole f32 tensor always casts).
    pub fn f32s(&self) -> Result<&[f32], KernelError> {
        TensorRef { dtype: DType::F32, shape: &[], bytes: self.as_bytes() }.f32s("shared")
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytes").field("state", &self.stored.manifest.name).field("len", &self.len).finish()
    }
}

fn data_loss(id: &StateId, what: impl std::fmt::Display) -> KernelError {
    KernelError::new(
        Code::DataLoss,
        format!(
            "state '{}' version {} in the repository is unreadable: {what}; it was not loaded",
            id.name, id.version
        ),
    )
}

fn io_error(action: &str, id: &StateId, error: &io::Error) -> KernelError {
    let code = match error.kind() {
        io::ErrorKind::PermissionDenied => Code::PermissionDenied,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Code::ResourceExhausted,
        _ => Code::Unavailable,
    };
    // std's I/O errors carry no path, and messages must not either.
    KernelError::new(
        code,
        format!("cannot {action} state '{}' version {} in the repository: {error}", id.name, id.version),
    )
}

/// Checks a state name: 1 to [`MAX_NAME_BYTES`] bytes of ASCII letters,
/// digits, `_`, `-` and `.`, not starting with `.` (names are directories).
pub fn check_name(name: &str) -> Result<(), KernelError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(KernelError::invalid(format!("state name has {} bytes; use 1 to {MAX_NAME_BYTES}", name.len())));
    }
    if name.starts_with('.') || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(KernelError::invalid(format!(
            "state name '{}' is not allowed; use letters, digits, '_', '-' and '.', not starting with '.'",
            name.escape_debug()
        )));
    }
    Ok(())
}

fn check_version(version: u64) -> Result<(), KernelError> {
    if version == 0 {
        return Err(KernelError::invalid("state version 0 is not allowed; versions start at 1"));
    }
    Ok(())
}

fn align_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// BLAKE3 hash of a state kind's descriptor (its canonical encoding), as
/// stored in a manifest.
pub fn kind_hash(kind: &StateKindDescriptor) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"tandem.state-kind.v1");
    hasher.update(&kind.encode_to_vec());
    *hasher.finalize().as_bytes()
}

fn checksum(bytes: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    if bytes.len() >= PARALLEL_HASH_BYTES {
        crate::pool::pool().install(|| hasher.update_rayon(bytes));
    } else {
        hasher.update(bytes);
    }
    hasher.finalize()
}

fn short_hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A name for an `.incoming-` file no other writer on any host uses.
fn incoming_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let host = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let mut hasher = blake3::Hasher::new();
    hasher.update(host.trim().as_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    format!("{INCOMING}{}", short_hex(hasher.finalize().as_bytes()))
}

impl Repository {
    /// A repository at `root`, created (with its parents) if it does not exist.
    pub fn open(root: impl Into<PathBuf>) -> Result<Repository, KernelError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| {
            KernelError::new(
                if e.kind() == io::ErrorKind::PermissionDenied { Code::PermissionDenied } else { Code::Unavailable },
                format!("cannot open the state repository: {e}"),
            )
        })?;
        Ok(Repository { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, id: &StateId) -> PathBuf {
        self.root.join(&id.name).join(format!("{}{SUFFIX}", id.version))
    }

    /// Writes a state of `kind` from its tensors (in the kind's order, `None`
    /// for an omitted optional one; the caller has checked them against the
    /// kind). ALREADY_EXISTS if the (name, version) is taken, however close
    /// the race; nothing is visible until the whole file is on disk.
    pub fn put(
        &self,
        kind: &StateKindDescriptor,
        id: &StateId,
        tensors: &[Option<TensorRef<'_>>],
    ) -> Result<StateManifest, KernelError> {
        check_name(&id.name)?;
        check_version(id.version)?;
        if tensors.len() != kind.tensors.len() || tensors.len() > MAX_TENSORS {
            return Err(KernelError::invalid(format!(
                "state kind '{}' takes {} tensor(s), got {}",
                kind.name,
                kind.tensors.len(),
                tensors.len()
            )));
        }
        let dir = self.root.join(&id.name);
        let target = self.file(id);
        if target.exists() {
            return Err(already_exists(id));
        }
        fs::create_dir_all(&dir).map_err(|e| io_error("write", id, &e))?;

        let mut stored = Vec::new();
        let mut offset = 0u64;
        for (spec, tensor) in kind.tensors.iter().zip(tensors) {
            let Some(t) = tensor else { continue };
            offset = align_up(offset, TENSOR_ALIGN);
            stored.push(StoredTensor {
                name: spec.name.clone(),
                dtype: t.dtype as i32,
                shape: t.shape.iter().map(|&d| d as u64).collect(),
                offset,
                length: t.bytes.len() as u64,
            });
            offset += t.bytes.len() as u64;
        }
        let mut manifest = StateManifest {
            format: FORMAT,
            name: id.name.clone(),
            version: id.version,
            kind: kind.name.clone(),
            kind_hash: kind_hash(kind).to_vec(),
            tensors: stored,
            data_offset: 0,
            data_length: offset,
            created_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        };
        // The data offset is part of the manifest, whose length depends on
        // it: page-align with room for the field at its widest (a tag byte
        // and a 10-byte varint).
        manifest.data_offset = align_up(HEADER + manifest.encoded_len() as u64 + 11, PAGE);
        let encoded = manifest.encode_to_vec();

        let incoming = dir.join(incoming_name());
        let written = write_file(&incoming, &encoded, &manifest, tensors);
        if let Err(e) = written {
            let _ = fs::remove_file(&incoming);
            return Err(io_error("write", id, &e));
        }
        let linked = fs::hard_link(&incoming, &target);
        let _ = fs::remove_file(&incoming);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(already_exists(id)),
            Err(e) => return Err(io_error("publish", id, &e)),
        }
        // The new name is durable once its directory is.
        File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| io_error("publish", id, &e))?;
        Ok(manifest)
    }

    /// Maps a state and verifies it: its magics, manifest, bounds and
    /// checksum. NOT_FOUND names the versions the repository has; a file
    /// that is truncated, corrupted or not a state is DATA_LOSS.
    pub fn load(&self, id: &StateId) -> Result<Arc<StoredState>, KernelError> {
        let file = self.open_file(id)?;
        let len = file.metadata().map_err(|e| io_error("read", id, &e))?.len();
        if len < HEADER + TRAILER {
            return Err(data_loss(id, format!("the file has {len} bytes, fewer than a state's header and trailer")));
        }
        // SAFETY: the mapping is read-only and private to this process's
        // view; repository files are written once under another name,
        // published read-only (0444) by a hard link and never modified in
        // place, and removing one leaves its pages valid for existing
        // mappings. A process outside Tandem truncating a published file
        // would break that (the deployment rule in docs/operations.md: the
        // repository volume is written by Tandem only).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_error("map", id, &e))?;
        let stored = verify(id, map)?;
        Ok(Arc::new(stored))
    }

    /// The manifest of state `id`, read from its file's header alone: the
    /// checksum is not verified (a [`load`](Repository::load) verifies).
    /// NOT_FOUND if it is not there, DATA_LOSS if the header is unreadable.
    pub fn manifest(&self, id: &StateId) -> Result<StateManifest, KernelError> {
        use std::io::Read;
        let mut file = self.open_file(id)?;
        let len = file.metadata().map_err(|e| io_error("read", id, &e))?.len();
        if len < HEADER + TRAILER {
            return Err(data_loss(id, format!("the file has {len} bytes, fewer than a state's header and trailer")));
        }
        let mut header = [0u8; HEADER as usize];
        file.read_exact(&mut header).map_err(|e| io_error("read", id, &e))?;
        let manifest_len = manifest_length(id, &header, len)?;
        let mut bytes = vec![0u8; manifest_len as usize];
        file.read_exact(&mut bytes).map_err(|e| io_error("read", id, &e))?;
        decode_manifest(id, &bytes)
    }

    /// Opens state `id`'s file; NOT_FOUND names the versions the repository has.
    fn open_file(&self, id: &StateId) -> Result<File, KernelError> {
        check_name(&id.name)?;
        check_version(id.version)?;
        match File::open(self.file(id)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let versions = self.versions(&id.name)?;
                let held = if versions.is_empty() {
                    "it has no version of that state".to_owned()
                } else {
                    format!("it has version(s) {}", versions.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
                };
                Err(KernelError::not_found(format!(
                    "state '{}' version {} is not in the repository; {held}",
                    id.name, id.version
                )))
            }
            Err(e) => Err(io_error("read", id, &e)),
        }
    }

    /// The newest version of `name`, NOT_FOUND when there is none.
    pub fn latest(&self, name: &str) -> Result<StateId, KernelError> {
        match self.versions(name)?.last() {
            Some(&version) => Ok(StateId { name: name.to_owned(), version }),
            None => Err(KernelError::not_found(format!(
                "state '{}' is not in the repository; it has no version of it",
                name.escape_debug()
            ))),
        }
    }

    /// Versions of `name` the repository holds, ascending.
    pub fn versions(&self, name: &str) -> Result<Vec<u64>, KernelError> {
        check_name(name)?;
        let entries = match fs::read_dir(self.root.join(name)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list", &StateId { name: name.to_owned(), version: 0 }, &e)),
        };
        let mut versions: Vec<u64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(SUFFIX)?.parse().ok())
            .filter(|&v| v > 0)
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Every (name, version) the repository holds, in order; directories and
    /// files that are not states are skipped.
    pub fn list(&self) -> Result<Vec<StateId>, KernelError> {
        let entries = fs::read_dir(&self.root)
            .map_err(|e| KernelError::new(Code::Unavailable, format!("cannot list the state repository: {e}")))?;
        let mut ids = Vec::new();
        for entry in entries.filter_map(|e| e.ok()) {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if check_name(&name).is_err() || !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            for version in self.versions(&name)? {
                ids.push(StateId { name: name.clone(), version });
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes a state; mappings that exist keep their pages. NOT_FOUND if
    /// it is not there.
    pub fn remove(&self, id: &StateId) -> Result<(), KernelError> {
        check_name(&id.name)?;
        check_version(id.version)?;
        match fs::remove_file(self.file(id)) {
            Ok(()) => {
                let dir = self.root.join(&id.name);
                let _ = File::open(&dir).and_then(|d| d.sync_all());
                // The name's directory goes with its last version (fails,
                // harmlessly, while another version or a write is in it).
                let _ = fs::remove_dir(&dir);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(KernelError::not_found(format!(
                "state '{}' version {} is not in the repository",
                id.name, id.version
            ))),
            Err(e) => Err(io_error("remove", id, &e)),
        }
    }

    /// Deletes `.incoming-` files older than `age`: writes a crashed or
    /// partitioned writer left behind. Returns how many it removed.
    pub fn sweep_incoming(&self, age: std::time::Duration) -> usize {
        let Ok(names) = fs::read_dir(&self.root) else { return 0 };
        let mut removed = 0;
        for dir in names.filter_map(|e| e.ok()) {
            let Ok(files) = fs::read_dir(dir.path()) else { continue };
            for file in files.filter_map(|e| e.ok()) {
                let stale = file.file_name().to_str().is_some_and(|n| n.starts_with(INCOMING))
                    && file
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|e| e >= age);
                if stale && fs::remove_file(file.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

fn already_exists(id: &StateId) -> KernelError {
    KernelError::new(
        Code::AlreadyExists,
        format!(
            "state '{}' version {} already exists in the repository; a stored version never changes, write a new one",
            id.name, id.version
        ),
    )
}

/// Writes the whole file, hashing what it writes, then flushes it to disk
/// and makes it read-only.
fn write_file(
    path: &Path,
    manifest_bytes: &[u8],
    manifest: &StateManifest,
    tensors: &[Option<TensorRef<'_>>],
) -> io::Result<()> {
    struct Hashing {
        out: io::BufWriter<File>,
        hasher: blake3::Hasher,
        at: u64,
    }
    impl Hashing {
        fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.hasher.update(bytes);
            self.at += bytes.len() as u64;
            self.out.write_all(bytes)
        }
        fn pad_to(&mut self, at: u64) -> io::Result<()> {
            const ZEROS: [u8; 4096] = [0; 4096];
            while self.at < at {
                let n = ((at - self.at) as usize).min(ZEROS.len());
                self.put(&ZEROS[..n])?;
            }
            Ok(())
        }
    }
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    let mut w = Hashing { out: io::BufWriter::with_capacity(1 << 20, file), hasher: blake3::Hasher::new(), at: 0 };
    w.put(MAGIC)?;
    w.put(&(manifest_bytes.len() as u64).to_le_bytes())?;
    w.put(manifest_bytes)?;
    let mut stored = manifest.tensors.iter();
    for tensor in tensors.iter().flatten() {
        let entry = stored.next().expect("one manifest entry per present tensor");
        w.pad_to(manifest.data_offset + entry.offset)?;
        w.put(tensor.bytes)?;
    }
    w.pad_to(manifest.data_offset + manifest.data_length)?;
    let hash = w.hasher.finalize();
    w.out.write_all(hash.as_bytes())?;
    w.out.write_all(END_MAGIC)?;
    let file = w.out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    file.set_permissions(fs::Permissions::from_mode(0o444))?;
    Ok(())
}

/// The manifest length a file's header declares, checked against the file's length.
fn manifest_length(id: &StateId, header: &[u8], file_len: u64) -> Result<u64, KernelError> {
    if &header[..8] != MAGIC {
        return Err(data_loss(id, "it does not start with a state file's magic number"));
    }
    let manifest_len = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if manifest_len > MAX_MANIFEST_BYTES || HEADER + manifest_len + TRAILER > file_len {
        return Err(data_loss(id, format!("its manifest length {manifest_len} does not fit the file")));
    }
    Ok(manifest_len)
}

/// Decodes a manifest and checks that it is this format's and names `id`.
fn decode_manifest(id: &StateId, bytes: &[u8]) -> Result<StateManifest, KernelError> {
    let manifest = StateManifest::decode(bytes).map_err(|_| data_loss(id, "its manifest does not decode"))?;
    if manifest.format != FORMAT {
        return Err(data_loss(id, format!("it is in format {}, this build reads format {FORMAT}", manifest.format)));
    }
    if manifest.name != id.name || manifest.version != id.version {
        return Err(data_loss(
            id,
            format!("its manifest names state '{}' version {}", manifest.name.escape_debug(), manifest.version),
        ));
    }
    Ok(manifest)
}

/// Checks a mapped file from its ends inwards; only a file that passes every
/// check, its checksum last, becomes a [`StoredState`].
fn verify(id: &StateId, map: memmap2::Mmap) -> Result<StoredState, KernelError> {
    let len = map.len() as u64;
    let manifest_len = manifest_length(id, &map[..HEADER as usize], len)?;
    if &map[map.len() - 8..] != END_MAGIC {
        return Err(data_loss(id, "it does not end with a state file's trailer (truncated?)"));
    }
    let body = &map[..(len - TRAILER) as usize];
    let stored_hash = &map[(len - TRAILER) as usize..(len - 8) as usize];
    let computed = checksum(body);
    if computed.as_bytes() != stored_hash {
        return Err(data_loss(
            id,
            format!(
                "its checksum does not match (stored {}…, computed {}…)",
                short_hex(stored_hash),
                short_hex(computed.as_bytes())
            ),
        ));
    }
    let manifest = decode_manifest(id, &map[HEADER as usize..(HEADER + manifest_len) as usize])?;
    let data_end = manifest.data_offset.checked_add(manifest.data_length);
    if manifest.data_offset % PAGE != 0
        || manifest.data_offset < HEADER + manifest_len
        || data_end != Some(len - TRAILER)
    {
        return Err(data_loss(id, "its data section does not match the file's length"));
    }
    if manifest.tensors.len() > MAX_TENSORS {
        return Err(data_loss(id, format!("it declares {} tensors, more than {MAX_TENSORS}", manifest.tensors.len())));
    }
    let mut shapes = Vec::with_capacity(manifest.tensors.len());
    for t in &manifest.tensors {
        let dtype = DType::from_raw(t.dtype as u32)
            .ok_or_else(|| data_loss(id, format!("tensor '{}' has dtype {}", t.name, t.dtype)))?;
        let elements = t.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let bytes = elements.and_then(|n| n.checked_mul(dtype.size() as u64));
        let end = t.offset.checked_add(t.length);
        if bytes != Some(t.length) || t.offset % TENSOR_ALIGN != 0 || end.is_none_or(|e| e > manifest.data_length) {
            return Err(data_loss(id, format!("tensor '{}' does not lie within the data section as declared", t.name)));
        }
        let shape: Option<Vec<usize>> = t.shape.iter().map(|&d| usize::try_from(d).ok()).collect();
        shapes.push(shape.ok_or_else(|| data_loss(id, format!("tensor '{}' is too large for this machine", t.name)))?);
    }
    Ok(StoredState { manifest, shapes, map })
}

impl StoredState {
    pub fn manifest(&self) -> &StateManifest {
        &self.manifest
    }

    pub fn id(&self) -> StateId {
        StateId { name: self.manifest.name.clone(), version: self.manifest.version }
    }

    /// Bytes of the file (what the mapping spans).
    pub fn file_bytes(&self) -> usize {
        self.map.len()
    }

    /// The stored tensor named `name`, borrowed from the mapping.
    pub fn tensor(&self, name: &str) -> Option<TensorRef<'_>> {
        let index = self.manifest.tensors.iter().position(|t| t.name == name)?;
        let t = &self.manifest.tensors[index];
        let start = (self.manifest.data_offset + t.offset) as usize;
        Some(TensorRef {
            dtype: DType::from_raw(t.dtype as u32).expect("checked by verify"),
            shape: &self.shapes[index],
            bytes: &self.map[start..start + t.length as usize],
        })
    }

    /// The tensors in `kind`'s order, `None` where one is absent.
    pub fn tensors_for(&self, kind: &StateKindDescriptor) -> Vec<Option<TensorRef<'_>>> {
        kind.tensors.iter().map(|spec| self.tensor(&spec.name)).collect()
    }

    /// `bytes` as a view that keeps this mapping alive, when they lie inside
    /// it (a tensor from [`StoredState::tensor`]); `None` otherwise.
    pub fn share(self: &Arc<Self>, bytes: &[u8]) -> Option<SharedBytes> {
        let base = self.map.as_ptr() as usize;
        let start = (bytes.as_ptr() as usize).checked_sub(base)?;
        if start.checked_add(bytes.len())? > self.map.len() {
            return None;
        }
        Some(SharedBytes { stored: Arc::clone(self), start, len: bytes.len() })
    }
}

impl std::fmt::Debug for StoredState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredState")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("kind", &self.manifest.kind)
            .field("bytes", &self.map.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{TensorSpec, D};
    use crate::library::Library;
    use crate::state::StateKind;

    /// Rows f32[n, dim] and optional ids i64[n]; `load` keeps the mapped rows.
    struct Rows;

    enum Held {
        Copied(Vec<f32>),
        Mapped(SharedBytes),
    }

    impl Held {
        fn values(&self) -> &[f32] {
            match self {
                Held::Copied(v) => v,
                Held::Mapped(s) => s.f32s().unwrap(),
            }
        }
    }

    impl StateKind for Rows {
        type State = Held;

        fn descriptor(&self) -> StateKindDescriptor {
            StateKindDescriptor::new(
                "rows",
                vec![
                    TensorSpec::new("values", DType::F32, [D::sym("n"), D::sym("dim")]).finite_only(),
                    TensorSpec::new("ids", DType::I64, [D::sym("n")]),
                ],
                &["ids"],
            )
        }

        fn create(&self, tensors: &[Option<TensorRef<'_>>]) -> Result<Held, KernelError> {
            Ok(Held::Copied(tensors[0].unwrap().f32s("values")?.to_vec()))
        }

        fn load(&self, tensors: &[Option<TensorRef<'_>>], stored: &Arc<StoredState>) -> Result<Held, KernelError> {
            Ok(Held::Mapped(stored.share(tensors[0].unwrap().bytes).expect("inside the mapping")))
        }

        fn size_bytes(&self, state: &Held) -> usize {
            state.values().len() * 4
        }
    }

    /// The same kind name with another descriptor (no ids).
    struct OtherRows;

    impl StateKind for OtherRows {
        type State = Vec<f32>;

        fn descriptor(&self) -> StateKindDescriptor {
            StateKindDescriptor::new(
                "rows",
                vec![TensorSpec::new("values", DType::F32, [D::sym("n"), D::sym("dim")])],
                &[],
            )
        }

        fn create(&self, tensors: &[Option<TensorRef<'_>>]) -> Result<Vec<f32>, KernelError> {
            Ok(tensors[0].unwrap().f32s("values")?.to_vec())
        }

        fn size_bytes(&self, state: &Vec<f32>) -> usize {
            state.len() * 4
        }
    }

    fn library() -> Library {
        let mut builder = crate::library::LibraryBuilder::new("test", "0.1.0");
        builder.state_kind(Rows);
        builder.build().unwrap()
    }

    fn id(name: &str, version: u64) -> StateId {
        StateId { name: name.to_owned(), version }
    }

    fn values(n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim).map(|i| i as f32 * 0.5 - 3.0).collect()
    }

    fn store(repo: &Repository, library: &Library, state: &StateId, data: &[f32], dim: usize) -> StateManifest {
        let shape = [data.len() / dim, dim];
        let tensors = [Some(TensorRef::of(&shape, data)), None];
        library.store_state(repo, "rows", state, &tensors).unwrap().1
    }

    fn file_of(repo: &Repository, state: &StateId) -> PathBuf {
        repo.root().join(&state.name).join(format!("{}.tstate", state.version))
    }

    fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = fs::read(path).unwrap();
        change(&mut bytes);
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_stored_state_loads_mapped_with_the_same_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path().join("repo")).unwrap();
        let library = library();
        let data = values(1000, 24);
        let ids: Vec<i64> = (0..1000).map(|i| 5000 - i).collect();
        let tensors = [Some(TensorRef::of(&[1000, 24], &data)), Some(TensorRef::of(&[1000], &ids))];
        let (created, manifest) = library.store_state(&repo, "rows", &id("docs", 1), &tensors).unwrap();
        assert_eq!(created.get::<Held>().unwrap().values(), &data[..]);
        assert_eq!((manifest.name.as_str(), manifest.version, manifest.kind.as_str()), ("docs", 1, "rows"));
        assert_eq!(manifest.data_offset % PAGE, 0);

        let loaded = library.load_state(&repo, &id("docs", 1)).unwrap();
        let held = loaded.get::<Held>().unwrap();
        assert!(matches!(held, Held::Mapped(_)), "load keeps the file's pages");
        assert_eq!(held.values(), &data[..]);
        let stored = repo.load(&id("docs", 1)).unwrap();
        let stored_ids = stored.tensor("ids").unwrap();
        assert_eq!((stored_ids.dtype, stored_ids.shape), (DType::I64, &[1000usize][..]));
        assert_eq!(stored_ids.i64s("ids").unwrap(), &ids[..]);
        for t in &stored.manifest().tensors {
            assert_eq!(t.offset % TENSOR_ALIGN, 0, "tensor '{}' is aligned", t.name);
        }
        // Published read-only; nothing else is left in the directory.
        let mode = fs::metadata(file_of(&repo, &id("docs", 1))).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o444);
        let names: Vec<_> = fs::read_dir(repo.root().join("docs")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["1.tstate"]);
    }

    #[test]
    fn an_omitted_optional_tensor_stays_omitted() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let library = library();
        let manifest = store(&repo, &library, &id("plain", 3), &values(10, 4), 4);
        assert_eq!(manifest.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["values"]);
        let stored = repo.load(&id("plain", 3)).unwrap();
        assert!(stored.tensor("ids").is_none());
        library.load_state(&repo, &id("plain", 3)).unwrap();
    }

    #[test]
    fn a_version_is_written_once_even_when_writers_race() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let library = library();
        let data = values(4096, 16);
        let outcomes: Vec<Result<(), Code>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        let tensors = [Some(TensorRef::of(&[4096, 16], &data)), None];
                        library.store_state(&repo, "rows", &id("race", 1), &tensors).map(|_| ()).map_err(|e| e.code)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(Code::AlreadyExists))), "{outcomes:?}");
        let again =
            library.store_state(&repo, "rows", &id("race", 1), &[Some(TensorRef::of(&[1, 16], &data[..16])), None]);
        let error = again.err().unwrap();
        assert_eq!(error.code, Code::AlreadyExists);
        assert!(error.message.contains("state 'race' version 1 already exists"), "{}", error.message);
        assert_eq!(repo.versions("race").unwrap(), [1]);
        // No writer's temporary file is left behind.
        assert_eq!(fs::read_dir(repo.root().join("race")).unwrap().count(), 1);
        assert_eq!(library.load_state(&repo, &id("race", 1)).unwrap().get::<Held>().unwrap().values(), &data[..]);
    }

    #[test]
    fn a_damaged_file_is_refused_with_data_loss_and_never_mapped_as_valid() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let library = library();
        let state = id("damaged", 1);
        store(&repo, &library, &state, &values(2000, 8), 8);
        let path = file_of(&repo, &state);
        let pristine = fs::read(&path).unwrap();
        let len = pristine.len();
        type Damage<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
        let cases: [(&str, Damage<'_>, &str); 6] = [
            ("a flipped data bit", Box::new(|b: &mut Vec<u8>| b[len / 2] ^= 0x10), "checksum does not match"),
            ("a flipped manifest bit", Box::new(|b: &mut Vec<u8>| b[20] ^= 1), "checksum does not match"),
            ("truncated", Box::new(|b: &mut Vec<u8>| b.truncate(len - 100)), "trailer (truncated?)"),
            ("cut to a few bytes", Box::new(|b: &mut Vec<u8>| b.truncate(30)), "fewer than a state's header"),
            ("not a state file", Box::new(|b: &mut Vec<u8>| b[..8].copy_from_slice(b"PK\x03\x04zip!")), "magic number"),
            ("a wrong checksum", Box::new(|b: &mut Vec<u8>| b[len - 40] ^= 0xff), "checksum does not match"),
        ];
        for (what, change, expected) in cases {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            fs::write(&path, &pristine).unwrap();
            rewrite(&path, change);
            let error = repo.load(&state).err().unwrap_or_else(|| panic!("{what}: loaded"));
            assert_eq!(error.code, Code::DataLoss, "{what}: {}", error.message);
            assert!(error.message.contains(expected), "{what}: {}", error.message);
            assert!(error.message.contains("state 'damaged' version 1"), "{what}: {}", error.message);
            assert!(!error.message.contains(dir.path().to_str().unwrap()), "no paths in messages");
            assert_eq!(library.load_state(&repo, &state).err().unwrap().code, Code::DataLoss);
        }
    }

    #[test]
    fn a_file_under_another_states_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        store(&repo, &library(), &id("a", 1), &values(4, 4), 4);
        fs::create_dir_all(repo.root().join("b")).unwrap();
        fs::copy(file_of(&repo, &id("a", 1)), file_of(&repo, &id("b", 2))).unwrap();
        let error = repo.load(&id("b", 2)).err().unwrap();
        assert_eq!(error.code, Code::DataLoss);
        assert!(error.message.contains("its manifest names state 'a' version 1"), "{}", error.message);
    }

    #[test]
    fn unknown_states_name_the_versions_there_are() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let library = library();
        for version in [1, 2, 7] {
            store(&repo, &library, &id("docs", version), &values(4, 4), 4);
        }
        let error = repo.load(&id("docs", 3)).err().unwrap();
        assert_eq!(error.code, Code::NotFound);
        assert!(
            error.message.contains("state 'docs' version 3 is not in the repository; it has version(s) 1, 2, 7"),
            "{}",
            error.message
        );
        let error = repo.load(&id("nothing", 1)).err().unwrap();
        assert_eq!(error.code, Code::NotFound);
        assert!(error.message.contains("it has no version of that state"), "{}", error.message);
        assert_eq!(repo.list().unwrap(), [id("docs", 1), id("docs", 2), id("docs", 7)]);
    }

    #[test]
    fn bad_names_and_versions_are_refused_before_touching_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let library = library();
        let data = values(1, 4);
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for name in ["", ".hidden", "a/b", "..", "a b", "é", long.as_str(), "tab\there"] {
            let tensors = [Some(TensorRef::of(&[1, 4], &data)), None];
            let error = library.store_state(&repo, "rows", &id(name, 1), &tensors).err().unwrap();
            assert_eq!(error.code, Code::InvalidArgument, "{name:?}: {}", error.message);
            assert_eq!(repo.load(&id(name, 1)).err().unwrap().code, Code::InvalidArgument, "{name:?}");
        }
        let tensors = [Some(TensorRef::of(&[1, 4], &data)), None];
        let error = library.store_state(&repo, "rows", &id("ok", 0), &tensors).err().unwrap();
        assert_eq!(error.code, Code::InvalidArgument);
        assert!(error.message.contains("versions start at 1"), "{}", error.message);
        assert_eq!(fs::read_dir(repo.root()).unwrap().count(), 0, "nothing was written");
    }

    #[test]
    fn a_state_the_kind_refuses_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let library = library();
        let data = [1.0f32, f32::NAN, 2.0, 3.0];
        let tensors = [Some(TensorRef::of(&[2, 2], &data)), None];
        let error = library.store_state(&repo, "rows", &id("nan", 1), &tensors).err().unwrap();
        assert_eq!(error.code, Code::InvalidArgument);
        let error = library.store_state(&repo, "nope", &id("nan", 1), &tensors).err().unwrap();
        assert_eq!(error.code, Code::NotFound);
        assert!(repo.versions("nan").unwrap().is_empty());
    }

    #[test]
    fn a_library_with_another_descriptor_of_the_kind_refuses_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        store(&repo, &library(), &id("docs", 1), &values(4, 4), 4);
        let mut builder = crate::library::LibraryBuilder::new("other", "0.2.0");
        builder.state_kind(OtherRows);
        let other = builder.build().unwrap();
        let error = other.load_state(&repo, &id("docs", 1)).err().unwrap();
        assert_eq!(error.code, Code::FailedPrecondition);
        assert!(error.message.contains("another descriptor of kind 'rows'"), "{}", error.message);
        let none = crate::library::LibraryBuilder::new("none", "0.1.0").build().unwrap();
        let error = none.load_state(&repo, &id("docs", 1)).err().unwrap();
        assert_eq!(error.code, Code::FailedPrecondition);
        assert!(error.message.contains("which library 'none' does not declare"), "{}", error.message);
    }

    #[test]
    fn a_removed_state_stays_readable_through_existing_mappings() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let library = library();
        let data = values(512, 16);
        store(&repo, &library, &id("gone", 1), &data, 16);
        let loaded = library.load_state(&repo, &id("gone", 1)).unwrap();
        repo.remove(&id("gone", 1)).unwrap();
        assert_eq!(repo.load(&id("gone", 1)).err().unwrap().code, Code::NotFound);
        assert_eq!(repo.remove(&id("gone", 1)).err().unwrap().code, Code::NotFound);
        assert_eq!(loaded.get::<Held>().unwrap().values(), &data[..]);
        assert!(!repo.root().join("gone").exists(), "the name's directory goes with its last version");
    }

    #[test]
    fn writes_in_progress_are_invisible_and_stale_ones_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        store(&repo, &library(), &id("docs", 1), &values(4, 4), 4);
        // A writer that died (or lost its volume) before publishing.
        let partial = repo.root().join("docs").join(".incoming-deadbeef");
        fs::write(&partial, b"TNDMST01 half a state").unwrap();
        fs::create_dir_all(repo.root().join("half")).unwrap();
        fs::write(repo.root().join("half").join(".incoming-cafe"), b"TNDMST01").unwrap();
        assert_eq!(repo.list().unwrap(), [id("docs", 1)]);
        assert!(repo.versions("half").unwrap().is_empty());
        assert_eq!(repo.sweep_incoming(std::time::Duration::from_secs(3600)), 0, "young writes are kept");
        assert_eq!(repo.sweep_incoming(std::time::Duration::ZERO), 2);
        assert!(!partial.exists());
        repo.load(&id("docs", 1)).unwrap();
    }
}
