//! Small named metadata files beside the objects (an asset catalog, a peer list): replaced by
//! a synced write and a rename, not counted against the cap. See `put_meta` for what a power
//! cut leaves, which depends on the file system.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{io_error, list, read_at_most, remove_file_quietly, DiskError, DiskTier, MAX_META_LEN, META};

/// The longest metadata name; well under the 255-byte file name limit of FAT and ext4.
const MAX_META_NAME_LEN: usize = 100;

impl DiskTier {
    /// Writes `dir/meta/<name>`: to a temporary file, synced, then renamed over the old one.
    ///
    /// What a power cut leaves depends on the file system. Where rename replaces atomically
    /// (ext4, f2fs, btrfs, xfs), the old version or the new one, never a mix; the sync before
    /// the rename is what keeps ext4 from exposing a renamed file whose data never reached the
    /// disk. FAT (vfat, exFAT: how most SD cards and USB sticks come formatted) has no atomic
    /// replace: Linux rewrites the directory entries of `meta/` and `tmp/` and the allocation
    /// table in separate, unordered writes, with no journal. A power cut during the rename can
    /// leave the old version, the new one, the name missing, or a damaged file (for instance
    /// an entry pointing at clusters freed, or shared with the temporary file that the next
    /// open deletes) until fsck repairs it. So readers must validate what
    /// [`get_meta`](Self::get_meta) returns, and be able to rebuild it.
    ///
    /// Unlike objects, metadata is synced before the rename: it has no content address to
    /// detect a torn file with, and it is written rarely. Names are `[A-Za-z0-9._-]{1,100}`
    /// except `.` and `..`; files are limited to [`MAX_META_LEN`] bytes.
    ///
    /// If the disk is full or over quota, least recently used objects worth at least the
    /// file's length are evicted (at least one) and the write is retried once, as
    /// [`put`](Self::put) does: metadata is not counted against the cap, but it shares the
    /// disk. Other errors are returned at once.
    pub fn put_meta(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.meta_path(name)?;
        if bytes.len() > MAX_META_LEN {
            return Err(DiskError::TooLarge { len: bytes.len() as u64, cap: MAX_META_LEN as u64 });
        }
        self.with_room(bytes.len() as u64, |tier| tier.write_meta(&path, bytes)).0
    }

    /// Writes a temporary file, synced, and renames it to `path`; on failure, removes the
    /// temporary file.
    fn write_meta(&self, path: &Path, bytes: &[u8]) -> Result<(), DiskError> {
        let tmp = self.tmp.fresh_path();
        let result =
            (self.tmp.write)(&tmp, bytes, true).map_err(|error| io_error("write", &tmp, error)).and_then(
                |()| fs::rename(&tmp, path).map_err(|error| io_error("rename into place", path, error)),
            );
        if result.is_err() {
            remove_file_quietly(&tmp);
        }
        result
    }

    /// Reads `dir/meta/<name>`; `None` if there is none. A file larger than [`MAX_META_LEN`]
    /// (put there by hand) is refused with [`DiskError::TooLarge`].
    pub fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, DiskError> {
        let path = self.meta_path(name)?;
        let bytes = match read_at_most(&path, MAX_META_LEN as u64) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("read", &path, error)),
        };
        if bytes.len() > MAX_META_LEN {
            return Err(DiskError::TooLarge { len: bytes.len() as u64, cap: MAX_META_LEN as u64 });
        }
        Ok(Some(bytes))
    }

    /// The names of the metadata files, sorted; files with names [`put_meta`](Self::put_meta)
    /// would refuse are left out.
    pub fn meta_names(&self) -> Result<Vec<String>, DiskError> {
        let mut names: Vec<String> = list(&self.dir.join(META))?
            .into_iter()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| is_meta_name(name))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Deletes `dir/meta/<name>`; whether it existed.
    pub fn remove_meta(&self, name: &str) -> Result<bool, DiskError> {
        let path = self.meta_path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io_error("remove", &path, error)),
        }
    }

    fn meta_path(&self, name: &str) -> Result<PathBuf, DiskError> {
        if !is_meta_name(name) {
            return Err(DiskError::BadName(name.to_owned()));
        }
        Ok(self.dir.join(META).join(name))
    }
}

/// `[A-Za-z0-9._-]{1,100}` except `.` and `..`, which would name a directory.
fn is_meta_name(name: &str) -> bool {
    (1..=MAX_META_NAME_LEN).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
