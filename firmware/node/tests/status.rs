//! `shoal status` against boxes that answer: fake boxes on 127.0.0.1 that answer what a box,
//! an older box or something else entirely would, and the real boxes of `shoal demo` while
//! ffmpeg plays from them (which also checks the demo's progress lines and its summary).
//!
//! Loopback only, no mDNS: `shoal demo` gives its boxes each other's addresses. Every process is
//! bounded with `timeout` and stopped when its guard drops.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::demo::Demo;

/// `shoal status` takes at most its 5 s request deadline twice; this bounds a hang.
const STATUS_LIMIT_S: &str = "30";

fn shoal_status(url: &str) -> Output {
    Command::new("timeout")
        .args(["-k", "2", STATUS_LIMIT_S, env!("CARGO_BIN_EXE_shoal"), "status", "--url", url])
        .stdin(Stdio::null())
        .output()
        .expect("shoal status runs")
}

/// An HTTP/1.1 server on 127.0.0.1 answering fixed routes (path → status, body), 404 elsewhere,
/// with keep-alive like a box; stopped when dropped, and after two minutes in any case.
struct FakeBox {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A route of a [`FakeBox`]: path, status, body.
type Route<'a> = (&'a str, u16, &'a str);

impl FakeBox {
    fn start(routes: &[Route]) -> FakeBox {
        let routes: HashMap<String, (u16, String)> = routes
            .iter()
            .map(|(path, status, body)| ((*path).to_owned(), (*status, (*body).to_owned())))
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &routes),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeBox { addr, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Answers the requests of one connection until the client closes it (or 5 s pass idle).
fn serve(mut stream: TcpStream, routes: &HashMap<String, (u16, String)>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..100 {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (status, body) =
            routes.get(&path).cloned().unwrap_or((404, "{\"error\":\"no such resource\"}".into()));
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

impl Drop for FakeBox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// What a box serves, as JSON on purpose: these tests are about the wire shape `shoal status`
// reads (from boxes of this version and older ones), not about the typed status.
const STATUS: &str = r#"{
    "box": { "node_id": "1a2b3c4d5e6f70811a2b3c4d5e6f7081", "board": "rpi4", "version": "0.1.0",
             "uptime_s": 65, "addresses": ["10.99.0.1"], "http_port": 7471 },
    "peers": [{ "node_id": "5e6f7a8b00000000000000000000000b", "address": "10.99.0.2:7470",
                "alive": true, "banned": false, "rtt_ms": 0.8, "last_seen_ms_ago": 120 }],
    "channels": [{ "id": "news", "name": "News", "state": "live", "viewers": 1,
                   "ingester": "1a2b3c4d5e6f70811a2b3c4d5e6f7081", "bytes_to_tvs": 1048576 }],
    "store": { "used_bytes": 1048576, "budget_bytes": 67108864, "evicted": 0 }
}"#;

const SWARM: &str = r#"{
    "boxes": [{ "node_id": "1a2b3c4d5e6f70811a2b3c4d5e6f7081", "board": "rpi4", "reachable": true }],
    "channels": [{ "id": "news", "origin_fetches_per_segment": 1.0, "peer_efficiency": 0.5,
                   "uplink_savings": 0.9 }],
    "totals": { "origin_fetches_per_segment": 1.0, "peer_efficiency": 0.5, "uplink_savings": 0.9 }
}"#;

#[test]
fn status_prints_a_box_and_its_swarm() {
    let server = FakeBox::start(&[("/api/status", 200, STATUS), ("/api/swarm", 200, SWARM)]);
    let out = shoal_status(&server.url());
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{out:?}");
    for expected in [
        "Box 1a2b3c4d (rpi4), shoal 0.1.0, up 1m 05s\n",
        "Peers: 1 (1 alive)\n",
        "  10.99.0.2:7470  5e6f7a8b  —      0.80 ms  0.1 s ago  alive\n",
        "  news \"News\": live\n",
        "    swarm: origin fetches per segment 1.00 · peer efficiency 50.0% · uplink savings 90.0%\n",
        "Swarm: 1 boxes\n",
        "Store: 1.0 MiB of 64.0 MiB used (2%), 0 segments evicted\n",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}");
    }
    assert!(!stdout.contains("no swarm view"), "{stdout}");
}

#[test]
fn status_of_an_older_box_without_a_swarm_view_prints_the_box() {
    // The host:port form, without a scheme.
    let server = FakeBox::start(&[("/api/status", 200, STATUS)]);
    let out = shoal_status(&server.addr.to_string());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("Box 1a2b3c4d (rpi4)"), "{stdout}");
    assert!(!stdout.contains("Swarm:"), "{stdout}");
    assert!(stdout.ends_with("\n(no swarm view: this box has no /api/swarm (older firmware))\n"), "{stdout}");
}

#[test]
fn status_of_something_that_is_not_a_box_says_so_and_exits_1() {
    let cases: [(&[Route], &str); 4] = [
        (
            &[("/api/status", 200, "<html>router login</html>")],
            "/api/status did not answer a Shoal status (not JSON: ",
        ),
        (
            &[("/api/status", 200, "[1, 2]")],
            "/api/status did not answer a Shoal status (JSON array, not an object)",
        ),
        (&[], "/api/status answered HTTP status 404: is this a Shoal box?"),
        (&[("/api/status", 503, "{}")], "/api/status answered HTTP status 503"),
    ];
    for (routes, expected) in cases {
        let server = FakeBox::start(routes);
        let out = shoal_status(&server.url());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{routes:?}: {out:?}");
        let prefix = format!("shoal status: {}{expected}", server.url());
        assert!(stderr.starts_with(&prefix), "{routes:?}: expected {prefix:?}, got {stderr}");
        println!("{stderr}");
    }
}

/// The demo says how its start goes, prints its URLs as before, and once ffmpeg plays, prints
/// the summary `shoal status` prints of box 0, which is also checked directly.
#[test]
fn the_demo_reports_progress_and_shoal_status_summarises_it() {
    common::require("ffmpeg", "ffmpeg");
    let port = common::free_ports(6);
    let started = Instant::now();
    let mut demo = Demo::start(&[], port, 60);
    let try_line = demo.wait_for_try(Duration::from_secs(15));
    let opening = demo.seen[..=try_line].join("\n");
    println!("the demo's opening, after {:.2} s:\n{opening}", started.elapsed().as_secs_f64());
    assert!(opening.contains("Starting 3 boxes on 127.0.0.1"), "{opening}");
    assert!(opening.contains("  3 boxes up after "), "{opening}");
    assert!(opening.contains("  every box sees its 2 peers after "), "{opening}");
    assert!(opening.contains("  channel testcard is ready"), "{opening}");
    assert!(!opening.contains("warning"), "{opening}");
    // What tests/demo.rs and tools/bench read: the fourth word of the `box N: play` lines.
    let urls: Vec<&str> = demo.seen[..try_line]
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter(|w| w.starts_with("http://"))
        .collect();
    let expected: Vec<String> =
        (0..3).map(|i| format!("http://127.0.0.1:{}/hls/testcard/index.m3u8", port + i)).collect();
    assert_eq!(urls, expected, "{opening}");

    // Before anyone plays: the box, both peers alive, the channel idle.
    let out = shoal_status(&format!("127.0.0.1:{port}"));
    let idle = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("shoal status before playing:\n{idle}");
    assert!(out.status.success(), "{out:?}");
    assert!(idle.starts_with("Box "), "{idle}");
    assert!(idle.contains("Peers: 2 (2 alive)\n"), "{idle}");
    assert!(idle.contains("Channels: 1\n  testcard \"Shoal test card\": "), "{idle}");

    // A player on box 2: the demo notices and prints a summary a few seconds later.
    let player = std::thread::spawn(move || common::play_ffmpeg(&[], &expected[2], 12));
    demo.wait_for("the demo notices the player", Duration::from_secs(20), |l| {
        l.starts_with("A player is watching")
    });
    let header =
        demo.wait_for("the summary", Duration::from_secs(20), |l| l.starts_with("--- shoal status --url"));
    let end = demo.wait_for("the end of the summary", Duration::from_secs(5), |l| l.starts_with("Store: "));
    let summary = demo.seen[header..=end].join("\n");
    println!("the demo's summary, {:.1} s after it started:\n{summary}", started.elapsed().as_secs_f64());
    assert!(summary.contains("Peers: 2 (2 alive)"), "{summary}");
    assert!(summary.contains("  testcard \"Shoal test card\": "), "{summary}");

    let out = shoal_status(&format!("http://127.0.0.1:{}/", port + 2));
    let playing = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("shoal status of box 2 while ffmpeg plays from it:\n{playing}");
    assert!(out.status.success(), "{out:?}");
    assert!(playing.contains("Peers: 2 (2 alive)\n"), "{playing}");
    common::assert_played(&player.join().expect("ffmpeg runs"), 285, "ffmpeg on the demo's third box");
}
