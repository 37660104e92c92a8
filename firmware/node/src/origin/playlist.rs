//! HLS playlists from origins (RFC 8216), parsed with `m3u8-rs` into what an ingester needs:
//! the variants of a master playlist, and a media playlist's segments with their sequence
//! numbers and with the tags that apply to each (`EXT-X-MAP` and `EXT-X-KEY` carry over to the
//! segments after them; a `BYTERANGE` without an offset continues the previous range).

use std::time::Duration;

/// Largest playlist body accepted.
pub const MAX_PLAYLIST_LEN: usize = 1024 * 1024;
/// Most segments one media playlist may list (a 24 h VOD asset of 2 s segments has 43,200).
pub const MAX_SEGMENTS: usize = 50_000;
/// Longest target duration and segment accepted.
const MAX_DURATION: Duration = Duration::from_secs(600);

/// Why a playlist is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    /// Not an HLS playlist, or one the parser rejects.
    #[error("not a valid HLS playlist: {0}")]
    Syntax(String),
    /// A master playlist without a usable variant.
    #[error("master playlist lists no playable variant")]
    NoVariant,
    /// Values no real stream has.
    #[error("playlist out of range: {0}")]
    OutOfRange(&'static str),
}

/// A playlist: a master (variants) or a media playlist (segments).
#[derive(Clone, Debug, PartialEq)]
pub enum Playlist {
    /// Variants of the same content at different bitrates.
    Master(Vec<Variant>),
    /// Segments.
    Media(MediaPlaylist),
}

/// One variant stream of a master playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Its media playlist, as written (relative to the master playlist).
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
}

/// A media playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlaylist {
    /// Longest segment, rounded up: how often a live playlist changes.
    pub target_duration: Duration,
    /// Sequence number of the first segment listed.
    pub media_sequence: u64,
    /// `EXT-X-ENDLIST`: no segment will be added (VOD, or an event that ended).
    pub end_list: bool,
    /// The segments, oldest first.
    pub segments: Vec<Segment>,
}

/// A byte range of a resource: (offset, length).
pub type ByteRange = (u64, u64);

/// One media segment with everything that applies to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Media sequence number.
    pub seq: u64,
    /// Its URI, as written.
    pub uri: String,
    /// Its byte range of `uri`, if only part of the resource.
    pub byte_range: Option<ByteRange>,
    /// Playback duration (`EXTINF`).
    pub duration: Duration,
    /// `EXT-X-DISCONTINUITY` before it.
    pub discontinuity: bool,
    /// The initialization section (`EXT-X-MAP`) in force.
    pub map: Option<InitSection>,
    /// Encrypted (`EXT-X-KEY` with a method other than NONE in force).
    pub encrypted: bool,
}

/// An fMP4 initialization section.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InitSection {
    /// Its URI, as written.
    pub uri: String,
    /// Its byte range, if only part of the resource.
    pub byte_range: Option<ByteRange>,
}

/// Parses a playlist body.
pub fn parse(bytes: &[u8]) -> Result<Playlist, PlaylistError> {
    if bytes.len() > MAX_PLAYLIST_LEN {
        return Err(PlaylistError::OutOfRange("larger than 1 MiB"));
    }
    if !bytes.starts_with(b"#EXTM3U") && !bytes.starts_with(b"\xEF\xBB\xBF#EXTM3U") {
        return Err(PlaylistError::Syntax("does not start with #EXTM3U".to_owned()));
    }
    let parsed = m3u8_rs::parse_playlist_res(bytes).map_err(|e| {
        let mut message = format!("{e:?}");
        message.truncate(200);
        PlaylistError::Syntax(message)
    })?;
    match parsed {
        m3u8_rs::Playlist::MasterPlaylist(master) => {
            let variants: Vec<Variant> = master
                .variants
                .into_iter()
                .filter(|v| !v.is_i_frame && !v.uri.is_empty())
                .map(|v| Variant { uri: v.uri, bandwidth: v.bandwidth })
                .collect();
            if variants.is_empty() {
                return Err(PlaylistError::NoVariant);
            }
            Ok(Playlist::Master(variants))
        }
        m3u8_rs::Playlist::MediaPlaylist(media) => media_playlist(media).map(Playlist::Media),
    }
}

fn media_playlist(media: m3u8_rs::MediaPlaylist) -> Result<MediaPlaylist, PlaylistError> {
    // Some packagers write 0 before the first segment exists: only absurd values are refused,
    // and the longest segment listed raises it (below).
    let mut target_duration = Duration::from_secs(media.target_duration.max(1));
    if target_duration > MAX_DURATION {
        return Err(PlaylistError::OutOfRange("EXT-X-TARGETDURATION"));
    }
    if media.segments.len() > MAX_SEGMENTS {
        return Err(PlaylistError::OutOfRange("too many segments"));
    }
    if media.i_frames_only {
        return Err(PlaylistError::Syntax("an I-frame-only playlist is not a channel".to_owned()));
    }
    let mut segments = Vec::with_capacity(media.segments.len());
    let mut map: Option<InitSection> = None;
    let mut encrypted = false;
    // Where the previous byte range of each URI ended, for ranges without an offset.
    let mut previous_range_end: Option<(String, u64)> = None;
    for (i, s) in media.segments.into_iter().enumerate() {
        if let Some(m) = s.map {
            let byte_range = m.byte_range.map(|r| (r.offset.unwrap_or(0), r.length));
            map = Some(InitSection { uri: m.uri, byte_range });
        }
        if let Some(key) = &s.key {
            encrypted = key.method != m3u8_rs::KeyMethod::None;
        }
        // m3u8-rs keeps EXTINF as f32: round to the microsecond so 1.96 stays 1.96.
        let micros = f64::from(s.duration) * 1e6;
        let duration = (micros.is_finite() && micros >= 1.0)
            .then(|| Duration::from_micros(micros.round() as u64))
            .filter(|d| *d <= MAX_DURATION)
            .ok_or(PlaylistError::OutOfRange("EXTINF"))?;
        let byte_range = match s.byte_range {
            None => None,
            Some(r) => {
                let offset = match (r.offset, &previous_range_end) {
                    (Some(o), _) => o,
                    (None, Some((uri, end))) if *uri == s.uri => *end,
                    (None, _) => return Err(PlaylistError::OutOfRange("EXT-X-BYTERANGE without an offset")),
                };
                previous_range_end = Some((s.uri.clone(), offset.saturating_add(r.length)));
                Some((offset, r.length))
            }
        };
        target_duration = target_duration.max(Duration::from_secs(duration.as_secs_f64().round() as u64));
        let seq = media.media_sequence.checked_add(i as u64).ok_or(PlaylistError::OutOfRange("sequence"))?;
        segments.push(Segment {
            seq,
            uri: s.uri,
            byte_range,
            duration,
            discontinuity: s.discontinuity,
            map: map.clone(),
            encrypted,
        });
    }
    Ok(MediaPlaylist {
        target_duration,
        media_sequence: media.media_sequence,
        end_list: media.end_list,
        segments,
    })
}

/// The variant to ingest: the highest bandwidth within `cap` (bit/s), or with no cap the
/// highest; when every variant is over the cap, the lowest.
pub fn pick_variant(variants: &[Variant], cap: Option<u64>) -> Option<&Variant> {
    rank_variants(variants, cap).into_iter().next()
}

/// Every variant, best first: those within `cap` from the highest bandwidth down, then those
/// over it from the lowest up (the order to fall back in when a variant fails).
pub fn rank_variants(variants: &[Variant], cap: Option<u64>) -> Vec<&Variant> {
    let (mut within, mut over): (Vec<&Variant>, Vec<&Variant>) =
        variants.iter().partition(|v| cap.is_none_or(|c| v.bandwidth <= c));
    within.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
    over.sort_by_key(|v| v.bandwidth);
    within.into_iter().chain(over).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n\
        #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\nsd/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\nhd/index.m3u8\n\
        #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"iframes.m3u8\"\n";

    #[test]
    fn master_playlists_give_variants_and_the_cap_picks_one() {
        let Ok(Playlist::Master(variants)) = parse(MASTER.as_bytes()) else { panic!("a master playlist") };
        assert_eq!(variants.len(), 2, "I-frame playlists are not channels");
        assert_eq!(pick_variant(&variants, None).unwrap().uri, "hd/index.m3u8");
        assert_eq!(pick_variant(&variants, Some(2_000_000)).unwrap().uri, "sd/index.m3u8");
        assert_eq!(pick_variant(&variants, Some(3_000_000)).unwrap().uri, "hd/index.m3u8");
        assert_eq!(pick_variant(&variants, Some(100)).unwrap().uri, "sd/index.m3u8");
        let order = |cap| rank_variants(&variants, cap).iter().map(|v| v.uri.as_str()).collect::<Vec<_>>();
        assert_eq!(order(None), ["hd/index.m3u8", "sd/index.m3u8"]);
        assert_eq!(order(Some(2_000_000)), ["sd/index.m3u8", "hd/index.m3u8"]);
    }

    #[test]
    fn media_playlists_number_segments_and_carry_tags_forward() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n\
            #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000,\nseg41.m4s\n\
            #EXT-X-DISCONTINUITY\n#EXTINF:1.960,\nseg42.m4s\n\
            #EXT-X-MAP:URI=\"init2.mp4\"\n#EXTINF:2.040,\nseg43.m4s\n#EXT-X-ENDLIST\n";
        let Ok(Playlist::Media(media)) = parse(text.as_bytes()) else { panic!("a media playlist") };
        assert!(media.end_list);
        assert_eq!(media.target_duration, Duration::from_secs(2));
        let seqs: Vec<u64> = media.segments.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [41, 42, 43]);
        assert!(!media.segments[0].discontinuity && media.segments[1].discontinuity);
        let maps: Vec<&str> = media.segments.iter().map(|s| s.map.as_ref().unwrap().uri.as_str()).collect();
        assert_eq!(maps, ["init.mp4", "init.mp4", "init2.mp4"]);
        assert_eq!(media.segments[1].duration, Duration::from_millis(1960));
    }

    #[test]
    fn byte_ranges_continue_and_keys_carry_forward() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n\
            #EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-BYTERANGE:1000@0\n#EXTINF:4,\nall.ts\n\
            #EXT-X-BYTERANGE:500\n#EXTINF:4,\nall.ts\n";
        let Ok(Playlist::Media(media)) = parse(text.as_bytes()) else { panic!("a media playlist") };
        assert_eq!(media.segments[0].byte_range, Some((0, 1000)));
        assert_eq!(media.segments[1].byte_range, Some((1000, 500)));
        assert!(media.segments.iter().all(|s| s.encrypted));
        assert_eq!(media.media_sequence, 0);
    }

    #[test]
    fn garbage_and_absurd_values_are_refused() {
        assert!(matches!(parse(b"<html>404</html>"), Err(PlaylistError::Syntax(_))));
        assert!(parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:9999\n#EXTINF:2,\na.ts\n").is_err());
        let Ok(Playlist::Media(zero)) = parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:0\n#EXTINF:2.4,\na.ts\n")
        else {
            panic!("a zero target duration is a packager quirk, not an error")
        };
        assert_eq!(zero.target_duration, Duration::from_secs(2));
        assert!(parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:99999,\na.ts\n").is_err());
        assert!(parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:10\n#EXTINF:2,\na.ts\n").is_err());
        assert_eq!(parse(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n"), Err(PlaylistError::NoVariant));
        assert!(parse(&vec![b'#'; MAX_PLAYLIST_LEN + 1]).is_err());
    }
}
