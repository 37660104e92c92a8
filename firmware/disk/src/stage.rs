//! Writing objects: [`DiskTier::put`] in one call, or [`DiskTier::stage`] (hash and write a
//! temporary file, no lock needed) then [`DiskTier::commit`] (evict and rename, under the lock).
//!
//! See the [crate docs](crate#doing-the-io-outside-a-lock) for the protocol a caller that keeps
//! the tier behind a mutex follows.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{
    content_id, io_error, remove_file_quietly, to_hex, ContentId, DiskError, DiskTier, Put, MAX_OBJECT_LEN,
};

/// Writes a complete new file, synced before it returns if the flag says so. A seam so tests
/// can make the disk "full" or failing.
pub(crate) type Writer = Arc<dyn Fn(&Path, &[u8], bool) -> io::Result<()> + Send + Sync>;

pub(crate) fn write_file(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut file = File::create_new(path)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// Numbers temporary files. Process-wide rather than per tier, and the names carry the pid,
/// so that two threads staging at once never pick the same name; `dir/tmp` is emptied at open.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// A handle on a tier's temporary directory, for [`DiskTier::stage`] to write into without
/// holding the tier. Cheap to clone; take one under the lock with [`DiskTier::tmp_dir`].
#[derive(Clone)]
pub struct TmpDir {
    path: PathBuf,
    /// The largest object the tier accepts: its cap or [`MAX_OBJECT_LEN`], whichever is less.
    limit: u64,
    pub(crate) write: Writer,
}

impl fmt::Debug for TmpDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TmpDir").field("path", &self.path).field("limit", &self.limit).finish_non_exhaustive()
    }
}

impl TmpDir {
    pub(crate) fn new(path: PathBuf, cap: u64) -> TmpDir {
        TmpDir { path, limit: cap.min(MAX_OBJECT_LEN), write: Arc::new(write_file) }
    }

    /// The directory (`dir/tmp`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A name no other write in this process is using.
    pub(crate) fn fresh_path(&self) -> PathBuf {
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        self.path.join(format!("{}-{n}", process::id()))
    }

    /// What [`DiskTier::put`] and [`DiskTier::stage`] refuse before writing anything.
    fn check(&self, id: &ContentId, bytes: &[u8]) -> Result<(), DiskError> {
        let len = bytes.len() as u64;
        if len == 0 {
            return Err(DiskError::Empty);
        }
        if len > self.limit {
            return Err(DiskError::TooLarge { len, cap: self.limit });
        }
        if content_id(bytes) != *id {
            return Err(DiskError::Mismatch);
        }
        Ok(())
    }

    /// Writes `bytes`, already checked, to a fresh temporary file; on failure the partial file
    /// is removed (by dropping the `Staged`).
    fn write_staged(&self, id: &ContentId, bytes: &[u8]) -> Result<Staged, DiskError> {
        let staged = Staged { tmp: self.fresh_path(), id: *id, len: bytes.len() as u64, committed: false };
        (self.write)(&staged.tmp, bytes, false).map_err(|error| io_error("write", &staged.tmp, error))?;
        Ok(staged)
    }
}

/// An object written to a temporary file by [`DiskTier::stage`], waiting for
/// [`DiskTier::commit`] to rename it into place. Dropped without a commit, it deletes its
/// temporary file.
#[derive(Debug)]
#[must_use = "dropping a Staged deletes its temporary file; commit it"]
pub struct Staged {
    tmp: PathBuf,
    id: ContentId,
    len: u64,
    /// Set once renamed into place: the temporary file is gone, nothing to delete.
    committed: bool,
}

impl Staged {
    /// The object's id.
    pub fn id(&self) -> &ContentId {
        &self.id
    }

    /// The temporary file (deleted when this is dropped uncommitted).
    pub fn path(&self) -> &Path {
        &self.tmp
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            remove_file_quietly(&self.tmp);
        }
    }
}

impl DiskTier {
    /// Stores `bytes` under `id`, all under `&mut self`. A caller that keeps the tier behind a
    /// lock and does not want to hold it while hashing and writing uses [`stage`](Self::stage)
    /// and [`commit`](Self::commit) instead.
    ///
    /// Refuses bytes that do not hash to `id` ([`DiskError::Mismatch`]), empty objects, and
    /// objects larger than the cap or [`MAX_OBJECT_LEN`] ([`DiskError::TooLarge`]); nothing is
    /// written then. An object already held becomes the most recently used ([`Put::Present`]).
    /// Otherwise least recently used objects are evicted until it fits, it is written to a
    /// temporary file and renamed into place, without fsync (see the module docs).
    ///
    /// If the write fails because the disk is full or over quota (`StorageFull`,
    /// `QuotaExceeded`: the file system may hold more than the tier's objects), least recently
    /// used objects worth at least the object's length are evicted (at least one) and the write
    /// is retried once. Any other error (read-only, failing or removed disk, permissions) is
    /// returned at once and evicts nothing: deleting objects would not help. A put that fails
    /// is counted in [`Counters::write_errors`](crate::Counters::write_errors); no temporary
    /// file is left behind either way.
    pub fn put(&mut self, id: &ContentId, bytes: &[u8]) -> Result<Put, DiskError> {
        self.tmp.check(id, bytes)?;
        if self.index.contains_key(id) {
            self.promote(id);
            return Ok(Put::Present);
        }
        let len = bytes.len() as u64;
        let evicted = self.evict_to_fit(len);
        let (staged, made_room) = self.with_room(len, |tier| tier.tmp.write_staged(id, bytes));
        let staged = staged.inspect_err(|error| {
            log::warn!("{error}; giving up on {}", to_hex(id));
            self.counters.write_errors += 1;
        })?;
        Ok(match self.commit(staged)? {
            Put::Stored { evicted: more } => Put::Stored { evicted: evicted + made_room + more },
            Put::Present => Put::Present,
        })
    }

    /// A handle on the temporary directory, for [`stage`](Self::stage).
    pub fn tmp_dir(&self) -> TmpDir {
        self.tmp.clone()
    }

    /// Checks `bytes` and writes them to a temporary file, without the tier: the slow half of
    /// [`put`](Self::put) (hashing, writing), for a caller to run outside its lock. Then
    /// [`commit`](Self::commit) the result under the lock.
    ///
    /// Refuses what `put` refuses ([`DiskError::Mismatch`], [`DiskError::Empty`],
    /// [`DiskError::TooLarge`]). A write error leaves no temporary file. If it is a full disk
    /// ([`DiskError::is_disk_full`]), call [`make_room`](Self::make_room) under the lock and
    /// stage once more; other errors are final. A failed stage is not counted by the tier
    /// (it never sees it): the caller counts it.
    pub fn stage(tmp: &TmpDir, id: &ContentId, bytes: &[u8]) -> Result<Staged, DiskError> {
        tmp.check(id, bytes)?;
        tmp.write_staged(id, bytes)
    }

    /// Renames a staged object into place: the fast half of [`put`](Self::put), under the lock.
    ///
    /// If the object is held already (another thread stored it meanwhile), the staged file is
    /// deleted, the object becomes the most recently used and the answer is [`Put::Present`].
    /// Otherwise least recently used objects are evicted until it fits under the cap, and it is
    /// renamed into place. A rename failing on a full disk (a new shard directory needs a
    /// block) evicts as `put` does and is retried once; a failure is counted in
    /// [`Counters::write_errors`](crate::Counters::write_errors) and the staged file deleted.
    pub fn commit(&mut self, mut staged: Staged) -> Result<Put, DiskError> {
        if self.index.contains_key(&staged.id) {
            self.promote(&staged.id);
            return Ok(Put::Present);
        }
        // Staged for another tier with a larger cap: storing it would break the cap.
        if staged.len > self.tmp.limit {
            return Err(DiskError::TooLarge { len: staged.len, cap: self.tmp.limit });
        }
        let evicted = self.evict_to_fit(staged.len);
        let target = self.object_path(&staged.id);
        let (placed, made_room) = self.with_room(staged.len, |_| rename_into_place(&staged.tmp, &target));
        if let Err(error) = placed {
            log::warn!("{error}; giving up on {}", to_hex(&staged.id));
            self.counters.write_errors += 1;
            return Err(error);
        }
        staged.committed = true;
        self.insert(staged.id, staged.len);
        self.counters.puts += 1;
        Ok(Put::Stored { evicted: evicted + made_room })
    }

    /// Evicts least recently used objects worth at least `len` bytes, and at least one if any
    /// is held; how many. For a write that failed on a full disk: the file system holds more
    /// than the tier's objects (other files, metadata, staged writes), so staying under the cap
    /// does not guarantee room.
    pub fn make_room(&mut self, len: u64) -> usize {
        let mut freed = 0;
        let mut evicted = 0;
        while let Some(bytes) = self.evict_lru() {
            freed += bytes;
            evicted += 1;
            if freed >= len {
                break;
            }
        }
        evicted
    }

    /// Runs `op`; if it fails on a full disk, makes room for `len` bytes and runs it once more.
    /// The result, and how many objects were evicted.
    pub(crate) fn with_room<T>(
        &mut self,
        len: u64,
        mut op: impl FnMut(&DiskTier) -> Result<T, DiskError>,
    ) -> (Result<T, DiskError>, usize) {
        match op(self) {
            Err(first) if first.is_disk_full() => {
                log::warn!("{first}; evicting at least {len} bytes and retrying once");
                let evicted = self.make_room(len);
                (op(self), evicted)
            }
            other => (other, 0),
        }
    }
}

fn rename_into_place(tmp: &Path, target: &Path) -> Result<(), DiskError> {
    if let Some(shard) = target.parent() {
        fs::create_dir_all(shard).map_err(|error| io_error("create directory", shard, error))?;
    }
    fs::rename(tmp, target).map_err(|error| io_error("rename into place", target, error))
}
