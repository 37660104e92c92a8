//! The LAN caching appliance on real boxes: a 20-minute on-demand asset behind a counting
//! origin, four boxes whose RAM stores are far smaller than the asset, `shoal prefill`, every
//! box playing the asset start to end with ffmpeg (as fast as it decodes), seeking, byte
//! ranges, a restart served from disk with no origin traffic, and a box whose cache disk fills
//! up for real (a small tmpfs). Needs root (CI runs as root); without it the test says why it
//! is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use shoal::model::status::{AssetStatus, Status};
use shoal_testbed::{encode_vod_asset, Bed, Origin, VodSpec};

mod common;
use common::boxes::{json, Boxes};

const BOXES: usize = 4;
/// The box whose cache lives on a tmpfs smaller than its share of the asset.
const SMALL_DISK_BOX: usize = 3;
const TMPFS_MB: u64 = 12;
/// 20 minutes of small pictures at a rate that makes the asset about six times the boxes' RAM
/// store (16 MiB, the least a box may have).
const ASSET: VodSpec = VodSpec { video_kbps: 600, ..VodSpec::TWENTY_MINUTES };
const STORE_MB: u64 = 16;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "shoal-test", &dir.to_string_lossy()])
            .status()
            .expect("mount runs");
        assert!(status.success(), "cannot mount a tmpfs on {}", dir.display());
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// ffmpeg reading the whole playlist as fast as it decodes (no `-re`), or `seconds` of it from
/// `start`.
fn ffmpeg_args(url: &str, start: Option<u32>, seconds: Option<u32>) -> Vec<String> {
    let mut args: Vec<String> = ["ffmpeg", "-nostdin", "-v", "error"].map(str::to_owned).to_vec();
    if let Some(s) = start {
        args.extend(["-ss".to_owned(), s.to_string()]);
    }
    args.extend(["-i".to_owned(), url.to_owned()]);
    if let Some(t) = seconds {
        args.extend(["-t".to_owned(), t.to_string()]);
    }
    args.extend(["-f", "null", "-", "-progress", "pipe:1"].map(str::to_owned));
    args
}

fn spawn_player(bed: &Bed, host: usize, args: &[String]) -> std::process::Child {
    Command::new("timeout")
        .args(["-k", "5", "300", "ip", "netns", "exec", bed.namespace(host)])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts")
}

fn asset_of<'a>(status: &'a Status, name: &str) -> Option<&'a AssetStatus> {
    status.cache.as_ref()?.assets.iter().find(|a| a.name.as_deref() == Some(name))
}

fn prefill(bed: &Bed, i: usize, full: bool) -> Output {
    prefill_channel(bed, i, "films", full)
}

fn prefill_channel(bed: &Bed, i: usize, channel: &str, full: bool) -> Output {
    let mut args = vec![
        "ip",
        "netns",
        "exec",
        bed.namespace(i),
        common::boxes::shoal().to_str().expect("utf-8 path"),
        "prefill",
        channel,
        "--timeout",
        "400",
    ];
    if full {
        args.push("--full");
    }
    Command::new("timeout").args(["-k", "5", "420"]).args(&args).output().expect("prefill runs")
}

#[test]
fn a_vod_asset_is_fetched_once_per_lan_kept_across_restarts_and_served_by_every_box() {
    if common::skip(&[("ffmpeg", "ffmpeg")]) {
        return;
    }
    let asset = encode_vod_asset(Path::new(env!("CARGO_TARGET_TMPDIR")), ASSET).expect("the asset encodes");
    assert!(
        asset.bytes > 5 * (STORE_MB << 20),
        "the asset ({} bytes) is not far above the RAM store",
        asset.bytes
    );
    let mut boxes = Boxes::new("appliance", BOXES + 1);
    let dir = boxes.dir.clone();
    let origin_host = BOXES;
    let origin =
        Origin::start_static(&mut boxes.bed, origin_host, &dir.join("origin"), "films", &asset.dir, 0)
            .expect("origin starts");
    let small_disk = Tmpfs::mount(&dir.join("small-disk"), TMPFS_MB);
    let configs: Vec<String> = (0..BOXES)
        .map(|i| {
            // Box 3's cap is larger than its tmpfs: the disk fills before the cap is reached.
            let cache = if i == SMALL_DISK_BOX {
                format!("dir = \"{}\"\nmax_mb = 64", small_disk.0.display())
            } else {
                format!("dir = \"{}/cache{i}\"\nmax_mb = 256", dir.display())
            };
            format!(
                "[store]\nbudget_mb = {STORE_MB}\n[cache]\n{cache}\n\
                 [[channel]]\nid = \"films\"\nname = \"Films\"\nsource = \"{}\"\n",
                origin.url("films/index.m3u8")
            )
        })
        .collect();
    boxes.start(configs);
    boxes.wait_for_peers(Duration::from_secs(20));

    // A channel the box does not have is refused with a reason.
    let out = prefill_channel(&boxes.bed, 0, "nosuch", false);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("refused the prefill"), "{said}");

    // Prefill from box 0: the swarm fetches the asset once; each box keeps its share.
    let out = prefill(&boxes.bed, 0, false);
    assert!(
        out.status.success(),
        "prefill failed: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        boxes.logs()
    );
    let fetches = origin.segment_fetches();
    assert_eq!(fetches.len(), asset.segments, "every segment fetched: {fetches:?}");
    assert!(fetches.values().all(|&n| n == 1), "a segment was fetched twice: {fetches:?}");
    let complete = boxes.wait_all(Duration::from_secs(20), |s| {
        asset_of(s, "films").is_some_and(|a| a.complete && a.segments_total == Some(asset.segments as u64))
    });
    assert!(complete, "not every box knows the whole asset:\n{}", boxes.logs());
    let on_disk: u64 = (0..BOXES)
        .filter_map(|i| boxes.status(i))
        .filter_map(|s| asset_of(&s, "films").map(|a| a.segments_on_disk))
        .sum();
    assert!(
        on_disk >= asset.segments as u64,
        "the boxes' disks hold {on_disk} segments of {}",
        asset.segments
    );

    // Every box plays the whole asset at once, as fast as ffmpeg decodes.
    let frames_expected = u64::from(ASSET.minutes) * 60 * 25 * 99 / 100;
    let players: Vec<_> = (0..BOXES)
        .map(|i| {
            spawn_player(&boxes.bed, i, &ffmpeg_args(&boxes.url(i, "/hls/films/index.m3u8"), None, None))
        })
        .collect();
    for (i, player) in players.into_iter().enumerate() {
        let out = player.wait_with_output().expect("ffmpeg ran");
        if let Err(why) = common::judge_ffmpeg(&out, frames_expected) {
            panic!("box {i} did not play the asset: {why}\n{}", boxes.logs());
        }
    }
    let after_play = origin.fetch_log().len();
    let fetches = origin.segment_fetches();
    assert!(fetches.values().all(|&n| n == 1), "playing made the origin serve a segment again: {fetches:?}");

    // The small disk filled up: the box evicted (or failed writes), kept running, and played.
    let status = boxes.status(SMALL_DISK_BOX).expect("the small-disk box answers");
    let disk = &status.cache.as_ref().unwrap_or_else(|| panic!("no cache: {}", json(&status))).disk;
    assert!(disk.evictions + disk.write_errors > 0, "the small disk never filled: {disk:?}");
    assert!(disk.used_bytes <= TMPFS_MB << 20, "{disk:?}");

    // Seeking into the middle, and a byte range of a segment, from box 1.
    let out = common::run_bounded(
        &boxes.prefix(1),
        &ffmpeg_args(&boxes.url(1, "/hls/films/index.m3u8"), Some(600), Some(10)),
        Duration::from_secs(60),
    );
    common::assert_played(&out, 240, "seek to 10:00 on box 1");
    let segment = std::fs::read(asset.dir.join("seg300.ts")).expect("segment 300");
    let ranged = boxes
        .bed
        .exec(
            1,
            &["curl", "-s", "-r", "1000-1999", &boxes.url(1, "/hls/films/300.ts")],
            Duration::from_secs(15),
        )
        .expect("curl runs");
    assert_eq!(ranged.stdout, segment[1000..2000], "byte range of segment 300");

    // A restart: box 2 comes back with its disk and catalog, and plays with no origin traffic.
    boxes.kill(2);
    boxes.restart(2);
    boxes.wait_for_peers(Duration::from_secs(20));
    let out = common::run_bounded(
        &boxes.prefix(2),
        &ffmpeg_args(&boxes.url(2, "/hls/films/index.m3u8"), None, None),
        Duration::from_secs(240),
    );
    common::assert_played(&out, frames_expected, "box 2 after its restart");
    let status = boxes.status(2).expect("box 2 answers");
    assert!(
        status.cache.as_ref().is_some_and(|c| c.counters.disk_hits > 0),
        "box 2 served nothing from its disk: {}",
        json(&status.cache)
    );
    let log = origin.fetch_log();
    assert_eq!(
        log.len(),
        after_play,
        "the origin was asked again after the restart: {:?}",
        &log[after_play..]
    );
    drop(small_disk);
}
