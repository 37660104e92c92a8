//! An on-demand (VOD) HLS asset: minutes of test video encoded once by ffmpeg, cut into
//! segments under a playlist that ends with `#EXT-X-ENDLIST`, plus the same bytes as one
//! MPEG-TS file for tools that share whole files (BitTorrent).
//!
//! How: one ffmpeg run from `lavfi` generators (`testsrc2` and a 1 kHz `sine`, so no network
//! and nothing to download), H.264 (x264 `ultrafast`) with an IDR frame every
//! [`VodSpec::segment_seconds`] exactly (no scene-cut keyframes), AAC-LC 48 kHz stereo, through
//! ffmpeg's HLS muxer with `-hls_playlist_type vod`, so every segment starts on a keyframe and
//! lasts exactly `segment_seconds`. The HLS muxer keeps one MPEG-TS muxer across segments
//! (continuity counters and timestamps run on), so the segments concatenated in playlist order
//! are a valid MPEG-TS file: that is `asset.ts`, byte for byte.
//!
//! An asset is cached by its spec under the directory given to [`encode_vod_asset`]:
//!
//! | path | what |
//! |------|------|
//! | `vod-<m>min-<w>x<h>-<kbps>k-<s>s/hls/index.m3u8` | the VOD playlist |
//! | `vod-<m>min-<w>x<h>-<kbps>k-<s>s/hls/seg<N>.ts` | its segments, `N` from 0 |
//! | `vod-<m>min-<w>x<h>-<kbps>k-<s>s/asset.ts` | the segments concatenated |
//!
//! The whole directory is built under a temporary name and renamed into place, so an asset
//! directory that exists is complete and tests or benches running at once may share the cache.
//! [`VodSpec::TWENTY_MINUTES`] takes about 25 s to encode on 2 busy cores (600 segments,
//! about 45 MB); one minute about 1.5 s.
//!
//! ```no_run
//! use shoal_testbed::{encode_vod_asset, VodSpec};
//!
//! let cache = std::env::temp_dir().join("vod-assets");
//! let spec = VodSpec { minutes: 1, ..VodSpec::TWENTY_MINUTES };
//! let asset = encode_vod_asset(&cache, spec).unwrap();
//! assert_eq!(asset.segments, 30);
//! assert!(asset.dir.join("index.m3u8").is_file());
//! ```

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::command::{self, FFMPEG};
use crate::media::{AUDIO_KBPS, FRAME_RATE};
use crate::BedError;

/// The playlist's name inside [`VodAsset::dir`].
pub const VOD_PLAYLIST: &str = "index.m3u8";

/// How long one minute of asset may take to encode, on top of [`ENCODE_BASE_LIMIT`]: about
/// 1.2 s at 160x90 on 2 busy cores, so the limit only catches a stuck ffmpeg.
const ENCODE_LIMIT_PER_MINUTE: Duration = Duration::from_secs(20);
/// ffmpeg's start-up and the fixed part of the encoding limit.
const ENCODE_BASE_LIMIT: Duration = Duration::from_secs(60);

/// What [`encode_vod_asset`] makes. Everything not here is fixed: 25 fps `testsrc2`, x264
/// `ultrafast` (Constrained Baseline, no B-frames) capped at `video_kbps` (VBV, 1 s buffer), a
/// 1 kHz tone as AAC-LC 48 kHz stereo at 64 kbit/s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VodSpec {
    /// Length of the asset in minutes: 1 to 600.
    pub minutes: u32,
    /// Picture width in pixels: even, 16 to 4096.
    pub width: u32,
    /// Picture height in pixels: even, 16 to 4096.
    pub height: u32,
    /// Video bit rate in kbit/s, also the encoder's maximum rate: 1 to 100000.
    pub video_kbps: u32,
    /// Segment length and GOP length in seconds (`-hls_time`): 1 to 60.
    pub segment_seconds: u32,
}

impl VodSpec {
    /// 20 minutes of 160x90 at 200 kbit/s (about 300 kbit/s with audio and MPEG-TS overhead, so
    /// about 45 MB) in 2 s segments: 600 segments, long enough that fetching it is a transfer
    /// worth timing, small enough to encode in under half a minute and to copy around freely.
    pub const TWENTY_MINUTES: VodSpec =
        VodSpec { minutes: 20, width: 160, height: 90, video_kbps: 200, segment_seconds: 2 };

    /// How many segments the asset has: every one is exactly `segment_seconds` long, the last
    /// one possibly shorter.
    pub fn segments(&self) -> usize {
        (self.minutes * 60).div_ceil(self.segment_seconds) as usize
    }

    /// The asset's directory name in the cache.
    fn name(&self) -> String {
        let VodSpec { minutes, width, height, video_kbps, segment_seconds } = *self;
        format!("vod-{minutes}min-{width}x{height}-{video_kbps}k-{segment_seconds}s")
    }

    fn check(&self) -> Result<(), BedError> {
        let VodSpec { minutes, width, height, video_kbps, segment_seconds } = *self;
        let size_ok = |n: u32| (16..=4096).contains(&n) && n % 2 == 0;
        let ok = (1..=600).contains(&minutes)
            && size_ok(width)
            && size_ok(height)
            && (1..=100_000).contains(&video_kbps)
            && (1..=60).contains(&segment_seconds);
        if ok {
            Ok(())
        } else {
            Err(BedError::InvalidArgument(format!(
                "VOD asset {self:?}: minutes must be 1 to 600, sizes even and 16 to 4096, the rate \
                 1 to 100000 kbit/s and segments 1 to 60 s"
            )))
        }
    }
}

impl Default for VodSpec {
    /// [`VodSpec::TWENTY_MINUTES`].
    fn default() -> Self {
        VodSpec::TWENTY_MINUTES
    }
}

/// An asset made by [`encode_vod_asset`]; see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VodAsset {
    /// The HLS directory: [`VOD_PLAYLIST`] and `seg0.ts`, `seg1.ts`...
    pub dir: PathBuf,
    /// The segments concatenated in playlist order: one MPEG-TS file.
    pub file: PathBuf,
    /// How many segments the playlist lists.
    pub segments: usize,
    /// The size of [`VodAsset::file`], which is also the segments' total size.
    pub bytes: u64,
}

impl VodAsset {
    /// The segments' file names in playlist order (`seg0.ts`...), read from the playlist.
    pub fn segment_names(&self) -> Result<Vec<String>, BedError> {
        let playlist = self.dir.join(VOD_PLAYLIST);
        let text = fs::read_to_string(&playlist)
            .map_err(|e| BedError::io(format!("cannot read {}", playlist.display()), e))?;
        Ok(playlist_segments(&text))
    }

    /// Reads a finished asset directory: the playlist must end the list, and `asset.ts` must be
    /// as long as the segments together.
    fn open(root: &Path) -> Result<VodAsset, BedError> {
        let dir = root.join("hls");
        let file = root.join("asset.ts");
        let playlist = dir.join(VOD_PLAYLIST);
        let text = fs::read_to_string(&playlist)
            .map_err(|e| BedError::io(format!("cannot read {}", playlist.display()), e))?;
        if !text.lines().any(|line| line.trim() == "#EXT-X-ENDLIST") {
            return Err(BedError::InvalidArgument(format!(
                "{} has no #EXT-X-ENDLIST: not a finished VOD asset (delete it to encode it again)",
                playlist.display()
            )));
        }
        let names = playlist_segments(&text);
        let mut total = 0;
        for name in &names {
            total += file_size(&dir.join(name))?;
        }
        let bytes = file_size(&file)?;
        if bytes != total {
            return Err(BedError::InvalidArgument(format!(
                "{} has {bytes} bytes but the segments {total}: delete {} to encode it again",
                file.display(),
                root.display()
            )));
        }
        Ok(VodAsset { dir, file, segments: names.len(), bytes })
    }
}

/// Makes (or finds, from an earlier call with the same spec) a VOD HLS asset in `dir`; see the
/// [module documentation](self) for what it holds and how it is made.
///
/// Needs ffmpeg with libx264. Runs on this machine, without any network.
pub fn encode_vod_asset(dir: &Path, spec: VodSpec) -> Result<VodAsset, BedError> {
    spec.check()?;
    let root = dir.join(spec.name());
    if root.is_dir() {
        return VodAsset::open(&root);
    }
    fs::create_dir_all(dir).map_err(|e| BedError::io(format!("cannot create {}", dir.display()), e))?;
    static ENCODES: AtomicU32 = AtomicU32::new(0);
    let part = dir.join(format!(
        ".{}.{}-{}.part",
        spec.name(),
        std::process::id(),
        ENCODES.fetch_add(1, Ordering::Relaxed)
    ));
    let result = build(&part, spec).and_then(|()| match fs::rename(&part, &root) {
        Ok(()) => Ok(()),
        // Another test or bench finished the same asset first: theirs is as good.
        Err(_) if root.is_dir() => {
            let _ = fs::remove_dir_all(&part);
            Ok(())
        }
        Err(e) => Err(BedError::io(format!("cannot rename {} to {}", part.display(), root.display()), e)),
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&part);
    }
    result?;
    VodAsset::open(&root)
}

/// Encodes the asset into `part/hls` and concatenates it into `part/asset.ts`.
fn build(part: &Path, spec: VodSpec) -> Result<(), BedError> {
    let VodSpec { minutes, width, height, video_kbps, segment_seconds } = spec;
    let hls = part.join("hls");
    fs::create_dir_all(&hls).map_err(|e| BedError::io(format!("cannot create {}", hls.display()), e))?;
    let gop = (segment_seconds * FRAME_RATE).to_string();
    let rate = format!("{video_kbps}k");
    let seconds = (minutes * 60).to_string();
    let segment_seconds = segment_seconds.to_string();
    let mut ffmpeg = Command::new(command::find(FFMPEG)?);
    ffmpeg
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size={width}x{height}:rate={FRAME_RATE}")])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
        .args(["-map", "0:v", "-map", "1:a", "-t", &seconds])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate])
        .args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", &format!("{AUDIO_KBPS}k"), "-ac", "2"])
        .args(["-f", "hls", "-hls_time", &segment_seconds, "-hls_playlist_type", "vod"])
        .arg("-hls_segment_filename")
        .arg(hls.join("seg%d.ts"))
        .arg(hls.join(VOD_PLAYLIST));
    command::run_ok(ffmpeg, ENCODE_BASE_LIMIT + ENCODE_LIMIT_PER_MINUTE * minutes)?;

    let playlist = hls.join(VOD_PLAYLIST);
    let text = fs::read_to_string(&playlist)
        .map_err(|e| BedError::io(format!("cannot read {}", playlist.display()), e))?;
    let file = part.join("asset.ts");
    let mut out =
        File::create(&file).map_err(|e| BedError::io(format!("cannot create {}", file.display()), e))?;
    for name in playlist_segments(&text) {
        let segment = hls.join(&name);
        let mut input = File::open(&segment)
            .map_err(|e| BedError::io(format!("cannot open {}", segment.display()), e))?;
        io::copy(&mut input, &mut out).map_err(|e| {
            BedError::io(format!("cannot append {} to {}", segment.display(), file.display()), e)
        })?;
    }
    out.sync_all().map_err(|e| BedError::io(format!("cannot write {}", file.display()), e))
}

/// The URI lines of a media playlist, in order.
fn playlist_segments(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn file_size(path: &Path) -> Result<u64, BedError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(BedError::InvalidArgument(format!("{} is missing from the VOD asset", path.display())))
        }
        Err(e) => Err(BedError::io(format!("cannot stat {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_up_and_names_carry_the_spec() {
        assert_eq!(VodSpec::TWENTY_MINUTES.segments(), 600);
        assert_eq!(VodSpec { segment_seconds: 7, minutes: 1, ..VodSpec::default() }.segments(), 9);
        assert_eq!(VodSpec::TWENTY_MINUTES.name(), "vod-20min-160x90-200k-2s");
    }

    #[test]
    fn specs_out_of_range_are_refused() {
        assert!(VodSpec::TWENTY_MINUTES.check().is_ok());
        for bad in [
            VodSpec { minutes: 0, ..VodSpec::default() },
            VodSpec { width: 161, ..VodSpec::default() },
            VodSpec { video_kbps: 0, ..VodSpec::default() },
            VodSpec { segment_seconds: 0, ..VodSpec::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn playlist_uris_in_order() {
        let text = "#EXTM3U\n#EXTINF:2.000000,\nseg0.ts\n\n#EXTINF:2.000000,\nseg1.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(playlist_segments(text), ["seg0.ts", "seg1.ts"]);
    }
}
