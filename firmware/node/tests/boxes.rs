//! Real `shoal` processes in network namespaces on a bridge: discovery, a shared channel, loss,
//! a killed ingester, a box of another deployment, and hostile datagrams. Needs root (CI runs as
//! root); without it every test prints why it is skipped.

use std::time::Duration;

mod common;
use common::boxes::{alive_peers, ingesting, json, newest, read_json, window, BoxConfig, Boxes, UDP_PORT};
use shoal::model::status::Status;
use shoal_testbed::Signal;

/// The lineup of most tests: the built-in test source, always on.
const TEST_CHANNEL: &str =
    "[[channel]]\nid = \"test\"\nsource = \"test://pattern?bitrate=2000000&duration=1\"\nalways_on = true\n";
/// The channel every test here shares, but the TV test's.
const TEST: &str = "test";

/// Starts one box per key: `keys[i]` names the key file box `i` uses (boxes with the same name
/// share a key), `channels` (TOML `[[channel]]` tables) is every box's lineup.
fn start_with(name: &str, keys: &[&str], channels: &str) -> Boxes {
    let mut boxes = Boxes::new(name, keys.len());
    boxes.start(keys.iter().map(|key| BoxConfig::new(channels).key(key)));
    boxes
}

/// Like [`start_with`], with the [`TEST_CHANNEL`] lineup.
fn start(name: &str, keys: &[&str]) -> Boxes {
    start_with(name, keys, TEST_CHANNEL)
}

fn skip() -> bool {
    common::skip(&[])
}

/// Every box holds the same bytes for every segment that two boxes both hold.
fn assert_same_segments(boxes: &Boxes, channel: &str) -> usize {
    let windows: Vec<Vec<(u64, String)>> =
        boxes.running().iter().filter_map(|&i| boxes.status(i)).map(|s| window(&s, channel)).collect();
    let mut compared = 0;
    for a in &windows {
        for b in &windows {
            for (seq, hash) in a {
                if let Some((_, other)) = b.iter().find(|(s, _)| s == seq) {
                    assert_eq!(hash, other, "segment {seq} differs between boxes");
                    compared += 1;
                }
            }
        }
    }
    compared
}

/// The harness's status reader is strict: the typed status must be exactly the JSON served, so
/// that a key the type lacks, or a key the box left out (which `#[serde(default)]` would read as
/// 0), fails the test rather than passing unseen. No bed needed.
#[test]
fn a_status_that_is_not_exactly_the_type_fails_the_read() {
    let served = serde_json::to_string(&Status { node_id: "ab".into(), ..Status::default() }).expect("JSON");
    assert_eq!(read_json::<Status>("a status", &served).node_id, "ab");
    let fails = |body: String| std::panic::catch_unwind(|| read_json::<Status>("a status", &body)).is_err();
    assert!(fails(served.replacen('{', "{\"no_such_key\":1,", 1)), "a key the type lacks");
    assert!(fails(served.replacen("\"uptime_s\":0,", "", 1)), "a key left out");
    assert!(fails("<html>".to_owned()), "not JSON");
    assert!(fails("{\"channels\": \"nope\"}".to_owned()), "not a status");
}

#[test]
fn four_boxes_find_each_other_and_share_a_channel() {
    if skip() {
        return;
    }
    let boxes = start("share", &["a", "a", "a", "a"]);
    assert!(
        boxes.wait_all(Duration::from_secs(10), |s| alive_peers(s) == 3),
        "discovery failed:\n{}",
        boxes.logs()
    );
    assert!(
        boxes.wait_all(Duration::from_secs(15), |s| window(s, TEST).len() >= 4),
        "segments did not reach every box:\n{}",
        boxes.logs()
    );
    let ingesting =
        boxes.running().iter().filter(|&&i| boxes.status(i).is_some_and(|s| ingesting(&s, TEST))).count();
    assert_eq!(ingesting, 1, "exactly one box fetches the channel");
    assert!(assert_same_segments(&boxes, TEST) >= 12);
}

#[test]
fn a_channel_crosses_five_percent_loss() {
    if skip() {
        return;
    }
    let boxes = start("loss", &["a", "a", "a", "a"]);
    for i in 0..4 {
        boxes.bed.set_loss(i, 5).expect("loss set");
    }
    assert!(
        boxes.wait_all(Duration::from_secs(15), |s| alive_peers(s) == 3),
        "discovery failed:\n{}",
        boxes.logs()
    );
    // Segments published after the loss was set: wait until every box holds six of them.
    assert!(
        boxes.wait_all(Duration::from_secs(25), |s| window(s, TEST).len() >= 6),
        "segments did not cross the lossy links:\n{}",
        boxes.logs()
    );
    // The loss was real: receivers had to ask for what it ate.
    let requests: u64 = (0..4).filter_map(|i| boxes.status(i)).map(|s| s.counters.requests_sent).sum();
    assert!(requests > 0, "no box repaired anything: was the loss applied?");
    assert!(assert_same_segments(&boxes, TEST) >= 12);
}

#[test]
fn killing_the_ingester_hands_the_channel_over() {
    if skip() {
        return;
    }
    let mut boxes = start("kill", &["a", "a", "a", "a"]);
    assert!(
        boxes.wait_all(Duration::from_secs(15), |s| window(s, TEST).len() >= 3),
        "no segments:\n{}",
        boxes.logs()
    );
    let ingester = boxes
        .running()
        .into_iter()
        .find(|&i| boxes.status(i).is_some_and(|s| ingesting(&s, TEST)))
        .expect("an ingester");
    let before = boxes.status((ingester + 1) % 4).map(|s| newest(&s, TEST).unwrap_or(0)).unwrap_or(0);
    boxes.kill(ingester);
    // Another box takes over and every survivor keeps receiving new segments.
    assert!(
        boxes.wait_all(Duration::from_secs(15), |s| newest(s, TEST).is_some_and(|n| n >= before + 5)),
        "survivors stopped receiving after the ingester died:\n{}",
        boxes.logs()
    );
    let ingesting =
        boxes.running().iter().filter(|&&i| boxes.status(i).is_some_and(|s| ingesting(&s, TEST))).count();
    assert_eq!(ingesting, 1);
    assert!(assert_same_segments(&boxes, TEST) >= 9);
}

#[test]
fn a_box_of_another_deployment_is_ignored() {
    if skip() {
        return;
    }
    let boxes = start("foreign", &["a", "a", "a", "b"]);
    assert!(
        boxes.wait_all(Duration::from_secs(10), |s| alive_peers(s) == 2 || s.peers.is_empty()),
        "{}",
        boxes.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..3 {
        let s = boxes.status(i).expect("status");
        assert_eq!(alive_peers(&s), 2, "box {i} must see only its own deployment");
        assert!(s.counters.rejected.foreign_key.unwrap_or(0) >= 1, "box {i}: {}", json(&s));
    }
    let foreign = boxes.status(3).expect("status");
    assert_eq!(alive_peers(&foreign), 0);
    // Datagrams tagged under the foreign key, sent straight at a box, are counted as bad MACs.
    let target = format!("{}:{UDP_PORT}", boxes.bed.ip(0));
    let script = format!(
        "import socket,os\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         for i in range(50): s.sendto(bytes([{version}])+os.urandom(100), ('{}', {UDP_PORT}))\n",
        boxes.bed.ip(0),
        version = shoal_core::wire::PROTOCOL_VERSION
    );
    let out = boxes.bed.exec(3, &["python3", "-c", &script], Duration::from_secs(10)).expect("sender runs");
    assert!(out.status.success(), "{target}: {out:?}");
    std::thread::sleep(Duration::from_millis(500));
    let s = boxes.status(0).expect("status");
    assert!(s.counters.rejected.bad_mac >= 50, "{}", json(&s));
}

#[test]
fn hostile_datagrams_change_nothing_but_counters() {
    if skip() {
        return;
    }
    let boxes = start("hostile", &["a", "a", "a"]);
    assert!(
        boxes.wait_all(Duration::from_secs(15), |s| window(s, TEST).len() >= 3),
        "no segments:\n{}",
        boxes.logs()
    );
    // From box 2's namespace: capture 200 real datagrams box 2 sends to box 0, send them again
    // (replays), then random, truncated, oversized and wrong-version datagrams.
    let victim = boxes.bed.ip(0);
    let script = format!(
        r#"
import os, socket, struct, time
target = ('{victim}', {UDP_PORT})
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))  # ETH_P_ALL: outgoing too
raw.bind(('eth0', 0))
raw.settimeout(5)
captured = []
deadline = time.time() + 5
while len(captured) < 200 and time.time() < deadline:
    try:
        frame = raw.recv(70000)
    except socket.timeout:
        break
    ip = frame[14:]
    if ip[9] != 17: continue
    ihl = (ip[0] & 15) * 4
    dport = struct.unpack('!H', ip[ihl+2:ihl+4])[0]
    if socket.inet_ntoa(ip[16:20]) == target[0] and dport == {UDP_PORT}:
        captured.append(ip[ihl+8:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for payload in captured: s.sendto(payload, target)
for i in range(300): s.sendto(os.urandom(i % 1400), target)
for payload in captured[:50]: s.sendto(payload[:len(payload)//2], target)
s.sendto(os.urandom(65000), target)
for payload in captured[:50]: s.sendto(bytes([9]) + payload[1:], target)
print(len(captured))
"#
    );
    let before = boxes.status(0).expect("status");
    let out = boxes.bed.exec(2, &["python3", "-c", &script], Duration::from_secs(30)).expect("attacker runs");
    assert!(out.status.success(), "{out:?}");
    let captured: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    // Box 2 sends little to box 0 when box 0 is not its child; at least pings and haves.
    assert!(captured >= 10, "captured only {captured} datagrams");
    std::thread::sleep(Duration::from_secs(1));
    let after = boxes.status(0).expect("box 0 still answers");
    let (r, was) = (&after.counters.rejected, &before.counters.rejected);
    // The replays come from box 2's address but another port: dropped as from an unproven
    // address (before the replay window sees them), or as replays.
    let refused = |r: &shoal::model::status::Rejected| r.replay + r.unverified_address;
    assert!(refused(r) >= refused(was) + captured, "replays: {}", json(&after));
    assert!(r.bad_mac > was.bad_mac, "{}", json(&after));
    assert!(r.unknown_version >= was.unknown_version + 50, "{}", json(&after));
    // Nothing else changed: still two live peers, still receiving new segments.
    assert_eq!(alive_peers(&after), 2);
    let newest_then = newest(&after, TEST).unwrap_or(0);
    assert!(
        boxes.wait_all(Duration::from_secs(10), |s| newest(s, TEST).is_some_and(|n| n >= newest_then + 2)),
        "segments stopped flowing:\n{}",
        boxes.logs()
    );
    assert!(assert_same_segments(&boxes, TEST) >= 6);
}

#[test]
fn sighup_reloads_the_log_level_and_sigterm_says_goodbye() {
    if skip() {
        return;
    }
    let mut boxes = start("signals", &["a", "a"]);
    assert!(boxes.wait_all(Duration::from_secs(10), |s| alive_peers(s) == 1), "{}", boxes.logs());
    let config = boxes.config_file(0);
    let text =
        std::fs::read_to_string(&config).expect("config").replace("level = \"debug\"", "level = \"info\"");
    std::fs::write(&config, text).expect("config");
    boxes.signal(0, Signal::Hup);
    std::thread::sleep(Duration::from_millis(500));
    let log = boxes.log(0);
    assert!(log.contains("SIGHUP: log level now INFO"), "{}", boxes.logs());
    // A clean stop: box 1 hears the goodbye long before any timeout would drop box 0.
    let status = boxes.stop(0, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "box 0 exit: {status:?}");
    let peers_left = boxes.status(1).map(|s| s.peers.len());
    assert_eq!(peers_left, Some(0), "box 1 still lists box 0 right after its goodbye");
}

/// A TV (ffmpeg as the player) plays the built-in test card from a box that is not the one
/// fetching it: the request creates demand, the elected box starts the channel, the segments
/// cross the swarm, and the player decodes them without error.
#[test]
fn a_tv_plays_the_test_card_from_any_box() {
    const CARD: &str = "testcard";
    if skip() {
        return;
    }
    if std::process::Command::new("ffmpeg").arg("-version").output().is_err() {
        panic!("ffmpeg is missing: apt-get install ffmpeg (tools/test installs it as root)");
    }
    let boxes = start_with(
        "play",
        &["a", "a", "a"],
        "[[channel]]\nid = \"testcard\"\nname = \"Test card\"\nnumber = 7\nsource = \"builtin:testcard\"\n",
    );
    assert!(boxes.wait_all(Duration::from_secs(10), |s| alive_peers(s) == 2), "{}", boxes.logs());
    // Nobody watches yet: a channel that is not always-on is not fetched.
    std::thread::sleep(Duration::from_secs(2));
    assert!(boxes.running().iter().all(|&i| boxes.status(i).is_some_and(|s| window(&s, CARD).is_empty())));
    let lineup = boxes.bed.http_get(0, &boxes.url(0, "/playlist.m3u")).expect("lineup");
    assert!(
        lineup.starts_with("#EXTM3U")
            && lineup.contains("tvg-chno=\"7\"")
            && lineup.contains("/hls/testcard/index.m3u8"),
        "{lineup}"
    );
    // Play from every box in turn; the first request has to wait for the channel to start.
    for tv in 0..3 {
        let url = boxes.url(tv, "/hls/testcard/index.m3u8");
        let args = common::player_args(&url, 6);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = boxes.bed.exec(tv, &args, Duration::from_secs(60)).expect("ffmpeg runs");
        // 6 s at 25 frames/s, a few frames of slack.
        common::assert_played(&out, 140, &format!("/hls on box {tv}\n{}", boxes.logs()));
    }
    // The same channel as one continuous MPEG-TS stream (`/ts`), from the last box.
    let url = boxes.url(2, "/ts/testcard");
    let args = common::player_args(&url, 6);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = boxes.bed.exec(2, &args, Duration::from_secs(60)).expect("ffmpeg runs");
    common::assert_played(&out, 140, "/ts on box 2");
    let ingesting =
        boxes.running().iter().filter(|&&i| boxes.status(i).is_some_and(|s| ingesting(&s, CARD))).count();
    assert_eq!(ingesting, 1, "one box fetches the channel for all TVs");
    assert!(assert_same_segments(&boxes, CARD) >= 3);
}
