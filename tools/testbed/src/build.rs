//! Making and unmaking a bed's namespaces, bridge and veth pairs.
//!
//! The commands are those of `docs/TESTING.md` ("Network namespaces"), grouped into `ip -batch` files (one for
//! the root namespace, one per host, one for the bridge) because each `ip` start costs a few
//! milliseconds, mostly entering the namespace: a 4-host bed takes 8 `ip` runs instead of 40.

use std::fs;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{self, CAT, IP, SYSCTL, TIMEOUT};
use crate::system;
use crate::{Bed, BedError, Host, DEFAULT_PROCESS_LIFETIME, MAX_HOSTS, SETUP_LIMIT};

impl Bed {
    /// Builds a bed of `hosts` hosts (0 to [`MAX_HOSTS`]); host `i` has address `10.99.0.<i+1>`.
    ///
    /// On error, whatever was already made is removed again.
    pub fn new(hosts: usize) -> Result<Bed, BedError> {
        if hosts > MAX_HOSTS {
            return Err(too_many(hosts));
        }
        let mut bed = Bed::empty(hosts + 1)?;
        bed.bridge = Some(format!("{}{}", bed.prefix, system::BRIDGE_SUFFIX));
        bed.grow(hosts, true)?;
        Ok(bed)
    }

    /// Builds a loopback-only bed: one host (host 0) in a namespace of its own that has nothing
    /// but `lo`, up, with multicast on and the route for 224.0.0.0/4 (so mDNS and raw multicast
    /// senders work over 127.0.0.1). No bridge, no `eth0`: nothing run in it can reach another
    /// namespace or the machine's network. [`Bed::ip`] of host 0 is 127.0.0.1.
    ///
    /// Everything else works as on any bed: [`Bed::spawn`], [`Bed::exec`], [`Bed::http_get`],
    /// the time bounds and the teardown by PID. [`Bed::set_loss`] and [`Bed::set_rate`] fail
    /// (they act on `eth0`), and so does [`Bed::add_namespace_host`] (there is no bridge to join).
    pub fn loopback() -> Result<Bed, BedError> {
        let mut bed = Bed::empty(1)?;
        let host =
            Host { namespace: format!("{}{}", bed.prefix, system::LOOPBACK_SUFFIX), ip: Ipv4Addr::LOCALHOST };
        // Recorded before it exists, so that teardown removes it even if a step fails.
        bed.made.push(host.namespace.clone());
        bed.batch(None, &[format!("netns add {}", host.namespace)])?;
        let lines =
            ["link set lo up", "link set lo multicast on", "route add 224.0.0.0/4 dev lo src 127.0.0.1"];
        bed.batch(Some(&host.namespace), &lines.map(String::from))?;
        bed.hosts.push(host);
        Ok(bed)
    }

    /// A bed with no namespaces yet, room for `namespaces` of them, and its scratch directory.
    fn empty(namespaces: usize) -> Result<Bed, BedError> {
        system::prepare().map_err(BedError::Unsupported)?;
        command::find(IP)?;
        command::find(SYSCTL)?;
        command::find(TIMEOUT)?;
        let (number, prefix) = system::next_prefix();
        let scratch = std::env::temp_dir().join(format!("shoal-testbed-{prefix}"));
        fs::create_dir_all(&scratch)
            .map_err(|e| BedError::io(format!("cannot create {}", scratch.display()), e))?;
        // From here on, dropping the bed (an early return on error) undoes the work so far.
        Ok(Bed {
            number,
            bridge: None,
            prefix,
            hosts: Vec::with_capacity(namespaces),
            made: Vec::with_capacity(namespaces),
            processes: Vec::new(),
            scratch,
            lifetime: DEFAULT_PROCESS_LIFETIME,
            scratch_files: 0,
        })
    }

    /// Adds one more host to the bed, on the same bridge (a late joiner, or a host for a
    /// third-party peer such as Avahi), and returns its index.
    pub fn add_namespace_host(&mut self) -> Result<usize, BedError> {
        self.grow(1, false)?;
        Ok(self.hosts.len() - 1)
    }

    /// Adds `count` hosts, and first the bridge itself when `with_bridge`.
    fn grow(&mut self, count: usize, with_bridge: bool) -> Result<(), BedError> {
        let Some(bridge) = self.bridge.clone() else {
            return Err(BedError::InvalidArgument(
                "a loopback bed has no bridge: hosts cannot be added to it".to_owned(),
            ));
        };
        let first = self.hosts.len();
        if first + count > MAX_HOSTS {
            return Err(too_many(first + count));
        }
        let new: Vec<Host> = (first..first + count)
            .map(|index| Host {
                namespace: format!("{}h{index}", self.prefix),
                // `index < MAX_HOSTS` (254), checked above, so `index + 1` fits in a byte.
                ip: Ipv4Addr::new(10, 99, 0, (index + 1) as u8),
            })
            .collect();

        // Root namespace: create the namespaces, and turn off IPv6 duplicate address detection
        // in each host *before* its `eth0` exists: the kernel skips DAD only when both `all` and
        // the interface's own setting are 0, and an interface copies `default` when it is
        // created. (Set after the link is made, as a hand-written recipe would order it, eth0 keeps
        // accept_dad=1 and its link-local address stays tentative for ~1.6 s.)
        let sysctl = command::find(SYSCTL)?;
        let mut lines = Vec::new();
        if with_bridge {
            lines.push(format!("netns add {bridge}"));
            self.made.push(bridge.clone());
        }
        for host in &new {
            lines.push(format!("netns add {}", host.namespace));
            // Recorded before it exists, so that teardown removes it even if a step fails.
            self.made.push(host.namespace.clone());
        }
        for host in &new {
            lines.push(format!(
                "netns exec {} {} -qw net.ipv6.conf.all.accept_dad=0 \
                 net.ipv6.conf.default.accept_dad=0",
                host.namespace,
                sysctl.display()
            ));
        }
        self.batch(None, &lines)?;

        if with_bridge {
            // br0 before any veth. The order matters: were a port created
            // first, vb0 and host 0's eth0 would both get ifindex 2, each in its namespace; the
            // kernel then takes the veth's carrier change for a non-urgent link event, handled
            // up to a second later, and the port drops everything until then (measured: ~0.9 s).
            let lines = ["link set lo up", "link add br0 type bridge", "link set br0 up"];
            self.batch(Some(&bridge), &lines.map(String::from))?;
        }

        // Each host: loopback, its end of the veth pair (the other end goes to the bridge's
        // namespace as vb<i>), its address, and the multicast route for raw senders.
        for (offset, host) in new.iter().enumerate() {
            let index = first + offset;
            let lines = [
                "link set lo up".to_owned(),
                format!("link add eth0 type veth peer name vb{index} netns {bridge}"),
                format!("addr add {}/24 dev eth0", host.ip),
                "link set eth0 up".to_owned(),
                "route add 224.0.0.0/4 dev eth0".to_owned(),
            ];
            self.batch(Some(&host.namespace), &lines)?;
        }

        // The new ports on the bridge.
        let ports = first..first + count;
        let lines: Vec<String> = ports
            .clone()
            .flat_map(|i| [format!("link set vb{i} master br0"), format!("link set vb{i} up")])
            .collect();
        if !lines.is_empty() {
            self.batch(Some(&bridge), &lines)?;
        }
        self.wait_for_links(&new, ports)?;
        self.hosts.extend(new);
        Ok(())
    }

    /// Waits until the new hosts' `eth0` are up and the new bridge ports forward: the kernel
    /// finishes bringing a link up asynchronously, and a datagram sent before that is lost.
    /// Normally done by the first look; a look is one `ip -batch` that reads `/sys` inside each
    /// namespace.
    fn wait_for_links(&mut self, hosts: &[Host], ports: Range<usize>) -> Result<(), BedError> {
        if hosts.is_empty() {
            return Ok(());
        }
        let cat = command::find(CAT)?;
        let cat = cat.display();
        let mut lines: Vec<String> = hosts
            .iter()
            .map(|host| format!("netns exec {} {cat} /sys/class/net/eth0/operstate", host.namespace))
            .collect();
        let port_states: Vec<String> = ports.map(|i| format!("/sys/class/net/vb{i}/brport/state")).collect();
        lines.push(format!("netns exec {} {cat} {}", self.bridge_namespace(), port_states.join(" ")));
        // "up" per host, then 3 (BR_STATE_FORWARDING) per port.
        let ready: Vec<&str> = hosts.iter().map(|_| "up").chain(port_states.iter().map(|_| "3")).collect();
        let deadline = Instant::now() + LINK_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            let file = self.scratch_file("ip");
            fs::write(&file, lines.join("\n") + "\n")
                .map_err(|e| BedError::io(format!("cannot write {}", file.display()), e))?;
            let mut ip = Command::new(command::find(IP)?);
            ip.arg("-batch").arg(&file);
            let output = command::run_ok(ip, SETUP_LIMIT);
            let _ = fs::remove_file(&file);
            let output = output?;
            let states = String::from_utf8_lossy(&output.stdout);
            if states.split_whitespace().eq(ready.iter().copied()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BedError::TimedOut {
                    command: "waiting for the bed's links to come up".to_owned(),
                    after: LINK_WAIT,
                    output: format!(
                        "eth0 operstate per host, then bridge port states (3 = forwarding): {}",
                        states.split_whitespace().collect::<Vec<_>>().join(" ")
                    ),
                });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Runs `lines` with `ip [-n namespace] -batch <file>`, which stops at the first failing
    /// line and names it. The lines hold only names and addresses the bed made itself.
    fn batch(&mut self, namespace: Option<&str>, lines: &[String]) -> Result<(), BedError> {
        let file = self.scratch_file("ip");
        fs::write(&file, lines.join("\n") + "\n")
            .map_err(|e| BedError::io(format!("cannot write {}", file.display()), e))?;
        let mut ip = Command::new(command::find(IP)?);
        if let Some(namespace) = namespace {
            ip.args(["-n", namespace]);
        }
        ip.arg("-batch").arg(&file);
        let line = format!("{} (running: {})", command::describe(&ip), lines.join("; "));
        let result = command::run(ip, SETUP_LIMIT).and_then(|output| command::check(line, output));
        // Ignoring errors: a leftover file goes with the scratch directory anyway.
        let _ = fs::remove_file(&file);
        result.map(drop)
    }

    /// A new path in the bed's scratch directory, ending in `.<extension>`.
    pub(crate) fn scratch_file(&mut self, extension: &str) -> std::path::PathBuf {
        self.scratch_files += 1;
        self.scratch.join(format!("{}.{extension}", self.scratch_files))
    }

    /// Deletes every namespace the bed made, with one `ip -force -batch` (`-force` goes on past
    /// a namespace that was never created), ignoring errors: this runs in `Drop`.
    pub(crate) fn delete_namespaces(&mut self) {
        if self.made.is_empty() {
            return;
        }
        let lines: Vec<String> = self.made.iter().rev().map(|name| format!("netns del {name}")).collect();
        let file = self.scratch.join("teardown.ip");
        let Ok(ip) = command::find(IP) else {
            return;
        };
        if fs::write(&file, lines.join("\n") + "\n").is_ok() {
            let mut delete = Command::new(&ip);
            delete.arg("-force").arg("-batch").arg(&file);
            let _ = command::run(delete, SETUP_LIMIT);
        }
        // Whatever the batch could not delete (or if the file could not be written): one by one.
        for name in &self.made {
            if system::namespace_exists(name) {
                let mut delete = Command::new(&ip);
                delete.args(["netns", "del", name]);
                let _ = command::run(delete, SETUP_LIMIT);
            }
        }
    }
}

/// How long links may take to come up after they are configured: normally microseconds, up to
/// a second when the kernel handles the event late (see the comment on creating br0).
const LINK_WAIT: Duration = Duration::from_secs(5);

fn too_many(hosts: usize) -> BedError {
    BedError::InvalidArgument(format!("a bed holds at most {MAX_HOSTS} hosts (10.99.0.1-254), not {hosts}"))
}
