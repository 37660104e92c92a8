//! A LAN of Shoal boxes inside one machine, for integration tests.
//!
//! A [`Bed`] is a bridge in a network namespace of its own plus N host namespaces, each joined
//! to the bridge by a veth pair whose host end is `eth0` with address `10.99.0.<i+1>/24`, `lo`
//! up, IPv6 duplicate-address detection off (so link-local addresses are usable at once) and a
//! route for 224.0.0.0/4 on `eth0` (for raw multicast senders). Nothing is added to the root
//! namespace and no host has a route towards the machine's own `eth0`, so mDNS, multicast and
//! everything else a test sends stays inside the bed (the network safety rule of
//! `docs/TESTING.md`).
//!
//! [`Bed::loopback`] makes the smallest bed: one host whose namespace has nothing but `lo` (up,
//! multicast on, the 224.0.0.0/4 route on it), for programs that talk over 127.0.0.1, mDNS
//! included, and must not reach anything else. Its host's [`Bed::ip`] is 127.0.0.1.
//!
//! Each bed's namespaces are named after the test process's PID and a per-process counter
//! (`sb<pid hex>-<n hex>sw` for the bridge, `sb<pid hex>-<n hex>h<i>` for host `i`,
//! `sb<pid hex>-<n hex>lo` for a loopback bed's one namespace), so tests
//! running in parallel, in threads or processes, never share anything; addresses repeat across
//! beds because each bed is its own network.
//!
//! Programs run inside a host with [`Bed::spawn`] (long-running, logged to a file) or
//! [`Bed::exec`] (short, output collected). Every process is bounded in time, and dropping the
//! bed, including during a panic's unwinding, kills every process inside its namespaces by PID
//! and deletes the namespaces. Namespaces left behind by a test process that was killed outright
//! are removed by the next process that builds a bed.
//!
//! An [`Origin`] is a live HLS origin on a host: ffmpeg loops a test clip
//! ([`encode_clip`]) as live HLS (MPEG-TS or fMP4, optionally several variants under a master
//! playlist) and `origin.py` serves it over HTTP, or HTTPS with a throw-away CA
//! ([`make_test_ca`]), logging every request and truncating segments on demand; see the
//! [`origin`] module. [`Origin::start_static`] serves fixed files instead, such as an
//! on-demand asset made once by [`encode_vod_asset`] (see the [`vod`] module).
//!
//! Needs root and iproute2; [`Bed::set_loss`] needs nftables, [`Bed::set_rate`] `tc`,
//! [`Bed::http_get`] curl, and an [`Origin`] ffmpeg, python3 and (for HTTPS) openssl. Tests call
//! [`skip_reason`] first:
//!
//! ```no_run
//! use std::time::Duration;
//! use shoal_testbed::{skip_reason, Bed};
//!
//! if let Some(reason) = skip_reason() {
//!     eprintln!("skipped: {reason}");
//!     return;
//! }
//! let mut bed = Bed::new(3).unwrap();
//! bed.set_loss(0, 5).unwrap(); // host 0 drops 5 % of what it sends
//! let out = bed.exec(1, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"], Duration::from_secs(5)).unwrap();
//! assert!(String::from_utf8_lossy(&out.stdout).contains("10.99.0.2/24"));
//! // dropped here: processes killed, namespaces deleted
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod build;
mod ca;
mod command;
mod error;
mod exec;
mod impair;
pub mod media;
pub mod origin;
mod process;
mod system;
pub mod vod;

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use ca::{make_test_ca, TestCa, ORIGIN_DNS_NAME};
pub use error::BedError;
pub use media::{encode_clip, ClipSpec};
pub use origin::{AccessEntry, Fault, Origin, OriginOptions, Truncation};
pub use process::{ProcessId, Signal, DEFAULT_PROCESS_LIFETIME};
pub use system::is_root;
pub use vod::{encode_vod_asset, VodAsset, VodSpec, VOD_PLAYLIST};

use process::Spawned;

/// Why the tests that need a bed cannot run on this machine, or `None` when they can.
///
/// `None` means: running as root, `ip` (iproute2) installed, and a network namespace could be
/// created and deleted. Otherwise the message says what is missing; a test prints it and
/// returns. Computed once per process.
pub fn skip_reason() -> Option<String> {
    system::prepare().err()
}

/// The most hosts a bed holds: addresses run from 10.99.0.1 to 10.99.0.254.
pub const MAX_HOSTS: usize = 254;

/// Time limit for each `ip`, `nft` or `tc` command the bed runs itself; they normally take a few
/// milliseconds, so hitting it means something is stuck.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

/// A LAN of hosts in network namespaces on one bridge; see the [crate documentation](crate).
///
/// Dropping it kills its processes and deletes its namespaces.
#[derive(Debug)]
pub struct Bed {
    /// This process's number for the bed; also stamped on its [`ProcessId`]s.
    number: u32,
    /// Start of every namespace name of this bed.
    prefix: String,
    /// The namespace holding the bridge `br0`; `None` for a loopback bed, which has none.
    bridge: Option<String>,
    hosts: Vec<Host>,
    /// Every namespace this bed created or tried to create, in creation order: what teardown
    /// deletes, and where it looks for processes.
    made: Vec<String>,
    processes: Vec<Spawned>,
    /// A private directory for pid files, removed with the bed.
    scratch: PathBuf,
    /// What [`Bed::spawn`] gives `timeout`.
    lifetime: Duration,
    /// How many files the bed has named in `scratch` (`ip -batch` files, pid files): names are
    /// never reused, so a file left by a failed step cannot be mistaken for a new one.
    scratch_files: usize,
}

#[derive(Debug)]
struct Host {
    namespace: String,
    ip: Ipv4Addr,
}

impl Bed {
    /// How many hosts the bed has.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Host `host`'s address on the bed's LAN: `10.99.0.<host+1>` (127.0.0.1 on a
    /// [loopback bed](Bed::loopback)).
    ///
    /// # Panics
    ///
    /// If `host` is not below [`Bed::hosts`]: that is a bug in the test.
    pub fn ip(&self, host: usize) -> Ipv4Addr {
        self.hosts[host].ip
    }

    /// The name of host `host`'s network namespace, for `ip netns exec <name>` or
    /// `ip -n <name>`.
    ///
    /// # Panics
    ///
    /// If `host` is not below [`Bed::hosts`]: that is a bug in the test.
    pub fn namespace(&self, host: usize) -> &str {
        &self.hosts[host].namespace
    }

    /// The name of the namespace that holds the bridge `br0` (and the host ports `vb<i>`).
    ///
    /// # Panics
    ///
    /// On a [loopback bed](Bed::loopback), which has no bridge: that is a bug in the test.
    pub fn bridge_namespace(&self) -> &str {
        self.bridge.as_deref().expect("a loopback bed has no bridge")
    }

    /// Whether this is a [loopback bed](Bed::loopback): one host, only `lo`, no bridge.
    pub fn is_loopback(&self) -> bool {
        self.bridge.is_none()
    }

    fn host(&self, host: usize) -> Result<&Host, BedError> {
        self.hosts.get(host).ok_or(BedError::NoSuchHost { host, hosts: self.hosts.len() })
    }
}

impl Drop for Bed {
    /// Kills every process in the bed's namespaces (SIGTERM, SIGKILL 2 s later, by PID), then
    /// deletes the namespaces and the scratch directory, ignoring errors: a drop cannot report
    /// them, and it may run while a failed test unwinds.
    fn drop(&mut self) {
        self.kill_everything();
        self.delete_namespaces();
        let _ = fs::remove_dir_all(&self.scratch);
    }
}
