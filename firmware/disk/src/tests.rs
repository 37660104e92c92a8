//! Real files in temporary directories; write failures are injected through `DiskTier::write`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::*;

/// A directory under the system temp dir, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("shoal-disk-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("temp dir is writable");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `len` bytes that differ with `seed`, and their id.
fn object(seed: u8, len: usize) -> (ContentId, Vec<u8>) {
    let bytes: Vec<u8> = (0..len).map(|i| seed.wrapping_mul(31).wrapping_add(i as u8)).collect();
    (content_id(&bytes), bytes)
}

fn open(dir: &TempDir, cap: u64) -> DiskTier {
    DiskTier::open(&dir.0, cap).expect("open")
}

fn tmp_files(tier: &DiskTier) -> usize {
    fs::read_dir(tier.dir().join(TMP)).expect("tmp exists").count()
}

fn set_mtime(path: &Path, seconds: u64) {
    let file = File::options().write(true).open(path).expect("object exists");
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)).expect("set mtime");
}

/// A writer that fails the first `failures` writes with `kind`: part of the file written,
/// then the error.
fn failing(failures: usize, kind: io::ErrorKind) -> stage::Writer {
    let left = AtomicUsize::new(failures);
    Arc::new(move |path, bytes, sync| {
        if left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err() {
            return stage::write_file(path, bytes, sync);
        }
        fs::write(path, &bytes[..bytes.len() / 2])?;
        Err(io::Error::new(kind, "injected"))
    })
}

/// A writer that fails the first `failures` writes as a full disk does.
fn full_disk(failures: usize) -> stage::Writer {
    failing(failures, io::ErrorKind::StorageFull)
}

#[test]
fn tier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DiskTier>();
    assert_send_sync::<TmpDir>();
    assert_send_sync::<Staged>();
}

#[test]
fn hex_round_trip_and_strict_parse() {
    let (id, _) = object(1, 10);
    let hex = to_hex(&id);
    assert_eq!(hex.len(), 64);
    assert_eq!(parse_hex(&hex), Some(id));
    assert_eq!(parse_hex(&hex.to_uppercase()), None);
    assert_eq!(parse_hex(&hex[..63]), None);
    assert_eq!(parse_hex(&format!("{hex}0")), None);
    assert_eq!(parse_hex(&hex.replacen(&hex[..1], "g", 1)), None);
}

#[test]
fn round_trip() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (id, bytes) = object(1, 100);
    assert!(tier.is_empty());
    assert_eq!(tier.put(&id, &bytes).unwrap(), Put::Stored { evicted: 0 });
    assert!(tier.contains(&id));
    assert_eq!(tier.put(&id, &bytes).unwrap(), Put::Present);
    assert_eq!(tier.get(&id).unwrap(), Some(bytes));
    assert_eq!((tier.len(), tier.used()), (1, 100));
    let hex = to_hex(&id);
    assert!(dir.0.join(OBJECTS).join(&hex[..2]).join(&hex).is_file());

    assert!(tier.remove(&id));
    assert!(!tier.remove(&id));
    assert_eq!(tier.get(&id).unwrap(), None);
    assert_eq!((tier.len(), tier.used()), (0, 0));
    let counters = tier.counters();
    assert_eq!((counters.puts, counters.hits, counters.misses), (1, 1, 1));
    assert_eq!(tmp_files(&tier), 0);
}

#[test]
fn mismatch_refused_and_nothing_written() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (id, _) = object(1, 100);
    let (_, other) = object(2, 100);
    assert!(matches!(tier.put(&id, &other), Err(DiskError::Mismatch)));
    assert!(!tier.contains(&id));
    assert_eq!(tier.used(), 0);
    assert_eq!(fs::read_dir(dir.0.join(OBJECTS)).unwrap().count(), 0);
    assert_eq!(tmp_files(&tier), 0);
}

#[test]
fn empty_and_too_large_refused() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 50);
    assert!(matches!(tier.put(&content_id(&[]), &[]), Err(DiskError::Empty)));
    let (id, bytes) = object(1, 51);
    assert!(matches!(tier.put(&id, &bytes), Err(DiskError::TooLarge { len: 51, cap: 50 })));
    assert!(tier.is_empty());
}

#[test]
fn lru_eviction_order_follows_gets() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 30);
    let [a, b, c, d, e] = [1, 2, 3, 4, 5].map(|seed| object(seed, 10));
    for (id, bytes) in [&a, &b, &c] {
        assert_eq!(tier.put(id, bytes).unwrap(), Put::Stored { evicted: 0 });
    }
    assert!(tier.get(&a.0).unwrap().is_some()); // a is now the most recently used
    assert_eq!(tier.put(&d.0, &d.1).unwrap(), Put::Stored { evicted: 1 });
    assert!(!tier.contains(&b.0));
    assert_eq!(tier.put(&c.0, &c.1).unwrap(), Put::Present); // so is c
    assert_eq!(tier.put(&e.0, &e.1).unwrap(), Put::Stored { evicted: 1 });
    assert!(!tier.contains(&a.0));
    for held in [&c, &d, &e] {
        assert!(tier.contains(&held.0));
    }
    assert_eq!(tier.used(), 30);
    let counters = tier.counters();
    assert_eq!((counters.evictions, counters.evicted_bytes), (2, 20));
    assert!(!tier.object_path(&a.0).exists() && !tier.object_path(&b.0).exists());
}

#[test]
fn reopen_rebuilds_index() {
    let dir = TempDir::new();
    let objects: Vec<_> = (0..5).map(|seed| object(seed, 10 + usize::from(seed))).collect();
    {
        let mut tier = open(&dir, 1000);
        for (id, bytes) in &objects {
            tier.put(id, bytes).unwrap();
        }
    }
    let mut tier = open(&dir, 1000);
    assert_eq!((tier.len(), tier.used()), (5, 60));
    assert_eq!(tier.counters().stray_files_removed, 0);
    for (id, bytes) in &objects {
        assert_eq!(tier.get(id).unwrap().as_ref(), Some(bytes));
    }
}

#[test]
fn reopen_with_smaller_cap_evicts_oldest_first() {
    let dir = TempDir::new();
    let [a, b, c] = [1, 2, 3].map(|seed| object(seed, 10));
    {
        let mut tier = open(&dir, 1000);
        for (id, bytes) in [&a, &b, &c] {
            tier.put(id, bytes).unwrap();
        }
        // Stored in the order b, c, a: b is the least recently used after a restart.
        for ((id, _), seconds) in [(&a, 3000), (&b, 1000), (&c, 2000)] {
            set_mtime(&tier.object_path(id), seconds);
        }
    }
    let mut tier = open(&dir, 20);
    assert_eq!((tier.len(), tier.used()), (2, 20));
    assert!(!tier.contains(&b.0));
    assert!(!tier.object_path(&b.0).exists());
    assert_eq!(tier.counters().evictions, 1);
    // Then c, stored before a, goes next.
    let (d, d_bytes) = object(4, 10);
    tier.put(&d, &d_bytes).unwrap();
    assert!(!tier.contains(&c.0));
    assert!(tier.contains(&a.0));
}

#[test]
fn truncated_file_detected_on_get() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (id, bytes) = object(1, 100);
    tier.put(&id, &bytes).unwrap();
    let path = tier.object_path(&id);
    File::options().write(true).open(&path).unwrap().set_len(50).unwrap();

    assert_eq!(tier.get(&id).unwrap(), None);
    assert!(!tier.contains(&id));
    assert!(!path.exists());
    assert_eq!(tier.used(), 0);
    assert_eq!((tier.counters().corrupt, tier.counters().misses), (1, 1));
    // Stored again, it reads back.
    assert_eq!(tier.put(&id, &bytes).unwrap(), Put::Stored { evicted: 0 });
    assert_eq!(tier.get(&id).unwrap(), Some(bytes));
}

#[test]
fn flipped_byte_detected_on_get() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (id, bytes) = object(1, 100);
    tier.put(&id, &bytes).unwrap();
    let path = tier.object_path(&id);
    let mut rotten = bytes.clone();
    rotten[42] ^= 0x01;
    fs::write(&path, &rotten).unwrap();

    assert_eq!(tier.get(&id).unwrap(), None);
    assert!(!path.exists());
    assert!(tier.is_empty());
    assert_eq!(tier.counters().corrupt, 1);
}

#[test]
fn vanished_or_grown_file_detected_on_get() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (a, a_bytes) = object(1, 100);
    let (b, b_bytes) = object(2, 100);
    tier.put(&a, &a_bytes).unwrap();
    tier.put(&b, &b_bytes).unwrap();
    fs::remove_file(tier.object_path(&a)).unwrap();
    fs::write(tier.object_path(&b), [b_bytes.as_slice(), b"more"].concat()).unwrap();

    assert_eq!(tier.get(&a).unwrap(), None);
    assert_eq!(tier.get(&b).unwrap(), None);
    assert!(tier.is_empty());
    assert!(!tier.object_path(&b).exists());
    assert_eq!(tier.counters().corrupt, 2);
}

#[test]
fn stray_files_removed_at_open() {
    let dir = TempDir::new();
    let (id, bytes) = object(1, 100);
    let hex = to_hex(&id);
    {
        let mut tier = open(&dir, 1000);
        tier.put(&id, &bytes).unwrap();
    }
    let objects = dir.0.join(OBJECTS);
    let shard = objects.join(&hex[..2]);
    let (other, _) = object(2, 10);
    let other_hex = to_hex(&other);
    let wrong_shard = if &other_hex[..2] == "00" { "01" } else { "00" };
    fs::create_dir_all(objects.join(wrong_shard)).unwrap();
    fs::create_dir_all(objects.join("zz")).unwrap();
    fs::create_dir_all(shard.join(&other_hex[..2])).unwrap(); // a directory where a file belongs
    let strays = [
        dir.0.join(TMP).join("7"),
        dir.0.join(TMP).join("leftover"),
        objects.join("README"),
        objects.join("zz").join(&other_hex), // a bad shard, removed whole
        shard.join("not-an-object"),
        shard.join(hex.to_uppercase()),
        objects.join(wrong_shard).join(&other_hex),
    ];
    for path in &strays {
        fs::write(path, b"junk").unwrap();
    }
    let (empty, _) = object(3, 10); // a name only: the file is empty
    let empty_path = objects.join(&to_hex(&empty)[..2]).join(to_hex(&empty));
    fs::create_dir_all(empty_path.parent().unwrap()).unwrap();
    fs::write(&empty_path, b"").unwrap();
    let (huge, _) = object(4, 10);
    let huge_path = objects.join(&to_hex(&huge)[..2]).join(to_hex(&huge));
    fs::create_dir_all(huge_path.parent().unwrap()).unwrap();
    File::create(&huge_path).unwrap().set_len(MAX_OBJECT_LEN + 1).unwrap(); // sparse

    let mut tier = open(&dir, 1000);
    // The strays, minus the file inside "zz" (removed with it), plus "zz", the directory, the
    // empty file and the huge one.
    assert_eq!(tier.counters().stray_files_removed, strays.len() as u64 - 1 + 4);
    for path in strays.iter().chain([&empty_path, &huge_path, &shard.join(&other_hex[..2])]) {
        assert!(!path.exists(), "{} survived", path.display());
    }
    assert_eq!((tier.len(), tier.used()), (1, 100));
    assert_eq!(tier.get(&id).unwrap(), Some(bytes));
    assert_eq!(tmp_files(&tier), 0);
}

#[test]
fn meta_round_trip() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 10);
    assert_eq!(tier.get_meta("catalog.json").unwrap(), None);
    tier.put_meta("catalog.json", b"{\"assets\":[]}").unwrap();
    tier.put_meta("catalog.json", b"{\"assets\":[1]}").unwrap();
    tier.put_meta("peers_v1-2", &[0; 100]).unwrap(); // not counted against the cap of 10
    assert_eq!(tier.get_meta("catalog.json").unwrap().as_deref(), Some(&b"{\"assets\":[1]}"[..]));
    assert_eq!(tier.meta_names().unwrap(), ["catalog.json", "peers_v1-2"]);
    assert_eq!(tier.used(), 0);
    assert!(tier.remove_meta("catalog.json").unwrap());
    assert!(!tier.remove_meta("catalog.json").unwrap());
    assert_eq!(tier.meta_names().unwrap(), ["peers_v1-2"]);
    assert_eq!(tmp_files(&tier), 0);
    drop(tier);
    assert_eq!(open(&dir, 10).get_meta("peers_v1-2").unwrap(), Some(vec![0; 100]));
}

#[test]
fn meta_bad_names_and_sizes_refused() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 10);
    let long = "a".repeat(101);
    for name in ["", ".", "..", "a/b", "../escape", "spa ce", "é", long.as_str()] {
        assert!(matches!(tier.put_meta(name, b"x"), Err(DiskError::BadName(_))), "{name:?}");
        assert!(matches!(tier.get_meta(name), Err(DiskError::BadName(_))), "{name:?}");
        assert!(matches!(tier.remove_meta(name), Err(DiskError::BadName(_))), "{name:?}");
    }
    tier.put_meta(&"a".repeat(100), b"x").unwrap();
    let big = vec![0; MAX_META_LEN + 1];
    assert!(matches!(tier.put_meta("big", &big), Err(DiskError::TooLarge { .. })));
    fs::write(dir.0.join(META).join("big"), &big).unwrap(); // by hand
    assert!(matches!(tier.get_meta("big"), Err(DiskError::TooLarge { .. })));
    fs::write(dir.0.join(META).join("bad name"), b"x").unwrap();
    assert_eq!(tier.meta_names().unwrap(), ["a".repeat(100), "big".to_owned()]);
}

#[test]
fn write_failure_evicts_and_retries() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 100);
    let [a, b, c] = [1, 2, 3].map(|seed| object(seed, 10));
    for (id, bytes) in [&a, &b, &c] {
        tier.put(id, bytes).unwrap();
    }
    tier.tmp.write = full_disk(1);
    let (big, big_bytes) = object(4, 15);
    // Fits under the cap, but the disk is "full": a and b (20 >= 15 bytes) make room.
    assert_eq!(tier.put(&big, &big_bytes).unwrap(), Put::Stored { evicted: 2 });
    assert!(!tier.contains(&a.0) && !tier.contains(&b.0) && tier.contains(&c.0));
    assert!(!tier.object_path(&a.0).exists());
    assert_eq!(tier.get(&big).unwrap(), Some(big_bytes));
    assert_eq!(tier.used(), 25);
    let counters = tier.counters();
    assert_eq!((counters.evictions, counters.write_errors, counters.puts), (2, 0, 4));
    assert_eq!(tmp_files(&tier), 0);
}

#[test]
fn write_failure_twice_returns_error_and_leaves_no_temp_file() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 100);
    let (a, a_bytes) = object(1, 10);
    tier.put(&a, &a_bytes).unwrap();
    tier.tmp.write = full_disk(2);
    let (id, bytes) = object(2, 5);
    // Worth less than its length, a still goes: at least one object is evicted.
    match tier.put(&id, &bytes) {
        Err(DiskError::Io { action: "write", source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::StorageFull)
        }
        other => panic!("expected a write error, got {other:?}"),
    }
    assert!(tier.is_empty());
    assert_eq!(tier.used(), 0);
    assert!(!tier.object_path(&id).exists());
    assert_eq!(tmp_files(&tier), 0);
    let counters = tier.counters();
    assert_eq!((counters.evictions, counters.write_errors, counters.puts), (1, 1, 1));

    // With nothing left to evict, it still retries once, then gives up.
    tier.tmp.write = full_disk(2);
    assert!(matches!(tier.put(&id, &bytes), Err(DiskError::Io { .. })));
    assert_eq!(tier.counters().write_errors, 2);
    assert_eq!(tmp_files(&tier), 0);
    // And once the disk has room again, the put succeeds.
    assert_eq!(tier.put(&id, &bytes).unwrap(), Put::Stored { evicted: 0 });
}

#[test]
fn write_error_other_than_full_disk_evicts_nothing() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 100);
    let (a, a_bytes) = object(1, 10);
    tier.put(&a, &a_bytes).unwrap();
    let (id, bytes) = object(2, 10);
    let kinds = [io::ErrorKind::Other, io::ErrorKind::PermissionDenied, io::ErrorKind::ReadOnlyFilesystem];
    for (n, kind) in kinds.into_iter().enumerate() {
        tier.tmp.write = failing(1, kind);
        match tier.put(&id, &bytes) {
            Err(error @ DiskError::Io { action: "write", .. }) => assert!(!error.is_disk_full()),
            other => panic!("expected a write error, got {other:?}"),
        }
        assert!(tier.contains(&a) && !tier.contains(&id));
        assert_eq!(tier.used(), 10);
        let counters = tier.counters();
        assert_eq!((counters.evictions, counters.write_errors), (0, n as u64 + 1));
        assert_eq!(tmp_files(&tier), 0);
    }
    // The one failure was not retried: the next write succeeds without evicting.
    assert_eq!(tier.put(&id, &bytes).unwrap(), Put::Stored { evicted: 0 });
}

#[test]
fn disk_full_is_enospc_or_edquot() {
    let io = |source| DiskError::Io { action: "write", path: PathBuf::new(), source };
    assert!(io(io::Error::from(io::ErrorKind::StorageFull)).is_disk_full());
    assert!(io(io::Error::from(io::ErrorKind::QuotaExceeded)).is_disk_full());
    assert!(!io(io::Error::from(io::ErrorKind::Other)).is_disk_full());
    assert!(!DiskError::Mismatch.is_disk_full());
    #[cfg(target_os = "linux")]
    {
        let (enospc, edquot, eio, erofs) = (28, 122, 5, 30);
        assert!(io(io::Error::from_raw_os_error(enospc)).is_disk_full());
        assert!(io(io::Error::from_raw_os_error(edquot)).is_disk_full());
        assert!(!io(io::Error::from_raw_os_error(eio)).is_disk_full());
        assert!(!io(io::Error::from_raw_os_error(erofs)).is_disk_full());
    }
}

#[test]
fn lookup_read_verified_touch_round_trip() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 20);
    let [a, b, c] = [1, 2, 3].map(|seed| object(seed, 10));
    tier.put(&a.0, &a.1).unwrap();
    tier.put(&b.0, &b.1).unwrap();

    let found = tier.lookup(&a.0).expect("a is held");
    assert_eq!(found, ObjectRef { path: tier.object_path(&a.0), len: 10 });
    match DiskTier::read_verified(&found, &a.0) {
        ReadOutcome::Ok(bytes) => assert_eq!(bytes, a.1),
        other => panic!("expected the bytes, got {other:?}"),
    }
    tier.touch(&a.0); // a is now the most recently used: b goes first
    assert_eq!(tier.put(&c.0, &c.1).unwrap(), Put::Stored { evicted: 1 });
    assert!(tier.contains(&a.0) && !tier.contains(&b.0));

    assert_eq!(tier.lookup(&b.0), None);
    let counters = tier.counters();
    assert_eq!((counters.hits, counters.misses, counters.corrupt), (1, 1, 0));
}

#[test]
fn read_verified_truncated_is_corrupt_and_forget_corrupt_updates_used() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (a, a_bytes) = object(1, 100);
    let (b, b_bytes) = object(2, 30);
    tier.put(&a, &a_bytes).unwrap();
    tier.put(&b, &b_bytes).unwrap();
    let found = tier.lookup(&a).unwrap();
    File::options().write(true).open(&found.path).unwrap().set_len(50).unwrap();

    assert!(matches!(DiskTier::read_verified(&found, &a), ReadOutcome::Corrupt));
    tier.forget_corrupt(&a);
    assert!(!tier.contains(&a) && !found.path.exists());
    assert_eq!((tier.len(), tier.used()), (1, 30));
    assert_eq!((tier.counters().corrupt, tier.counters().misses), (1, 1));
    // Called again (another thread read the same torn file): a miss, nothing else.
    tier.forget_corrupt(&a);
    assert_eq!((tier.len(), tier.used()), (1, 30));
    assert_eq!((tier.counters().corrupt, tier.counters().misses), (1, 2));
}

#[test]
fn forget_corrupt_after_eviction_keeps_accounting() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (a, a_bytes) = object(1, 100);
    tier.put(&a, &a_bytes).unwrap();

    // Evicted between lookup and read: the file vanished, nothing is held to drop.
    let found = tier.lookup(&a).unwrap();
    assert!(tier.remove(&a));
    assert!(matches!(DiskTier::read_verified(&found, &a), ReadOutcome::Corrupt));
    tier.forget_corrupt(&a);
    assert_eq!((tier.used(), tier.counters().corrupt, tier.counters().misses), (0, 0, 1));

    // Evicted and stored again: the new copy is dropped (approximate), the books stay exact.
    tier.put(&a, &a_bytes).unwrap();
    tier.forget_corrupt(&a);
    assert!(!tier.contains(&a) && !tier.object_path(&a).exists());
    assert_eq!((tier.len(), tier.used()), (0, 0));
    assert_eq!(tier.put(&a, &a_bytes).unwrap(), Put::Stored { evicted: 0 });
    assert_eq!(tier.used(), 100);
}

#[test]
fn read_error_keeps_the_object() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 1000);
    let (id, bytes) = object(1, 100);
    tier.put(&id, &bytes).unwrap();
    let found = tier.lookup(&id).unwrap();
    // A directory where the file was: opening works, reading fails (EISDIR), as a failing disk would.
    fs::remove_file(&found.path).unwrap();
    fs::create_dir(&found.path).unwrap();

    assert!(matches!(
        DiskTier::read_verified(&found, &id),
        ReadOutcome::Err(DiskError::Io { action: "read", .. })
    ));
    assert!(matches!(tier.get(&id), Err(DiskError::Io { action: "read", .. })));
    assert!(tier.contains(&id));
    assert_eq!(tier.used(), 100);
    assert_eq!((tier.counters().corrupt, tier.counters().misses, tier.counters().hits), (0, 0, 0));
}

#[test]
fn stage_then_commit() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 20);
    let [a, b, c] = [1, 2, 3].map(|seed| object(seed, 10));
    tier.put(&a.0, &a.1).unwrap();
    tier.put(&b.0, &b.1).unwrap();
    let tmp = tier.tmp_dir();
    assert_eq!(tmp.path(), dir.0.join(TMP));

    let staged = DiskTier::stage(&tmp, &c.0, &c.1).unwrap();
    assert_eq!(staged.id(), &c.0);
    assert!(staged.path().is_file());
    assert_eq!((tmp_files(&tier), tier.used()), (1, 20)); // not counted until committed
    assert_eq!(tier.commit(staged).unwrap(), Put::Stored { evicted: 1 });
    assert!(!tier.contains(&a.0) && tier.contains(&c.0));
    assert_eq!((tmp_files(&tier), tier.used()), (0, 20));
    assert_eq!(tier.get(&c.0).unwrap(), Some(c.1));
    assert_eq!(tier.counters().puts, 3);

    // Refused as put refuses them, with nothing written.
    let (d, d_bytes) = object(4, 21);
    assert!(matches!(DiskTier::stage(&tmp, &d, &d_bytes), Err(DiskError::TooLarge { len: 21, cap: 20 })));
    assert!(matches!(DiskTier::stage(&tmp, &d, &a.1), Err(DiskError::Mismatch)));
    assert!(matches!(DiskTier::stage(&tmp, &content_id(&[]), &[]), Err(DiskError::Empty)));
    assert_eq!(tmp_files(&tier), 0);
}

#[test]
fn staged_dropped_without_commit_leaves_no_temp_file() {
    let dir = TempDir::new();
    let tier = open(&dir, 100);
    let (id, bytes) = object(1, 10);
    let staged = DiskTier::stage(&tier.tmp_dir(), &id, &bytes).unwrap();
    let path = staged.path().to_path_buf();
    assert!(path.is_file());
    drop(staged);
    assert!(!path.exists());
    assert_eq!(tmp_files(&tier), 0);
    assert!(!tier.contains(&id));
}

#[test]
fn commit_of_object_already_held_is_present_and_leaves_no_temp_file() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 20);
    let [a, b, c] = [1, 2, 3].map(|seed| object(seed, 10));
    tier.put(&a.0, &a.1).unwrap();
    // Staged while another thread stores the same object.
    let staged = DiskTier::stage(&tier.tmp_dir(), &a.0, &a.1).unwrap();
    tier.put(&b.0, &b.1).unwrap();
    assert_eq!(tier.commit(staged).unwrap(), Put::Present);
    assert_eq!(tmp_files(&tier), 0);
    assert_eq!((tier.len(), tier.used(), tier.counters().puts), (2, 20, 2));
    // And it became the most recently used: b goes first.
    tier.put(&c.0, &c.1).unwrap();
    assert!(tier.contains(&a.0) && !tier.contains(&b.0));
    assert_eq!(tier.get(&a.0).unwrap(), Some(a.1));
}

#[test]
fn stage_on_full_disk_then_make_room_and_stage_again() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 100);
    let [a, b, c] = [1, 2, 3].map(|seed| object(seed, 10));
    for (id, bytes) in [&a, &b, &c] {
        tier.put(id, bytes).unwrap();
    }
    tier.tmp.write = full_disk(1);
    let tmp = tier.tmp_dir();
    let (big, big_bytes) = object(4, 15);
    let error = DiskTier::stage(&tmp, &big, &big_bytes).unwrap_err();
    assert!(error.is_disk_full(), "{error}");
    assert_eq!(tmp_files(&tier), 0);
    assert_eq!(tier.make_room(15), 2);
    let staged = DiskTier::stage(&tmp, &big, &big_bytes).unwrap();
    assert_eq!(tier.commit(staged).unwrap(), Put::Stored { evicted: 0 });
    assert!(!tier.contains(&a.0) && !tier.contains(&b.0) && tier.contains(&c.0));
    assert_eq!((tier.used(), tier.counters().evictions, tier.counters().write_errors), (25, 2, 0));
    // With nothing held, make_room evicts nothing.
    tier.remove(&c.0);
    tier.remove(&big);
    assert_eq!(tier.make_room(1), 0);
}

#[test]
fn temp_names_are_unique_across_threads() {
    let dir = TempDir::new();
    let tier = open(&dir, 1 << 20);
    let tmp = tier.tmp_dir();
    let staged: Vec<Staged> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8u8)
            .map(|thread| {
                let tmp = &tmp;
                scope.spawn(move || {
                    (0..16u8)
                        .map(|i| {
                            let (id, bytes) = object(thread * 16 + i, 10);
                            DiskTier::stage(tmp, &id, &bytes).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let mut paths: Vec<_> = staged.iter().map(|s| s.path().to_path_buf()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!((paths.len(), tmp_files(&tier)), (128, 128));
    drop(staged);
    assert_eq!(tmp_files(&tier), 0);
}

#[test]
fn meta_on_full_disk_evicts_and_retries() {
    let dir = TempDir::new();
    let mut tier = open(&dir, 100);
    let [a, b, c] = [1, 2, 3].map(|seed| object(seed, 10));
    for (id, bytes) in [&a, &b, &c] {
        tier.put(id, bytes).unwrap();
    }
    tier.tmp.write = full_disk(1);
    tier.put_meta("catalog", &[7; 15]).unwrap();
    assert_eq!(tier.get_meta("catalog").unwrap(), Some(vec![7; 15]));
    assert!(!tier.contains(&a.0) && !tier.contains(&b.0) && tier.contains(&c.0));
    assert_eq!((tier.used(), tier.counters().evictions), (10, 2));
    assert_eq!(tmp_files(&tier), 0);

    // Full twice: an error, the old version kept, the last object gone.
    tier.tmp.write = full_disk(2);
    let error = tier.put_meta("catalog", &[8; 15]).unwrap_err();
    assert!(error.is_disk_full(), "{error}");
    assert_eq!(tier.get_meta("catalog").unwrap(), Some(vec![7; 15]));
    assert!(tier.is_empty());
    assert_eq!(tmp_files(&tier), 0);

    // Any other error: no eviction, no retry.
    tier.put(&a.0, &a.1).unwrap();
    tier.tmp.write = failing(1, io::ErrorKind::PermissionDenied);
    assert!(tier.put_meta("catalog", &[9; 15]).is_err());
    assert!(tier.contains(&a.0));
    assert_eq!(tier.counters().evictions, 3);
    tier.put_meta("catalog", &[9; 15]).unwrap();
    assert_eq!(tier.get_meta("catalog").unwrap(), Some(vec![9; 15]));
}

#[derive(Clone, Debug)]
enum Op {
    Put(usize),
    Get(usize),
    Remove(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..8usize).prop_map(Op::Put),
        2 => (0..8usize).prop_map(Op::Get),
        1 => (0..8usize).prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Against a model LRU list: the same objects are held, in the same eviction order, and
    /// the cap is never exceeded; a reopen finds the same objects.
    #[test]
    fn matches_model_lru_and_never_exceeds_cap(
        lens in proptest::collection::vec(1..=40usize, 8),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        const CAP: u64 = 100;
        let dir = TempDir::new();
        let mut tier = open(&dir, CAP);
        let objects: Vec<_> = lens.iter().enumerate().map(|(i, &len)| object(i as u8, len)).collect();
        let mut model: Vec<usize> = Vec::new(); // least recently used first
        let model_used = |model: &[usize]| model.iter().map(|&i| objects[i].1.len() as u64).sum::<u64>();
        for op in ops {
            match op {
                Op::Put(i) => {
                    if let Some(at) = model.iter().position(|&m| m == i) {
                        model.remove(at);
                    } else {
                        while model_used(&model) + objects[i].1.len() as u64 > CAP {
                            model.remove(0);
                        }
                    }
                    model.push(i);
                    tier.put(&objects[i].0, &objects[i].1).unwrap();
                }
                Op::Get(i) => {
                    let held = model.iter().position(|&m| m == i);
                    if let Some(at) = held {
                        model.remove(at);
                        model.push(i);
                    }
                    prop_assert_eq!(tier.get(&objects[i].0).unwrap().is_some(), held.is_some());
                }
                Op::Remove(i) => {
                    let held = model.iter().position(|&m| m == i);
                    if let Some(at) = held {
                        model.remove(at);
                    }
                    prop_assert_eq!(tier.remove(&objects[i].0), held.is_some());
                }
            }
            prop_assert!(tier.used() <= CAP);
            prop_assert_eq!(tier.used(), model_used(&model));
            for (i, (id, _)) in objects.iter().enumerate() {
                prop_assert_eq!(tier.contains(id), model.contains(&i));
            }
        }
        drop(tier);
        let tier = open(&dir, CAP);
        prop_assert_eq!(tier.used(), model_used(&model));
        prop_assert_eq!(tier.len(), model.len());
    }
}
