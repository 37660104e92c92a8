//! # shoal: the box daemon
//!
//! The shell around `shoal-core`: a smol runtime, the UDP socket that drives the engine
//! ([`swarm`]), mDNS discovery ([`discovery`]), keys and identity ([`keys`]), the config file
//! ([`config`]) and the board profiles behind its defaults ([`board`]), sources ([`source`]),
//! the HTTP server ([`http`]) and the `shoal` command line ([`cli`]). [`daemon`] wires them
//! together for `shoal run`.

pub mod admin;
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
