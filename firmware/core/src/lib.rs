//! # shoal-core: the sans-IO heart of Shoal
//!
//! Everything Shoal promises lives here as a deterministic state machine: the wire format and its
//! MAC, signed manifests and block verification, the bounded store, and the swarm [`Engine`]
//! (peers, election, dissemination). Nothing in this crate opens a socket, spawns a thread,
//! awaits, or reads a clock: time and randomness are inputs. That is what lets the simulator run
//! a 64-box swarm with loss, reordering and crashes in milliseconds, reproducible from a seed.
//!
//! The caller (the `shoal` daemon, or the simulator) drives an [`Engine`] like this:
//!
//! ```text
//! loop {
//!     wait for a datagram or engine.poll_timeout()
//!     engine.handle_datagram(now, from, bytes) / engine.handle_timeout(now) / a command
//!     while let Some(t) = engine.poll_transmit(now, &mut buf) { send buf[..t.len] to t.destination }
//!     while let Some(e) = engine.poll_event() { act on it }
//! }
//! ```
//!
//! Modules, bottom up: [`time`] and [`id`] (vocabulary), [`crypto`] (keys, tags, signatures),
//! [`wire`] (datagrams), [`replay`] (replay window), [`ranges`] (fragment bookkeeping),
//! [`manifest`] (signed segment descriptions), [`store`] (verified segments under a budget) and
//! [`engine`] (the swarm).
#![cfg_attr(not(test), warn(missing_docs))]

pub mod crypto;
pub mod engine;
pub mod id;
pub mod manifest;
pub mod ranges;
pub mod replay;
pub mod store;
pub mod time;
pub mod wire;

pub use crypto::{block_hash, Authenticator, Identity, NetworkKey, PublicKey};
pub use engine::{Config, Counters, Engine, Event, LineupEntry, LineupFull, PublishError, Transmit};
pub use id::{ChannelId, NodeId};
pub use manifest::{Manifest, ManifestError, SegmentInfo, SignedManifest, UnverifiedManifest, BLOCK_SIZE};
pub use ranges::RangeSet;
pub use replay::ReplayWindow;
pub use store::{BlockOutcome, Segment, Store, StoreCounters, StoreError};
pub use time::Instant;
