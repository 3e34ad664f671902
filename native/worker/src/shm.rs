//! Shared-memory regions: files under the shared-memory directory that a
//! client created (0600, its own user) and registered by name. Each region is
//! mapped once, shared read-write; calls hold an `Arc` to the regions they
//! use, so unregistering a region during a call is safe and the mapping goes
//! away when its last user finishes.
//!
//! The client owns concurrent access to the bytes it shares: it must not
//! write an input range, or touch an output range, while a call that
//! references it is in flight. The worker only bounds-checks references and
//! refuses outputs that overlap the call's own inputs or other outputs.

use crate::grpc::{status, Code, Status};
use crate::pb::accelerator::{SharedMemoryRef, SharedMemoryRegion};
use memmap2::{MmapOptions, MmapRaw};
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const MAX_NAME_LEN: usize = 128;

pub struct Region {
    pub name: String,
    pub path: String,
    pub size: usize,
    map: MmapRaw,
}

impl Region {
    /// Bytes `[offset, offset + len)`, which the caller checked against `size`.
    ///
    /// # Safety
    /// The range is within the mapping, and no `&mut` view of an overlapping
    /// range exists in this process while the slice lives.
    pub unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        debug_assert!(offset + len <= self.size);
        if len == 0 {
            return &[];
        }
        // SAFETY: the mapping is `size` bytes long and lives as long as
        // `self`; the range is inside it and not mutably aliased per the
        // caller's contract.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset), len) }
    }

    /// Writable bytes `[offset, offset + len)`.
    ///
    /// # Safety
    /// The range is within the mapping and no other view of it exists in this
    /// process while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        debug_assert!(offset + len <= self.size);
        if len == 0 {
            return &mut [];
        }
        // SAFETY: the mapping is writable (shared, read-write) and `size`
        // bytes long; the range is inside it and exclusively ours per the
        // caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(offset), len) }
    }
}

/// A checked reference into a region.
#[derive(Clone)]
pub struct Span {
    pub region: Arc<Region>,
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn overlaps(&self, other: &Span) -> bool {
        Arc::ptr_eq(&self.region, &other.region)
            && self.len > 0
            && other.len > 0
            && self.offset < other.offset + other.len
            && other.offset < self.offset + self.len
    }

    pub fn to_ref(&self) -> SharedMemoryRef {
        SharedMemoryRef { region: self.region.name.clone(), offset: self.offset as u64, length: self.len as u64 }
    }
}

pub struct Regions {
    dir: Option<PathBuf>,
    regions: Mutex<HashMap<String, Arc<Region>>>,
}

fn poisoned() -> Status {
    status(Code::Internal, "the region table's lock was poisoned by an earlier failure")
}

fn check_name(name: &str) -> Result<(), Status> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(status(Code::InvalidArgument, format!("region name must be 1 to {MAX_NAME_LEN} bytes long")));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(status(Code::InvalidArgument, "region name may only hold letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

impl Regions {
    /// Regions must lie in `dir` (canonicalised; `None` when it is missing,
    /// which refuses every registration).
    pub fn new(dir: &Path) -> Regions {
        Regions { dir: dir.canonicalize().ok(), regions: Mutex::new(HashMap::new()) }
    }

    pub fn register(&self, name: &str, path: &str, size: u64) -> Result<(), Status> {
        check_name(name)?;
        if self.regions.lock().map_err(|_| poisoned())?.contains_key(name) {
            return Err(status(Code::AlreadyExists, format!("a region named '{name}' is already registered")));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s > 0 && *s <= isize::MAX as usize)
            .ok_or_else(|| status(Code::InvalidArgument, format!("region size must be positive, got {size}")))?;
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| status(Code::FailedPrecondition, "the worker's shared-memory directory does not exist"))?;
        let path_buf = Path::new(path);
        if !path_buf.is_absolute() {
            return Err(status(Code::InvalidArgument, "region path must be absolute"));
        }
        let canonical = path_buf
            .canonicalize()
            .map_err(|_| status(Code::NotFound, format!("region file for '{name}' does not exist")))?;
        if !canonical.starts_with(dir) || canonical == *dir {
            return Err(status(
                Code::PermissionDenied,
                "region file must lie inside the worker's shared-memory directory",
            ));
        }
        if !std::fs::metadata(&canonical).is_ok_and(|m| m.is_file()) {
            return Err(status(Code::InvalidArgument, "region path is not a regular file"));
        }
        // O_NOFOLLOW: a symlink swapped in after canonicalisation is refused.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&canonical)
            .map_err(|_| status(Code::PermissionDenied, format!("region file for '{name}' cannot be opened")))?;
        let meta = file.metadata().map_err(|_| status(Code::Internal, "cannot read the region file's metadata"))?;
        if !meta.is_file() {
            return Err(status(Code::InvalidArgument, "region path is not a regular file"));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid {
            return Err(status(Code::PermissionDenied, "region file must belong to the worker's user"));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(status(
                Code::PermissionDenied,
                format!(
                    "region file mode is {:o}; it must have no group or other permissions (0600)",
                    meta.mode() & 0o777
                ),
            ));
        }
        if meta.len() < size as u64 {
            return Err(status(
                Code::InvalidArgument,
                format!("region file is {} bytes long, shorter than the registered size {size}", meta.len()),
            ));
        }
        let map = MmapOptions::new()
            .len(size)
            .map_raw(&file)
            .map_err(|_| status(Code::ResourceExhausted, format!("cannot map {size} bytes of region '{name}'")))?;
        let region = Arc::new(Region { name: name.to_owned(), path: path.to_owned(), size, map });
        let mut regions = self.regions.lock().map_err(|_| poisoned())?;
        if regions.contains_key(name) {
            return Err(status(Code::AlreadyExists, format!("a region named '{name}' is already registered")));
        }
        regions.insert(name.to_owned(), region);
        Ok(())
    }

    pub fn unregister(&self, name: &str) -> Result<bool, Status> {
        Ok(self.regions.lock().map_err(|_| poisoned())?.remove(name).is_some())
    }

    pub fn list(&self) -> Result<Vec<SharedMemoryRegion>, Status> {
        let regions = self.regions.lock().map_err(|_| poisoned())?;
        let mut list: Vec<SharedMemoryRegion> = regions
            .values()
            .map(|r| SharedMemoryRegion { name: r.name.clone(), path: r.path.clone(), size: r.size as u64 })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// Resolves and bounds-checks a reference; `align` is the dtype's size.
    pub fn resolve(&self, r: &SharedMemoryRef, align: usize, what: &str) -> Result<Span, Status> {
        let region = self.regions.lock().map_err(|_| poisoned())?.get(&r.region).cloned().ok_or_else(|| {
            status(Code::NotFound, format!("{what} references unknown shared-memory region '{}'", r.region))
        })?;
        let end = r.offset.checked_add(r.length).ok_or_else(|| {
            status(Code::OutOfRange, format!("{what}: offset {} + length {} overflows", r.offset, r.length))
        })?;
        if end > region.size as u64 {
            return Err(status(
                Code::OutOfRange,
                format!(
                    "{what}: range [{}, {end}) lies beyond region '{}' of {} bytes",
                    r.offset, region.name, region.size
                ),
            ));
        }
        if align > 1 && !r.offset.is_multiple_of(align as u64) {
            return Err(status(
                Code::InvalidArgument,
                format!("{what}: offset {} is not aligned to the element size {align}", r.offset),
            ));
        }
        Ok(Span { region, offset: r.offset as usize, len: r.length as usize })
    }
}
