//! Avahi, the mDNS stack of most Linux systems, as a third-party peer of real `shoal` boxes in
//! network namespaces: it must list every box with its TXT record, and the `_shoal._udp`
//! records it publishes that are not valid Shoal records must be ignored and counted by the
//! boxes without disturbing them.
//!
//! Most tests build a bed of three hosts: hosts 0 and 1 run `shoal` boxes sharing one key, host 2
//! runs a private D-Bus system bus and an `avahi-daemon` restricted to the bed's `eth0`
//! ([`APART`]). One test puts the daemon on host 0 next to a box, as on a Linux machine whose
//! own Avahi runs ([`SAME_HOST`]): two mDNS stacks sharing UDP port 5353 on one host. The
//! Avahi clients (`avahi-browse`, `avahi-publish`) reach that daemon through the private bus
//! (`DBUS_SYSTEM_BUS_ADDRESS`). `avahi-daemon` keeps its pid file and socket in the fixed
//! directory `/run/avahi-daemon`, so it runs under a private tmpfs `/run` (in the mount namespace
//! that `ip netns exec` gives it; nothing is created in the machine's `/run`), and the tests that
//! start one are serialised machine-wide anyway with `flock` on a lock file in the temp dir
//! (`docs/TESTING.md`, "mDNS": one avahi-daemon per machine). Every daemon and client runs through
//! `Bed::spawn` or `Bed::exec`, so the bed kills them.
//!
//! Needs root, `avahi-daemon`, `avahi-utils`, `dbus` and `flock` (util-linux); `tools/test`
//! installs the packages. Without root every test prints why it is skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal::model::status::{DiscoveryStatus, Status};
use shoal_testbed::{Bed, ProcessId, Signal};

mod common;
use common::boxes::{alive_peers, ingesting, json, window, BoxConfig, Boxes, HTTP_PORT, UDP_PORT};
/// A real profile without GPIO lines, so the boxes announce a board name other than the default.
const BOARD: &str = "tvbox-aarch64";
/// The hosts that run boxes.
const BOXES: [usize; 2] = [0, 1];

/// Every process the bed starts is killed after this long, should the test hang.
const LIFETIME: Duration = Duration::from_secs(240);
/// How long to wait for another test holding the Avahi lock.
const LOCK_WAIT_S: u32 = 600;
/// The boxes' log filter: our discovery at debug level (its "ignoring" lines), mdns-sd quieter.
const SHOAL_LOG: &str = "info,shoal=debug,mdns_sd=info";

/// Where Avahi runs, and what the boxes do.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// How many hosts the bed has.
    hosts: usize,
    /// The host that runs the private D-Bus, `avahi-daemon` and the Avahi clients.
    avahi: usize,
    /// Whether Avahi starts before the boxes (else after them).
    avahi_first: bool,
    /// Whether the boxes share a channel from the built-in test source (data flowing between
    /// them), or only discover each other.
    channel: bool,
}

/// Avahi on a host of its own, next to two idle boxes.
const APART: Layout = Layout { hosts: 3, avahi: 2, avahi_first: false, channel: false };

/// Avahi on host 0, which runs box 0 too, started before the boxes as on a machine that boots
/// with it; the boxes share a channel.
const SAME_HOST: Layout = Layout { hosts: 2, avahi: 0, avahi_first: true, channel: true };
/// The channel the boxes share in [`SAME_HOST`]: the built-in test source, 1 s segments.
const CHANNEL: &str = "[[channel]]\nid = \"test\"\n\
                       source = \"test://pattern?bitrate=1000000&duration=1\"\n\
                       always_on = true\n";

fn skip() -> bool {
    common::skip(&[])
}

/// Fails with what to install when a program the tests need is missing: running as root on a
/// machine without Avahi is a setup error, not a reason to skip.
fn require_programs() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = [
        ("avahi-daemon", "avahi-daemon"),
        ("avahi-browse", "avahi-utils"),
        ("avahi-publish", "avahi-utils"),
        ("dbus-daemon", "dbus"),
        ("flock", "util-linux"),
        ("curl", "curl"),
    ]
    .into_iter()
    .filter(|(program, _)| !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    .map(|(_, package)| package)
    .collect();
    assert!(
        missing.is_empty(),
        "missing programs; install the Debian packages {missing:?} (tools/test does)"
    );
}

/// A machine-wide lock for tests that run an avahi-daemon: a `flock` process holding the lock
/// file while its `cat` reads our pipe. Dropping the guard closes the pipe, `cat` ends and the
/// lock goes with it; so does a test process that dies outright, so no lock is ever stale.
struct AvahiLock {
    holder: Child,
}

impl AvahiLock {
    fn acquire() -> AvahiLock {
        let path = std::env::temp_dir().join("shoal-avahi.lock");
        let started = Instant::now();
        let wait = LOCK_WAIT_S.to_string();
        // The holder's own lifetime is bounded too: the lock wait plus the longest test.
        let lifetime = (LOCK_WAIT_S as u64 + LIFETIME.as_secs() + 60).to_string();
        let mut holder = Command::new("timeout")
            .args(["-k", "2", &lifetime, "flock", "--exclusive", "--wait", &wait])
            .arg(&path)
            .args(["sh", "-c", "echo locked && exec cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("flock starts");
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("piped stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "locked" {
            let _ = holder.kill();
            let _ = holder.wait();
            panic!(
                "no lock on {} within {LOCK_WAIT_S} s: another test keeps an avahi-daemon",
                path.display()
            );
        }
        let waited = started.elapsed();
        if waited > Duration::from_millis(500) {
            eprintln!("avahi lock: waited {waited:.1?} for another test");
        }
        AvahiLock { holder }
    }
}

impl Drop for AvahiLock {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.holder.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Only the `timeout` wrapper we started, by its PID.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// One `=` line of `avahi-browse -rp`: a resolved service.
#[derive(Debug)]
struct Resolved {
    protocol: String,
    name: String,
    address: String,
    port: u16,
    txt: HashMap<String, String>,
}

/// The resolved services in `avahi-browse -rp` output. A line is
/// `=;iface;IPv4|IPv6;name;type;domain;host;address;port;"k=v" "k=v"...`.
fn parse_browse(output: &str) -> Vec<Resolved> {
    output
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.splitn(10, ';').collect();
            if fields.len() != 10 || fields[0] != "=" {
                return None;
            }
            let txt = txt_strings(fields[9])
                .into_iter()
                .map(|s| match s.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                    None => (s.to_ascii_lowercase(), String::new()),
                })
                .collect();
            Some(Resolved {
                protocol: fields[2].to_owned(),
                name: fields[3].to_owned(),
                address: fields[7].to_owned(),
                port: fields[8].parse().ok()?,
                txt,
            })
        })
        .collect()
}

/// A name as `avahi-browse -p` prints it: `\DDD` (decimal) for a byte that is not a letter, a
/// digit, `-` or `_`; `\.` and `\\` for a dot and a backslash within a label.
fn unescape_name(name: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = name.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        let digits = rest.iter().take(3).take_while(|d| d.is_ascii_digit()).count();
        if digits == 3 {
            let code: u32 = std::str::from_utf8(&rest[..3]).ok().and_then(|d| d.parse().ok()).unwrap_or(63);
            bytes.push(u8::try_from(code).unwrap_or(b'?'));
            rest = &rest[3..];
        } else if let Some((&c, tail)) = rest.split_first() {
            bytes.push(c);
            rest = tail;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The strings of Avahi's TXT rendering: `"a=b" "c=d"`, with `\` escapes inside the quotes.
fn txt_strings(text: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => s.extend(chars.next()),
                c => s.push(c),
            }
        }
        strings.push(s);
    }
    strings
}

/// A bed with two boxes and an Avahi host; see the crate documentation. Dereferences to its
/// [`Boxes`].
struct Lan {
    // Fields drop in order: the boxes (the bed, every process, then the logs) first, then the
    // lock.
    boxes: Boxes,
    _lock: AvahiLock,
    /// The private system bus, as `DBUS_SYSTEM_BUS_ADDRESS` says it.
    bus: String,
    /// The host that runs Avahi.
    avahi: usize,
    /// The boxes' node ids, from their status.
    node_ids: Vec<String>,
    /// The key fingerprint the boxes announce, 8 lowercase hex digits.
    fingerprint: String,
    started: Instant,
}

impl Deref for Lan {
    type Target = Boxes;
    fn deref(&self) -> &Boxes {
        &self.boxes
    }
}

impl DerefMut for Lan {
    fn deref_mut(&mut self) -> &mut Boxes {
        &mut self.boxes
    }
}

impl Lan {
    fn start(name: &str, layout: Layout) -> Lan {
        require_programs();
        let lock = AvahiLock::acquire();
        let started = Instant::now();
        // Short: the bus socket's path must fit in a sockaddr_un (108 bytes).
        let mut boxes = Boxes::new(name, layout.hosts);
        boxes.bed.set_process_lifetime(LIFETIME);
        let dir = boxes.dir.clone();
        let key = boxes.key_file("net");
        let fingerprint: String = shoal::keys::load_network_key(&key)
            .expect("key readable")
            .fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let config = BoxConfig::new(if layout.channel { CHANNEL } else { "" })
            .key("net")
            .top(&format!("board = \"{BOARD}\"\n"))
            .env("SHOAL_LOG", SHOAL_LOG);
        let configs = vec![config; BOXES.len()];

        // Where they share a host, Avahi starts first, as on a machine that boots with it: it
        // holds UDP port 5353 and the box's mdns-sd joins it. Otherwise the boxes run first,
        // and Avahi has to query for them.
        let bus = if layout.avahi_first {
            let bus = start_avahi(&mut boxes.bed, &dir, layout, name, started);
            boxes.start(configs);
            bus
        } else {
            boxes.start(configs);
            start_avahi(&mut boxes.bed, &dir, layout, name, started)
        };

        let mut lan =
            Lan { boxes, _lock: lock, bus, avahi: layout.avahi, node_ids: Vec::new(), fingerprint, started };
        assert!(
            lan.wait_all(Duration::from_secs(20), |s| alive_peers(s) == 1),
            "the boxes did not find each other:\n{}",
            lan.logs()
        );
        lan.node_ids = BOXES.iter().map(|&i| lan.status(i).expect("status").node_id).collect();
        eprintln!("{name}: boxes {:?} see each other after {:.1?}", lan.node_ids, started.elapsed());
        lan
    }

    /// `avahi-browse -rpt _shoal._udp` on the Avahi host: the resolved services.
    fn browse(&self) -> Vec<Resolved> {
        self.browse_type("_shoal._udp")
    }

    /// `avahi-browse -rpt <service_type>` on the Avahi host: the resolved services.
    fn browse_type(&self, service_type: &str) -> Vec<Resolved> {
        let bus = format!("DBUS_SYSTEM_BUS_ADDRESS={}", self.bus);
        let out = self
            .bed
            .exec(self.avahi, &["env", &bus, "avahi-browse", "-rpt", service_type], Duration::from_secs(15))
            .expect("avahi-browse runs");
        assert!(
            out.status.success(),
            "avahi-browse failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        parse_browse(&String::from_utf8_lossy(&out.stdout))
    }

    /// Runs `avahi-browse` until it lists both boxes over IPv4 (20 s at most); what it listed.
    fn browse_boxes(&self, test: &str) -> Vec<Resolved> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut browses = 0;
        let resolved = loop {
            browses += 1;
            let resolved = self.browse();
            let complete = self
                .node_ids
                .iter()
                .all(|id| resolved.iter().any(|r| r.protocol == "IPv4" && r.txt.get("id") == Some(id)));
            if complete {
                break resolved;
            }
            assert!(
                Instant::now() < deadline,
                "avahi-browse on host {} did not list both boxes {:?} after {browses} runs: \
                 {resolved:#?}\n{}",
                self.avahi,
                self.node_ids,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        eprintln!(
            "{test}: Avahi on host {} lists both boxes after {:.1?} ({browses} avahi-browse runs)",
            self.avahi,
            self.started.elapsed()
        );
        resolved
    }

    /// Panics unless `resolved` (from [`Lan::browse_boxes`]) holds both boxes with the right
    /// name, address, port and TXT record, and nothing else.
    fn assert_listed(&self, test: &str, resolved: &[Resolved]) {
        for (&i, id) in BOXES.iter().zip(&self.node_ids) {
            let record = resolved
                .iter()
                .find(|r| r.protocol == "IPv4" && r.txt.get("id") == Some(id))
                .expect("listed");
            let txt = |key: &str| record.txt.get(key).map(String::as_str);
            assert_eq!(record.name, format!("shoal-{}", &id[..8]), "{record:?}");
            assert_eq!(record.address, self.bed.ip(i).to_string(), "{record:?}");
            assert_eq!(record.port, UDP_PORT, "{record:?}");
            let version = shoal_core::wire::PROTOCOL_VERSION.to_string();
            assert_eq!(txt("v"), Some(version.as_str()), "{record:?}");
            assert_eq!(txt("http"), Some("7471"), "{record:?}");
            assert_eq!(txt("fp"), Some(self.fingerprint.as_str()), "{record:?}");
            assert_eq!(txt("board"), Some(BOARD), "{record:?}");
        }
        // Avahi sees nothing but the two boxes, and its IPv6 view of them (when resolved
        // already) carries the same record.
        for record in resolved {
            let id = record.txt.get("id").expect("every record has an id");
            assert!(self.node_ids.contains(id), "unexpected record {record:?}");
            let ipv4 = resolved
                .iter()
                .find(|r| r.protocol == "IPv4" && r.txt.get("id") == Some(id))
                .expect("listed");
            assert_eq!((&record.name, record.port, &record.txt), (&ipv4.name, ipv4.port, &ipv4.txt));
        }
        let ipv6 = resolved.iter().filter(|r| r.protocol == "IPv6").count();
        eprintln!("{test}: {} IPv4 and {ipv6} IPv6 records", resolved.len() - ipv6);
    }

    /// Publishes each `(name, txt)` as a `_shoal._udp` instance on port 7470 from the Avahi
    /// host, all at once, and waits until Avahi has established every one (after about a second
    /// of probing). The publishers run until stopped or until the bed is dropped.
    fn publish(&mut self, records: &[(&str, Vec<&str>)]) -> Vec<ProcessId> {
        let port = UDP_PORT.to_string();
        let mut publishers = Vec::new();
        for (name, txt) in records {
            let log = self.dir.join(format!("publish-{name}.log"));
            let mut args = vec!["-s", name, "_shoal._udp", &port];
            args.extend_from_slice(txt);
            let p = self
                .boxes
                .bed
                .spawn(
                    self.avahi,
                    Path::new("avahi-publish"),
                    &args,
                    &[("DBUS_SYSTEM_BUS_ADDRESS", &self.bus)],
                    &log,
                )
                .expect("avahi-publish starts");
            publishers.push((p, name, log));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, name, log) in &publishers {
            loop {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                if text.contains("Established under name") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "avahi-publish {name} not established: {text}\n{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        publishers.into_iter().map(|(p, _, _)| p).collect()
    }

    /// Panics unless every box process still runs and answers its status.
    fn assert_boxes_running(&mut self) {
        for i in BOXES {
            let exited = self.exited(i);
            assert!(exited.is_none(), "box {i} exited: {exited:?}\n{}", self.logs());
        }
        for i in BOXES {
            assert!(self.status(i).is_some(), "box {i} stopped answering\n{}", self.logs());
        }
    }
}

/// Starts a private D-Bus system bus and `avahi-daemon` on `layout.avahi` and waits until the
/// daemon is up; the bus address, for `DBUS_SYSTEM_BUS_ADDRESS`.
fn start_avahi(bed: &mut Bed, dir: &Path, layout: Layout, name: &str, started: Instant) -> String {
    let socket = dir.join("bus");
    let bus = format!("unix:path={}", socket.display());
    let bus_conf = dir.join("bus.conf");
    std::fs::write(
        &bus_conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>{bus}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#
        ),
    )
    .expect("bus config written");
    let conf_arg = format!("--config-file={}", bus_conf.display());
    bed.spawn(
        layout.avahi,
        Path::new("dbus-daemon"),
        &[&conf_arg, "--nofork", "--nopidfile"],
        &[],
        &dir.join("dbus.log"),
    )
    .expect("dbus-daemon starts");
    let wait_for = |what: &str, limit: Duration, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "{what} within {limit:?}; logs in {}", dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("no D-Bus socket", Duration::from_secs(10), &|| socket.exists());

    let avahi_conf = dir.join("avahi-daemon.conf");
    std::fs::write(
        &avahi_conf,
        "[server]\nuse-ipv4=yes\nuse-ipv6=yes\nallow-interfaces=eth0\nenable-dbus=yes\n\
         ratelimit-interval-usec=1000000\nratelimit-burst=1000\n\
         [wide-area]\nenable-wide-area=no\n\
         [publish]\npublish-hinfo=no\npublish-workstation=no\n\
         [reflector]\nenable-reflector=no\n",
    )
    .expect("avahi config written");
    // A private /run for the daemon's fixed pid file and socket; the mount lives only in
    // the mount namespace `ip netns exec` made for this process. Should mounting fail, the
    // daemon uses the machine's /run, which the lock keeps to one daemon at a time.
    let avahi_log = dir.join("avahi.log");
    bed.spawn(
        layout.avahi,
        Path::new("sh"),
        &[
            "-c",
            "mount -t tmpfs -o size=1m,mode=0755 shoal-avahi /run \
             || echo 'avahi.rs: no private /run, using the machine one' >&2; \
             exec avahi-daemon -f \"$0\" --no-drop-root --no-chroot --no-rlimits",
            &avahi_conf.to_string_lossy(),
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)],
        &avahi_log,
    )
    .expect("avahi-daemon starts");
    wait_for("avahi-daemon did not start", Duration::from_secs(15), &|| {
        std::fs::read_to_string(&avahi_log).is_ok_and(|log| log.contains("Server startup complete"))
    });
    eprintln!("{name}: avahi-daemon up on host {} after {:.1?}", layout.avahi, started.elapsed());
    bus
}

/// A status's discovery counters; a box of these tests runs discovery, so they must be there.
fn discovery(status: &Status) -> DiscoveryStatus {
    status.discovery.unwrap_or_else(|| panic!("no discovery in {}", json(status)))
}

/// A discovery counter's name, for messages, and how to read it.
type DiscoveryCounter = (&'static str, fn(&DiscoveryStatus) -> u64);

const IGNORED_FOREIGN_KEY: DiscoveryCounter = ("ignored_foreign_key", |d| d.ignored_foreign_key);
const IGNORED_BAD_TXT: DiscoveryCounter = ("ignored_bad_txt", |d| d.ignored_bad_txt);
const IGNORED_VERSION: DiscoveryCounter = ("ignored_version", |d| d.ignored_version);
const ERRORS: DiscoveryCounter = ("errors", |d| d.errors);
const LOST: DiscoveryCounter = ("lost", |d| d.lost);

#[test]
fn avahi_names_are_unescaped() {
    assert_eq!(unescape_name("Shoal\\0321a2b3c4d\\032\\040rpi4\\041"), "Shoal 1a2b3c4d (rpi4)");
    assert_eq!(unescape_name("a\\.b\\\\c\\195\\169"), "a.b\\cé");
}

#[test]
fn avahi_sees_every_box() {
    if skip() {
        return;
    }
    let lan = Lan::start("sees", APART);
    let resolved = lan.browse_boxes("sees");
    lan.assert_listed("sees", &resolved);

    // Each box's dashboard is listed too, under a name for people, at its HTTP port.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dashboards = lan.browse_type("_http._tcp");
        let listed = BOXES.iter().zip(&lan.node_ids).all(|(&i, id)| {
            let name = format!("Shoal {} ({BOARD})", &id[..8]);
            dashboards.iter().any(|r| {
                r.protocol == "IPv4"
                    && unescape_name(&r.name) == name
                    && r.address == lan.bed.ip(i).to_string()
                    && r.port == HTTP_PORT
                    && r.txt.get("path").map(String::as_str) == Some("/")
            })
        });
        if listed {
            let names: Vec<String> = dashboards.iter().map(|r| unescape_name(&r.name)).collect();
            eprintln!("sees: Avahi lists the dashboards {names:?} after {:.1?}", lan.started.elapsed());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "avahi-browse _http._tcp does not list both dashboards: {dashboards:#?}\n{}",
            lan.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Avahi publishes no _shoal record of its own, and its queries disturb nothing.
    for i in BOXES {
        let s = lan.status(i).expect("status");
        assert_eq!(alive_peers(&s), 1, "box {i}: {}", json(&s));
        for (counter, read) in [IGNORED_FOREIGN_KEY, IGNORED_BAD_TXT, IGNORED_VERSION, ERRORS] {
            assert_eq!(read(&discovery(&s)), 0, "box {i} {counter}: {}", json(&s));
        }
    }
    eprintln!("sees: done after {:.1?}", lan.started.elapsed());
}

#[test]
fn bogus_avahi_records_are_ignored_and_counted() {
    if skip() {
        return;
    }
    let mut lan = Lan::start("bogus", APART);
    let before: Vec<Status> = BOXES.iter().map(|&i| lan.status(i).expect("status")).collect();
    let fp = format!("fp={}", lan.fingerprint);
    let bad_id = format!("id={}", "zz".repeat(16));
    let version = format!("v={}", shoal_core::wire::PROTOCOL_VERSION);
    // Each record, with the rejection the boxes' discovery must log for it. The version and key
    // fingerprint are right where the test is about another field: the parser checks `v` first,
    // then `fp`, then the rest.
    let bogus: [(&str, Vec<&str>, &str); 4] = [
        // (a) missing fields: no TXT at all (Avahi sends a TXT of one empty string) ...
        ("shoal-bogus-empty", vec![], "Malformed { key: \"v\" }"),
        // ... and a record with version and fingerprint only.
        ("shoal-bogus-missing", vec![version.as_str(), &fp], "Malformed { key: \"id\" }"),
        // (b) a node id that is not hex.
        (
            "shoal-bogus-badid",
            vec![&bad_id, version.as_str(), "http=7471", "board=avahi", &fp],
            "Malformed { key: \"id\" }",
        ),
        // (c) another protocol version.
        (
            "shoal-bogus-v99",
            vec!["id=0123456789abcdef0123456789abcdef", "v=99", "http=7471", "board=avahi", &fp],
            "Version(99)",
        ),
    ];
    let published = Instant::now();
    let records: Vec<(&str, Vec<&str>)> = bogus.iter().map(|(name, txt, _)| (*name, txt.clone())).collect();
    let publishers = lan.publish(&records);
    eprintln!("bogus: {} records published after {:.1?}", bogus.len(), lan.started.elapsed());

    let bad_txt_records = bogus.iter().filter(|b| b.2.starts_with("Malformed")).count() as u64;
    let seen_all = |lan: &Lan| {
        BOXES.iter().zip(&before).all(|(&i, before)| {
            let Some(s) = lan.status(i) else {
                return false;
            };
            let log = lan.log(i);
            let (now, then) = (discovery(&s), discovery(before));
            now.ignored_bad_txt >= then.ignored_bad_txt + bad_txt_records
                && now.ignored_version > then.ignored_version
                && bogus.iter().all(|(name, _, rejection)| {
                    log.contains(&format!("ignoring {name}._shoal._udp.local.: {rejection}"))
                })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen_all(&lan) {
        if Instant::now() >= deadline {
            let now: Vec<Status> = BOXES.iter().filter_map(|&i| lan.status(i)).collect();
            let ignoring: Vec<String> = BOXES
                .iter()
                .flat_map(|&i| {
                    lan.log(i)
                        .lines()
                        .filter(|l| l.contains("ignoring"))
                        .map(|l| format!("box {i}: {l}"))
                        .collect::<Vec<_>>()
                })
                .collect();
            panic!(
                "the boxes did not count every bogus record within 20 s.\n\
                 discovery now: {:?}\n'ignoring' lines:\n{}\n{}",
                now.iter().map(|s| json(&s.discovery)).collect::<Vec<_>>(),
                ignoring.join("\n"),
                lan.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("bogus: every box counted every record {:.1?} after publishing", published.elapsed());

    // Avahi announces again and answers queries: give it time, then nothing else has changed.
    std::thread::sleep(Duration::from_secs(3));
    let check_undisturbed = |lan: &mut Lan, when: &str| {
        lan.assert_boxes_running();
        for (k, &i) in BOXES.iter().enumerate() {
            let s = lan.status(i).expect("status");
            let other = &lan.node_ids[1 - k];
            let peers = &s.peers;
            assert!(
                peers.len() == 1 && peers[0].node_id == *other && peers[0].alive,
                "{when}: box {i} must know exactly one live peer, {other}: {}",
                json(&s)
            );
            let (now, then) = (discovery(&s), discovery(&before[k]));
            assert_eq!(now.found as i64 - now.lost as i64, 1, "{when}: box {i}: {}", json(&s));
            for (counter, read) in [IGNORED_FOREIGN_KEY, ERRORS, LOST] {
                assert_eq!(read(&now), read(&then), "{when}: box {i} {counter}: {}", json(&s));
            }
            eprintln!("bogus: {when}: box {i} discovery {}", json(&s.discovery));
        }
    };
    check_undisturbed(&mut lan, "with the bogus records up");

    // Their goodbyes are no news either.
    for p in publishers {
        lan.bed.signal(p, Signal::Term).expect("publisher stops");
        let status = lan.bed.wait(p, Duration::from_secs(5)).expect("waited");
        assert!(status.is_some(), "avahi-publish ignored SIGTERM");
    }
    std::thread::sleep(Duration::from_secs(2));
    check_undisturbed(&mut lan, "after the goodbyes");
    eprintln!("bogus: done after {:.1?}", lan.started.elapsed());
}

#[test]
fn avahi_on_the_same_box_coexists() {
    if skip() {
        return;
    }
    let mut lan = Lan::start("same", SAME_HOST);
    let test = "same";

    // (1) The channel flows: both boxes hold segments, and the same bytes under the same seq.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (common, newest) = loop {
        let windows: Vec<Vec<(u64, String)>> =
            BOXES.iter().map(|&i| lan.status(i).map(|s| window(&s, "test")).unwrap_or_default()).collect();
        let common: Vec<(u64, String, String)> = windows[0]
            .iter()
            .filter_map(|(seq, hash)| {
                let (_, other) = windows[1].iter().find(|(s, _)| s == seq)?;
                Some((*seq, hash.clone(), other.clone()))
            })
            .collect();
        if !common.is_empty() {
            let newest: Vec<u64> = windows.iter().map(|w| w.iter().map(|s| s.0).max().unwrap_or(0)).collect();
            break (common, newest);
        }
        assert!(
            Instant::now() < deadline,
            "{test}: the boxes hold no segment in common within 30 s: windows {windows:?}\n{}",
            lan.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for (seq, a, b) in &common {
        assert_eq!(a, b, "{test}: segment {seq} differs between the boxes");
    }
    let ingesting: Vec<usize> =
        BOXES.iter().copied().filter(|&i| lan.status(i).is_some_and(|s| ingesting(&s, "test"))).collect();
    eprintln!(
        "{test}: {} segments in common (seq {}..={}), same content, after {:.1?}; ingesting: box {ingesting:?}",
        common.len(),
        common[0].0,
        common[common.len() - 1].0,
        lan.started.elapsed()
    );

    // (2) Avahi, on box 0's host, lists both boxes with their TXT records.
    let resolved = lan.browse_boxes(test);
    lan.assert_listed(test, &resolved);

    // (3) A record Avahi publishes on box 0's host, without an id, is ignored and counted by
    // both boxes: box 1 across the LAN, box 0 through the host's own multicast loopback.
    let before: Vec<Status> = BOXES.iter().map(|&i| lan.status(i).expect("status")).collect();
    let name = "shoal-bogus-noid";
    let fp = format!("fp={}", lan.fingerprint);
    let version = format!("v={}", shoal_core::wire::PROTOCOL_VERSION);
    let publishers = lan.publish(&[(name, vec![version.as_str(), &fp, "http=7471", "board=avahi"])]);
    let published = Instant::now();
    eprintln!("{test}: {name} published on host {} after {:.1?}", lan.avahi, lan.started.elapsed());
    let expected = format!("ignoring {name}._shoal._udp.local.: Malformed {{ key: \"id\" }}");
    let mut seen: Vec<Option<Duration>> = vec![None; BOXES.len()];
    let deadline = published + Duration::from_secs(20);
    while seen.iter().any(Option::is_none) && Instant::now() < deadline {
        for (k, &i) in BOXES.iter().enumerate() {
            if seen[k].is_some() {
                continue;
            }
            let counted = lan
                .status(i)
                .is_some_and(|s| discovery(&s).ignored_bad_txt > discovery(&before[k]).ignored_bad_txt);
            if counted && lan.log(i).contains(&expected) {
                seen[k] = Some(published.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if seen.iter().any(Option::is_none) {
        // Say precisely who saw what: each box's counters and log, and Avahi's own view.
        let mut report = String::new();
        for (k, &i) in BOXES.iter().enumerate() {
            let now = lan.status(i);
            let ignoring: Vec<String> = lan
                .log(i)
                .lines()
                .filter(|l| l.contains("ignoring") || l.contains("mdns_sd"))
                .map(str::to_owned)
                .collect();
            report.push_str(&format!(
                "box {i} (host {i}{}): {}; ignored_bad_txt {} -> {}; discovery now {}\n  \
                 its 'ignoring' and mdns_sd lines:\n    {}\n",
                if i == lan.avahi { ", with Avahi" } else { "" },
                match seen[k] {
                    Some(t) => format!("counted the record after {t:.1?}"),
                    None => "did NOT count the record".to_owned(),
                },
                discovery(&before[k]).ignored_bad_txt,
                now.as_ref().map_or("(no status)".to_owned(), |s| discovery(s).ignored_bad_txt.to_string()),
                now.as_ref().map_or("(no status)".to_owned(), |s| json(&s.discovery)),
                ignoring.join("\n    ")
            ));
        }
        let avahi_lists: Vec<String> = lan
            .browse()
            .iter()
            .map(|r| format!("{} {} {} {:?}", r.protocol, r.name, r.address, r.txt))
            .collect();
        let avahi_log = std::fs::read_to_string(lan.dir.join("avahi.log")).unwrap_or_default();
        let stack_warning: Vec<&str> = avahi_log.lines().filter(|l| l.contains("mDNS stack")).collect();
        panic!(
            "{test}: not every box counted the bogus record {name} that Avahi on host {} \
             published, within 20 s:\n{report}avahi-browse on host {} lists:\n  {}\n\
             avahi.log about other mDNS stacks: {stack_warning:?}\n{}",
            lan.avahi,
            lan.avahi,
            avahi_lists.join("\n  "),
            lan.logs()
        );
    }
    eprintln!(
        "{test}: {name} counted by box 0 after {:.1?}, by box 1 after {:.1?}",
        seen[0].unwrap_or_default(),
        seen[1].unwrap_or_default()
    );

    // (4) Nothing else changed: both boxes run, know each other, and the channel still flows.
    std::thread::sleep(Duration::from_secs(3));
    let check_undisturbed = |lan: &mut Lan, when: &str| {
        lan.assert_boxes_running();
        for (k, &i) in BOXES.iter().enumerate() {
            let s = lan.status(i).expect("status");
            let other = &lan.node_ids[1 - k];
            let peers = &s.peers;
            assert!(
                peers.len() == 1 && peers[0].node_id == *other && peers[0].alive,
                "{test}: {when}: box {i} must know exactly one live peer, {other}: {}",
                json(&s)
            );
            let (now, then) = (discovery(&s), discovery(&before[k]));
            for (counter, read) in [IGNORED_FOREIGN_KEY, IGNORED_VERSION, ERRORS, LOST] {
                assert_eq!(read(&now), read(&then), "{test}: {when}: box {i} {counter}: {}", json(&s));
            }
            eprintln!("{test}: {when}: box {i} discovery {}", json(&s.discovery));
        }
    };
    check_undisturbed(&mut lan, "with the bogus record up");
    for p in publishers {
        lan.bed.signal(p, Signal::Term).expect("publisher stops");
        let status = lan.bed.wait(p, Duration::from_secs(5)).expect("waited");
        assert!(status.is_some(), "avahi-publish ignored SIGTERM");
    }
    std::thread::sleep(Duration::from_secs(2));
    check_undisturbed(&mut lan, "after its goodbye");
    // Every box holds segments newer than any either held in (1).
    let newest_then = newest.iter().copied().max().unwrap_or(0);
    assert!(
        lan.wait_all(Duration::from_secs(10), |s| window(s, "test").iter().any(|w| w.0 > newest_then)),
        "{test}: the channel stopped flowing (newest seq was {newest:?}):\n{}",
        lan.logs()
    );
    let windows: Vec<Vec<(u64, String)>> =
        BOXES.iter().map(|&i| window(&lan.status(i).expect("status"), "test")).collect();
    let mut compared = 0;
    for (seq, hash) in &windows[0] {
        if let Some((_, other)) = windows[1].iter().find(|(s, _)| s == seq) {
            assert_eq!(hash, other, "{test}: segment {seq} differs between the boxes at the end");
            compared += 1;
        }
    }
    assert!(compared > 0, "{test}: no segment in common at the end: {windows:?}");
    lan.assert_boxes_running();
    // For the record: what Avahi made of a second mDNS stack on its host.
    let avahi_log = std::fs::read_to_string(lan.dir.join("avahi.log")).unwrap_or_default();
    for line in avahi_log.lines().filter(|l| l.contains("mDNS stack")) {
        eprintln!("{test}: avahi.log: {line}");
    }
    eprintln!("{test}: done after {:.1?}; {compared} segments in common at the end", lan.started.elapsed());
}
