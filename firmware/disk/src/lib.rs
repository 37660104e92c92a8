//! The disk tier under the RAM store: immutable, content-addressed objects (segments, blocks)
//! kept on a USB disk or SD card, capped in bytes and evicted least recently used first.
//!
//! The API is synchronous `std::fs`; callers run it on a blocking thread (`blocking::unblock`).
//! One [`DiskTier`] owns its directory: opening a second one on the same directory would delete
//! the first one's temporary files.
//!
//! # Layout
//!
//! ```text
//! dir/objects/<first 2 hex digits>/<64 hex digits>   one object, named by the SHA-256 of its bytes
//! dir/tmp/<n>                                        a write in progress, renamed into place when complete
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
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
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

/// What [`DiskTier::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The object was written, after evicting this many least recently used objects.
    Stored {
        /// Objects evicted to make room (or to recover from a failed write).
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
    /// Reads answered with `None`, corrupt objects included.
    pub misses: u64,
    /// Objects deleted to stay under the cap or to recover from a failed write.
    pub evictions: u64,
    /// The bytes those evictions freed.
    pub evicted_bytes: u64,
    /// Objects found torn, rotten or missing when read, and deleted.
    pub corrupt: u64,
    /// Puts that failed with an I/O error even after evicting and retrying.
    pub write_errors: u64,
    /// Files deleted at open: temporary leftovers and files that cannot be objects.
    pub stray_files_removed: u64,
}

/// Writes a complete file at a new path. A seam so tests can make the disk "full".
type Writer = Box<dyn FnMut(&Path, &[u8]) -> io::Result<()> + Send + Sync>;

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    File::create_new(path)?.write_all(bytes)
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
    /// Names temporary files; `dir/tmp` is emptied at open, so a counter is unique.
    next_tmp: AtomicU64,
    counters: Counters,
    write: Writer,
}

impl fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskTier")
            .field("dir", &self.dir)
            .field("cap", &self.cap)
            .field("used", &self.used)
            .field("objects", &self.index.len())
            .field("counters", &self.counters)
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
            next_tmp: AtomicU64::new(0),
            counters: Counters::default(),
            write: Box::new(write_file),
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

    /// Stores `bytes` under `id`.
    ///
    /// Refuses bytes that do not hash to `id` ([`DiskError::Mismatch`]), empty objects, and
    /// objects larger than the cap or [`MAX_OBJECT_LEN`] ([`DiskError::TooLarge`]); nothing is
    /// written then. An object already held becomes the most recently used ([`Put::Present`]).
    /// Otherwise least recently used objects are evicted until it fits, it is written to a
    /// temporary file and renamed into place, without fsync (see the module docs).
    ///
    /// If the write fails (disk full, quota, I/O error), the temporary file is removed, least
    /// recently used objects worth at least the object's length are evicted (at least one),
    /// and the write is retried once. If that fails too, the error is returned and counted in
    /// [`Counters::write_errors`]; no temporary file is left behind either way.
    pub fn put(&mut self, id: &ContentId, bytes: &[u8]) -> Result<Put, DiskError> {
        let len = bytes.len() as u64;
        if len == 0 {
            return Err(DiskError::Empty);
        }
        let limit = self.cap.min(MAX_OBJECT_LEN);
        if len > limit {
            return Err(DiskError::TooLarge { len, cap: limit });
        }
        if content_id(bytes) != *id {
            return Err(DiskError::Mismatch);
        }
        if self.index.contains_key(id) {
            self.touch(id);
            return Ok(Put::Present);
        }
        let mut evicted = self.evict_to_fit(len);
        if let Err(first) = self.write_object(id, bytes) {
            log::warn!("{first}; evicting at least {len} bytes and retrying once");
            let mut freed = 0;
            while freed < len {
                let Some(bytes) = self.evict_lru() else { break };
                freed += bytes;
                evicted += 1;
            }
            if let Err(second) = self.write_object(id, bytes) {
                log::warn!("{second}; giving up on {}", to_hex(id));
                self.counters.write_errors += 1;
                return Err(second);
            }
        }
        self.insert(*id, len);
        self.counters.puts += 1;
        Ok(Put::Stored { evicted })
    }

    /// Writes the object to a temporary file and renames it into place; on failure, removes
    /// the temporary file.
    fn write_object(&mut self, id: &ContentId, bytes: &[u8]) -> Result<(), DiskError> {
        let tmp = self.tmp_path();
        let hex = to_hex(id);
        let shard = self.dir.join(OBJECTS).join(&hex[..2]);
        let target = shard.join(&hex);
        let result =
            (self.write)(&tmp, bytes).map_err(|error| io_error("write", &tmp, error)).and_then(|()| {
                fs::create_dir_all(&shard).map_err(|error| io_error("create directory", &shard, error))?;
                fs::rename(&tmp, &target).map_err(|error| io_error("rename into place", &target, error))
            });
        if result.is_err() {
            remove_file_quietly(&tmp);
        }
        result
    }

    /// Reads and verifies an object.
    ///
    /// Returns its bytes and marks it the most recently used; `None` if it is not held. If the
    /// file is missing, has the wrong length or does not hash to `id` (a torn write, bit rot),
    /// it is deleted, dropped from the index and counted in [`Counters::corrupt`], and the
    /// answer is `None`. Other read errors (the disk failing or unplugged) are returned and
    /// leave the index as it is.
    pub fn get(&mut self, id: &ContentId) -> Result<Option<Vec<u8>>, DiskError> {
        let Some(entry) = self.index.get(id) else {
            self.counters.misses += 1;
            return Ok(None);
        };
        let path = self.object_path(id);
        match read_at_most(&path, entry.len) {
            Ok(bytes) if bytes.len() as u64 == entry.len && content_id(&bytes) == *id => {
                self.touch(id);
                self.counters.hits += 1;
                Ok(Some(bytes))
            }
            Ok(_) => Ok(self.drop_corrupt(id, &path, "has the wrong length or hash")),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Ok(self.drop_corrupt(id, &path, "has vanished"))
            }
            Err(error) => Err(io_error("read", &path, error)),
        }
    }

    fn drop_corrupt(&mut self, id: &ContentId, path: &Path, what: &str) -> Option<Vec<u8>> {
        log::warn!("disk tier: {} {what}; deleted", path.display());
        self.forget(id);
        remove_file_quietly(path);
        self.counters.corrupt += 1;
        self.counters.misses += 1;
        None
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
        self.counters
    }

    /// The directory the tier owns.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn object_path(&self, id: &ContentId) -> PathBuf {
        let hex = to_hex(id);
        self.dir.join(OBJECTS).join(&hex[..2]).join(hex)
    }

    fn tmp_path(&self) -> PathBuf {
        self.dir.join(TMP).join(self.next_tmp.fetch_add(1, Ordering::Relaxed).to_string())
    }

    /// Indexes an object as the most recently used.
    fn insert(&mut self, id: ContentId, len: u64) {
        self.clock += 1;
        self.index.insert(id, Entry { len, stamp: self.clock });
        self.lru.insert(self.clock, id);
        self.used += len;
    }

    fn touch(&mut self, id: &ContentId) {
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
