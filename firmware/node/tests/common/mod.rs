//! What the playback tests share: ffmpeg as the TV, and how a run is judged (TESTBED.md §5).

use std::process::Output;

/// ffmpeg's arguments to play `seconds` of `url` as fast as it arrives, decoding every frame and
/// printing its progress (`frame=N`) on stdout.
pub(crate) fn player_args(url: &str, seconds: u32) -> Vec<String> {
    let seconds = seconds.to_string();
    ["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-t", &seconds, "-f", "null", "-", "-progress", "pipe:1"]
        .map(str::to_owned)
        .to_vec()
}

/// Fails unless the player exited cleanly, printed nothing on stderr (any decode error shows
/// there) and decoded at least `min_frames` frames; `context` names the run in the message.
pub(crate) fn assert_played(out: &Output, min_frames: u64, context: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let frames: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|f| f.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert!(out.status.success(), "{context}: the player failed: {stderr}");
    assert!(stderr.trim().is_empty(), "{context}: decode errors: {stderr}");
    assert!(frames >= min_frames, "{context}: only {frames} frames decoded, expected {min_frames}");
}
