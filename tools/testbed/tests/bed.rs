//! The bed itself, for real: namespaces, reachability, impairment, processes and teardown.
//!
//! Every test needs root and iproute2 and skips, saying why, without them. Traffic goes between
//! the bed's own namespaces only. The UDP and HTTP peers are `python3` one-liners, each bounded
//! by its own socket timeout and by the bed's time limits.

use std::cell::Cell;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::panic;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use shoal_testbed::{is_root, skip_reason, Bed, BedError, Signal};

/// Returns from the test, saying why, when this machine cannot build a bed.
macro_rules! require_bed {
    () => {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

/// A UDP receiver: binds the port (joining the group if one is given, on the given local
/// address), says `bound`, then prints the first datagram and its sender, or exits 3 after the
/// timeout. Arguments: port, timeout in seconds, [group, local address].
const RECEIVER: &str = r#"
import socket, struct, sys
port, limit = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
if len(sys.argv) > 3:
    mreq = struct.pack("4s4s", socket.inet_aton(sys.argv[3]), socket.inet_aton(sys.argv[4]))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.settimeout(limit)
print("bound", flush=True)
try:
    data, sender = s.recvfrom(2048)
except socket.timeout:
    print("nothing", flush=True)
    sys.exit(3)
print("got", data.decode(), "from", sender[0], flush=True)
"#;

/// A UDP sender: `count` datagrams "shoal" to address:port, 10 ms apart, multicast TTL 1;
/// prints how many `sendto` calls failed (a lossy link must not make them fail).
const SENDER: &str = r#"
import socket, sys, time
address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
errors = 0
for _ in range(count):
    try:
        s.sendto(b"shoal", (address, port))
    except OSError as e:
        errors += 1
        print(e, file=sys.stderr)
    time.sleep(0.01)
print("send errors", errors)
"#;

const PORT: &str = "47000";

/// UDP trials between hosts of a bed, with `python3` peers whose logs go to a directory of the
/// test's own (removed at the end).
struct Udp {
    python: PathBuf,
    dir: PathBuf,
    trials: Cell<usize>,
}

impl Udp {
    /// `None`, after saying so, when python3 is not installed.
    fn new(test: &str) -> Option<Udp> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let Some(python) =
            std::env::split_paths(&path).map(|dir| dir.join("python3")).find(|candidate| candidate.is_file())
        else {
            eprintln!("skipped: python3 not found in PATH");
            return None;
        };
        Some(Udp { python, dir: scratch(test), trials: Cell::new(0) })
    }

    /// Sends `count` datagrams from host `from` to `destination` (a host, or a multicast group
    /// the receivers join) and returns, for each host in `receivers`, what it printed:
    /// `Some("got shoal from <ip>")`, or `None` when nothing arrived within `listen`.
    fn trial(
        &self,
        bed: &mut Bed,
        from: usize,
        destination: Ipv4Addr,
        receivers: &[usize],
        count: u32,
        listen: Duration,
    ) -> Vec<Option<String>> {
        let trial = self.trials.get();
        self.trials.set(trial + 1);
        let listen_secs = listen.as_secs_f64().to_string();
        let group = destination.to_string();
        let mut spawned = Vec::new();
        for &host in receivers {
            let log = self.dir.join(format!("trial-{trial}-host-{host}.log"));
            let local = bed.ip(host).to_string();
            let mut args = vec!["-c", RECEIVER, PORT, &listen_secs];
            if destination.is_multicast() {
                args.extend([group.as_str(), &local]);
            }
            let process = bed.spawn(host, &self.python, &args, &[], &log).unwrap();
            assert!(
                wait_for_line(&log, "bound", Duration::from_secs(10)),
                "receiver on host {host} never bound: {}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            spawned.push((process, log));
        }
        let python = self.python.to_str().unwrap();
        let count = count.to_string();
        let sent =
            bed.exec(from, &[python, "-c", SENDER, &group, PORT, &count], Duration::from_secs(10)).unwrap();
        assert!(sent.status.success(), "sender failed: {sent:?}");
        assert_eq!(
            String::from_utf8_lossy(&sent.stdout).trim(),
            "send errors 0",
            "sendto must not fail, even on a lossy link: {sent:?}"
        );
        spawned
            .into_iter()
            .map(|(process, log)| {
                let status = bed
                    .wait(process, listen + Duration::from_secs(5))
                    .unwrap()
                    .expect("receiver outlived its own timeout");
                let text = fs::read_to_string(&log).unwrap();
                match status.code() {
                    Some(0) => Some(text.lines().last().unwrap().to_owned()),
                    Some(3) => None,
                    _ => panic!("receiver failed with {status}: {text}"),
                }
            })
            .collect()
    }
}

impl Drop for Udp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory for one test's logs and files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-testbed-test-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `log` until it contains `text`, for at most `limit`.
fn wait_for_line(log: &Path, text: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if fs::read_to_string(log).is_ok_and(|content| content.contains(text)) {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The packet count of the (only) counter in `nft list` output.
fn drop_count(rules: &str) -> u32 {
    rules
        .split("counter packets ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {rules}"))
}

fn namespaces_on_machine() -> String {
    let output = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn listed(list: &str, name: &str) -> bool {
    list.lines().any(|line| line.split_whitespace().next() == Some(name))
}

/// Alive and not a zombie waiting for its parent.
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat[stat.rfind(')').unwrap() + 1..].trim_start().chars().next();
        !matches!(state, Some('Z' | 'X'))
    })
}

#[test]
fn three_hosts_reach_each_other_and_impairment_applies() {
    require_bed!();
    let Some(udp) = Udp::new("three") else { return };
    let started = Instant::now();
    let mut bed = Bed::new(3).unwrap();
    eprintln!("3-host bed built in {:?}", started.elapsed());
    assert_eq!(bed.hosts(), 3);
    assert_eq!(bed.ip(0), Ipv4Addr::new(10, 99, 0, 1));
    assert_eq!(bed.ip(2), Ipv4Addr::new(10, 99, 0, 3));
    let delivered = || Some("got shoal from 10.99.0.1".to_owned());
    let quick = Duration::from_secs(5);
    let to_host_2 = bed.ip(2);

    assert_eq!(udp.trial(&mut bed, 0, to_host_2, &[2], 3, quick), [delivered()]);

    bed.set_loss(0, 50).unwrap();
    bed.set_loss(0, 100).unwrap(); // replaces the 50 % rule
    let rules = |bed: &Bed| {
        let list = ["nft", "list", "table", "netdev", "shoal_testbed"];
        let output = bed.exec(0, &list, Duration::from_secs(5)).unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let before = rules(&bed);
    assert_eq!(before.matches("drop").count(), 1, "one rule only: {before}");
    assert!(!before.contains("< 50"), "{before}");
    let lost = udp.trial(&mut bed, 0, to_host_2, &[2], 20, Duration::from_secs(1));
    assert_eq!(lost, [None], "100 % loss let a datagram through");
    // At least the 20 datagrams: IPv6 housekeeping (MLD, router solicitations) may add some.
    let after = rules(&bed);
    assert!(drop_count(&after) >= 20, "20 drops expected: {after}");

    bed.set_loss(0, 0).unwrap();
    bed.set_loss(0, 0).unwrap(); // idempotent
    assert_eq!(udp.trial(&mut bed, 0, to_host_2, &[2], 3, quick), [delivered()]);

    let qdisc = |bed: &Bed| {
        let show = ["tc", "qdisc", "show", "dev", "eth0"];
        let output = bed.exec(2, &show, Duration::from_secs(5)).unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    bed.set_rate(2, 10).unwrap();
    let shaped = qdisc(&bed);
    eprintln!("host 2 qdisc after set_rate(2, 10): {shaped}");
    assert!(shaped.contains("tbf") && shaped.contains("rate 10Mbit"), "{shaped}");
    bed.set_rate(2, 0).unwrap();
    bed.set_rate(2, 0).unwrap(); // idempotent
    assert!(!qdisc(&bed).contains("tbf"));

    let started = Instant::now();
    drop(bed);
    eprintln!("3-host bed torn down in {:?}", started.elapsed());
}

#[test]
fn partial_loss_drops_some_datagrams_silently() {
    require_bed!();
    let Some(python) = Udp::new("partial").map(|udp| udp.python.clone()) else {
        return;
    };
    let bed = Bed::new(2).unwrap();
    bed.set_loss(0, 30).unwrap();
    let sent = bed
        .exec(0, &[python.to_str().unwrap(), "-c", SENDER, "10.99.0.2", PORT, "200"], Duration::from_secs(20))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sent.stdout).trim(), "send errors 0", "{sent:?}");
    let list = ["nft", "list", "table", "netdev", "shoal_testbed"];
    let rules = bed.exec(0, &list, Duration::from_secs(5)).unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    let dropped = drop_count(&rules);
    eprintln!("30 % loss dropped {dropped} of 200 datagrams");
    // Binomial(200, 0.3): mean 60, standard deviation 6.5; 30..90 is beyond 4.5 deviations.
    assert!((30..=90).contains(&dropped), "{dropped}");
}

#[test]
fn multicast_reaches_every_other_host_and_ipv6_is_ready() {
    require_bed!();
    let Some(udp) = Udp::new("multicast") else {
        return;
    };
    let mut bed = Bed::new(3).unwrap();
    // accept_dad=0 must reach eth0 itself: no link-local address may be tentative.
    let show = ["ip", "-6", "addr", "show", "dev", "eth0"];
    let addresses = bed.exec(1, &show, Duration::from_secs(5)).unwrap();
    let addresses = String::from_utf8_lossy(&addresses.stdout);
    assert!(addresses.contains("fe80::"), "{addresses}");
    assert!(!addresses.contains("tentative"), "{addresses}");

    let group = Ipv4Addr::new(239, 255, 0, 1);
    let got = udp.trial(&mut bed, 0, group, &[1, 2], 5, Duration::from_secs(5));
    let delivered = Some("got shoal from 10.99.0.1".to_owned());
    assert_eq!(got, [delivered.clone(), delivered]);
}

/// Regression: with the veths made before br0, vb0 and host 0's eth0 shared ifindex 2, the kernel
/// handled vb0's carrier late, and host 0's first datagrams (no ARP to hide it: multicast) were
/// dropped for ~0.9 s after `Bed::new` returned.
#[test]
fn links_forward_as_soon_as_the_bed_is_built() {
    require_bed!();
    let mut bed = Bed::new(4).unwrap();
    bed.add_namespace_host().unwrap();
    let ports: Vec<String> = (0..5).map(|i| format!("/sys/class/net/vb{i}/brport/state")).collect();
    let states = Command::new("ip")
        .args(["netns", "exec", bed.bridge_namespace(), "cat"])
        .args(&ports)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&states.stdout), "3\n".repeat(5), "3 = forwarding");
    for host in 0..5 {
        let operstate = ["cat", "/sys/class/net/eth0/operstate"];
        let state = bed.exec(host, &operstate, Duration::from_secs(5)).unwrap();
        assert_eq!(state.stdout, b"up\n", "host {host}");
    }
}

#[test]
fn late_joiner_is_on_the_same_lan() {
    require_bed!();
    let Some(udp) = Udp::new("late") else { return };
    let mut bed = Bed::new(2).unwrap();
    let late = bed.add_namespace_host().unwrap();
    assert_eq!(late, 2);
    assert_eq!(bed.hosts(), 3);
    assert_eq!(bed.ip(late), Ipv4Addr::new(10, 99, 0, 3));
    let to_host_0 = bed.ip(0);
    let got = udp.trial(&mut bed, late, to_host_0, &[0], 3, Duration::from_secs(5));
    assert_eq!(got, [Some("got shoal from 10.99.0.3".to_owned())]);
}

/// A loopback bed: one namespace with nothing but `lo`, where datagrams to 127.0.0.1 and to a
/// multicast group arrive, and whose `lo` is not the machine's.
#[test]
fn a_loopback_bed_has_only_lo_and_multicast_on_it() {
    require_bed!();
    let Some(udp) = Udp::new("loopback") else { return };
    let mut bed = Bed::loopback().unwrap();
    assert!(bed.is_loopback());
    assert_eq!(bed.hosts(), 1);
    assert_eq!(bed.ip(0), Ipv4Addr::LOCALHOST);
    assert!(bed.namespace(0).ends_with("lo"), "{}", bed.namespace(0));
    let links = bed.exec(0, &["ip", "-o", "link", "show"], Duration::from_secs(5)).unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    assert!(links.contains(": lo:") && links.contains("MULTICAST") && links.contains("UP"), "{links}");
    let routes = bed.exec(0, &["ip", "route", "show", "table", "all"], Duration::from_secs(5)).unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.contains("224.0.0.0/4 dev lo"), "{routes}");
    assert!(!routes.contains("default"), "no way out: {routes}");

    let delivered = || Some("got shoal from 127.0.0.1".to_owned());
    let quick = Duration::from_secs(5);
    assert_eq!(udp.trial(&mut bed, 0, Ipv4Addr::LOCALHOST, &[0], 3, quick), [delivered()]);
    let group = Ipv4Addr::new(239, 255, 0, 1);
    assert_eq!(udp.trial(&mut bed, 0, group, &[0], 3, quick), [delivered()]);

    // What only makes sense on a LAN says so.
    assert!(matches!(bed.add_namespace_host(), Err(BedError::InvalidArgument(_))));
    assert!(matches!(bed.set_loss(0, 5), Err(BedError::InvalidArgument(_))), "no eth0 to impair");
    assert!(matches!(bed.set_rate(0, 5), Err(BedError::InvalidArgument(_))), "no eth0 to shape");
    assert!(panic::catch_unwind(|| bed.bridge_namespace().to_owned()).is_err());
}

/// A loopback bed's `lo` is its own: a server on 127.0.0.1 inside is not on the machine's `lo`,
/// nor on another loopback bed's.
#[test]
fn loopback_beds_are_apart_from_the_machine_and_each_other() {
    require_bed!();
    let dir = scratch("loopback-apart");
    let mut first = Bed::loopback().unwrap();
    let second = Bed::loopback().unwrap();
    assert_ne!(first.namespace(0), second.namespace(0));
    let server = ["-m", "http.server", "--bind", "127.0.0.1", "47080"];
    first.spawn(0, Path::new("python3"), &server, &[], &dir.join("http.log")).unwrap();
    let url = "http://127.0.0.1:47080/";
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.http_get(0, url).is_err() {
        assert!(Instant::now() < deadline, "the server never answered inside its bed");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(second.http_get(0, url).is_err(), "another loopback bed reached the server");
    let outside =
        Command::new("curl").args(["-s", "--max-time", "2", "--noproxy", "*", url]).output().unwrap();
    assert!(!outside.status.success(), "the machine's own lo reached the server");
    let _ = fs::remove_dir_all(dir);
}

/// `Bed::stop`: SIGTERM for a program that listens to it, SIGKILL after the grace for one that
/// does not.
#[test]
fn stop_is_polite_first_and_firm_after_the_grace() {
    require_bed!();
    let dir = scratch("stop");
    let mut bed = Bed::new(1).unwrap();
    let polite = bed.spawn(0, Path::new("sleep"), &["300"], &[], &dir.join("polite.log")).unwrap();
    let status = bed.stop(polite, Duration::from_secs(5)).unwrap().expect("stopped");
    assert_eq!(status.signal(), Some(15), "{status:?}");
    let stubborn = bed
        .spawn(
            0,
            Path::new("sh"),
            &["-c", "trap '' TERM; echo trapped; while :; do sleep 1; done"],
            &[],
            &dir.join("stubborn.log"),
        )
        .unwrap();
    assert!(wait_for_line(&dir.join("stubborn.log"), "trapped", Duration::from_secs(5)));
    let started = Instant::now();
    let status = bed.stop(stubborn, Duration::from_millis(500)).unwrap().expect("killed");
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // Stopping what has already exited only reports how it ended.
    assert_eq!(bed.stop(stubborn, Duration::ZERO).unwrap(), Some(status));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn is_root_agrees_with_the_bed() {
    // skip_reason says "not root" exactly when is_root is false.
    let not_root = skip_reason().is_some_and(|reason| reason.starts_with("not root"));
    assert_eq!(is_root(), !not_root);
}

#[test]
fn every_signal_reaches_the_program() {
    require_bed!();
    let dir = scratch("signals");
    let mut bed = Bed::new(1).unwrap();
    for (signal, number) in [(Signal::Term, 15), (Signal::Kill, 9), (Signal::Hup, 1), (Signal::Int, 2)] {
        let log = dir.join(format!("{signal:?}.log"));
        let sleeper = bed.spawn(0, Path::new("sleep"), &["30"], &[], &log).unwrap();
        bed.signal(sleeper, signal).unwrap();
        let status = bed.wait(sleeper, Duration::from_secs(5)).unwrap();
        let status = status.unwrap_or_else(|| panic!("{signal:?} did not end sleep"));
        assert_eq!(status.signal(), Some(number), "{signal:?}: {status}");
    }
    let log = dir.join("exit.log");
    let exits = bed
        .spawn(0, Path::new("sh"), &["-c", "echo \"$GREETING\"; exit 4"], &[("GREETING", "hi")], &log)
        .unwrap();
    let status = bed.wait(exits, Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(status.code(), Some(4));
    assert_eq!(fs::read_to_string(&log).unwrap(), "hi\n");
    drop(bed);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn http_get_and_signals_reach_the_program() {
    require_bed!();
    let Some(udp) = Udp::new("http") else { return };
    let (python, dir) = (&udp.python, &udp.dir);
    let site = dir.join("site");
    fs::create_dir_all(&site).unwrap();
    fs::write(site.join("hello.txt"), "hello from host 0\n").unwrap();
    let mut bed = Bed::new(2).unwrap();
    let server = bed
        .spawn(
            0,
            python,
            &["-m", "http.server", "8080", "--bind", "10.99.0.1", "--directory", site.to_str().unwrap()],
            &[("PYTHONUNBUFFERED", "1")],
            &dir.join("server.log"),
        )
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        match bed.http_get(1, "http://10.99.0.1:8080/hello.txt") {
            Ok(body) => break body,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the server: {e}");
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("server never answered: {e}"),
        }
    };
    assert_eq!(body, "hello from host 0\n");
    // The recorded PID is the program's own (here after a pyenv shim may have exec'd into it).
    let pid = bed.pid(server).unwrap();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.to_string_lossy().contains("python"), "pid {pid} is {exe:?}, not the program");
    match bed.http_get(1, "http://10.99.0.1:8080/missing") {
        Err(BedError::Http { status: 404, .. }) => {}
        other => panic!("expected a 404 error, got {other:?}"),
    }
    match bed.http_get(1, "http://10.99.0.2:9/") {
        Err(BedError::CommandFailed { stderr, .. }) => eprintln!("refused as expected: {stderr}"),
        other => panic!("expected a connection error, got {other:?}"),
    }

    assert_eq!(bed.wait(server, Duration::from_millis(50)).unwrap(), None);
    bed.signal(server, Signal::Term).unwrap();
    let status = bed.wait(server, Duration::from_secs(5)).unwrap().expect("server ignored TERM");
    assert_eq!(status.signal(), Some(15), "the program's own status passes through: {status}");
    assert_eq!(bed.wait(server, Duration::ZERO).unwrap(), Some(status));
    assert!(matches!(bed.signal(server, Signal::Hup), Err(BedError::NotRunning { .. })));
}

#[test]
fn exec_returns_output_and_times_out() {
    require_bed!();
    let bed = Bed::new(1).unwrap();
    let output =
        bed.exec(0, &["sh", "-c", "echo out; echo err >&2; exit 7"], Duration::from_secs(5)).unwrap();
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");

    let started = Instant::now();
    let result = bed.exec(0, &["sleep", "30"], Duration::from_secs(1));
    assert!(matches!(result, Err(BedError::TimedOut { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    eprintln!("{}", result.unwrap_err());
}

#[test]
fn errors_name_the_problem() {
    require_bed!();
    let mut bed = Bed::new(1).unwrap();
    let error = bed.set_loss(3, 5).unwrap_err();
    assert!(matches!(error, BedError::NoSuchHost { host: 3, hosts: 1 }), "{error}");
    eprintln!("{error}");
    let error = bed.set_loss(0, 101).unwrap_err();
    assert!(matches!(error, BedError::InvalidArgument(_)), "{error}");
    let log = std::env::temp_dir().join(format!("shoal-testbed-missing-{}.log", std::process::id()));
    let error = bed.spawn(0, Path::new("/nonexistent/shoal"), &[], &[], &log).unwrap_err();
    assert!(matches!(error, BedError::MissingProgram(_)), "{error}");
    eprintln!("{error}");
    let error = bed.exec(0, &[], Duration::from_secs(1)).unwrap_err();
    assert!(matches!(error, BedError::InvalidArgument(_)), "{error}");
    let other = Bed::new(1).unwrap();
    let mut other = other;
    let sleeper = other.spawn(0, Path::new("sleep"), &["30"], &[], &log).unwrap();
    let error = bed.signal(sleeper, Signal::Term).unwrap_err();
    assert!(matches!(error, BedError::NoSuchProcess(_)), "{error}");
    let _ = fs::remove_file(log);
}

#[test]
fn drop_kills_every_process_and_deletes_the_namespaces() {
    require_bed!();
    let dir = scratch("drop");
    let mut bed = Bed::new(2).unwrap();
    let mut names: Vec<String> = (0..2).map(|i| bed.namespace(i).to_owned()).collect();
    names.push(bed.bridge_namespace().to_owned());
    let before = namespaces_on_machine();
    for name in &names {
        assert!(listed(&before, name), "{name} missing from: {before}");
    }

    let polite = bed.spawn(0, Path::new("sleep"), &["300"], &[], &dir.join("sleep.log")).unwrap();
    // Ignores SIGTERM, and so does its child: only SIGKILL ends them.
    let stubborn = bed
        .spawn(
            1,
            Path::new("sh"),
            &["-c", "trap '' TERM; sleep 300 & echo child $!; wait"],
            &[],
            &dir.join("stubborn.log"),
        )
        .unwrap();
    // Left behind by a command that returned: only a namespace scan finds it.
    let stray =
        bed.exec(0, &["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], Duration::from_secs(5)).unwrap();
    let stray: u32 = String::from_utf8_lossy(&stray.stdout).trim().parse().unwrap();
    assert!(wait_for_line(&dir.join("stubborn.log"), "child", Duration::from_secs(5)));
    let child: u32 = fs::read_to_string(dir.join("stubborn.log"))
        .unwrap()
        .trim()
        .strip_prefix("child ")
        .unwrap()
        .parse()
        .unwrap();
    let pids = [bed.pid(polite).unwrap(), bed.pid(stubborn).unwrap(), child, stray];
    for pid in pids {
        assert!(alive(pid), "{pid} should run before the drop");
    }

    let started = Instant::now();
    drop(bed);
    let took = started.elapsed();
    eprintln!("bed with a TERM-ignoring process torn down in {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    for pid in pids {
        assert!(!alive(pid), "{pid} survived the drop");
    }
    let after = namespaces_on_machine();
    for name in &names {
        assert!(!listed(&after, name), "{name} survived the drop: {after}");
    }
    let _ = fs::remove_dir_all(dir);
}

/// A bed of either kind, a LAN or a loopback bed, cleans up when the test panics.
#[test]
fn a_panicking_test_still_cleans_up() {
    require_bed!();
    type Build = fn() -> Bed;
    let kinds: [(&str, Build); 2] =
        [("lan", || Bed::new(2).unwrap()), ("loopback", || Bed::loopback().unwrap())];
    for (kind, build) in kinds {
        let (sender, receiver) = std::sync::mpsc::channel();
        let result = panic::catch_unwind(panic::AssertUnwindSafe(|| {
            let mut bed = build();
            let log =
                std::env::temp_dir().join(format!("shoal-testbed-panic-{kind}-{}.log", std::process::id()));
            let host = bed.hosts() - 1;
            let sleeper = bed.spawn(host, Path::new("sleep"), &["300"], &[], &log).unwrap();
            let mut names: Vec<String> = (0..bed.hosts()).map(|i| bed.namespace(i).to_owned()).collect();
            if !bed.is_loopback() {
                names.push(bed.bridge_namespace().to_owned());
            }
            sender.send((names, bed.pid(sleeper).unwrap(), log)).unwrap();
            panic!("deliberate panic to check the {kind} bed's cleanup");
        }));
        assert!(result.is_err());
        let (names, pid, log) = receiver.recv().unwrap();
        assert!(!alive(pid), "{kind}: {pid} survived the panic");
        let after = namespaces_on_machine();
        for name in &names {
            assert!(!listed(&after, name), "{kind}: {name} survived the panic: {after}");
        }
        let _ = fs::remove_file(log);
    }
}

#[test]
fn beds_in_parallel_do_not_collide_and_four_hosts_are_quick() {
    require_bed!();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            thread::spawn(|| {
                let bed = Bed::new(2).unwrap();
                let output = bed
                    .exec(1, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"], Duration::from_secs(5))
                    .unwrap();
                assert!(String::from_utf8_lossy(&output.stdout).contains("10.99.0.2/24"));
                bed.namespace(0).to_owned()
            })
        })
        .collect();
    let mut names: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "every bed has its own namespaces");

    let mut builds = Vec::new();
    let mut teardowns = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let bed = Bed::new(4).unwrap();
        builds.push(started.elapsed());
        let started = Instant::now();
        drop(bed);
        teardowns.push(started.elapsed());
    }
    eprintln!("4-host bed: build {builds:?}, teardown {teardowns:?}");
}
