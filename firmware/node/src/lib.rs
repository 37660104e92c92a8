//! # shoal: the box daemon
//!
//! The shell around `shoal-core`. Its modules stand on floors, each naming only floors below
//! it (`tests/layering.rs` checks; docs/ARCHITECTURE.md draws them):
//!
//! 1. vocabulary: [`model`] (windows, segments, source events, the typed [`model::status`];
//!    the `shoal-model` crate), [`keys`], [`logging`], [`admin`] (networks), [`board`] (board
//!    profiles);
//! 2. [`lineup`] (also in `shoal-model`): channels with their sources parsed once, inputs,
//!    origin URLs, relay policy;
//! 3. [`config`]: the TOML file into the lineup and settings;
//! 4. what sources run on: [`origin`] (the HTTP client, HLS playlists and ingest),
//!    [`testcard`], [`broadcast`] (UDP/RTP/HTTP-TS/file inputs, live pass-through), [`guide`],
//!    [`discovery`] (mDNS), [`vod`] (the disk tier), and [`source`], the supervisor that runs
//!    one per ingested channel;
//! 5. [`swarm`], the driver that owns the engine and the UDP socket, and [`http`], the server
//!    for TVs and operators — never each other;
//! 6. the app: `backend` (what the HTTP server sees of the box), [`status_led`],
//!    [`status_cli`] and [`prefill_cli`] (operator commands), [`app`] (one box wired),
//!    [`daemon`] (`shoal run`), [`demo`] (`shoal demo`) and [`cli`].

pub use shoal_model as model;
pub use shoal_model::{admin, lineup};

pub mod app;
mod backend;
pub mod board;
pub mod broadcast;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod discovery;
pub mod guide;
pub mod http;
pub mod keys;
pub mod logging;
pub mod origin;
pub mod prefill_cli;
pub mod source;
pub mod status_cli;
pub mod status_led;
pub mod swarm;
pub mod testcard;
pub mod vod;
