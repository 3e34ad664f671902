//! Shared-memory regions: files under the shared-memory directory that a
//! client created (0600, its own user) and registered by name. Each region is
//! mapped once, shared read-write; calls hold an `Arc` to the regions they
//! use, so unregistering a region during a call is safe and the mapping goes
//! away when its last user finishes.
//!
//! The client's process may write a region at any moment, so the worker never
//! holds a Rust reference into one: inputs are copied out and outputs copied
//! in through raw pointers (`Region::copy_out`, `Region::copy_in`), between
//! the call and memory the worker owns. A client
//! that writes a range while a call uses it gets torn values for that call,
//! never undefined behaviour in the worker. The worker bounds-checks every
//! reference, refuses outputs that overlap the call's own inputs or other
//! outputs, and refuses an output range another call in flight is writing
//! (`Region::reserve`).

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
    /// Output ranges calls in flight are writing (see [`Region::reserve`]).
    writing: Mutex<Vec<(usize, usize)>>,
}

impl Region {
    /// Copies bytes `[offset, offset + len)` out of the region to `dst`.
    ///
    /// The client's process may write the region at any time, so its bytes
    /// are never turned into a Rust reference (`&[u8]` promises that nothing
    /// changes them while it lives): they are only read through a raw
    /// pointer, copied (memcpy) into memory this process owns, which is what
    /// the kernel then reads. A concurrent write by the client can only make
    /// the copy hold a mix of old and new bytes.
    ///
    /// # Safety
    /// `dst` is valid for writes of `len` bytes and does not overlap the
    /// mapping.
    pub unsafe fn copy_out(&self, offset: usize, dst: *mut u8, len: usize) {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.size), "range checked by resolve");
        // SAFETY: the mapping is `size` bytes long, readable, and lives as
        // long as `self`; the range is inside it (asserted); `dst` is valid
        // and disjoint (caller). Only raw pointers touch the shared bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.map.as_ptr().add(offset), dst, len) }
    }

    /// Copies `src` into the region at `offset` through a raw pointer (see
    /// [`Region::copy_out`]); nothing in this process holds a reference to
    /// the shared bytes it writes.
    pub fn copy_in(&self, offset: usize, src: &[u8]) {
        assert!(offset.checked_add(src.len()).is_some_and(|end| end <= self.size), "range checked by resolve");
        // SAFETY: the mapping is shared read-write, `size` bytes long and
        // lives as long as `self`; the range is inside it (asserted); `src`
        // is our own memory, so the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.map.as_mut_ptr().add(offset), src.len()) }
    }

    /// Reserves `[offset, offset + len)` for one call's output until the
    /// guard drops; refuses a range an output of another call in flight
    /// overlaps, so two calls never write the same bytes at once.
    pub fn reserve(self: &Arc<Region>, offset: usize, len: usize, what: &str) -> Result<Reservation, Status> {
        let mut writing = self.writing.lock().map_err(|_| poisoned())?;
        if let Some(&(start, end)) =
            writing.iter().find(|&&(start, end)| len > 0 && offset < end && start < offset + len)
        {
            return Err(status(
                Code::FailedPrecondition,
                format!(
                    "{what}: range [{offset}, {}) of region '{}' overlaps [{start}, {end}), which another call in flight is writing; give concurrent calls disjoint output ranges",
                    offset + len,
                    self.name
                ),
            ));
        }
        writing.push((offset, offset + len));
        Ok(Reservation { region: Arc::clone(self), range: (offset, offset + len) })
    }
}

/// An output range of a region reserved for one call (see [`Region::reserve`]).
pub struct Reservation {
    region: Arc<Region>,
    range: (usize, usize),
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut writing) = self.region.writing.lock() {
            if let Some(i) = writing.iter().position(|r| *r == self.range) {
                writing.swap_remove(i);
            }
        }
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

/// The regions registered with one worker, at most `max` of them
/// (`--max-regions`).
pub struct Regions {
    dir: Option<PathBuf>,
    regions: Mutex<HashMap<String, Arc<Region>>>,
    max: usize,
}

/// Default of `--max-regions`.
pub const DEFAULT_MAX_REGIONS: usize = 256;

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
        Regions::with_limit(dir, DEFAULT_MAX_REGIONS)
    }

    pub fn with_limit(dir: &Path, max: usize) -> Regions {
        Regions { dir: dir.canonicalize().ok(), regions: Mutex::new(HashMap::new()), max }
    }

    fn full(&self, count: usize) -> Result<(), Status> {
        if count >= self.max {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "the worker has {count} regions registered, its limit (--max-regions {}); unregister one first",
                    self.max
                ),
            ));
        }
        Ok(())
    }

    pub fn register(&self, name: &str, path: &str, size: u64) -> Result<(), Status> {
        check_name(name)?;
        {
            let regions = self.regions.lock().map_err(|_| poisoned())?;
            if regions.contains_key(name) {
                return Err(status(Code::AlreadyExists, format!("a region named '{name}' is already registered")));
            }
            self.full(regions.len())?;
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
        let region = Arc::new(Region {
            name: name.to_owned(),
            path: path.to_owned(),
            size,
            map,
            writing: Mutex::new(Vec::new()),
        });
        let mut regions = self.regions.lock().map_err(|_| poisoned())?;
        if regions.contains_key(name) {
            return Err(status(Code::AlreadyExists, format!("a region named '{name}' is already registered")));
        }
        self.full(regions.len())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::accelerator::SharedMemoryRef;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    /// A registry with one 4 KiB region "r" whose file holds 0, 1, 2, … (mod 251).
    fn region() -> (tempfile::TempDir, Arc<Region>) {
        let dir = tempfile::Builder::new().prefix("tandem-shm-").tempdir_in("/dev/shm").expect("a dir in /dev/shm");
        let path = dir.path().join("r");
        let mut file = std::fs::File::create(&path).unwrap();
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).unwrap();
        file.write_all(&(0..4096u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
        let regions = Regions::new(std::path::Path::new("/dev/shm"));
        regions.register("r", path.to_str().unwrap(), 4096).unwrap();
        let span = regions.resolve(&SharedMemoryRef { region: "r".into(), offset: 0, length: 1 }, 1, "t").unwrap();
        (dir, span.region)
    }

    #[test]
    fn copies_round_trip_at_every_alignment_and_length() {
        let (_dir, region) = region();
        for offset in 0..9 {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 100] {
                let mut out = vec![0u8; len];
                // SAFETY: `out` is ours, `len` bytes long.
                unsafe { region.copy_out(offset, out.as_mut_ptr(), len) };
                let expected: Vec<u8> = (offset..offset + len).map(|i| (i % 251) as u8).collect();
                assert_eq!(out, expected, "copy_out at {offset}, {len} bytes");
                let written: Vec<u8> = (0..len).map(|i| 255 - i as u8).collect();
                region.copy_in(2048 + offset, &written);
                let mut back = vec![0u8; len];
                // SAFETY: as above.
                unsafe { region.copy_out(2048 + offset, back.as_mut_ptr(), len) };
                assert_eq!(back, written, "copy_in at {}, {len} bytes", 2048 + offset);
            }
        }
    }

    #[test]
    #[should_panic(expected = "range checked by resolve")]
    fn copies_beyond_the_region_panic_rather_than_touch_other_memory() {
        let (_dir, region) = region();
        let mut out = [0u8; 8];
        // SAFETY: `out` is ours; the range beyond the region is what is refused.
        unsafe { region.copy_out(4090, out.as_mut_ptr(), 8) };
    }

    #[test]
    fn reservations_refuse_overlapping_writers_until_released() {
        let (_dir, region) = region();
        let first = region.reserve(0, 64, "output 0").unwrap();
        let refused = region.reserve(32, 64, "output 1").err().unwrap();
        assert_eq!(refused.code, Code::FailedPrecondition);
        assert!(refused.message.contains("[32, 96) of region 'r' overlaps [0, 64)"), "{}", refused.message);
        let beside = region.reserve(64, 64, "output 1").unwrap();
        drop(first);
        let again = region.reserve(32, 16, "output 2").unwrap();
        drop((beside, again));
        assert!(region.writing.lock().unwrap().is_empty());
    }
}
