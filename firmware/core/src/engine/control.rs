//! Housekeeping on the engine's timer: liveness, hellos and pings, periodic haves, elections,
//! demand and takeovers.

use super::sender::Control;
use super::{election, Engine, Event, DEPOSITION_SEGMENTS, LINGER_SEGMENTS, TAKEOVER_FIRST_SEGMENTS, TICK};
use crate::{ChannelId, Instant, NodeId};

/// Each box refreshes its have-maps to every peer this often (besides announcing completions).
const HAVE_INTERVAL_TICKS: u32 = 20;
/// Ping intervals during which a changed lineup is repeated in hellos.
const LINEUP_RESENDS: u32 = 3;

impl Engine {
    /// The engine's timer fired (or the caller just wants it to catch up). Call at
    /// [`Engine::poll_timeout`]; calling early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if now >= self.next_tick {
            self.tick(now);
            self.next_tick = now + TICK;
        }
        if self.next_repair.is_some_and(|t| now >= t) {
            self.next_repair = None;
            self.repair(now);
        }
    }

    fn tick(&mut self, now: Instant) {
        let ping_interval = self.config.ping_interval;
        let timeout = self.config.peer_timeout;
        // After a run-time lineup change, pings go with a hello carrying the new lineup.
        let resend_lineup =
            self.lineup_changed_at.is_some_and(|t| now.saturating_since(t) <= ping_interval * LINEUP_RESENDS);
        let mut due: Vec<(NodeId, Control)> = Vec::new();
        let mut down: Vec<NodeId> = Vec::new();
        let mut have_due: Vec<NodeId> = Vec::new();
        for peer in self.peers.values_mut() {
            if peer.is_banned(now) {
                continue;
            }
            if peer.banned_until.is_some() {
                // The ban expired: start over with a fresh handshake.
                peer.banned_until = None;
                peer.session = None;
                peer.next_hello = now;
            }
            if peer.alive && peer.last_heard.is_none_or(|t| now.saturating_since(t) > timeout) {
                peer.alive = false;
                down.push(peer.id);
            }
            let handshaking = peer.session.is_none() || !peer.confirmed_us || !peer.alive;
            if handshaking {
                if now >= peer.next_hello {
                    peer.next_hello = now + ping_interval;
                    due.push((peer.id, Control::Hello));
                }
            } else {
                if now >= peer.next_ping {
                    peer.next_ping = now + ping_interval;
                    due.push((peer.id, Control::Ping));
                    if resend_lineup {
                        due.push((peer.id, Control::Hello));
                    }
                }
                if now >= peer.next_have {
                    peer.next_have = now + TICK * HAVE_INTERVAL_TICKS;
                    have_due.push(peer.id);
                }
            }
        }
        for id in down {
            log::info!("{}: peer {id} timed out", self.me);
            self.requests.retain(|_, o| o.peer != id);
            if let Some(p) = self.peers.get_mut(&id) {
                p.outstanding = 0;
            }
            self.membership_changed = true;
            self.push_event(Event::PeerDown(id));
        }
        for (id, message) in due {
            let ping = matches!(message, Control::Ping);
            self.queue_control(id, message);
            if ping {
                self.queue_vouches(now, id);
            }
        }
        if !have_due.is_empty() {
            let haves: Vec<_> = self
                .channels
                .keys()
                .filter_map(|&c| {
                    self.store.have(c).map(|(newest, bitmap)| crate::wire::Have {
                        channel: c,
                        newest,
                        bitmap,
                    })
                })
                .collect();
            for id in have_due {
                for have in &haves {
                    self.queue_control(id, Control::Have(*have));
                }
            }
        }
        self.update_channels(now);
    }

    /// Recomputes every channel's election, demand and ingest decision.
    fn update_channels(&mut self, now: Instant) {
        let recompute = std::mem::take(&mut self.membership_changed);
        let channels: Vec<ChannelId> = self.channels.keys().copied().collect();
        for channel in channels {
            if recompute || self.channels[&channel].deposed.is_some() {
                self.rank_channel(now, channel);
            }
            self.decide_ingest(now, channel);
        }
    }

    pub(super) fn rank_channel(&mut self, now: Instant, channel: ChannelId) {
        let mut ranking: Vec<NodeId> =
            self.peers.values().filter(|p| p.is_active(now) && p.carries(channel)).map(|p| p.id).collect();
        ranking.push(self.me);
        election::rank(channel, &mut ranking);
        let state = self.channels.get_mut(&channel).expect("channel of the lineup");
        if state.deposed.is_some_and(|(_, until)| now >= until) {
            state.deposed = None;
        }
        let deposed = state.deposed.map(|(n, _)| n);
        let mut acting = ranking.iter().copied().filter(|&n| Some(n) != deposed);
        let ingester = acting.next();
        let standby = acting.next();
        state.ranking = ranking;
        if (ingester, standby) != (state.ingester, state.standby) {
            if ingester != state.ingester {
                state.watch_since = now;
                state.last_manifest = None;
            }
            state.ingester = ingester;
            state.standby = standby;
            self.push_event(Event::ElectionChanged { channel, ingester, standby });
        }
    }

    /// A trusted manifest of `channel` signed by another box arrived while this box ingests it:
    /// two boxes fetch after a takeover, and the one that should not steps back at once rather
    /// than fetching beside the other for the whole deposition (an explicit handover):
    /// - a late ingester that sees its standby's manifest was rightly taken over: it deposes
    ///   itself as its peers did;
    /// - a standby that took over and sees the ingester it deposed publish a segment newer than
    ///   any it holds was wrong (the ingester's announcements were lost, not its segments): it
    ///   lifts the deposition and hands back.
    pub(super) fn handover(&mut self, now: Instant, channel: ChannelId, signer: NodeId, seq: u64) {
        let me = self.me;
        let newest_held = self.store.have(channel).map(|(newest, _)| newest);
        let Some(state) = self.channels.get_mut(&channel) else { return };
        if !state.ingesting || signer == me {
            return;
        }
        let late = match state.last_published {
            Some(t) => now.saturating_since(t) > state.target * 3 / 2,
            None => now.saturating_since(state.watch_since) > state.target * TAKEOVER_FIRST_SEGMENTS,
        };
        let deposed_signer = state.deposed.is_some_and(|(d, _)| d == signer);
        if state.standby == Some(signer) && late && !deposed_signer {
            log::warn!("{me}: {signer} took {channel} over while this box was late; stepping down");
            state.deposed = Some((me, now + state.target * DEPOSITION_SEGMENTS));
        } else if deposed_signer && newest_held.is_none_or(|n| seq > n) {
            log::warn!("{me}: {signer}, deposed, still publishes {channel} (segment {seq}); handing back");
            state.deposed = None;
        } else {
            return;
        }
        self.rank_channel(now, channel);
        self.decide_ingest(now, channel);
    }

    fn decide_ingest(&mut self, now: Instant, channel: ChannelId) {
        let demanded = {
            let state = &self.channels[&channel];
            state.always_on
                || state.wanted
                || self.peers.values().any(|p| p.is_active(now) && p.wants.contains(&channel))
        };
        let me = self.me;
        let resume_after = self.store.have(channel).map(|(newest, _)| newest);
        let state = self.channels.get_mut(&channel).expect("channel of the lineup");
        if demanded && !state.demanded {
            // Demand starts: the ingester is only now asked to fetch (it hears of a peer's
            // demand a ping later), so the standby's wait for its first manifest starts now, not
            // at an election that may be minutes old.
            state.watch_since = now;
            state.last_manifest = None;
        }
        state.demanded = demanded;
        if demanded {
            state.demand_lost_at = None;
        } else if state.ingesting && state.demand_lost_at.is_none() {
            // Lingering starts when demand ends while ingesting, not at start-up: a box that
            // never had a viewer must not fetch for three target durations.
            state.demand_lost_at = Some(now);
        }
        let lingering =
            state.demand_lost_at.is_some_and(|t| now.saturating_since(t) < state.target * LINGER_SEGMENTS);
        let should_ingest = state.ingester == Some(me) && (demanded || lingering);
        if should_ingest && !state.ingesting {
            state.ingesting = true;
            log::info!("{me}: ingesting channel {channel}");
            self.push_event(Event::IngestStart { channel, resume_after });
        } else if !should_ingest && state.ingesting {
            state.ingesting = false;
            state.origin_failing = false;
            log::info!("{me}: no longer ingesting channel {channel}");
            self.push_event(Event::IngestStop { channel });
        }
        // The standby watches the ingester: a late segment means take over.
        let state = self.channels.get_mut(&channel).expect("channel of the lineup");
        if demanded && state.standby == Some(me) {
            if let Some(ingester) = state.ingester.filter(|&i| i != me) {
                let (since, limit) = match state.last_manifest {
                    Some(t) => (t.max(state.watch_since), state.target * 3 / 2),
                    None => (state.watch_since, state.target * TAKEOVER_FIRST_SEGMENTS),
                };
                // An ingester that says it is fetching is alive and trying: late segments are
                // its origin's trouble, which a second fetcher would only double. Takeover is
                // for one that is gone (it drops out of the ranking) or silent about the channel.
                let fetching = self
                    .peers
                    .get(&ingester)
                    .is_some_and(|p| p.is_active(now) && p.ingesting.iter().any(|i| i.channel == channel));
                if !fetching && now.saturating_since(since) > limit {
                    log::warn!("{me}: ingester {ingester} of {channel} is late; taking over");
                    state.deposed = Some((ingester, now + state.target * DEPOSITION_SEGMENTS));
                    self.counters.takeovers += 1;
                    self.rank_channel(now, channel);
                    self.decide_ingest(now, channel);
                }
            }
        }
    }
}
