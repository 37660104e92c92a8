//! The disk tier under the RAM store: immutable, content-addressed objects (segments, blocks)
//! kept on a USB disk or SD card, capped in bytes and evicted least recently used first.
//!
//! The API is synchronous `std::fs`; callers run it on a blocking thread (`blocking::unblock`).
//! One [`DiskTier`] owns its directory: opening a second one on the same directory would delete
//! the first one's temporary files. A caller sharing one tier between threads behind a mutex
//! can keep the slow file I/O outside the lock, see [below](#doing-the-io-outside-a-lock).
//!
//! # Layout
//!
//! ```text
//! dir/objects/<first 2 hex digits>/<64 hex digits>   one object, named by the SHA-256 of its bytes
//! dir/tmp/<pid>-<n>                                  a write in progress, renamed into place when complete
//! dir/meta/<name>                                    small named files (an asset catalog), see put_meta
//! ```
//!
//! The two-digit shard directories keep each directory at a few hundred entries, which FAT file
//! systems (common on SD cards) search linearly.
//!
//! # What survives a crash, and why there is no fsync
//!
//! At [`DiskTier::open`] the directory is scanned: every object file is indexed by name and
//! length, with no hashing (that would read the whole disk at every boot). Leftover temporary
//! files and files that cannot be objects are deleted and counted. Object writes are not synced:
//! an fsync per object costs a flash erase cycle and tens of milliseconds on an SD card, and
//! the content address makes it unnecessary. A file torn by a power cut (short, zero-filled, or
//! never written back) no longer hashes to its name, so [`DiskTier::get`] detects it when it is
//! read, deletes it, counts it in [`Counters::corrupt`] and answers `None`; the caller fetches
//! the object again from a peer or the origin, as for any miss. Bit rot is caught the same way.
//!
//! # Recency is not persisted
//!
//! Reads mark an object most recently used in memory only: writing recency back (touching the
//! mtime, or a journal) would turn every read into a small write, and few small writes is what
//! keeps an SD card alive. At open, recency is seeded from each file's mtime, that is from when
//! it was stored: after a reboot, the objects stored longest ago are evicted first.
//!
//! # Doing the I/O outside a lock
//!
//! [`DiskTier::get`] and [`DiskTier::put`] read, hash and write whole objects (tens of MB) under
//! `&mut self`; behind a mutex, every other user of the tier would wait for them. Each is also
//! available in halves, the slow half an associated function that needs no lock:
//!
//! - reading: [`lookup`](DiskTier::lookup) under the lock (an [`ObjectRef`], no I/O), then
//!   [`read_verified`](DiskTier::read_verified) outside it, then under the lock again record the
//!   [`ReadOutcome`]: [`touch`](DiskTier::touch) for `Ok`, [`forget_corrupt`](DiskTier::forget_corrupt)
//!   for `Corrupt`, nothing for `Err` (the disk failing: the object is kept).
//! - writing: [`contains`](DiskTier::contains) and [`tmp_dir`](DiskTier::tmp_dir) under the lock,
//!   then [`stage`](DiskTier::stage) outside it (hash, write a temporary file), then
//!   [`commit`](DiskTier::commit) under the lock (evict to fit, rename into place). If staging
//!   fails with a full disk ([`DiskError::is_disk_full`]), call [`make_room`](DiskTier::make_room)
//!   under the lock and stage once more. Objects being staged are not counted against the cap
//!   until committed.
//!
//! Between the halves another thread may evict, remove or store the same object; the second
//! half copes (a [`Staged`] object already held is dropped, a corrupt object already evicted
//! is only counted as a miss).
//!
//! ```
//! use std::sync::Mutex;
//! use shoal_disk::{content_id, DiskTier, Put, ReadOutcome};
//!
//! let dir = std::env::temp_dir().join(format!("shoal-disk-lock-doc-{}", std::process::id()));
//! let tier = Mutex::new(DiskTier::open(&dir, 1 << 20)?);
//! let segment = b"a segment".to_vec();
//! let id = content_id(&segment);
//!
//! let tmp = tier.lock().unwrap().tmp_dir();
//! let staged = match DiskTier::stage(&tmp, &id, &segment) {
//!     Err(error) if error.is_disk_full() => {
//!         tier.lock().unwrap().make_room(segment.len() as u64);
//!         DiskTier::stage(&tmp, &id, &segment)?
//!     }
//!     staged => staged?,
//! };
//! assert_eq!(tier.lock().unwrap().commit(staged)?, Put::Stored { evicted: 0 });
//!
//! let object = tier.lock().unwrap().lookup(&id).expect("just stored");
//! match DiskTier::read_verified(&object, &id) {
//!     ReadOutcome::Ok(bytes) => {
//!         tier.lock().unwrap().touch(&id);
//!         assert_eq!(bytes, segment);
//!     }
//!     ReadOutcome::Corrupt => tier.lock().unwrap().forget_corrupt(&id),
//!     ReadOutcome::Err(error) => return Err(error),
//! }
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), shoal_disk::DiskError>(())
//! ```
//!
//! # Example
//!
//! ```
//! use shoal_disk::{content_id, DiskTier, Put};
//!
//! let dir = std::env::temp_dir().join(format!("shoal-disk-doc-{}", std::process::id()));
//! let mut tier = DiskTier::open(&dir, 1 << 20)?;
//! let segment = b"a segment".to_vec();
//! let id = content_id(&segment);
//! assert_eq!(tier.put(&id, &segment)?, Put::Stored { evicted: 0 });
//! assert_eq!(tier.get(&id)?, Some(segment));
//! assert_eq!(tier.used(), 9);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), shoal_disk::DiskError>(())
//! ```
#![forbid(unsafe_code)]

mod meta;
mod stage;
#[cfg(test)]
mod tests;

pub use stage::{Staged, TmpDir};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The name of an object: the SHA-256 of its bytes.
pub type ContentId = [u8; 32];

/// The largest object kept. Segments are below 30 MiB; anything larger on disk at open is not
/// ours and is deleted. Also bounds the buffer [`DiskTier::get`] allocates.
pub const MAX_OBJECT_LEN: u64 = 64 << 20;

/// The largest metadata file kept. Metadata is read whole into memory; a catalog of thousands of
/// assets is well below this.
pub const MAX_META_LEN: usize = 16 << 20;

const OBJECTS: &str = "objects";
const TMP: &str = "tmp";
const META: &str = "meta";

/// The SHA-256 of `bytes`: the name an object is stored under.
pub fn content_id(bytes: &[u8]) -> ContentId {
    Sha256::digest(bytes).into()
}

/// The 64 lowercase hex digits of `id`, as used for file names.
pub fn to_hex(id: &ContentId) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in id {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    hex
}

/// Parses exactly 64 lowercase hex digits. Uppercase is refused so that each id has one file
/// name: a file named in uppercase is not an object and is deleted at open.
pub fn parse_hex(s: &str) -> Option<ContentId> {
    let digits = s.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut id = [0; 32];
    for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(id)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// What [`DiskTier::put`] or [`DiskTier::commit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The object was written, after evicting this many least recently used objects.
    Stored {
        /// Objects evicted to make room (under the cap, or on a full disk).
        evicted: usize,
    },
    /// The object was already held; it is now the most recently used.
    Present,
}

/// What went wrong in the disk tier.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A file system call failed: the disk is full, removed, read-only or failing.
    #[error("disk tier: cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "rename", "list"...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// The bytes given to [`DiskTier::put`] do not hash to the id given; nothing was written.
    #[error("disk tier: object bytes do not hash to the content id they were given with")]
    Mismatch,
    /// The object or metadata file is larger than the tier's cap, [`MAX_OBJECT_LEN`] or
    /// [`MAX_META_LEN`].
    #[error("disk tier: {len} bytes is more than the limit of {cap} bytes")]
    TooLarge {
        /// The length offered (or found, for a metadata file written by hand).
        len: u64,
        /// The limit that applied.
        cap: u64,
    },
    /// Empty objects are not stored: at open a zero-length file is taken for a write that never
    /// happened and deleted, so an empty object could not survive a restart.
    #[error("disk tier: empty objects are not stored")]
    Empty,
    /// A metadata name outside `[A-Za-z0-9._-]{1,100}`, or `.` or `..`.
    #[error(
        "disk tier: metadata name {0:?} must be 1 to 100 characters from A-Z a-z 0-9 . _ - (and not . or ..)"
    )]
    BadName(String),
}

impl DiskError {
    /// Whether this is a write that failed because the file system is full or over quota
    /// (`StorageFull`, ENOSPC; `QuotaExceeded`, EDQUOT): the one failure that evicting objects
    /// can cure.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, DiskError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> DiskError {
    DiskError::Io { action, path: path.to_path_buf(), source }
}

/// What the tier has done since it was opened; exported as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Objects written ([`Put::Stored`]).
    pub puts: u64,
    /// Reads answered with verified bytes.
    pub hits: u64,
    /// Reads answered with `None` ([`DiskTier::get`], or [`DiskTier::lookup`] then
    /// [`DiskTier::forget_corrupt`]), corrupt objects included.
    pub misses: u64,
    /// Objects deleted to stay under the cap or to make room on a full disk.
    pub evictions: u64,
    /// The bytes those evictions freed.
    pub evicted_bytes: u64,
    /// Objects found torn, rotten or missing when read, and deleted.
    pub corrupt: u64,
    /// Puts and commits that failed with an I/O error (after evicting and retrying once, for a
    /// full disk). A failed [`DiskTier::stage`] is not seen by the tier: its caller counts it.
    pub write_errors: u64,
    /// Files deleted at open: temporary leftovers and files that cannot be objects.
    pub stray_files_removed: u64,
}

/// An object held, as [`DiskTier::lookup`] found it: what [`DiskTier::read_verified`] needs to
/// read it without the tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    /// The object's file.
    pub path: PathBuf,
    /// Its length in the index, which the file must have.
    pub len: u64,
}

/// What [`DiskTier::read_verified`] found.
#[derive(Debug)]
#[must_use = "record the outcome: touch for Ok, forget_corrupt for Corrupt"]
pub enum ReadOutcome {
    /// The object's bytes, of the right length and hash.
    Ok(Vec<u8>),
    /// The file is missing, has the wrong length or does not hash to its id (a torn write, bit
    /// rot, or evicted meanwhile): call [`DiskTier::forget_corrupt`].
    Corrupt,
    /// Reading failed otherwise (the disk failing or unplugged): the object may be fine, keep it.
    Err(DiskError),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    len: u64,
    /// The logical time of the last put or read; the key of this object in `DiskTier::lru`.
    stamp: u64,
}

/// Content-addressed objects in a directory, capped at `cap` bytes, evicted least recently used
/// first. See the [module docs](crate) for the layout and crash behaviour.
pub struct DiskTier {
    dir: PathBuf,
    cap: u64,
    /// The sum of the lengths in `index`; never above `cap` after a call returns.
    used: u64,
    index: HashMap<ContentId, Entry>,
    /// Objects by stamp, least recently used first, so eviction is O(log n).
    lru: BTreeMap<u64, ContentId>,
    /// The logical clock for stamps: bumped on every put and hit.
    clock: u64,
    /// `dir/tmp`, the size limit, and the write seam, shared with staging callers.
    tmp: TmpDir,
    /// Atomic because [`lookup`](Self::lookup) counts a miss through `&self`.
    misses: AtomicU64,
    /// All but `misses`.
    counters: Counters,
}

impl fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskTier")
            .field("dir", &self.dir)
            .field("cap", &self.cap)
            .field("used", &self.used)
            .field("objects", &self.index.len())
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl DiskTier {
    /// Opens `dir`, creating it and its subdirectories if needed, and rebuilds the index.
    ///
    /// Leftover temporary files are deleted. Every object file is indexed by name and length,
    /// recency seeded from its mtime (oldest = least recently used). Files whose name is not 64
    /// lowercase hex digits in the right shard, that are not regular files, or whose length is 0
    /// or above [`MAX_OBJECT_LEN`], are deleted and counted in
    /// [`Counters::stray_files_removed`]. If the objects found exceed `cap`, the least recently
    /// used are evicted until they fit. Objects are not hashed here but when read.
    pub fn open(dir: &Path, cap: u64) -> Result<DiskTier, DiskError> {
        for sub in [OBJECTS, TMP, META] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|error| io_error("create directory", &path, error))?;
        }
        let mut tier = DiskTier {
            dir: dir.to_path_buf(),
            cap,
            used: 0,
            index: HashMap::new(),
            lru: BTreeMap::new(),
            clock: 0,
            tmp: TmpDir::new(dir.join(TMP), cap),
            misses: AtomicU64::new(0),
            counters: Counters::default(),
        };
        let tmp = dir.join(TMP);
        for entry in list(&tmp)? {
            tier.remove_stray(&entry.path());
        }
        let mut found = tier.scan_objects()?;
        found.sort_unstable();
        for (_, id, len) in found {
            tier.insert(id, len);
        }
        let evicted = tier.evict_to_fit(0);
        log::info!(
            "disk tier {}: {} objects, {} of {} bytes; {} stray files removed, {evicted} evicted",
            dir.display(),
            tier.len(),
            tier.used,
            tier.cap,
            tier.counters.stray_files_removed,
        );
        Ok(tier)
    }

    /// Lists `dir/objects`, deleting what cannot be an object: (mtime, id, len) of the rest.
    fn scan_objects(&mut self) -> Result<Vec<(SystemTime, ContentId, u64)>, DiskError> {
        let mut found = Vec::new();
        for shard in list(&self.dir.join(OBJECTS))? {
            let path = shard.path();
            let name = shard.file_name();
            let is_dir = shard.file_type().is_ok_and(|t| t.is_dir());
            let is_shard =
                |name: &&str| is_dir && name.len() == 2 && name.bytes().all(|b| nibble(b).is_some());
            let Some(shard_name) = name.to_str().filter(is_shard) else {
                self.remove_stray(&path);
                continue;
            };
            for file in list(&path)? {
                match indexable(&file, shard_name) {
                    Some(object) => found.push(object),
                    None => self.remove_stray(&file.path()),
                }
            }
        }
        Ok(found)
    }

    /// Whether the object is held (it may still turn out corrupt when read).
    pub fn contains(&self, id: &ContentId) -> bool {
        self.index.contains_key(id)
    }

    /// Reads and verifies an object, all under `&mut self`: [`lookup`](Self::lookup), then
    /// [`read_verified`](Self::read_verified), then [`touch`](Self::touch) or
    /// [`forget_corrupt`](Self::forget_corrupt). A caller that keeps the tier behind a lock
    /// and does not want to hold it while reading calls those itself.
    ///
    /// Returns its bytes and marks it the most recently used; `None` if it is not held. If the
    /// file is missing, has the wrong length or does not hash to `id` (a torn write, bit rot),
    /// it is deleted, dropped from the index and counted in [`Counters::corrupt`], and the
    /// answer is `None`. Other read errors (the disk failing or unplugged) are returned and
    /// leave the index as it is.
    pub fn get(&mut self, id: &ContentId) -> Result<Option<Vec<u8>>, DiskError> {
        let Some(object) = self.lookup(id) else {
            return Ok(None);
        };
        match Self::read_verified(&object, id) {
            ReadOutcome::Ok(bytes) => {
                self.touch(id);
                Ok(Some(bytes))
            }
            ReadOutcome::Corrupt => {
                self.forget_corrupt(id);
                Ok(None)
            }
            ReadOutcome::Err(error) => Err(error),
        }
    }

    /// Where the object is and how long it must be, if held; no I/O. `None` counts a miss in
    /// [`Counters::misses`], as [`get`](Self::get) would; use [`contains`](Self::contains) to
    /// ask without counting.
    pub fn lookup(&self, id: &ContentId) -> Option<ObjectRef> {
        let Some(entry) = self.index.get(id) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        Some(ObjectRef { path: self.object_path(id), len: entry.len })
    }

    /// Reads `object` and checks it has its length and hashes to `id`. Needs no tier, so no
    /// lock: record the outcome afterwards with [`touch`](Self::touch) or
    /// [`forget_corrupt`](Self::forget_corrupt).
    ///
    /// Reads at most one byte more than the expected length, so a file grown by mistake is not
    /// read whole.
    pub fn read_verified(object: &ObjectRef, id: &ContentId) -> ReadOutcome {
        let path = &object.path;
        match read_at_most(path, object.len) {
            Ok(bytes) if bytes.len() as u64 == object.len && content_id(&bytes) == *id => {
                ReadOutcome::Ok(bytes)
            }
            Ok(_) => {
                log::warn!("disk tier: {} has the wrong length or hash", path.display());
                ReadOutcome::Corrupt
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                log::warn!("disk tier: {} has vanished", path.display());
                ReadOutcome::Corrupt
            }
            Err(error) => ReadOutcome::Err(io_error("read", path, error)),
        }
    }

    /// Records a read that returned verified bytes: the object (if still held) becomes the most
    /// recently used, and a hit is counted.
    pub fn touch(&mut self, id: &ContentId) {
        self.promote(id);
        self.counters.hits += 1;
    }

    /// Records a read that found the object corrupt: counts a miss and, if the object is still
    /// in the index, drops it, deletes its file and counts it in [`Counters::corrupt`].
    ///
    /// If the object was evicted or removed since [`lookup`](Self::lookup), there is nothing
    /// to do (its file may have vanished for that very reason). If it was evicted and stored
    /// again meanwhile, the new copy is dropped too, though it may be sound: a refetch, rare,
    /// and the index and [`used`](Self::used) stay exact.
    pub fn forget_corrupt(&mut self, id: &ContentId) {
        *self.misses.get_mut() += 1;
        if self.forget(id).is_none() {
            return;
        }
        let path = self.object_path(id);
        remove_file_quietly(&path);
        self.counters.corrupt += 1;
        log::warn!("disk tier: dropped corrupt {}", path.display());
    }

    /// Deletes an object; whether it was held.
    pub fn remove(&mut self, id: &ContentId) -> bool {
        if self.forget(id).is_none() {
            return false;
        }
        remove_file_quietly(&self.object_path(id));
        true
    }

    /// The bytes held, at most [`cap`](Self::cap).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The most bytes of objects held.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// The number of objects held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no object is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// What the tier has done since it was opened.
    pub fn counters(&self) -> Counters {
        Counters { misses: self.misses.load(Ordering::Relaxed), ..self.counters }
    }

    /// The directory the tier owns.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn object_path(&self, id: &ContentId) -> PathBuf {
        let hex = to_hex(id);
        self.dir.join(OBJECTS).join(&hex[..2]).join(hex)
    }

    /// Indexes an object as the most recently used.
    fn insert(&mut self, id: ContentId, len: u64) {
        self.clock += 1;
        self.index.insert(id, Entry { len, stamp: self.clock });
        self.lru.insert(self.clock, id);
        self.used += len;
    }

    /// Makes a held object the most recently used.
    fn promote(&mut self, id: &ContentId) {
        if let Some(entry) = self.index.get_mut(id) {
            self.lru.remove(&entry.stamp);
            self.clock += 1;
            entry.stamp = self.clock;
            self.lru.insert(self.clock, *id);
        }
    }

    /// Drops an object from the index (not from the disk).
    fn forget(&mut self, id: &ContentId) -> Option<Entry> {
        let entry = self.index.remove(id)?;
        self.lru.remove(&entry.stamp);
        self.used -= entry.len;
        Some(entry)
    }

    /// Evicts least recently used objects until `incoming` more bytes fit; how many.
    fn evict_to_fit(&mut self, incoming: u64) -> usize {
        let mut evicted = 0;
        while self.used + incoming > self.cap && self.evict_lru().is_some() {
            evicted += 1;
        }
        evicted
    }

    /// Evicts the least recently used object; the bytes freed, `None` if nothing is held.
    fn evict_lru(&mut self) -> Option<u64> {
        let (_, id) = self.lru.first_key_value()?;
        let id = *id;
        let entry = self.forget(&id)?;
        remove_file_quietly(&self.object_path(&id));
        self.counters.evictions += 1;
        self.counters.evicted_bytes += entry.len;
        Some(entry.len)
    }

    /// Deletes a file or directory that is not ours to keep, and counts it.
    fn remove_stray(&mut self, path: &Path) {
        let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        let result = if is_dir { fs::remove_dir_all(path) } else { fs::remove_file(path) };
        match result {
            Ok(()) => {
                log::warn!("disk tier: removed stray {}", path.display());
                self.counters.stray_files_removed += 1;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => log::warn!("disk tier: cannot remove stray {}: {error}", path.display()),
        }
    }
}

/// (mtime, id, len) if `file`, in shard `shard`, can be an object.
fn indexable(file: &fs::DirEntry, shard: &str) -> Option<(SystemTime, ContentId, u64)> {
    let name = file.file_name();
    let name = name.to_str()?;
    let id = parse_hex(name)?;
    if !name.starts_with(shard) {
        return None;
    }
    // DirEntry::metadata does not follow symlinks: a link is not a regular file, so it goes.
    let metadata = file.metadata().ok()?;
    let len = metadata.len();
    if !metadata.is_file() || len == 0 || len > MAX_OBJECT_LEN {
        return None;
    }
    // A file system without mtimes makes every object equally old; ids break the tie.
    let mtime = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    Some((mtime, id, len))
}

fn list(dir: &Path) -> Result<Vec<fs::DirEntry>, DiskError> {
    fs::read_dir(dir).and_then(|entries| entries.collect()).map_err(|error| io_error("list", dir, error))
}

/// Reads up to `limit + 1` bytes, so a file longer than expected shows as too long without
/// being read whole.
fn read_at_most(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    // At most MAX_OBJECT_LEN or MAX_META_LEN, which fit a 32-bit usize.
    let expected = file.metadata().map_or(0, |m| m.len().min(limit)) as usize;
    let mut bytes = Vec::with_capacity(expected);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Removes a file already dropped from the index. A failure is logged and otherwise ignored:
/// the file stays on disk uncounted until the next open indexes (or, for a temporary file,
/// deletes) it.
fn remove_file_quietly(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => log::warn!("disk tier: cannot remove {}: {error}", path.display()),
    }
}
