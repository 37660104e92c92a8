//! The network key file and the box's persistent identity.
//!
//! Both are 32 random bytes stored as 64 hex characters and a newline, written atomically
//! (temporary file, fsync, rename) with mode 0600, so a crash never leaves half a key.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use shoal_core::{Identity, NetworkKey};

/// Name of the identity file inside the state directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// A key problem, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No network key file.
    #[error("no network key at {0}: make one with `shoal keygen --out {0}` and copy it to every box of the deployment (or set `insecure = true` for a lab)")]
    MissingNetworkKey(PathBuf),
    /// A key file that is not 64 hex characters.
    #[error("{0} is not a key file (expected 64 hex characters)")]
    Malformed(PathBuf),
    /// Refusing to overwrite.
    #[error("{0} exists; pass --force to replace it (every box must then get the new key)")]
    Exists(PathBuf),
    /// An I/O error, with the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The OS random generator failed.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_owned(), source }
}

/// 32 bytes from the operating system's random generator.
pub fn random_bytes() -> Result<[u8; 32], KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

fn to_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Writes `bytes` as a key file at `path` atomically, readable by the owner only.
fn write_key(path: &Path, bytes: &[u8; 32]) -> Result<(), KeyError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("key")));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(format!("{}\n", to_hex(bytes)).as_bytes()).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    // Make the rename itself durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_key(path: &Path) -> Result<Option<[u8; 32]>, KeyError> {
    match fs::read_to_string(path) {
        Ok(text) => from_hex(&text).map(Some).ok_or_else(|| KeyError::Malformed(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io { path: path.to_owned(), source }),
    }
}

/// `shoal keygen`: writes a new network key to `path`.
pub fn generate_network_key(path: &Path, force: bool) -> Result<NetworkKey, KeyError> {
    if path.exists() && !force {
        return Err(KeyError::Exists(path.to_owned()));
    }
    let bytes = random_bytes()?;
    write_key(path, &bytes)?;
    Ok(NetworkKey::from_bytes(bytes))
}

/// Reads the deployment's network key.
pub fn load_network_key(path: &Path) -> Result<NetworkKey, KeyError> {
    read_key(path)?.map(NetworkKey::from_bytes).ok_or_else(|| KeyError::MissingNetworkKey(path.to_owned()))
}

/// The box's identity from `state_dir`, created there on first start.
pub fn load_or_create_identity(state_dir: &Path) -> Result<(Identity, bool), KeyError> {
    let path = state_dir.join(IDENTITY_FILE);
    if let Some(seed) = read_key(&path)? {
        return Ok((Identity::from_seed(seed), false));
    }
    fs::create_dir_all(state_dir).map_err(io(state_dir))?;
    let _ = fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700));
    let seed = random_bytes()?;
    write_key(&path, &seed)?;
    Ok((Identity::from_seed(seed), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shoal-keys-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn keygen_writes_a_private_key_and_refuses_to_overwrite() {
        let dir = scratch("keygen");
        let path = dir.join("network.key");
        let key = generate_network_key(&path, false).expect("written");
        assert_eq!(load_network_key(&path).expect("read"), key);
        assert_eq!(fs::metadata(&path).expect("exists").permissions().mode() & 0o777, 0o600);
        assert!(matches!(generate_network_key(&path, false), Err(KeyError::Exists(_))));
        assert_ne!(generate_network_key(&path, true).expect("forced"), key);
        fs::write(&path, "not a key\n").expect("write");
        assert!(matches!(load_network_key(&path), Err(KeyError::Malformed(_))));
        let missing = load_network_key(&dir.join("nope")).unwrap_err().to_string();
        assert!(missing.contains("shoal keygen"), "{missing}");
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn identity_is_created_once_and_kept() {
        let dir = scratch("identity");
        let (first, created) = load_or_create_identity(&dir).expect("created");
        assert!(created);
        let (again, created) = load_or_create_identity(&dir).expect("loaded");
        assert!(!created);
        assert_eq!(first.node_id(), again.node_id());
        let _ = fs::remove_dir_all(dir);
    }
}
