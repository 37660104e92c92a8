//! The driver's own decisions, sans-IO: who watches what, which relayed feeds are carried, and
//! when a live feed's ingester needs to cut segments.
//!
//! [`Demand`] takes inputs with `now` as a parameter (a TV's request, a relay request, the
//! passing of time) and acts on the [`Engine`] (itself sans-IO) directly; what needs the world
//! outside — a source registered or dropped, a feed's segmenter switched — comes back as
//! [`Action`]s for the driver to carry out. It owns no socket, timer or channel, so it is tested
//! as the engine is: by calling it with instants.
//!
//! The rules:
//! - A channel is wanted here while some demand for it (a TV, or a prefill) is at most
//!   [`VIEWER_TIMEOUT`] old; an asset this box can serve whole from the LAN is never wanted.
//! - A TV is counted once per address per channel, at most [`MAX_TVS_PER_CHANNEL`] of them.
//! - A relayed feed joins the lineup on the first request and leaves it after [`RELAY_IDLE`]
//!   without one; at most `relay.max_joins` are carried at once.
//! - The ingester of a live feed cuts segments only while someone can use them: the channel is
//!   always on, a peer carries it, or a TV here plays it from segments. Every poll says so for
//!   every ingested feed (level, not edge: a feed opened later starts out segmenting).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use shoal_core::{ChannelId, Engine, Instant, LineupEntry};

use crate::lineup::Channel;
use crate::model::VIEWER_TIMEOUT;

/// A relayed feed nobody has watched for this long leaves the lineup (and its group is left).
pub(crate) const RELAY_IDLE: Duration = Duration::from_secs(30);

/// Most TVs remembered per channel (beyond it, expired ones are dropped first, then new ones are
/// not counted; the channel stays wanted either way).
pub(crate) const MAX_TVS_PER_CHANNEL: usize = 4096;

/// Who asked for a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Viewer {
    /// A TV at this address.
    Tv(IpAddr),
    /// The box itself (a prefill demanding an asset): wanted, but not a viewer to count.
    Box,
}

/// What the driver must do outside the engine.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A relayed feed left the lineup: stop and forget its source.
    Unregister(ChannelId),
    /// A live feed this box ingests should (or need not) be cut into segments.
    Segmenting { channel: ChannelId, needed: bool },
}

/// Demand for the channels of one box.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    /// When each wanted channel was last asked for.
    wanted: BTreeMap<ChannelId, Instant>,
    /// When each TV last fetched something of each channel.
    tvs: BTreeMap<ChannelId, BTreeMap<IpAddr, Instant>>,
    /// When a TV last played each channel from segments (not from a live feed).
    segment_viewers: BTreeMap<ChannelId, Instant>,
    /// Relayed feeds carried, and when a TV last asked for each.
    relays: BTreeMap<ChannelId, Instant>,
}

impl Demand {
    /// `viewer` fetched something of `channel` (from segments, or from the live feed).
    /// `served_locally`: this box serves the channel whole without the swarm (a complete asset).
    pub(crate) fn viewer(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        channel: ChannelId,
        viewer: Viewer,
        segments: bool,
        served_locally: bool,
    ) {
        if !served_locally && self.wanted.insert(channel, now).is_none() {
            engine.want_channel(now, channel, true);
        }
        if let Viewer::Tv(address) = viewer {
            let tvs = self.tvs.entry(channel).or_default();
            if tvs.len() >= MAX_TVS_PER_CHANNEL && !tvs.contains_key(&address) {
                tvs.retain(|_, &mut seen| now.saturating_since(seen) <= VIEWER_TIMEOUT);
            }
            if tvs.len() < MAX_TVS_PER_CHANNEL || tvs.contains_key(&address) {
                tvs.insert(address, now);
            }
        }
        if segments {
            self.segment_viewers.insert(channel, now);
        }
        if let Some(seen) = self.relays.get_mut(&channel) {
            *seen = now;
        }
    }

    /// A TV asked for a relayed feed: carried from now on (if not yet) while it is watched.
    /// `Ok(true)` when it newly joined the lineup (the caller then registers its source).
    pub(crate) fn add_relay(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        channel: &Channel,
        max: usize,
    ) -> Result<bool, String> {
        let id = channel.channel_id();
        if self.relays.contains_key(&id) || engine.lineup().any(|c| c == id) {
            self.relays.entry(id).and_modify(|seen| *seen = now);
            return Ok(false);
        }
        if self.relays.len() >= max {
            return Err(format!("this box already relays {max} feeds (relay.max_joins)"));
        }
        engine.add_channel(now, LineupEntry { channel: id, always_on: false }).map_err(|e| e.to_string())?;
        self.relays.insert(id, now);
        Ok(true)
    }

    /// Lets time pass: expired demand is withdrawn from the engine, idle relayed feeds leave the
    /// lineup, and live feeds' segmenters are told whether they are needed. Call after every
    /// input, before the engine's own `handle_timeout`.
    pub(crate) fn poll(&mut self, engine: &mut Engine, now: Instant) -> Vec<Action> {
        let expired = |seen: &Instant| now.saturating_since(*seen) > VIEWER_TIMEOUT;
        let gone: Vec<ChannelId> = self.wanted.iter().filter(|(_, t)| expired(t)).map(|(&c, _)| c).collect();
        for channel in gone {
            self.wanted.remove(&channel);
            engine.want_channel(now, channel, false);
        }
        self.segment_viewers.retain(|_, t| !expired(t));
        for tvs in self.tvs.values_mut() {
            tvs.retain(|_, t| !expired(t));
        }
        self.tvs.retain(|_, tvs| !tvs.is_empty());
        let mut actions = Vec::new();
        let idle: Vec<ChannelId> = self
            .relays
            .iter()
            .filter(|(_, &t)| now.saturating_since(t) > RELAY_IDLE)
            .map(|(&c, _)| c)
            .collect();
        for channel in idle {
            self.relays.remove(&channel);
            engine.remove_channel(now, channel);
            actions.push(Action::Unregister(channel));
        }
        // Said at every poll, not only on a change: a feed the source opens later starts out
        // segmenting and is corrected at the next poll.
        for channel in engine.lineup().filter(|&c| engine.is_ingesting(c)) {
            let needed = engine.is_always_on(channel)
                || engine.peers_carrying(channel) > 0
                || self.segment_viewers.contains_key(&channel);
            actions.push(Action::Segmenting { channel, needed });
        }
        actions
    }

    /// Whether some demand for `channel` is at most [`VIEWER_TIMEOUT`] old.
    pub(crate) fn is_wanted(&self, channel: ChannelId) -> bool {
        self.wanted.contains_key(&channel)
    }

    /// TVs that fetched something of `channel` within [`VIEWER_TIMEOUT`] (as of the last poll).
    pub(crate) fn tvs(&self, channel: ChannelId) -> usize {
        self.tvs.get(&channel).map_or(0, BTreeMap::len)
    }
}

#[cfg(test)]
mod tests {
    use shoal_core::{Authenticator, Config, Event, Identity};

    use super::*;
    use crate::lineup::UdpInput;

    fn engine(channels: &[ChannelId]) -> Engine {
        let mut config = Config::new(Identity::from_seed([7; 32]), Authenticator::insecure());
        config.lineup = channels.iter().map(|&channel| LineupEntry { channel, always_on: false }).collect();
        Engine::new(config, Instant::ZERO).expect("a valid config")
    }

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    /// Drains the engine's events, as the driver would after an input.
    fn ingest_events(engine: &mut Engine, now: Instant) -> Vec<&'static str> {
        engine.handle_timeout(now);
        let mut events = Vec::new();
        while let Some(event) = engine.poll_event() {
            match event {
                Event::IngestStart { .. } => events.push("start"),
                Event::IngestStop { .. } => events.push("stop"),
                _ => {}
            }
        }
        events
    }

    fn tv(last: u8) -> Viewer {
        Viewer::Tv(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_channel_is_wanted_while_watched_and_released_after_the_viewer_timeout() {
        let news = ChannelId([1; 8]);
        let mut engine = engine(&[news]);
        let mut demand = Demand::default();
        demand.viewer(&mut engine, at(0), news, tv(1), true, false);
        demand.poll(&mut engine, at(0));
        // Alone in the swarm, this box is elected and ingests at once.
        assert_eq!(ingest_events(&mut engine, at(0)), ["start"]);
        assert!(demand.is_wanted(news));
        // Two TVs, one counted twice, still two.
        demand.viewer(&mut engine, at(1000), news, tv(2), true, false);
        demand.viewer(&mut engine, at(2000), news, tv(2), true, false);
        demand.poll(&mut engine, at(2000));
        assert_eq!(demand.tvs(news), 2);
        // The first TV expires first; the second keeps the channel wanted.
        demand.poll(&mut engine, at(6500));
        assert_eq!(demand.tvs(news), 1);
        assert!(demand.is_wanted(news));
        // Then nobody: released, and the ingest stops once the engine's linger is over.
        demand.poll(&mut engine, at(8500));
        assert!(!demand.is_wanted(news));
        assert_eq!(demand.tvs(news), 0);
        assert!(ingest_events(&mut engine, at(8500)).is_empty(), "the engine lingers a little");
        assert_eq!(ingest_events(&mut engine, at(30_000)), ["stop"]);
    }

    #[test]
    fn a_prefill_wants_a_channel_without_counting_as_a_tv_and_a_local_asset_wants_nothing() {
        let film = ChannelId([2; 8]);
        let mut engine = engine(&[film]);
        let mut demand = Demand::default();
        demand.viewer(&mut engine, at(0), film, Viewer::Box, true, false);
        demand.poll(&mut engine, at(0));
        assert!(demand.is_wanted(film));
        assert_eq!(demand.tvs(film), 0);
        let mut demand = Demand::default();
        let mut engine = self::engine(&[film]);
        demand.viewer(&mut engine, at(0), film, tv(1), true, true);
        demand.poll(&mut engine, at(0));
        assert!(!demand.is_wanted(film), "a complete asset on this box needs nothing from the swarm");
        assert_eq!(demand.tvs(film), 1);
        assert!(ingest_events(&mut engine, at(0)).is_empty());
    }

    #[test]
    fn a_relayed_feed_is_carried_while_watched_and_leaves_when_idle() {
        let mut engine = engine(&[]);
        let mut demand = Demand::default();
        let input = UdpInput::parse("udp://@239.77.0.1:5004").expect("a feed");
        let feed = crate::lineup::relay::relay_channel(&input, Duration::from_secs(2));
        let id = feed.channel_id();
        assert_eq!(demand.add_relay(&mut engine, at(0), &feed, 1), Ok(true));
        assert_eq!(
            demand.add_relay(&mut engine, at(10), &feed, 1),
            Ok(false),
            "asked again: already carried"
        );
        assert!(engine.lineup().any(|c| c == id));
        assert!(demand.relays.contains_key(&id));
        let other = crate::lineup::relay::relay_channel(
            &UdpInput::parse("udp://@239.77.0.2:5004").expect("a feed"),
            Duration::from_secs(2),
        );
        assert!(demand.add_relay(&mut engine, at(20), &other, 1).is_err(), "relay.max_joins = 1");
        // Watched at 20 s: still carried 30 s after the request, gone 30 s after the last view.
        demand.viewer(&mut engine, at(20_000), id, tv(1), true, false);
        assert!(!demand.poll(&mut engine, at(30_500)).contains(&Action::Unregister(id)));
        assert!(demand.poll(&mut engine, at(50_500)).contains(&Action::Unregister(id)));
        assert!(!engine.lineup().any(|c| c == id));
        assert!(!demand.relays.contains_key(&id));
    }

    #[test]
    fn a_live_feed_is_segmented_only_while_someone_uses_the_segments() {
        let feed = ChannelId([3; 8]);
        let mut engine = engine(&[feed]);
        let mut demand = Demand::default();
        // A TV watching the live feed itself (the ingester passes it straight through).
        demand.viewer(&mut engine, at(0), feed, tv(1), false, false);
        demand.poll(&mut engine, at(0));
        ingest_events(&mut engine, at(0));
        assert_eq!(demand.poll(&mut engine, at(10)), [Action::Segmenting { channel: feed, needed: false }]);
        // A TV playing HLS: segments are needed.
        demand.viewer(&mut engine, at(1000), feed, tv(2), true, false);
        assert_eq!(demand.poll(&mut engine, at(1000)), [Action::Segmenting { channel: feed, needed: true }]);
        assert_eq!(demand.poll(&mut engine, at(1100)), [Action::Segmenting { channel: feed, needed: true }]);
        // The HLS TV leaves; the live one stays.
        demand.viewer(&mut engine, at(6000), feed, tv(1), false, false);
        assert_eq!(demand.poll(&mut engine, at(7100)), [Action::Segmenting { channel: feed, needed: false }]);
    }
}
