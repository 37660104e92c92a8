//! `shoal demo` as a newcomer uses it: start it, play the printed URL with a real player.
//! Loopback only and no mDNS, so it runs outside a namespace.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;

#[test]
fn the_demo_serves_a_channel_that_ffmpeg_plays() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        panic!("ffmpeg is missing: apt-get install ffmpeg (tools/test installs it as root)");
    }
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let mut demo = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["demo", "--seconds", "40", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = demo.stdout.take().expect("piped");
    let urls: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("Try:"))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .filter(|u| u.ends_with("index.m3u8"))
        .collect();
    assert_eq!(urls.len(), 3, "the demo prints one URL per box: {urls:?}");
    // Play from the last box: the channel starts on demand and crosses the swarm to it.
    let out = Command::new("timeout")
        .arg("30")
        .args(common::player_args(&urls[2], 12))
        .output()
        .expect("ffmpeg runs");
    let _ = demo.kill();
    let _ = demo.wait();
    // 12 s at 25 frames/s: longer than the 10 s clip, so the loop wraps at least once.
    common::assert_played(&out, 285, "the demo's third box");
}
