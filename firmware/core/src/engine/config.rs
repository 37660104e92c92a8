//! The engine's settings, with defaults for a LAN of set-top boxes.

use core::time::Duration;

use thiserror::Error;

use crate::crypto::{Authenticator, Identity};
use crate::wire::{DEFAULT_MAX_DATAGRAM, MAX_LINEUP, MAX_MAX_DATAGRAM, MIN_MAX_DATAGRAM};
use crate::ChannelId;

/// One channel this box carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineupEntry {
    /// The channel.
    pub channel: ChannelId,
    /// Fetched even when no box has a viewer.
    pub always_on: bool,
}

/// Everything an [`crate::Engine`] needs to know at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// This box's key pair and node id.
    pub identity: Identity,
    /// Datagram tags: the network key, or the explicit insecure mode.
    pub auth: Authenticator,
    /// Seed of the engine's random numbers (sessions, challenges, tie-breaks). A box seeds it
    /// from the OS; the simulator from its own seed, for reproducible runs.
    pub seed: u64,
    /// Largest datagram sent, in bytes of UDP payload.
    pub max_datagram: usize,
    /// Upload rate the engine paces itself to, in bytes per second on the wire (IP and UDP
    /// headers included).
    pub upload_rate: u64,
    /// Store budget in bytes.
    pub store_budget: usize,
    /// Most segments kept per channel.
    pub ring_len: usize,
    /// Segments behind the newest that a box still fetches from peers (the live window a late
    /// joiner catches up on).
    pub window_segments: u64,
    /// The channels this box carries.
    pub lineup: Vec<LineupEntry>,
    /// Push trees per segment (and their fan-out).
    pub stripes: usize,
    /// Interval between pings (and between hellos while a session is unconfirmed).
    pub ping_interval: Duration,
    /// A peer not heard from for this long is considered gone.
    pub peer_timeout: Duration,
    /// How long a misbehaving peer is ignored.
    pub ban_duration: Duration,
    /// Target duration assumed until a channel's first manifest says otherwise.
    pub default_target_duration: Duration,
    /// How often the repair loop looks for missing fragments, blocks and manifests.
    pub repair_interval: Duration,
    /// A segment that received nothing for this long has its missing blocks pulled.
    pub stall_timeout: Duration,
    /// Peers known at once (the table is bounded; more are refused and counted).
    pub max_peers: usize,
    /// Blocks reassembled at once (each up to 16 KiB).
    pub max_partial_blocks: usize,
    /// Datagrams per second one peer may send before the excess is dropped (at least four
    /// times what this box's own upload rate allows).
    pub peer_datagram_rate: u64,
}

impl Config {
    /// Defaults for everything but the identity and the authenticator.
    pub fn new(identity: Identity, auth: Authenticator) -> Self {
        Config {
            identity,
            auth,
            seed: 0,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            upload_rate: 100_000_000 / 8,
            store_budget: 64 * 1024 * 1024,
            ring_len: 64,
            window_segments: 6,
            lineup: Vec::new(),
            stripes: 2,
            ping_interval: Duration::from_millis(250),
            peer_timeout: Duration::from_millis(1_000),
            ban_duration: Duration::from_secs(60),
            default_target_duration: Duration::from_secs(2),
            repair_interval: Duration::from_millis(5),
            stall_timeout: Duration::from_millis(50),
            max_peers: 256,
            max_partial_blocks: 128,
            peer_datagram_rate: 50_000,
        }
    }

    /// Checks the settings, naming the first that is out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, why: &'static str| Err(ConfigError { field, why });
        if !(MIN_MAX_DATAGRAM..=MAX_MAX_DATAGRAM).contains(&self.max_datagram) {
            return bad("max_datagram", "must be between 1024 and 65507 bytes");
        }
        if self.upload_rate < 10_000 {
            return bad("upload_rate", "must be at least 10 kB/s");
        }
        if self.store_budget < 1024 * 1024 {
            return bad("store_budget", "must be at least 1 MiB");
        }
        if self.ring_len == 0 || self.window_segments == 0 {
            return bad("ring_len", "ring_len and window_segments must be at least 1");
        }
        if self.lineup.len() > MAX_LINEUP {
            return bad("lineup", "at most 64 channels");
        }
        if !(1..=8).contains(&self.stripes) {
            return bad("stripes", "must be between 1 and 8");
        }
        if self.ping_interval.is_zero() || self.peer_timeout < self.ping_interval * 2 {
            return bad("peer_timeout", "must be at least two ping intervals");
        }
        if self.repair_interval.is_zero() || self.stall_timeout.is_zero() {
            return bad("repair_interval", "repair_interval and stall_timeout must be positive");
        }
        if self.default_target_duration.is_zero() {
            return bad("default_target_duration", "must be positive");
        }
        if self.max_peers == 0 || self.max_partial_blocks == 0 || self.peer_datagram_rate == 0 {
            return bad("max_peers", "max_peers, max_partial_blocks and peer_datagram_rate must be positive");
        }
        Ok(())
    }
}

/// A setting out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("engine setting `{field}` {why}")]
pub struct ConfigError {
    /// The setting.
    pub field: &'static str,
    /// What it must be.
    pub why: &'static str,
}
