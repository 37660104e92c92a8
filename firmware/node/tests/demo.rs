//! `shoal demo` as a newcomer uses it: start it, play the printed URL with real players (ffmpeg,
//! mpv, VLC). Loopback only and no mDNS, so most of it runs outside a namespace; one test runs
//! the demo and the player in a fresh namespace that has nothing but `lo` (needs root).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::demo::Demo;

/// Starts the demo after `prefix` with HTTP ports from `port`, for at most `seconds`, and reads
/// the URLs it prints: one per box.
fn start(prefix: &[&str], port: u16, seconds: u32) -> (Demo, Vec<String>) {
    let mut demo = Demo::start(prefix, port, seconds);
    let urls = demo.urls();
    assert_eq!(urls.len(), 3, "the demo prints one URL per box: {urls:?}");
    (demo, urls)
}

#[test]
fn the_demo_serves_a_channel_that_ffmpeg_plays() {
    common::require("ffmpeg", "ffmpeg");
    let (_demo, urls) = start(&[], common::free_ports(6), 40);
    // Play from the last box: the channel starts on demand and crosses the swarm to it.
    let out = common::play_ffmpeg(&[], &urls[2], 12);
    // 12 s at 25 frames/s: longer than the 10 s clip, so the loop wraps at least once.
    common::assert_played(&out, 285, "ffmpeg on the demo's third box");
}

#[test]
fn the_demo_plays_in_mpv() {
    common::require("mpv", "mpv");
    let (_demo, urls) = start(&[], common::free_ports(6), 40);
    let out = common::play_mpv(&[], &urls[1], 11);
    // At least 10 s of pictures at 25 frames/s, a few frames of slack for mpv's estimate.
    let played = common::assert_mpv_played(&out, 10.0, 245, "mpv on the demo's second box");
    println!(
        "mpv played {:.2} s, {} frames, waited for its cache {} times, {} warnings",
        played.seconds,
        played.frames,
        played.waiting,
        played.warnings.len()
    );
}

#[test]
fn the_demo_plays_in_vlc() {
    common::require("cvlc", "vlc");
    let (_demo, urls) = start(&[], common::free_ports(6), 40);
    let played = common::play_vlc(&[], &urls[0], 11);
    // At least 10 s of pictures at 25 frames/s.
    let frames = common::assert_vlc_played(&played, 250, "VLC on the demo's first box");
    println!("VLC displayed {frames} pictures at {} frames/s", played.fps);
}

/// The demo and its player in a fresh namespace with only `lo` up: the demo needs nothing else,
/// and cannot send anything to the machine's network from there.
#[test]
fn the_demo_plays_in_a_loopback_only_namespace() {
    if let Some(reason) = shoal_testbed::skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    common::require("ffmpeg", "ffmpeg");
    let bed = shoal_testbed::Bed::loopback().expect("loopback bed");
    let links = bed.exec(0, &["ip", "-o", "link", "show"], Duration::from_secs(5)).expect("ip");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        links.lines().count() == 1 && links.contains(": lo:") && links.contains("UP"),
        "only lo, up: {links}"
    );
    let prefix = ["ip", "netns", "exec", bed.namespace(0)];
    // Dropped before the bed (declared after it): the demo stops, then the namespace goes.
    let (_demo, urls) = start(&prefix, 20_000, 40);
    let out = common::play_ffmpeg(&prefix, &urls[1], 12);
    common::assert_played(&out, 285, "ffmpeg on the second box, in a loopback-only namespace");
}

/// An HTTP server on 127.0.0.1 that answers every request with 404, until dropped.
struct NotFound {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NotFound {
    fn start() -> NotFound {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            // Bounded: the players give up within seconds, the test within a minute.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stopping.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        NotFound { addr, stop, thread: Some(thread) }
    }
}

impl Drop for NotFound {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The checks above are not vacuous: each player's judge fails a URL that answers 404, and a
/// stream that stops before the player has had its seconds.
#[test]
fn player_checks_fail_when_nothing_plays() {
    common::require("ffmpeg", "ffmpeg");
    common::require("mpv", "mpv");
    common::require("cvlc", "vlc");
    let server = NotFound::start();
    let url = format!("http://{}/hls/testcard/index.m3u8", server.addr);
    let why = common::judge_ffmpeg(&common::play_ffmpeg(&[], &url, 3), 1).expect_err("ffmpeg on a 404");
    println!("ffmpeg on a 404: {why}");
    let why = common::judge_mpv(&common::play_mpv(&[], &url, 3), 1.0, 1).expect_err("mpv on a 404");
    println!("mpv on a 404: {why}");
    let why = common::judge_vlc(&common::play_vlc(&[], &url, 3), 1).expect_err("VLC on a 404");
    println!("VLC on a 404: {why}");

    // The demo stops after 4 s while the players want 20 s. A player starts a few segments
    // behind the live edge, so it gets about 10 s; mpv's exit status says it ended well.
    let (_demo, urls) = start(&[], common::free_ports(6), 4);
    let (mpv_url, vlc_url) = (urls[0].clone(), urls[1].clone());
    let mpv = std::thread::spawn(move || common::play_mpv(&[], &mpv_url, 20));
    let vlc = common::play_vlc(&[], &vlc_url, 20);
    let mpv = mpv.join().expect("mpv runs");
    // Each fails for the shortfall itself, whatever else it reports.
    let why = common::judge_mpv(&mpv, 19.0, 475).expect_err("mpv on a demo that stops");
    let short = why.lines().find(|l| l.contains("mpv played")).unwrap_or_else(|| panic!("{why}"));
    println!("mpv on a demo that stops: {short}");
    let why = common::judge_vlc(&vlc, 475).expect_err("VLC on a demo that stops");
    let short = why.lines().find(|l| l.contains("VLC displayed")).unwrap_or_else(|| panic!("{why}"));
    println!("VLC on a demo that stops: {short}");
}

/// The mpv judge reads mpv's status lines as mpv writes them (rewritten in place with carriage
/// returns and escape sequences) and its log's levels: checked on made-up output, no player.
#[test]
fn the_mpv_judge_reads_status_lines_and_log_levels() {
    use std::os::unix::process::ExitStatusExt;
    let mut terminal = String::from(" (+) Video --vid=1 (h264 320x180 25.000fps)\n");
    for frame in 0..=250u32 {
        let waiting = if frame == 100 { "yes" } else { "no" };
        let time = f64::from(frame) * 0.04;
        terminal
            .push_str(&format!("\r\x1b[K@shoal-status time={time:.6} frame={frame} waiting={waiting};\r"));
    }
    let log = "[   0.262][i][cplayer]  (+) Video --vid=1 (h264 320x180 25.000fps)\n\
               [   0.271][w][ffmpeg/demuxer] mpegts: Packet corrupt (stream = 0, dts = 1).\n\
               [   0.275][i][cplayer] VO: [null] 320x180 yuv420p\n";
    let run = |code: i32, log: &str| common::MpvRun {
        output: std::process::Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: Vec::new(),
            stderr: terminal.clone().into_bytes(),
        },
        log: log.to_owned(),
    };
    let played = common::judge_mpv(&run(0, log), 10.0, 251).expect("10 s played");
    assert_eq!((played.frames, played.waiting, played.warnings.len()), (251, 1, 1));
    assert!((played.seconds - 10.0).abs() < 1e-9, "{played:?}");
    assert!(common::judge_mpv(&run(0, log), 10.5, 1).is_err(), "too short");
    assert!(common::judge_mpv(&run(2, log), 1.0, 1).is_err(), "exit status");
    let with_error = format!("{log}[   5.000][e][ffmpeg] tcp: Connection refused\n");
    assert!(common::judge_mpv(&run(0, &with_error), 1.0, 1).is_err(), "an error in the log");
    let audio_only = log.replace("VO: [null]", "AO: [null]");
    assert!(common::judge_mpv(&run(0, &audio_only), 1.0, 1).is_err(), "no video output");
}
