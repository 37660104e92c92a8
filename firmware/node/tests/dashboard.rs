//! The operator dashboard at `/`, as an operator sees it: three real `shoal` boxes in network
//! namespaces, the page fetched with curl (JavaScript off: the server-rendered tables must list
//! every box), then opened in headless Chromium inside host 0's namespace by
//! `tools/browser/dashboard.mjs` (playwright-core), which waits for the page's script to list the
//! three boxes, plays the test card with the page's own player for 5 s, presses "Identify this
//! box" (box 0 must start identifying; box 1, whose admin networks leave the browser out, must
//! be shown refusing with 403) and saves a screenshot to `target/artifacts/dashboard.png`.
//!
//! Needs root (CI runs as root) and, for the browser half, Debian's `chromium`, `node` and
//! `npm ci` in `tools/browser`; `tools/test` installs all of them. Without root the test prints
//! why it is skipped; without the browser tools it skips the browser half, except under CI
//! (`CI` set), where a missing tool is a setup error and fails the test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::boxes::{BoxConfig, Boxes};
use common::wait_until;

const BOXES: usize = 3;
/// What `timeout` gives the browser script: launch (~2 s), the page's first poll, a cold channel
/// (up to 8 s for its first segment), 5 s of playback and the screenshot fit in well under it.
const BROWSER_LIMIT: Duration = Duration::from_secs(90);
/// Seconds of video the browser must play, counted only where the video's clock moves with the
/// wall clock (a jump to the live edge does not count).
const PLAYED_S: f64 = 5.0;
/// Frames the browser must decode meanwhile: the test card's 25 frames/s over `PLAYED_S`, less
/// a fifth for the first frames and the sampling's edges.
const MIN_FRAMES: u64 = 100;
/// The box whose admin networks leave the browser out, so its identify button must say 403.
const REFUSING_BOX: usize = 1;
/// TEST-NET-1 (RFC 5737): no host of the bed is on it.
const NOBODY: &str = "192.0.2.0/24";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Three boxes sharing one key and the test card channel; box [`REFUSING_BOX`] admits nobody
/// as an admin.
fn start() -> Boxes {
    let mut boxes = Boxes::new("dashboard", BOXES);
    boxes.start((0..BOXES).map(|i| {
        let admin = if i == REFUSING_BOX {
            format!("[http]\nadmin_networks = [\"{NOBODY}\"]\n")
        } else {
            String::new()
        };
        BoxConfig::new(format!(
            "{admin}[[channel]]\nid = \"testcard\"\nname = \"Test card\"\nsource = \"builtin:testcard\"\n"
        ))
    }));
    boxes
}

/// Box `i`'s node id, from its `/api/status` (`box.node_id`, or `node_id` in older builds).
fn node_id(boxes: &Boxes, i: usize) -> Option<String> {
    let status = boxes.status(i)?;
    [status.this_box.node_id, status.node_id].into_iter().find(|id| !id.is_empty())
}

/// Why the browser half cannot run here, or `None` when Chromium, node and playwright-core are
/// all in place.
fn browser_missing() -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is missing: apt-get install chromium".to_owned());
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is missing: apt-get install nodejs npm".to_owned());
    }
    if !workspace().join("tools/browser/node_modules/playwright-core/package.json").exists() {
        return Some("playwright-core is missing: (cd tools/browser && npm ci)".to_owned());
    }
    None
}

/// The HTML of the boxes table in `page`, or "" when there is none.
fn boxes_table(page: &str) -> &str {
    let Some(start) = page.find("<table id=\"boxes\"") else { return "" };
    let end = page[start..].find("</table>").map_or(page.len(), |end| start + end);
    &page[start..end]
}

#[test]
fn dashboard_lists_the_swarm_and_plays_a_channel() {
    if common::skip(&[]) {
        return;
    }
    let started = Instant::now();
    let swarm = start();
    let mut ids = Vec::new();
    for i in 0..BOXES {
        let mut id = None;
        let up = wait_until(Duration::from_secs(15), || {
            id = node_id(&swarm, i);
            id.is_some()
        });
        assert!(up, "box {i} never answered /api/status\n{}", swarm.logs());
        ids.extend(id);
    }

    // JavaScript off: what curl gets from `/` lists every box by its full node id.
    let mut page = String::new();
    let listed = wait_until(Duration::from_secs(30), || {
        page = swarm.bed.http_get(0, &swarm.url(0, "/")).unwrap_or_default();
        ids.iter().all(|id| boxes_table(&page).contains(&format!("title=\"{id}\"")))
    });
    assert!(listed, "the server-rendered boxes table lacks some of {ids:?}:\n{page}\n{}", swarm.logs());
    assert!(page.contains("<option value=\"testcard\">Test card</option>"), "the channel picker: {page}");
    println!("server-rendered page lists {BOXES} boxes after {:.1} s", started.elapsed().as_secs_f64());

    // JavaScript on, in a real browser on host 0's LAN.
    if let Some(reason) = browser_missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser half: {reason} (tools/test installs it)"
        );
        eprintln!("skipped the browser half: {reason}");
        return;
    }
    let artifacts = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/artifacts/"));
    std::fs::create_dir_all(&artifacts).expect("target/artifacts");
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let script = workspace().join("tools/browser/dashboard.mjs");
    let (script, screenshot_arg) = (script.to_string_lossy(), screenshot.to_string_lossy());
    let url = swarm.url(0, "/");
    let limit = BROWSER_LIMIT.as_secs().to_string();
    let boxes = BOXES.to_string();
    let refused = swarm.url(REFUSING_BOX, "/");
    let command = [
        "timeout",
        "-k",
        "5",
        &limit,
        "node",
        &script,
        &url,
        &screenshot_arg,
        "--boxes",
        &boxes,
        "--channel",
        "testcard",
        "--refused",
        &refused,
    ];
    let browser_started = Instant::now();
    let output = swarm
        .bed
        .exec(0, &command, BROWSER_LIMIT + Duration::from_secs(10))
        .expect("the browser script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = || format!("stdout:\n{stdout}\nstderr:\n{stderr}\n{}", swarm.logs());
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON result from the browser script\n{}", context()));
    println!("browser: {result}");
    println!("browser run took {:.1} s", browser_started.elapsed().as_secs_f64());

    assert_eq!(
        result["ok"],
        true,
        "the browser check failed at {}: {}\n{}",
        result["step"],
        result["error"],
        context()
    );
    let listed: Vec<&str> =
        result["boxes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "the page's script does not list {id}: {listed:?}");
    }
    assert!(result["video_error"].is_null(), "the video failed: {}", result["video_error"]);
    let played = result["played_s"].as_f64().unwrap_or(0.0);
    assert!(played >= PLAYED_S, "the video played {played:.1} s, wanted {PLAYED_S} s\n{}", context());
    let frames = result["playback_quality"]["frames"].as_u64().unwrap_or(0);
    assert!(frames >= MIN_FRAMES, "the browser decoded {frames} frames, wanted {MIN_FRAMES}\n{}", context());
    assert!(
        result["video_src"].as_str().is_some_and(|src| src.ends_with("/hls/testcard/index.m3u8")),
        "the player plays the box's HLS: {}",
        result["video_src"]
    );
    let identify = result["identify"].as_str().unwrap_or_default();
    assert!(identify.starts_with("The box is identifying"), "the identify button's answer: {identify:?}");
    let identifying = swarm.status(0);
    assert_eq!(identifying.map(|s| s.this_box.identifying), Some(true), "box 0 identifies");
    let refused = result["identify_refused"].as_str().unwrap_or_default();
    assert!(
        refused.starts_with("Refused (403)"),
        "a box that does not count the browser as admin: {refused:?}"
    );
    let uncaught: Vec<&str> = result["console_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|e| e.starts_with("uncaught"))
        .collect();
    assert!(uncaught.is_empty(), "the page's script threw: {uncaught:?}");
    assert!(result["failed_requests"].as_array().is_some_and(Vec::is_empty), "{}", result["failed_requests"]);
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot: {} bytes", png.len());
    println!(
        "screenshot: {} ({} bytes); whole test {:.1} s",
        screenshot.display(),
        png.len(),
        started.elapsed().as_secs_f64()
    );
}
