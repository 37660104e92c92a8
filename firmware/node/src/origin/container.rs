//! Is a fetched segment whole? Cheap structural checks of the two containers HLS carries.
//!
//! The HTTP layer already refuses bodies shorter than their `Content-Length`; these checks
//! catch what it cannot: an origin that serves a cut file with a matching length, or a
//! segment that is not media at all (an HTML error page with status 200).
//!
//! - MPEG-TS: a whole number of 188-byte packets, each starting with the sync byte 0x47.
//! - fragmented MP4: top-level boxes that tile the bytes exactly; a media segment holds a
//!   `moof` and an `mdat`, an initialization section a `moov`.

/// MPEG-TS packet size.
const TS_PACKET: usize = 188;
/// MPEG-TS sync byte.
const TS_SYNC: u8 = 0x47;

/// What a segment's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// MPEG transport stream.
    Ts,
    /// Fragmented MP4 (CMAF) media segment.
    Fmp4,
}

/// Why a segment's bytes are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    /// Neither TS nor MP4.
    #[error("not MPEG-TS or fragmented MP4")]
    Unknown,
    /// TS that does not end on a packet boundary or loses sync: cut or corrupted.
    #[error("MPEG-TS of {len} bytes is not whole 188-byte packets in sync (packet {packet})")]
    TsBroken {
        /// Length.
        len: usize,
        /// First bad packet.
        packet: usize,
    },
    /// MP4 boxes that do not tile the bytes: cut or corrupted.
    #[error("MP4 box `{kind}` at {offset} runs past the end ({len} bytes)")]
    Mp4Broken {
        /// Box type.
        kind: String,
        /// Its offset.
        offset: usize,
        /// Length of the whole.
        len: usize,
    },
    /// MP4 without the boxes it needs.
    #[error("MP4 without a `{0}` box")]
    Mp4Missing(&'static str),
}

/// Checks a media segment and says which container it is.
pub fn check_segment(bytes: &[u8]) -> Result<Container, ContainerError> {
    if bytes.first() == Some(&TS_SYNC) {
        check_ts(bytes)?;
        return Ok(Container::Ts);
    }
    let boxes = mp4_boxes(bytes)?;
    for needed in ["moof", "mdat"] {
        if !boxes.iter().any(|b| b == needed) {
            return Err(ContainerError::Mp4Missing(needed));
        }
    }
    Ok(Container::Fmp4)
}

/// Checks an fMP4 initialization section (`EXT-X-MAP`).
pub fn check_init(bytes: &[u8]) -> Result<(), ContainerError> {
    let boxes = mp4_boxes(bytes)?;
    if !boxes.iter().any(|b| b == "moov") {
        return Err(ContainerError::Mp4Missing("moov"));
    }
    Ok(())
}

fn check_ts(bytes: &[u8]) -> Result<(), ContainerError> {
    let len = bytes.len();
    if len % TS_PACKET != 0 {
        return Err(ContainerError::TsBroken { len, packet: len / TS_PACKET });
    }
    match bytes.chunks(TS_PACKET).position(|p| p[0] != TS_SYNC) {
        Some(packet) => Err(ContainerError::TsBroken { len, packet }),
        None => Ok(()),
    }
}

/// Box types an fMP4 segment or initialization section starts with: anything else is not MP4.
const FIRST_BOXES: [&str; 8] = ["ftyp", "styp", "sidx", "moof", "moov", "prft", "emsg", "free"];

/// The types of the top-level boxes, if they tile `bytes` exactly.
fn mp4_boxes(bytes: &[u8]) -> Result<Vec<String>, ContainerError> {
    let len = bytes.len();
    let mut offset = 0;
    let mut kinds = Vec::new();
    while offset < len {
        let header = bytes.get(offset..offset + 8).ok_or(ContainerError::Unknown)?;
        let kind_bytes = &header[4..8];
        if !kind_bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Err(ContainerError::Unknown);
        }
        let kind = String::from_utf8_lossy(kind_bytes).into_owned();
        if offset == 0 && !FIRST_BOXES.contains(&kind.as_str()) {
            return Err(ContainerError::Unknown);
        }
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let size = match size32 {
            // Extends to the end of the file.
            0 => (len - offset) as u64,
            // A 64-bit size follows the type.
            1 => {
                let large = bytes.get(offset + 8..offset + 16).ok_or(ContainerError::Mp4Broken {
                    kind: kind.clone(),
                    offset,
                    len,
                })?;
                u64::from_be_bytes(large.try_into().unwrap_or([0; 8]))
            }
            s => s,
        };
        let header_len = if size32 == 1 { 16 } else { 8 };
        if size < header_len || size > (len - offset) as u64 {
            return Err(ContainerError::Mp4Broken { kind, offset, len });
        }
        kinds.push(kind);
        offset += size as usize;
    }
    if kinds.is_empty() {
        return Err(ContainerError::Unknown);
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(packets: usize) -> Vec<u8> {
        let mut v = vec![0u8; packets * TS_PACKET];
        for p in v.chunks_mut(TS_PACKET) {
            p[0] = TS_SYNC;
        }
        v
    }

    fn mp4_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut v = ((8 + body) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.resize(8 + body, 0);
        v
    }

    #[test]
    fn whole_ts_passes_and_cut_ts_fails() {
        assert_eq!(check_segment(&ts(100)), Ok(Container::Ts));
        let whole = ts(100);
        assert!(matches!(check_segment(&whole[..whole.len() - 1]), Err(ContainerError::TsBroken { .. })));
        assert!(matches!(check_segment(&whole[..1000]), Err(ContainerError::TsBroken { .. })));
        let mut desynced = ts(10);
        desynced[5 * TS_PACKET] = 0;
        assert_eq!(check_segment(&desynced), Err(ContainerError::TsBroken { len: 1880, packet: 5 }));
    }

    #[test]
    fn fmp4_boxes_must_tile_the_segment() {
        let segment = [mp4_box(b"styp", 16), mp4_box(b"moof", 100), mp4_box(b"mdat", 5000)].concat();
        assert_eq!(check_segment(&segment), Ok(Container::Fmp4));
        assert!(matches!(
            check_segment(&segment[..segment.len() - 10]),
            Err(ContainerError::Mp4Broken { .. })
        ));
        let no_mdat = [mp4_box(b"styp", 16), mp4_box(b"moof", 100)].concat();
        assert_eq!(check_segment(&no_mdat), Err(ContainerError::Mp4Missing("mdat")));
        let init = [mp4_box(b"ftyp", 20), mp4_box(b"moov", 600)].concat();
        assert_eq!(check_init(&init), Ok(()));
        assert_eq!(check_init(&segment), Err(ContainerError::Mp4Missing("moov")));
    }

    #[test]
    fn error_pages_are_not_media() {
        assert_eq!(check_segment(b"<html><body>502 Bad Gateway</body></html>"), Err(ContainerError::Unknown));
        assert_eq!(check_segment(b""), Err(ContainerError::Unknown));
    }
}
