//! Test media: a short H.264/AAC MPEG-TS clip, encoded once by ffmpeg and cached, made so that
//! `ffmpeg -stream_loop -1` replays it with no timestamp jump at the loop point.
//!
//! Why 16 seconds: `-stream_loop` (ffmpeg 5.1, stream copy) moves each round's timestamps on by
//! the longest stream's length, measured as last packet minus first packet plus one packet
//! (video) or plus one tick (audio). Both streams stay continuous only when the video's length
//! equals a whole number of AAC frames: 25 fps frames are 40 ms and 48 kHz AAC frames
//! 21.33 ms, which meet every 0.64 s, and with 2 s GOPs every 16 s. The clip therefore has
//! exactly 400 video frames and 750 AAC packets (the encoder's priming packet plus 749 frames
//! of tone, hence 749 × 1024 samples of input). A 12 s clip, say, jumps by 10.7 ms of video
//! and overlaps one AAC frame at every loop point.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::command::{self, FFMPEG, FFPROBE};
use crate::{Bed, BedError, ProcessId};

/// Length of every clip [`encode_clip`] makes (see the [module documentation](self) for why).
pub const CLIP_SECONDS: u32 = 16;
/// Frame rate of the clips.
pub const FRAME_RATE: u32 = 25;
/// GOP length of the clips, and so the HLS segment length of an [`Origin`](crate::Origin): one
/// IDR frame every 2 s, never more often (no scene-cut keyframes).
pub const GOP_SECONDS: u32 = 2;
/// Audio bit rate of the clips (AAC-LC, 48 kHz, stereo).
pub const AUDIO_KBPS: u32 = 64;
/// The `CODECS` name of the clips' audio: AAC-LC.
const AUDIO_CODEC: &str = "mp4a.40.2";
/// AAC packets per clip: 16 s of 1024-sample frames at 48 kHz; the first is the encoder's
/// priming, so the input tone is one frame shorter.
const AAC_PACKETS: u32 = CLIP_SECONDS * 48_000 / 1024;

/// How long encoding a clip may take: about a second at 320x180 on 2 cores, a few at 720p.
const ENCODE_LIMIT: Duration = Duration::from_secs(120);
/// How long probing a clip may take: tens of milliseconds.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// What [`encode_clip`] makes: picture size and video bit rate. Everything else is fixed:
/// `testsrc2` at 25 fps, H.264 (x264 `ultrafast`, so Constrained Baseline, no B-frames) with an
/// IDR frame every 2 s exactly, a 1 kHz tone as AAC-LC 48 kHz stereo at 64 kbit/s, 16 s long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClipSpec {
    /// Picture width in pixels: even, at least 16.
    pub width: u32,
    /// Picture height in pixels: even, at least 16.
    pub height: u32,
    /// Video bit rate in kbit/s, also the encoder's maximum rate (x264 VBV, 1 s buffer).
    pub video_kbps: u32,
}

impl ClipSpec {
    /// 320x180 at 400 kbit/s: cheap to play, the default.
    pub const SMALL: ClipSpec = ClipSpec { width: 320, height: 180, video_kbps: 400 };
    /// 640x360 at 1000 kbit/s: a second rung for a master playlist.
    pub const MEDIUM: ClipSpec = ClipSpec { width: 640, height: 360, video_kbps: 1000 };

    fn check(&self) -> Result<(), BedError> {
        let ClipSpec { width, height, video_kbps } = *self;
        let size_ok = |n: u32| (16..=4096).contains(&n) && n % 2 == 0;
        if size_ok(width) && size_ok(height) && (1..=100_000).contains(&video_kbps) {
            Ok(())
        } else {
            Err(BedError::InvalidArgument(format!(
                "clip {width}x{height} at {video_kbps} kbit/s: sizes must be even, 16 to 4096, \
                 and the rate 1 to 100000 kbit/s"
            )))
        }
    }
}

impl Default for ClipSpec {
    /// [`ClipSpec::SMALL`].
    fn default() -> Self {
        ClipSpec::SMALL
    }
}

/// Makes (or finds, from an earlier call) a looping-friendly MPEG-TS clip of `spec` in `dir`, and
/// returns its path: `<dir>/<name>-<width>x<height>-<kbps>k.ts`.
///
/// ffmpeg runs once, on the machine itself (no network: its inputs are `lavfi` generators), in
/// about a second for [`ClipSpec::SMALL`] on 2 cores. The clip is written to a temporary file and
/// renamed into place, so a clip that exists is complete, and tests running at once may share
/// `dir` (a cache such as `env!("CARGO_TARGET_TMPDIR")` keeps clips across test runs). See the
/// [module documentation](self) for the clip's exact make-up.
pub fn encode_clip(dir: &Path, name: &str, spec: ClipSpec) -> Result<PathBuf, BedError> {
    spec.check()?;
    if name.is_empty() || name.contains('/') {
        return Err(BedError::InvalidArgument(format!("clip name {name:?}: empty or has a '/'")));
    }
    let ClipSpec { width, height, video_kbps } = spec;
    let file = format!("{name}-{width}x{height}-{video_kbps}k.ts");
    let path = dir.join(&file);
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(dir).map_err(|e| BedError::io(format!("cannot create {}", dir.display()), e))?;
    static ENCODES: AtomicU32 = AtomicU32::new(0);
    let part =
        dir.join(format!(".{file}.{}-{}.part", std::process::id(), ENCODES.fetch_add(1, Ordering::Relaxed)));

    let frames = CLIP_SECONDS * FRAME_RATE;
    let gop = (GOP_SECONDS * FRAME_RATE).to_string();
    let rate = format!("{video_kbps}k");
    let mut ffmpeg = Command::new(command::find(FFMPEG)?);
    ffmpeg
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size={width}x{height}:rate={FRAME_RATE}")])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
        .args(["-map", "0:v", "-map", "1:a"])
        // Trim filters, not -frames: with -frames:v, ffmpeg 5.1 ends the audio early.
        .args(["-vf", &format!("trim=end_frame={frames}")])
        .args(["-af", &format!("atrim=end_sample={}", (AAC_PACKETS - 1) * 1024)])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate])
        .args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", &format!("{AUDIO_KBPS}k"), "-ac", "2"])
        .args(["-f", "mpegts"])
        .arg(&part);
    let result = command::run_ok(ffmpeg, ENCODE_LIMIT).and_then(|_| {
        fs::rename(&part, &path).map_err(|e| BedError::io(format!("cannot rename {}", part.display()), e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result.map(|()| path)
}

/// What a master playlist says about a clip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClipInfo {
    /// RFC 6381 codecs: `avc1.<profile><constraints><level>,mp4a.40.2`.
    pub(crate) codecs: String,
    /// Peak bit rate over the clip's GOPs, in bit/s. Measured on the clip file, whose packaging
    /// (one PES per AAC frame) is heavier than the origin's segments: an upper bound for them.
    pub(crate) peak_bandwidth: u64,
    /// Mean bit rate of the clip file, in bit/s.
    pub(crate) average_bandwidth: u64,
}

/// Reads `clip`'s codec parameters (from its first SPS) and bit rates (from its keyframes'
/// byte positions).
pub(crate) fn probe_clip(clip: &Path) -> Result<ClipInfo, BedError> {
    let size =
        fs::metadata(clip).map_err(|e| BedError::io(format!("cannot stat {}", clip.display()), e))?.len();

    // The first video frame as an Annex B stream: access unit delimiter, SPS, PPS...
    let mut first_frame = Command::new(command::find(FFMPEG)?);
    first_frame.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"]).arg(clip).args([
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-frames:v",
        "1",
        "-f",
        "h264",
        "-",
    ]);
    let line = command::describe(&first_frame);
    let annex_b = command::run_ok(first_frame, PROBE_LIMIT)?.stdout;
    let sps = annex_b
        .windows(7)
        .find(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)
        .map(|w| [w[4], w[5], w[6]])
        .ok_or_else(|| BedError::InvalidArgument(format!("no H.264 SPS in the output of `{line}`")))?;
    let codecs = format!("avc1.{:02x}{:02x}{:02x},{AUDIO_CODEC}", sps[0], sps[1], sps[2]);

    let mut keyframes = Command::new(command::find(FFPROBE)?);
    keyframes
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,flags"])
        .args(["-of", "csv=p=0"])
        .arg(clip);
    let output = command::run_ok(keyframes, PROBE_LIMIT)?;
    let starts: Vec<u64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (pos, flags) = line.split_once(',')?;
            flags.starts_with('K').then(|| pos.parse().ok()).flatten()
        })
        .collect();
    // Each GOP runs from its keyframe's packet to the next one's (the first from the file's
    // start, with the tables before it; the last to the end).
    let mut bounds = starts;
    if let Some(first) = bounds.first_mut() {
        *first = 0;
    }
    bounds.push(size);
    let peak_gop = bounds.windows(2).map(|w| w[1].saturating_sub(w[0])).max().unwrap_or(size);
    Ok(ClipInfo {
        codecs,
        peak_bandwidth: peak_gop * 8 / u64::from(GOP_SECONDS),
        average_bandwidth: size * 8 / u64::from(CLIP_SECONDS),
    })
}

impl Bed {
    /// Starts a headend on `host`: ffmpeg replays `clip` (from [`encode_clip`]) in a loop, in
    /// real time, without re-encoding (`-re -stream_loop -1 -i <clip> -c copy`), to `output` in
    /// the muxer `format`, such as `mpegts` to `udp://239.255.0.1:5000?pkt_size=1316&ttl=1` or
    /// `rtp_mpegts` to `rtp://239.255.0.2:5002?ttl=1`. ffmpeg logs only errors, to `log`; it
    /// runs until stopped or until the bed is dropped.
    pub fn loop_clip(
        &mut self,
        host: usize,
        clip: &Path,
        format: &str,
        output: &str,
        log: &Path,
    ) -> Result<ProcessId, BedError> {
        let ffmpeg = command::find(FFMPEG)?;
        let clip = clip.to_string_lossy();
        let args = [
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            &clip,
            "-c",
            "copy",
            "-f",
            format,
            output,
        ];
        self.spawn(host, &ffmpeg, &args, &[], log)
    }
}
