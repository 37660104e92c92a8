//! What the bed needs from the machine: root, `ip`, permission to make namespaces; naming of the
//! namespaces; finding the processes inside them; removing what a killed test run left behind.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{self, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::command::{self, FLOCK, IP, KILL};

/// Where `ip netns` keeps one file per named namespace (iproute2's `NETNS_RUN_DIR`).
pub(crate) const NETNS_DIR: &str = "/var/run/netns";

/// Every namespace name of this crate starts with this, then the owner's PID in hex, `-`, and
/// the bed's number in hex; the rest is [`BRIDGE_SUFFIX`], `h<host index>`, [`LOOPBACK_SUFFIX`]
/// or `probe`. Short, so
/// that a name stays within 15 bytes (the kernel's interface-name limit) for beds with fewer than
/// 100 hosts while PIDs stay below 2^24; it is also how a later run recognises leftovers.
const NAME_PREFIX: &str = "sb";
/// Suffix of the namespace holding the bridge ("switch"): not a hex digit, so names parse back.
pub(crate) const BRIDGE_SUFFIX: &str = "sw";
/// Suffix of the one namespace of a loopback-only bed ([`Bed::loopback`](crate::Bed::loopback)).
pub(crate) const LOOPBACK_SUFFIX: &str = "lo";
const PROBE_SUFFIX: &str = "probe";

/// Bed numbers within this process; with the PID they make every bed's names unique on the
/// machine, however many test threads or processes run at once.
static NEXT_BED: AtomicU32 = AtomicU32::new(0);

/// A fresh bed number and the namespace-name prefix that goes with it.
pub(crate) fn next_prefix() -> (u32, String) {
    let number = NEXT_BED.fetch_add(1, Ordering::Relaxed);
    (number, format!("{NAME_PREFIX}{:x}-{number:x}", process::id()))
}

/// The PID that made the namespace `name`, if `name` is one of this crate's names.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let pid = u32::from_str_radix(pid, 16).ok()?;
    let suffix = rest.trim_start_matches(|c: char| c.is_ascii_hexdigit());
    let known = suffix == BRIDGE_SUFFIX
        || suffix == LOOPBACK_SUFFIX
        || suffix == PROBE_SUFFIX
        || suffix
            .strip_prefix('h')
            .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()));
    (known && suffix.len() < rest.len()).then_some(pid)
}

/// `Err(reason)` when this machine cannot run a bed, computed once per process. The first call
/// also makes `/var/run/netns` a shared mount point (serialised with `flock` across processes,
/// as two concurrent first `ip netns add` calls can stack two mounts and hide namespaces) and
/// removes namespaces left by test processes that died without cleaning up.
pub(crate) fn prepare() -> Result<(), String> {
    static PREPARED: OnceLock<Result<(), String>> = OnceLock::new();
    PREPARED.get_or_init(prepare_once).clone()
}

fn prepare_once() -> Result<(), String> {
    if !is_root() {
        return Err("not root: network namespaces need root (run the tests as root, \
                    e.g. with sudo -E)"
            .to_owned());
    }
    let ip = command::find(IP).map_err(|e| e.to_string())?;
    let (_, prefix) = next_prefix();
    let probe = format!("{prefix}{PROBE_SUFFIX}");
    let mut add = match command::find(FLOCK) {
        Ok(flock) if !netns_dir_is_mount() => {
            let mut flock = Command::new(flock);
            flock.args(["-w", "10", "/run/shoal-testbed.lock"]).arg(&ip);
            flock
        }
        _ => Command::new(&ip),
    };
    add.args(["netns", "add", &probe]);
    let added = command::run_ok(add, Duration::from_secs(15));
    let mut delete = Command::new(&ip);
    delete.args(["netns", "del", &probe]);
    // Ignoring the result: when `add` failed there is usually nothing to delete.
    let _ = command::run(delete, Duration::from_secs(10));
    if let Err(e) = added {
        return Err(format!("cannot create a network namespace: {e}"));
    }
    sweep_stale(&ip);
    Ok(())
}

/// Whether this process runs with effective UID 0 (read from `/proc`, to stay free of libc):
/// what a bed, and anything else that needs root in a test (mounting a tmpfs, dropping to
/// `nobody` to run VLC), asks first.
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

fn netns_dir_is_mount() -> bool {
    fs::read_to_string("/proc/self/mountinfo").is_ok_and(|mounts| {
        mounts.lines().any(|line| {
            let mount_point = line.split(' ').nth(4);
            mount_point == Some("/run/netns") || mount_point == Some(NETNS_DIR)
        })
    })
}

/// Deletes this crate's namespaces whose owning process is gone (a test run killed before its
/// beds were dropped), after killing whatever still runs inside them.
fn sweep_stale(ip: &Path) {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return;
    };
    let stale: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| owner(name).is_some_and(|pid| pid != process::id() && !is_alive(pid)))
        .collect();
    if stale.is_empty() {
        return;
    }
    signal_all(&pids_in_namespaces(&stale), "KILL");
    for name in &stale {
        let mut delete = Command::new(ip);
        delete.args(["netns", "del", name]);
        // Ignoring errors: another test process may be sweeping the same leftovers.
        let _ = command::run(delete, Duration::from_secs(10));
    }
}

/// Whether `ip netns` still lists the namespace `name`.
pub(crate) fn namespace_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// Whether `pid` is a live process (a zombie counts as dead: it only waits to be reaped).
pub(crate) fn is_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    let state = stat.rfind(')').and_then(|end| stat[end + 1..].trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// The PIDs of every live process whose network namespace is one of `names` (what
/// `ip netns pids` prints, for all of them in one pass over `/proc`).
pub(crate) fn pids_in_namespaces(names: &[String]) -> Vec<u32> {
    let inodes: HashSet<u64> = names
        .iter()
        .filter_map(|name| fs::metadata(Path::new(NETNS_DIR).join(name)).ok())
        .map(|meta| meta.ino())
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            // "net:[4026532321]"; unreadable for zombies and processes that just exited.
            let link = fs::read_link(entry.path().join("ns/net")).ok()?;
            let inode: u64 = link.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()?;
            (inodes.contains(&inode) && pid != process::id()).then_some(pid)
        })
        .collect()
}

/// Sends `signal` (a name such as `TERM`) to each of `pids` with one `kill` command, ignoring
/// failures: some of them may have exited in the meantime.
pub(crate) fn signal_all(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let Ok(kill) = command::find(KILL) else {
        return;
    };
    let mut command = Command::new(kill);
    command.arg(format!("-{signal}")).arg("--").args(pids.iter().map(u32::to_string));
    let _ = command::run(command, Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_processes_are_swept() {
        if let Err(reason) = prepare() {
            eprintln!("skipped: {reason}");
            return;
        }
        let ip = command::find(IP).unwrap();
        // No process has this PID: it is above the kernel's largest pid_max (2^22). A host of a
        // bridged bed and the namespace of a loopback bed.
        let names = ["0h0", "1lo"].map(|rest| format!("{NAME_PREFIX}{:x}-{rest}", (1u32 << 22) + 1));
        for name in &names {
            let mut add = Command::new(&ip);
            add.args(["netns", "add", name]);
            command::run_ok(add, Duration::from_secs(10)).unwrap();
            assert!(namespace_exists(name));
        }
        sweep_stale(&ip);
        for name in &names {
            assert!(!namespace_exists(name), "{name} was not swept");
        }
    }

    #[test]
    fn names_parse_back_to_their_owner() {
        assert_eq!(owner("sb1f3a-0sw"), Some(0x1f3a));
        assert_eq!(owner("sb1f3a-1bh12"), Some(0x1f3a));
        assert_eq!(owner("sb1f3a-2lo"), Some(0x1f3a));
        assert_eq!(owner("sb400000-ffprobe"), Some(0x40_0000));
        assert_eq!(owner("sb1f3a-sw"), None, "the bed number is missing");
        assert_eq!(owner("sb1f3a-lo"), None, "the bed number is missing");
        assert_eq!(owner("sb1f3a-0h"), None);
        assert_eq!(owner("sb1f3a-0br"), None);
        assert_eq!(owner("sbr"), None);
        assert_eq!(owner("s1"), None);
    }
}
