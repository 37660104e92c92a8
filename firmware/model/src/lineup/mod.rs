//! The lineup: the channels a box carries, each with its source parsed once.
//!
//! A [`Channel`] keeps both the canonical `source` string (its swarm id derives from it,
//! [`ChannelId::derive`]) and what that string names, [`SourceKind`], parsed when the config is
//! loaded or a relayed feed is added. Below it: [`input`] (UDP/RTP feeds, TS files), [`url`]
//! (origin URLs), [`relay`] (which feeds a TV may have relayed, and the channel each becomes).

pub mod input;
pub mod kind;
pub mod relay;
pub mod url;

use std::time::Duration;

use shoal_core::ChannelId;

pub use input::{Encapsulation, FileInput, InputError, TsInput, UdpInput};
pub use kind::{HttpFormat, SourceError, SourceKind, TestPattern};
pub use url::{OriginUrl, UrlError};

/// One channel of the lineup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Short id, used in URLs.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where the ingester fetches it, as written (the swarm id derives from it).
    pub source: String,
    /// What `source` names, parsed once.
    pub kind: SourceKind,
    /// Fetched even without viewers.
    pub always_on: bool,
    /// Channel number in the lineup (`tvg-chno`).
    pub number: Option<u32>,
    /// Group in the lineup (`group-title`).
    pub group: Option<String>,
    /// Logo URL (`tvg-logo`).
    pub logo: Option<String>,
    /// For an HLS master playlist: the highest variant bandwidth to ingest, in bit/s.
    pub max_bitrate: Option<u64>,
    /// For MPEG-TS feeds (UDP, RTP, HTTP-TS, files): the target segment duration; cuts
    /// happen at the first keyframe after it.
    pub segment: Duration,
    /// For multicast feeds: the interface to join on (`None`: the kernel's route).
    pub interface: Option<String>,
}

impl Channel {
    /// A channel with `id`, `name` and `source` (parsed with `format` for `http(s)://`), and
    /// defaults for the rest: not always on, no number, group or logo, 2 s TS segments.
    pub fn new(
        id: &str,
        name: &str,
        source: &str,
        format: Option<HttpFormat>,
    ) -> Result<Channel, SourceError> {
        Ok(Channel {
            id: id.to_owned(),
            name: name.to_owned(),
            source: source.to_owned(),
            kind: SourceKind::parse(source, format)?,
            always_on: false,
            number: None,
            group: None,
            logo: None,
            max_bitrate: None,
            segment: Duration::from_secs(2),
            interface: None,
        })
    }

    /// The channel's swarm id.
    pub fn channel_id(&self) -> ChannelId {
        ChannelId::derive(&self.id, &self.source)
    }
}
