//! The on-demand asset and the static origin, for real: a one-minute asset is encoded (once, cached
//! in cargo's target directory), checked as a finished VOD playlist whose segments concatenate
//! to `asset.ts`, then served by a static origin in a bed and fetched from another host.
//!
//! The asset test needs ffmpeg; the origin test also root (network namespaces), python3 and
//! curl. Each skips, saying why, without them.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use shoal_testbed::{encode_vod_asset, skip_reason, Bed, Origin, VodAsset, VodSpec, VOD_PLAYLIST};

/// Which of `tools` is not installed, as a skip message.
fn missing(tools: &[&str]) -> Option<String> {
    let absent: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    (!absent.is_empty()).then(|| format!("not installed: {}", absent.join(", ")))
}

/// One minute of the twenty-minute asset's make-up: 30 segments of 2 s.
const ONE_MINUTE: VodSpec = VodSpec { minutes: 1, ..VodSpec::TWENTY_MINUTES };

/// The one-minute asset, cached between tests and runs.
fn one_minute_asset() -> VodAsset {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vod-assets");
    encode_vod_asset(&cache, ONE_MINUTE).unwrap()
}

#[test]
fn a_vod_asset_is_a_finished_playlist_whose_segments_make_the_whole_file() {
    if let Some(reason) = missing(&["ffmpeg"]) {
        eprintln!("skipped: {reason}");
        return;
    }
    let asset = one_minute_asset();
    let playlist = fs::read_to_string(asset.dir.join(VOD_PLAYLIST)).unwrap();
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{playlist}");
    assert_eq!(playlist.lines().last(), Some("#EXT-X-ENDLIST"), "{playlist}");
    let durations: Vec<&str> = playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")).collect();
    assert_eq!(durations.len(), ONE_MINUTE.segments(), "{playlist}");
    assert!(durations.iter().all(|d| *d == "2.000000,"), "{playlist}");

    let names = asset.segment_names().unwrap();
    assert_eq!(names.len(), asset.segments);
    assert_eq!(names.first().map(String::as_str), Some("seg0.ts"));
    let mut joined = Vec::new();
    for name in &names {
        joined.extend(fs::read(asset.dir.join(name)).unwrap());
    }
    let whole = fs::read(&asset.file).unwrap();
    assert_eq!(whole.len() as u64, asset.bytes);
    assert!(whole == joined, "asset.ts is not the segments concatenated");
    assert_eq!(whole.len() % 188, 0, "whole TS packets");
    assert!(whole.chunks(188).all(|packet| packet[0] == 0x47), "every packet starts with a sync byte");

    // A second call finds the cached asset.
    assert_eq!(one_minute_asset(), asset);
}

#[test]
fn a_static_origin_serves_the_asset_and_logs_each_fetch() {
    if let Some(reason) = skip_reason().or_else(|| missing(&["ffmpeg", "python3", "curl"])) {
        eprintln!("skipped: {reason}");
        return;
    }
    let asset = one_minute_asset();
    let dir = std::env::temp_dir().join(format!("shoal-testbed-vod-{}", std::process::id()));
    let mut bed = Bed::new(2).unwrap();
    let origin = Origin::start_static(&mut bed, 0, &dir, "vod", &asset.dir, 0).unwrap();
    assert_eq!(origin.playlist_url(), format!("http://{}:8080/vod/index.m3u8", bed.ip(0)));
    assert_eq!(origin.segments("vod").len(), asset.segments);

    let playlist = bed.http_get(1, &origin.url("vod/index.m3u8")).unwrap();
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    // A segment, byte for byte (curl writes it in the client's namespace, on the same disk).
    let fetched = dir.join("seg3-fetched.ts");
    let out = fetched.to_string_lossy().into_owned();
    let url = origin.url("vod/seg3.ts");
    let curl = bed.exec(1, &["curl", "-sS", "--fail", "-o", &out, &url], Duration::from_secs(10)).unwrap();
    assert!(curl.status.success(), "{}", String::from_utf8_lossy(&curl.stderr));
    assert!(fs::read(&fetched).unwrap() == fs::read(asset.dir.join("seg3.ts")).unwrap());
    assert!(bed.http_get(1, &origin.url("vod/seg999.ts")).is_err(), "a segment the asset lacks is 404");

    origin.wait_for_requests(3, Duration::from_secs(2)).unwrap();
    let fetches = origin.segment_fetches();
    assert_eq!(fetches.get("/vod/seg3.ts"), Some(&1), "{fetches:?}");
    assert_eq!(fetches.get("/vod/seg999.ts"), Some(&1), "{fetches:?}");
    let log = origin.fetch_log();
    let seg3 = log.iter().find(|e| e.path == "/vod/seg3.ts").unwrap();
    assert_eq!((seg3.client, seg3.status), (bed.ip(1).into(), 200));
    assert_eq!(seg3.sent, fs::metadata(asset.dir.join("seg3.ts")).unwrap().len());

    drop(bed);
    let _ = fs::remove_dir_all(dir);
}
