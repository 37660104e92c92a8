//! Small named metadata files beside the objects (an asset catalog, a peer list): written
//! atomically, not counted against the cap.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{io_error, list, read_at_most, remove_file_quietly, DiskError, DiskTier, MAX_META_LEN, META};

/// The longest metadata name; well under the 255-byte file name limit of FAT and ext4.
const MAX_META_NAME_LEN: usize = 100;

impl DiskTier {
    /// Writes `dir/meta/<name>` atomically: to a temporary file, synced, then renamed over the
    /// old one, so a power cut leaves the old version or the new one, never a mix.
    ///
    /// Unlike objects, metadata is synced before the rename: it has no content address to
    /// detect a torn file with, and it is written rarely. Names are `[A-Za-z0-9._-]{1,100}`
    /// except `.` and `..`; files are limited to [`MAX_META_LEN`] bytes.
    pub fn put_meta(&self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.meta_path(name)?;
        if bytes.len() > MAX_META_LEN {
            return Err(DiskError::TooLarge { len: bytes.len() as u64, cap: MAX_META_LEN as u64 });
        }
        let tmp = self.tmp_path();
        let result =
            write_synced(&tmp, bytes).map_err(|error| io_error("write", &tmp, error)).and_then(|()| {
                fs::rename(&tmp, &path).map_err(|error| io_error("rename into place", &path, error))
            });
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

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create_new(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
