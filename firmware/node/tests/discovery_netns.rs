//! Discovery between real mdns-sd daemons, inside network namespaces that these tests create.
//!
//! mdns-sd joins the mDNS groups on every interface the moment its daemon starts, and the build
//! machines' `eth0` is on a real network (`docs/TESTING.md`, "Network safety"). So each test runs
//! twice: the parent (no mDNS at all) builds a test bed (`shoal_testbed::Bed`: a loopback-only
//! one, or hosts on a bridge) and re-executes this very test inside it with `Bed::spawn`; the
//! child, marked by an environment variable, checks that it really is in a namespace of its own
//! holding only test addresses, and only then starts mdns-sd. The bed kills the children and
//! deletes its namespaces when dropped; the parent asserts each child's exit status and final
//! line. Without root the tests print why they skip, and pass.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shoal::discovery::{
    Discovery, DiscoveryConfig, DiscoveryEvent, Interfaces, HTTP_SERVICE_TYPE, SERVICE_TYPE,
};
use shoal_core::{NetworkKey, NodeId};
use shoal_testbed::{skip_reason, Bed, ProcessId};
use smol::channel::Receiver;
use smol::future::FutureExt as _;

mod common;
use common::Scratch;

/// Marks a child run and names its role.
const ROLE_ENV: &str = "SHOAL_DISCOVERY_NETNS_ROLE";
/// The parent's network namespace, which a child must not be in.
const PARENT_NETNS_ENV: &str = "SHOAL_DISCOVERY_NETNS_PARENT";
/// A directory both children of one test can see, for the two-host test's hand-over.
const SHARED_DIR_ENV: &str = "SHOAL_DISCOVERY_NETNS_DIR";
/// A child's last line when every check passed: a filter that matched no test would also exit
/// 0, so the parent needs this to know the checks ran.
const CHILD_PASSED: &str = "discovery-netns child: all checks passed";
/// A child takes a few seconds; this bounds a hang.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a peer may take to be found or lost (`docs/TESTING.md`, "Time bounds").
const EVENT_WAIT: Duration = Duration::from_secs(5);
/// `Discovery::shutdown` promises one second; a little slack for a loaded machine.
const SHUTDOWN_LIMIT: Duration = Duration::from_millis(1200);

/// Two boxes and a box of another deployment on `lo` of one namespace, plus records that must be
/// ignored; then one box leaves. A service browser sees each box's dashboard (`_http._tcp`) come
/// and go with it.
#[test]
fn loopback_peers_find_each_other_ignore_others_and_see_goodbyes() {
    const NAME: &str = "loopback_peers_find_each_other_ignore_others_and_see_goodbyes";
    if let Some(role) = child_role() {
        assert_eq!(role, "loopback");
        return loopback_child();
    }
    let Some(parent_netns) = parent_netns_or_skip(NAME) else {
        return;
    };
    let mut bed = Bed::loopback().expect("loopback bed");
    let shared = Scratch::new("loopback");
    let child = ChildRun::spawn(&mut bed, 0, NAME, "loopback", &parent_netns, &shared);
    child.finish(&mut bed);
}

/// Two boxes on two hosts of a bed, each on its `eth0` (one end of a veth pair, the other on the
/// bed's bridge), with `Interfaces::AllNonLoopback`: each finds the other at its IPv4 address
/// and at its IPv6 link-local address with the right scope.
#[test]
fn veth_peers_find_each_other_over_ipv4_and_scoped_ipv6() {
    const NAME: &str = "veth_peers_find_each_other_over_ipv4_and_scoped_ipv6";
    if let Some(role) = child_role() {
        return veth_child(&role);
    }
    let Some(parent_netns) = parent_netns_or_skip(NAME) else {
        return;
    };
    // Host 0 is 10.99.0.1, host 1 10.99.0.2, both with IPv6 duplicate address detection off
    // (or the link-local addresses would stay tentative for ~1.6 s and early IPv6 mDNS be lost).
    let mut bed = Bed::new(2).expect("test bed");
    let shared = Scratch::new("veth");
    let first_run = ChildRun::spawn(&mut bed, 0, NAME, "veth-first", &parent_netns, &shared);
    let second_run = ChildRun::spawn(&mut bed, 1, NAME, "veth-second", &parent_netns, &shared);
    second_run.finish(&mut bed);
    first_run.finish(&mut bed);
}

// ---------------------------------------------------------------------------------------------
// Parent: namespaces and processes only. It must never start mdns-sd.

fn child_role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// This process's network namespace, or `None` (after saying why) when the test cannot run.
fn parent_netns_or_skip(test_name: &str) -> Option<String> {
    if let Some(reason) = skip_reason() {
        println!("SKIP {test_name}: {reason} (mDNS never runs outside a namespace)");
        return None;
    }
    Some(netns_id().expect("read this process's network namespace"))
}

/// This process's network namespace, as `net:[inode]`.
fn netns_id() -> Result<String, String> {
    std::fs::read_link("/proc/self/ns/net")
        .map(|link| link.to_string_lossy().into_owned())
        .map_err(|e| format!("/proc/self/ns/net: {e}"))
}

/// This test binary, running one test as a child on a host of the bed; output goes to a file.
struct ChildRun {
    role: String,
    process: ProcessId,
    log_path: PathBuf,
    started: Instant,
}

impl ChildRun {
    fn spawn(
        bed: &mut Bed,
        host: usize,
        test_name: &str,
        role: &str,
        parent_netns: &str,
        shared: &Scratch,
    ) -> ChildRun {
        let exe = std::env::current_exe().expect("path of this test binary");
        let log_path = shared.path().join(format!("{role}.log"));
        let shared_dir = shared.path().to_str().expect("a UTF-8 temporary directory");
        bed.set_process_lifetime(CHILD_TIMEOUT);
        let process = bed
            .spawn(
                host,
                &exe,
                &["--exact", test_name, "--nocapture", "--test-threads=1"],
                &[(ROLE_ENV, role), (PARENT_NETNS_ENV, parent_netns), (SHARED_DIR_ENV, shared_dir)],
                &log_path,
            )
            .expect("start the child in the bed");
        ChildRun { role: role.to_owned(), process, log_path, started: Instant::now() }
    }

    /// Waits for the child (bounded), prints its output, and asserts that it passed.
    fn finish(self, bed: &mut Bed) {
        // The bed's lifetime bounds the child; this bounds the wait too (the bed kills a child
        // still there when it is dropped).
        let left = (self.started + CHILD_TIMEOUT + Duration::from_secs(10))
            .saturating_duration_since(Instant::now());
        let status = bed.wait(self.process, left).expect("wait for the child");
        let output = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let role = &self.role;
        println!(
            "---- child {role} ({:.1} s) ----\n{output}---- end of child {role} ----",
            self.started.elapsed().as_secs_f64()
        );
        let status = status.unwrap_or_else(|| panic!("child {role} hung and was killed"));
        assert!(status.success(), "child {role} failed: {status}");
        assert!(
            output.contains(CHILD_PASSED),
            "child {role} exited 0 without running the checks (test filter mismatch?)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Children: inside a namespace.

fn loopback_child() {
    refuse_unless_isolated();
    init_logging();
    let ours = NetworkKey::from_bytes([1; 32]).fingerprint();
    let foreign = NetworkKey::from_bytes([2; 32]).fingerprint();
    let id_a = NodeId([0xa1; 16]);
    let id_b = NodeId([0xb2; 16]);
    let id_c = NodeId([0xc3; 16]);
    let on_lo = || Interfaces::Named(vec!["lo".into()]);

    let started = Instant::now();
    let (a, mut rx_a) = start(id_a, 7401, ours, on_lo());
    let (b, mut rx_b) = start(id_b, 7402, ours, on_lo());
    let (c, _rx_c) = start(id_c, 7403, foreign, on_lo());
    println!("started three instances in {:?}", started.elapsed());

    // A and B find each other.
    let a_at = SocketAddr::from(([127, 0, 0, 1], 7401));
    let b_at = SocketAddr::from(([127, 0, 0, 1], 7402));
    let seen_by_a = rx_a.wait_for("A finds B", |e| found_at(e, id_b, b_at));
    let seen_by_b = rx_b.wait_for("B finds A", |e| found_at(e, id_a, a_at));
    println!("A found B after {seen_by_a:?}, B found A after {seen_by_b:?}");

    // A service browser (a third mDNS daemon here) lists both dashboards.
    let mut dashboards = Dashboards::browse();
    let http_a = dashboards.wait_resolved(id_a, 8401);
    let http_b = dashboards.wait_resolved(id_b, 8402);
    println!("the browser found the dashboards {http_a:?} and {http_b:?}");

    // Both ignore C (another deployment), and C ignores both of them.
    wait_until("A and B ignore C, C ignores A and B", || {
        a.counters().ignored_foreign_key >= 1
            && b.counters().ignored_foreign_key >= 1
            && c.counters().ignored_foreign_key >= 2
    });

    // Records a box of ours must not act on: a broken TXT, another protocol version.
    let rogue = RogueRecords::register(ours);
    wait_until("A ignores the broken and the future record", || {
        let counters = a.counters();
        counters.ignored_bad_txt >= 1 && counters.ignored_version >= 1
    });
    rogue.shutdown();

    // B leaves cleanly: its goodbye reaches A.
    let stopping = Instant::now();
    b.shutdown();
    let shutdown_took = stopping.elapsed();
    println!("B's shutdown took {shutdown_took:?}");
    assert!(shutdown_took <= SHUTDOWN_LIMIT, "shutdown took {shutdown_took:?}");
    let lost_after = rx_a.wait_for("A loses B", |e| *e == DiscoveryEvent::PeerLost { node_id: id_b });
    println!("A lost B {lost_after:?} after B's shutdown");
    // B's dashboard went with it (a goodbye, not an expiry: this is well within its TTL).
    let removed_after = dashboards.wait_removed(&http_b);
    println!("the browser saw B's dashboard go ({removed_after:?} after A lost B)");
    assert!(!dashboards.removed.contains(&http_a), "A's dashboard stays: {:?}", dashboards.removed);
    dashboards.shutdown();

    // Nothing about C, or about A or B themselves, ever reached A or B.
    for (name, rx, own) in [("A", &mut rx_a, id_a), ("B", &mut rx_b, id_b)] {
        rx.drain();
        for event in &rx.seen {
            assert_ne!(event.node_id(), id_c, "{name} reported the foreign box: {event:?}");
            assert_ne!(event.node_id(), own, "{name} reported itself: {event:?}");
        }
        println!("{name} events: {:?}", rx.seen);
    }

    let counters_a = a.counters();
    let counters_c = c.counters();
    println!("A counters: {counters_a:?}\nC counters: {counters_c:?}");
    assert_eq!(counters_a.found, 1, "A found exactly B");
    assert_eq!(counters_a.lost, 1, "A lost exactly B");
    assert_eq!(counters_a.errors, 0, "A saw no errors");
    // C sees the rogue records too; the future one is told apart by its version first.
    assert_eq!((counters_c.found, counters_c.lost, counters_c.errors), (0, 0, 0), "C found nobody");
    assert!(counters_c.ignored_foreign_key >= 2, "C ignored A and B");

    let stopping = Instant::now();
    a.shutdown();
    c.shutdown();
    println!("A and C shut down in {:?}", stopping.elapsed());
    println!("{CHILD_PASSED}");
}

/// One side of the two-host test. The first waits for the second's goodbye; the second leaves once
/// the first has written that it found it.
fn veth_child(role: &str) {
    refuse_unless_isolated();
    init_logging();
    let shared = PathBuf::from(std::env::var_os(SHARED_DIR_ENV).expect("shared directory"));
    let first_found = shared.join("first-found");
    let fingerprint = NetworkKey::from_bytes([3; 32]).fingerprint();
    let (own, own_port, peer, peer_v4) = match role {
        "veth-first" => (0x11, 7411, 0x22, [10, 99, 0, 2]),
        "veth-second" => (0x22, 7422, 0x11, [10, 99, 0, 1]),
        other => panic!("unknown role {other}"),
    };
    let peer_id = NodeId([peer; 16]);
    let peer_port = if own == 0x11 { 7422 } else { 7411 };
    let eth0_index = if_addrs::get_if_addrs()
        .expect("list interfaces")
        .iter()
        .find(|intf| intf.name == "eth0")
        .and_then(|intf| intf.index)
        .expect("index of eth0");

    let (discovery, mut rx) = start(NodeId([own; 16]), own_port, fingerprint, Interfaces::AllNonLoopback);
    // The first record may carry only some addresses: wait for one that has both kinds.
    let took = rx.wait_for("the peer at IPv4 and scoped link-local IPv6", |event| {
        let DiscoveryEvent::PeerFound { node_id, addrs, .. } = event else {
            return false;
        };
        let v4 = addrs.contains(&SocketAddr::from((peer_v4, peer_port)));
        let v6 = addrs.iter().any(|addr| match addr {
            SocketAddr::V6(v6) => {
                v6.port() == peer_port
                    && v6.ip().segments()[0] & 0xffc0 == 0xfe80
                    && v6.scope_id() == eth0_index
            }
            SocketAddr::V4(_) => false,
        });
        *node_id == peer_id && v4 && v6
    });
    println!("{role}: found the peer over IPv4 and IPv6 after {took:?}: {:?}", rx.seen);
    for event in &rx.seen {
        if let DiscoveryEvent::PeerFound { addrs, .. } = event {
            assert!(
                addrs.iter().all(|addr| !addr.ip().is_loopback()),
                "{role}: a loopback address was announced: {addrs:?}"
            );
        }
    }

    if role == "veth-first" {
        std::fs::write(&first_found, b"").expect("write the hand-over file");
        let lost_after = rx
            .wait_for("the peer's goodbye", |event| *event == DiscoveryEvent::PeerLost { node_id: peer_id });
        println!("{role}: the peer's goodbye arrived {lost_after:?} after it was found");
    } else {
        wait_for_file(&first_found);
    }
    let counters = discovery.counters();
    println!("{role}: counters {counters:?}");
    assert_eq!((counters.found, counters.errors), (1, 0));
    let stopping = Instant::now();
    discovery.shutdown();
    let shutdown_took = stopping.elapsed();
    assert!(shutdown_took <= SHUTDOWN_LIMIT, "shutdown took {shutdown_took:?}");
    println!("{role}: shut down in {shutdown_took:?}");
    println!("{CHILD_PASSED}");
}

/// Panics unless this process is in another network namespace than the parent and every
/// address here is loopback, link-local or test-bed (10.99.0.0/16): the last guard before
/// mdns-sd joins multicast groups.
fn refuse_unless_isolated() {
    let parent = std::env::var(PARENT_NETNS_ENV).unwrap_or_default();
    let ours = netns_id();
    assert!(
        matches!(&ours, Ok(ours) if !parent.is_empty() && *ours != parent),
        "refusing to start mDNS: not in a separate network namespace ({ours:?}, parent {parent:?})"
    );
    let interfaces = if_addrs::get_if_addrs().expect("list interfaces");
    let outside: Vec<_> = interfaces
        .iter()
        .filter(|intf| match intf.ip() {
            IpAddr::V4(v4) => !v4.is_loopback() && v4.octets()[..2] != [10, 99],
            IpAddr::V6(v6) => !v6.is_loopback() && v6.segments()[0] & 0xffc0 != 0xfe80,
        })
        .map(|intf| (&intf.name, intf.ip()))
        .collect();
    assert!(
        outside.is_empty(),
        "refusing to start mDNS: this namespace has addresses outside the test bed: {outside:?}"
    );
}

fn init_logging() {
    let _ = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("shoal::discovery=debug,mdns_sd=warn"),
    )
    .is_test(true)
    .try_init();
}

fn start(
    node_id: NodeId,
    udp_port: u16,
    key_fingerprint: [u8; 4],
    interfaces: Interfaces,
) -> (Discovery, Events) {
    let (tx, rx) = smol::channel::bounded(16);
    let config = DiscoveryConfig {
        node_id,
        udp_port,
        http_port: udp_port + 1000,
        board: "netns-test".into(),
        key_fingerprint,
        interfaces,
    };
    let discovery = Discovery::start(config, tx).expect("start discovery");
    (discovery, Events { rx, seen: Vec::new() })
}

fn found_at(event: &DiscoveryEvent, node: NodeId, at: SocketAddr) -> bool {
    matches!(event, DiscoveryEvent::PeerFound { node_id, addrs, http_port, board }
        if *node_id == node && addrs.contains(&at) && *http_port == at.port() + 1000
            && board == "netns-test")
}

/// One instance's events, and every event taken so far.
struct Events {
    rx: Receiver<DiscoveryEvent>,
    seen: Vec<DiscoveryEvent>,
}

impl Events {
    /// Takes events until one matches; panics after `EVENT_WAIT`. Returns the time it took.
    fn wait_for(&mut self, what: &str, matches: impl Fn(&DiscoveryEvent) -> bool) -> Duration {
        let started = Instant::now();
        let deadline = started + EVENT_WAIT;
        loop {
            let event = smol::block_on(async { self.rx.recv().await.ok() }.or(async {
                smol::Timer::at(deadline).await;
                None
            }));
            let Some(event) = event else {
                panic!("{what}: nothing within {EVENT_WAIT:?}; events so far: {:?}", self.seen);
            };
            let hit = matches(&event);
            self.seen.push(event);
            if hit {
                return started.elapsed();
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            self.seen.push(event);
        }
    }
}

/// Polls `condition` until it holds; panics after `EVENT_WAIT`.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + EVENT_WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {EVENT_WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the other child's hand-over file; panics after twice `EVENT_WAIT`.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + 2 * EVENT_WAIT;
    while !path.exists() {
        assert!(Instant::now() < deadline, "no {} in time", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A DNS-SD browser for `_http._tcp`, as a web browser or Avahi would run one: its own mdns-sd
/// daemon on `lo`.
struct Dashboards {
    daemon: mdns_sd::ServiceDaemon,
    events: mdns_sd::Receiver<mdns_sd::ServiceEvent>,
    /// Full names resolved and removed so far, in order.
    resolved: Vec<String>,
    removed: Vec<String>,
}

impl Dashboards {
    fn browse() -> Dashboards {
        let daemon = mdns_sd::ServiceDaemon::new().expect("start a browsing mDNS daemon");
        daemon.disable_interface(mdns_sd::IfKind::All).expect("disable interfaces");
        daemon.enable_interface("lo").expect("enable lo");
        let events = daemon.browse(HTTP_SERVICE_TYPE).expect("browse _http._tcp");
        Dashboards { daemon, events, resolved: Vec::new(), removed: Vec::new() }
    }

    /// Takes browse events until `until` holds for one; panics after `EVENT_WAIT`.
    fn next_until(&mut self, what: &str, until: impl Fn(&mdns_sd::ServiceEvent) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let left = EVENT_WAIT.saturating_sub(started.elapsed());
            let event = self.events.recv_timeout(left).unwrap_or_else(|e| {
                panic!("{what}: nothing within {EVENT_WAIT:?} ({e}); resolved {:?}", self.resolved)
            });
            let hit = until(&event);
            match event {
                mdns_sd::ServiceEvent::ServiceResolved(service) => {
                    self.resolved.push(service.fullname.clone())
                }
                mdns_sd::ServiceEvent::ServiceRemoved(_, fullname) => self.removed.push(fullname),
                _ => {}
            }
            if hit {
                return started.elapsed();
            }
        }
    }

    /// Waits for the dashboard of `node`, checks its record, and returns its full name.
    fn wait_resolved(&mut self, node: NodeId, http_port: u16) -> String {
        // `NodeId`'s plain form is its first 8 hex digits.
        let fullname = format!("Shoal {node} (netns-test).{HTTP_SERVICE_TYPE}");
        let host = format!("shoal-{node}.local.");
        if self.resolved.iter().any(|name| name.eq_ignore_ascii_case(&fullname)) {
            return fullname;
        }
        self.next_until(&format!("the dashboard {fullname}"), |event| {
            let mdns_sd::ServiceEvent::ServiceResolved(service) = event else {
                return false;
            };
            if !service.fullname.eq_ignore_ascii_case(&fullname) {
                return false;
            }
            assert_eq!(service.port, http_port, "{service:?}");
            assert_eq!(service.host, host, "{service:?}");
            assert_eq!(service.txt_properties.get_property_val_str("path"), Some("/"), "{service:?}");
            assert!(
                // The first resolution may carry only some addresses (`docs/TESTING.md`, "mDNS").
                service.addresses.iter().any(|a| a.to_ip_addr().is_loopback()),
                "{service:?}"
            );
            true
        });
        fullname
    }

    /// Waits for `fullname` to be removed; how long that took.
    fn wait_removed(&mut self, fullname: &str) -> Duration {
        if self.removed.iter().any(|name| name.eq_ignore_ascii_case(fullname)) {
            return Duration::ZERO;
        }
        self.next_until(&format!("{fullname} removed"), |event| {
            matches!(event, mdns_sd::ServiceEvent::ServiceRemoved(_, name) if name.eq_ignore_ascii_case(fullname))
        })
    }

    fn shutdown(self) {
        if let Ok(status) = self.daemon.shutdown() {
            let _ = status.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Records that look like Shoal boxes but must be ignored, published with mdns-sd directly.
struct RogueRecords {
    daemon: mdns_sd::ServiceDaemon,
}

impl RogueRecords {
    fn register(fingerprint: [u8; 4]) -> RogueRecords {
        let daemon = mdns_sd::ServiceDaemon::new().expect("start a second mDNS daemon");
        daemon.disable_interface(mdns_sd::IfKind::All).expect("disable interfaces");
        daemon.enable_interface("lo").expect("enable lo");
        let fp: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
        let id = "d4".repeat(16);
        // Our own version, so that only the broken `id` is wrong with it.
        let version = shoal_core::wire::PROTOCOL_VERSION.to_string();
        let records: [(&str, [(&str, &str); 5]); 2] = [
            // `id` is not hex.
            (
                "rogue-bad-txt",
                [("id", "not-a-node-id"), ("v", &version), ("http", "80"), ("board", "x"), ("fp", &fp)],
            ),
            // A protocol version from the future.
            ("rogue-future", [("id", &id), ("v", "99"), ("http", "80"), ("board", "x"), ("fp", &fp)]),
        ];
        for (instance, txt) in records {
            let mut info = mdns_sd::ServiceInfo::new(
                SERVICE_TYPE,
                instance,
                &format!("{instance}.local."),
                "127.0.0.1",
                7499,
                &txt[..],
            )
            .expect("build a rogue record");
            info.set_requires_probe(false);
            daemon.register(info).expect("register a rogue record");
        }
        RogueRecords { daemon }
    }

    fn shutdown(self) {
        if let Ok(status) = self.daemon.shutdown() {
            let _ = status.recv_timeout(Duration::from_secs(1));
        }
    }
}
