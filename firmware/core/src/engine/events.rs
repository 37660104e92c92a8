//! What the engine tells its caller, and what it counts.

use crate::{ChannelId, NodeId};

/// Something the caller may need to act on. Drain with [`crate::Engine::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A peer's session is confirmed and it is alive.
    PeerUp(NodeId),
    /// A peer timed out, said goodbye, or was removed.
    PeerDown(NodeId),
    /// A peer misbehaved and is ignored for a while.
    PeerBanned {
        /// The peer.
        peer: NodeId,
        /// What it did.
        reason: BanReason,
    },
    /// Every block of a segment is stored and verified.
    SegmentComplete {
        /// The channel.
        channel: ChannelId,
        /// The segment.
        seq: u64,
    },
    /// This box is now the channel's ingester: start fetching from the origin and call
    /// [`crate::Engine::publish_segment`] for each segment.
    IngestStart {
        /// The channel.
        channel: ChannelId,
        /// The newest complete segment this box holds. HLS sources resume at the origin's own
        /// sequence numbers; TS sources continue from this plus one, with a discontinuity.
        resume_after: Option<u64>,
    },
    /// Stop fetching the channel from its origin.
    IngestStop {
        /// The channel.
        channel: ChannelId,
    },
    /// This box's view of a channel's ingester or standby changed.
    ElectionChanged {
        /// The channel.
        channel: ChannelId,
        /// Rank 0.
        ingester: Option<NodeId>,
        /// Rank 1.
        standby: Option<NodeId>,
    },
}

/// Why a peer was banned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanReason {
    /// It sent a block that does not match its manifest.
    BadBlock,
    /// It sent a manifest with a bad signature.
    ForgedManifest,
    /// It repeatedly sent manifests for channels it does not ingest.
    NotIngester,
    /// It sent far more than any honest peer would.
    Flood,
    /// It sent fragments that cannot belong to the manifest they name.
    Malformed,
}

/// Counters since the engine started. They only grow; `/api/status` and metrics report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_in: u64,
    /// Datagrams returned by `poll_transmit`.
    pub datagrams_out: u64,
    /// Bytes in.
    pub bytes_in: u64,
    /// Bytes out.
    pub bytes_out: u64,
    /// Dropped: too short.
    pub too_short: u64,
    /// Dropped: unknown protocol version.
    pub unknown_version: u64,
    /// Dropped: bad MAC (no key, or another deployment's key).
    pub bad_mac: u64,
    /// Dropped: valid MAC but not a valid message.
    pub malformed: u64,
    /// Dropped: a packet number seen before or too old.
    pub replay: u64,
    /// Dropped: from a session not yet confirmed.
    pub unconfirmed: u64,
    /// Dropped: addressed to another box (a datagram replayed from one receiver to another).
    pub misdirected: u64,
    /// Dropped: from an address the peer has not proven to be its own (a probe went there).
    pub unverified_address: u64,
    /// Dropped: from a node id not in the peer table (and not a hello).
    pub unknown_peer: u64,
    /// Dropped: a hello whose public key does not hash to its node id.
    pub bad_identity: u64,
    /// Dropped: the peer table is full.
    pub peer_table_full: u64,
    /// Dropped: from a banned peer or address.
    pub banned: u64,
    /// Dropped: over the peer's datagram rate.
    pub rate_limited: u64,
    /// Peers banned.
    pub bans: u64,
    /// Blocks that failed verification.
    pub bad_blocks: u64,
    /// Manifests with a bad signature.
    pub forged_manifests: u64,
    /// Manifests signed by a box that is not the channel's ingester or standby.
    pub manifests_not_from_ingester: u64,
    /// Manifests the store refused (stale, conflicting, too large) or that named an unknown signer.
    pub manifests_refused: u64,
    /// Manifests accepted.
    pub manifests_accepted: u64,
    /// Manifests accepted from a former signer that the channel's ingester vouched for.
    pub manifests_vouched: u64,
    /// Vouches refused: from a box that is not the channel's ingester or standby, or for no
    /// segment of the window.
    pub vouches_refused: u64,
    /// Messages about a channel not in this box's lineup.
    pub not_in_lineup: u64,
    /// Data fragments for a segment whose manifest is not here yet.
    pub data_without_manifest: u64,
    /// Fragments of blocks already stored.
    pub duplicate_fragments: u64,
    /// Fragments outside their block, or too scattered to track.
    pub bad_fragments: u64,
    /// Partial blocks or manifests dropped because the pool was full.
    pub reassembly_evicted: u64,
    /// Verified blocks received from peers.
    pub blocks_received: u64,
    /// Segments completed from peers.
    pub segments_received: u64,
    /// Segments this box published as ingester.
    pub segments_published: u64,
    /// Requests sent (repair and pull).
    pub requests_sent: u64,
    /// Requests answered with data.
    pub requests_served: u64,
    /// Requests refused as busy or missing.
    pub requests_refused: u64,
    /// Tasks or control messages not queued because a queue was full.
    pub queue_full: u64,
    /// Events dropped because the caller did not drain them.
    pub events_dropped: u64,
    /// Times this box, as standby, took a channel over from a late ingester.
    pub takeovers: u64,
}
