//! Origins: where ingesters fetch channels from outside the swarm.
//!
//! [`client`] speaks HTTP/1.1 over TCP or TLS (to origins, and to peers' HTTP servers),
//! [`playlist`] reads HLS playlists, [`container`] checks that a fetched segment is whole, and
//! [`hls`] is the ingest loop that ties them together for one channel.

pub mod client;
pub mod container;
pub mod hls;
pub mod playlist;

pub use client::{BodyStream, FetchError, Fetcher, Session, TrustError};
