//! Datagrams in: authentication, sessions, and what each message does.

use std::net::SocketAddr;

use rand_core::RngCore;

use super::assembly::FragmentError;
use super::peer::Session;
use super::sender::Control;
use super::ELECTION_SETTLING_SEGMENTS;
use super::{
    block_task, manifest_task, AddrRecord, BanReason, Dissemination, Engine, Event, ManifestWant,
    BAD_MAC_TO_BAN, FLOOD_DROPS_TO_BAN, FLOOD_WINDOW, MAX_MANIFEST_WANTS, MAX_TRACKED_ADDRS, REPAIR_PRIORITY,
};

/// A peer that answered `Busy` is not asked again for this long.
const BUSY_BACKOFF: core::time::Duration = core::time::Duration::from_millis(20);
use crate::crypto::PublicKey;
use crate::manifest::UnverifiedManifest;
use crate::replay::ReplayWindow;
use crate::store::{BlockOutcome, StoreError};
use crate::wire::{
    self, Data, DecodeError, Header, Hello, Item, ManifestPart, Message, Reject, RejectReason, Request,
};
use crate::{ChannelId, Instant, NodeId};

impl Engine {
    /// A datagram arrived from `from`. Anything that is not a valid, fresh, authenticated
    /// message from a confirmed peer is dropped and counted; nothing here panics on input.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += bytes.len() as u64;
        if self.addrs.get(&from).is_some_and(|r| r.banned_until.is_some_and(|t| now < t)) {
            self.counters.banned += 1;
            return;
        }
        let datagram = match wire::decode(&self.config.auth, bytes) {
            Ok(d) => d,
            Err(e) => {
                match e {
                    DecodeError::TooShort => self.counters.too_short += 1,
                    DecodeError::UnknownVersion(_) => self.counters.unknown_version += 1,
                    DecodeError::BadMac => {
                        self.counters.bad_mac += 1;
                        self.note_bad_mac(now, from);
                    }
                    DecodeError::Malformed => self.counters.malformed += 1,
                }
                return;
            }
        };
        let Header { sender, receiver, session, packet } = datagram.header;
        if sender == self.me {
            return;
        }
        if receiver != self.me {
            self.counters.misdirected += 1;
            return;
        }
        if !self.peers.contains_key(&sender) {
            let Message::Hello(_) = &datagram.message else {
                self.counters.unknown_peer += 1;
                return;
            };
            if self.peers.len() >= self.config.max_peers {
                self.counters.peer_table_full += 1;
                return;
            }
            let peer = self.new_peer(sender, from, now);
            self.peers.insert(sender, peer);
        }
        let Some(peer) = self.peers.get_mut(&sender) else {
            return;
        };
        if peer.is_banned(now) {
            self.counters.banned += 1;
            return;
        }
        if !peer.inbound.take(1, now) {
            self.counters.rate_limited += 1;
            self.note_flood(now, sender);
            return;
        }
        let confirmed = peer.session.as_ref().is_some_and(|s| s.id == session);
        if !confirmed {
            match datagram.message {
                Message::Hello(hello) => self.on_unconfirmed_hello(now, from, datagram.header, hello),
                _ => self.counters.unconfirmed += 1,
            }
            return;
        }
        // From another address than the peer's: only a hello that answers the probe sent
        // there proves the peer moved. Anything else is dropped before the replay window sees
        // it, so a captured datagram replayed from elsewhere changes nothing here.
        let moved = from != peer.addr;
        if moved {
            let answers_probe = match (&datagram.message, peer.probe) {
                (Message::Hello(hello), Some((addr, challenge))) => {
                    addr == from && hello.echo == Some(challenge)
                }
                _ => false,
            };
            if !answers_probe {
                self.counters.unverified_address += 1;
                self.probe_address(now, sender, from);
                return;
            }
        }
        let fresh = peer.session.as_mut().is_some_and(|s| s.window.accept(packet));
        if !fresh {
            self.counters.replay += 1;
            return;
        }
        peer.last_heard = Some(now);
        peer.bytes_in += bytes.len() as u64;
        if moved {
            log::info!("{}: peer {sender} moved from {} to {from}", self.me, peer.addr);
            peer.addr = from;
            peer.probe = None;
        }
        if !peer.alive {
            peer.alive = true;
            self.membership_changed = true;
            self.next_tick = now;
            self.push_event(Event::PeerUp(sender));
        }
        match datagram.message {
            Message::Hello(hello) => self.on_confirmed_hello(now, sender, hello),
            Message::Ping(ping) => {
                let peer = self.peers.get_mut(&sender).expect("looked up above");
                if peer.wants.as_slice() != ping.wants.as_slice() {
                    self.membership_changed = true;
                }
                peer.wants = ping.wants.to_vec();
                peer.ingesting = ping.ingesting.to_vec();
                for ingesting in ping.ingesting {
                    if let Some(newest) = ingesting.newest {
                        self.learn_segment(now, ingesting.channel, newest, sender);
                    }
                }
                self.queue_control(sender, Control::Pong { echo: ping.time });
            }
            Message::Pong { echo } => {
                let sample = now.saturating_since(Instant::from_micros(echo));
                if let Some(peer) = self.peers.get_mut(&sender) {
                    peer.record_rtt(sample);
                }
            }
            Message::Goodbye => {
                if let Some(peer) = self.peers.remove(&sender) {
                    self.forget(now, &peer);
                }
            }
            Message::Have(have) => self.on_have(now, sender, have),
            Message::ManifestPart(part) => self.on_manifest_part(now, sender, part),
            Message::Request(request) => self.on_request(now, sender, request),
            Message::Data(data) => self.on_data(now, sender, data),
            Message::Reject(reject) => self.on_reject(now, sender, reject),
            Message::Vouch(vouch) => self.on_vouch(now, sender, vouch),
        }
    }

    /// Sends the peer a hello at `from` with a fresh challenge (at most one per ping interval):
    /// if the peer really is there now, its answer echoes it and moves its address.
    fn probe_address(&mut self, now: Instant, id: NodeId, from: SocketAddr) {
        let challenge = self.rng.next_u64();
        let interval = self.config.ping_interval;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if now < peer.next_probe {
            return;
        }
        peer.next_probe = now + interval;
        peer.probe = Some((from, challenge));
        self.queue_control(id, Control::Probe);
    }

    fn note_bad_mac(&mut self, now: Instant, from: SocketAddr) {
        // A known peer's address is never banned on bad MACs: the source address of an
        // unauthenticated datagram can be forged to get an honest box ignored.
        if self.peers.values().any(|p| p.addr == from && p.alive) {
            return;
        }
        if !self.addrs.contains_key(&from) && self.addrs.len() >= MAX_TRACKED_ADDRS {
            let oldest = self.addrs.iter().min_by_key(|(_, r)| r.since).map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.addrs.remove(&oldest);
            }
        }
        let record = self.addrs.entry(from).or_insert(AddrRecord { bad: 0, since: now, banned_until: None });
        if now.saturating_since(record.since) > FLOOD_WINDOW {
            record.bad = 0;
            record.since = now;
        }
        record.bad += 1;
        if record.bad >= BAD_MAC_TO_BAN && record.banned_until.is_none_or(|t| t <= now) {
            log::warn!("ignoring {from} for sending datagrams without the network key");
            record.banned_until = Some(now + self.config.ban_duration);
            self.counters.bans += 1;
        }
    }

    fn note_flood(&mut self, now: Instant, id: NodeId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if now.saturating_since(peer.flood_since) > FLOOD_WINDOW {
            peer.flood_drops = 0;
            peer.flood_since = now;
        }
        peer.flood_drops += 1;
        if peer.flood_drops >= FLOOD_DROPS_TO_BAN {
            self.ban(now, id, BanReason::Flood);
        }
    }

    /// A hello in a session we have not confirmed: the handshake.
    fn on_unconfirmed_hello(&mut self, now: Instant, from: SocketAddr, header: Header, hello: Hello) {
        let id = header.sender;
        if NodeId::from_public_key(&hello.public_key) != id {
            self.counters.bad_identity += 1;
            return;
        }
        let Some(key) = PublicKey::from_bytes(&hello.public_key) else {
            self.counters.bad_identity += 1;
            return;
        };
        let new_challenge = self.rng.next_u64();
        let my_session = self.session;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.their_challenge = Some(hello.challenge);
        peer.confirmed_us = hello.confirmed == Some(my_session);
        if hello.echo != Some(peer.our_challenge) {
            // Not (yet) proof that this session is live: answer so the peer can prove it.
            self.reply_hello(now, id);
            return;
        }
        let restarted = peer.session.is_some();
        let window = ReplayWindow::after(header.packet);
        peer.session = Some(Session { id: header.session, window });
        peer.our_challenge = new_challenge;
        peer.key = Some(key);
        peer.lineup = hello.lineup.to_vec();
        peer.addr = from;
        peer.last_heard = Some(now);
        if restarted {
            peer.reset_announcements();
            self.sender.forget_peer(id);
            self.requests.retain(|_, o| o.peer != id);
        }
        let peer = self.peers.get_mut(&id).expect("present");
        let was_alive = peer.alive;
        peer.alive = true;
        peer.next_have = now;
        peer.next_ping = now;
        self.membership_changed = true;
        self.next_tick = now;
        if !was_alive {
            self.push_event(Event::PeerUp(id));
        }
        log::debug!("{}: confirmed session of peer {id}", self.me);
        // Tell the peer we confirmed it (and give it our challenge to echo if it has not).
        self.queue_control(id, Control::Hello);
    }

    fn on_confirmed_hello(&mut self, now: Instant, id: NodeId, hello: Hello) {
        let my_session = self.session;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        // A challenge not seen before asks for an echo: the peer's new challenge after a
        // confirmation, or a probe of this box's address.
        let new_challenge = peer.their_challenge != Some(hello.challenge);
        peer.their_challenge = Some(hello.challenge);
        peer.confirmed_us = hello.confirmed == Some(my_session);
        if peer.lineup.as_slice() != hello.lineup.as_slice() {
            peer.lineup = hello.lineup.to_vec();
            self.membership_changed = true;
        }
        if !peer.confirmed_us || new_challenge {
            self.reply_hello(now, id);
        }
    }

    /// Answers a hello, at most once per ping interval per peer so two boxes cannot ping-pong.
    fn reply_hello(&mut self, now: Instant, id: NodeId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if now >= peer.next_hello || peer.session.is_none() {
            peer.next_hello = now + self.config.ping_interval / 5;
            self.queue_control(id, Control::Hello);
        }
    }

    fn on_have(&mut self, now: Instant, from: NodeId, have: wire::Have) {
        if !self.channels.contains_key(&have.channel) {
            self.counters.not_in_lineup += 1;
            return;
        }
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.have.insert(have.channel, (have.newest, have.bitmap));
        }
        self.learn_segment(now, have.channel, have.newest, from);
        // Older segments in the announced window that this box lacks are wanted too.
        let floor = self.interest_floor(have.channel);
        for age in 1..64u64 {
            let Some(seq) = have.newest.checked_sub(age) else {
                break;
            };
            if seq < floor {
                break;
            }
            if have.bitmap & (1 << age) != 0 {
                self.want_manifest(now, have.channel, seq, from, now + self.config.stall_timeout);
            }
        }
    }

    /// `seq` of `channel` exists (a peer holds or publishes it): remember, and seek its manifest
    /// unless the push delivers it first (it usually is on its way down the tree).
    fn learn_segment(&mut self, now: Instant, channel: ChannelId, seq: u64, hint: NodeId) {
        let at = now + self.config.stall_timeout;
        self.learn_segment_at(now, channel, seq, hint, at);
    }

    /// Lowest sequence number still worth fetching for `channel`.
    pub(super) fn interest_floor(&self, channel: ChannelId) -> u64 {
        let newest = self.channels.get(&channel).and_then(|c| c.newest_known).unwrap_or(0);
        newest.saturating_sub(self.config.window_segments - 1)
    }

    pub(super) fn want_manifest(
        &mut self,
        now: Instant,
        channel: ChannelId,
        seq: u64,
        hint: NodeId,
        at: Instant,
    ) {
        if seq < self.interest_floor(channel) || self.store.segment(channel, seq).is_some() {
            return;
        }
        if self.manifest_wants.contains_key(&(channel, seq)) {
            return;
        }
        if self.manifest_wants.len() >= MAX_MANIFEST_WANTS {
            // Full: make room by dropping the oldest sequence number, which matters least.
            let oldest = self.manifest_wants.keys().min_by_key(|(_, s)| *s).copied();
            match oldest {
                Some(o) if o.1 < seq => {
                    self.manifest_wants.remove(&o);
                }
                _ => return,
            }
        }
        self.manifest_wants.insert((channel, seq), ManifestWant { hint, next_try: at, attempts: 0 });
        self.schedule_repair(now);
    }

    fn on_manifest_part(&mut self, now: Instant, from: NodeId, part: ManifestPart<'_>) {
        let channel = part.channel;
        if !self.channels.contains_key(&channel) {
            self.counters.not_in_lineup += 1;
            return;
        }
        if let Some(existing) = self.store.segment(channel, part.seq) {
            // Already admitted from this signer (or complete): nothing to learn.
            if existing.manifest().manifest().signer == part.signer || existing.is_complete() {
                self.counters.duplicate_fragments += 1;
                return;
            }
        }
        let key = (channel, part.seq, part.signer);
        let added = self.manifests.add(key, part.total as usize, part.offset as usize, part.bytes, from, now);
        let encoded = match added {
            Ok((done, evicted)) => {
                if evicted {
                    self.counters.reassembly_evicted += 1;
                }
                match done {
                    Some(encoded) => encoded,
                    None => return,
                }
            }
            Err(FragmentError::OutOfBounds) => {
                self.counters.bad_fragments += 1;
                self.strike(now, from, BanReason::Malformed);
                return;
            }
            Err(FragmentError::TooFragmented) => {
                self.counters.bad_fragments += 1;
                return;
            }
        };
        self.accept_manifest(now, from, part.seq, channel, part.signer, &encoded);
    }

    fn accept_manifest(
        &mut self,
        now: Instant,
        from: NodeId,
        seq: u64,
        channel: ChannelId,
        signer: NodeId,
        encoded: &[u8],
    ) {
        let parsed = match UnverifiedManifest::parse(encoded) {
            Ok(p) => p,
            Err(_) => {
                self.counters.forged_manifests += 1;
                self.ban(now, from, BanReason::ForgedManifest);
                return;
            }
        };
        let m = parsed.manifest();
        if m.channel != channel || m.seq != seq || m.signer != signer {
            self.counters.forged_manifests += 1;
            self.ban(now, from, BanReason::ForgedManifest);
            return;
        }
        // A former signer the channel's ingester vouched for (or whose manifests this box took
        // while its election named it) is trusted for the segments vouched for, and only those.
        let vouched = self.former_signer_key(channel, signer, seq);
        let Some(key) = self.peers.get(&signer).and_then(|p| p.key.clone()).or_else(|| vouched.clone())
        else {
            // A signer we have not met (yet): cannot check, so cannot believe.
            self.counters.manifests_refused += 1;
            return;
        };
        let manifest = match parsed.verify(&key) {
            Ok(m) => m,
            Err(_) => {
                // Honest boxes verify before forwarding, so the sender forged or corrupted it.
                self.counters.forged_manifests += 1;
                self.ban(now, from, BanReason::ForgedManifest);
                return;
            }
        };
        let ranked_first = |engine: &Engine| {
            let state = engine.channels.get(&channel).expect("lineup checked by caller");
            state.ranking.iter().take(2).any(|&n| n == signer)
        };
        let mut trusted = ranked_first(self);
        let carries = self.peers.get(&signer).is_some_and(|p| p.is_active(now) && p.carries(channel));
        if !trusted && carries {
            // The ranking is recomputed on the timer: it may predate this signer's session or
            // lineup. Judge by a fresh one, or an honest ingester that just came up is struck.
            self.rank_channel(now, channel);
            trusted = ranked_first(self);
        }
        let trusted_by_vouch = !trusted && vouched.is_some();
        if !trusted && !trusted_by_vouch {
            self.counters.manifests_not_from_ingester += 1;
            log::info!("{}: refusing manifest {channel}/{seq} signed by non-ingester {signer}", self.me);
            // Only a peer known to carry the channel, and ranked out by a fresh election that
            // has settled, is misbehaving. One whose lineup (a relayed feed added at run time)
            // has not reached this box yet is not; nor is one that ingested rightly until the
            // election just changed (a box that was alone publishes a segment or two more
            // before it learns of the others).
            let state = self.channels.get(&channel).expect("lineup checked by caller");
            let settled =
                now.saturating_since(state.watch_since) >= state.target * ELECTION_SETTLING_SEGMENTS;
            if carries && settled {
                self.strike(now, signer, BanReason::NotIngester);
            }
            return;
        }
        // Before the store: a successor's manifest for a segment this box published too is
        // refused there, and is exactly when the two must settle who goes on.
        // (A vouched-for signer's segments are history, not a rival ingester's.)
        if !trusted_by_vouch {
            self.handover(now, channel, signer, seq);
        }
        let duration = manifest.manifest().duration();
        if let Err(e) = self.store.admit(manifest.clone(), now) {
            log::debug!("{}: store refused manifest {channel}/{seq}: {e}", self.me);
            self.counters.manifests_refused += 1;
            return;
        }
        self.counters.manifests_accepted += 1;
        if trusted_by_vouch {
            self.counters.manifests_vouched += 1;
        }
        self.record_signer(channel, signer, &key, seq);
        self.manifest_wants.remove(&(channel, seq));
        self.blocks.remove_segment(channel, seq);
        let state = self.channels.get_mut(&channel).expect("lineup checked by caller");
        state.newest_known = Some(state.newest_known.map_or(seq, |n| n.max(seq)));
        state.target = state.target.max(duration);
        if state.ranking.first() == Some(&signer) || state.ingester == Some(signer) {
            state.last_manifest = Some(now);
        }

        let members: Vec<NodeId> = state.ranking.iter().copied().filter(|&n| n != signer).collect();
        let tree = super::election::position(&members, self.config.stripes, signer, self.me);
        // Forward the manifest down every tree this box is interior in, ahead of the blocks.
        if let Some(tree) = &tree {
            let mut children: Vec<NodeId> = tree.children.iter().flatten().copied().collect();
            children.sort();
            children.dedup();
            for child in children {
                if self.peers.get(&child).is_some_and(|p| p.is_active(now) && !p.holds(channel, seq)) {
                    self.queue_task(now, manifest_task(child, &manifest, false));
                }
            }
        }
        self.dissemination.insert((channel, seq), Dissemination { tree, last_activity: now });
        self.schedule_repair(now);
    }

    fn on_data(&mut self, now: Instant, from: NodeId, data: Data<'_>) {
        let channel = data.channel;
        if !self.channels.contains_key(&channel) {
            self.counters.not_in_lineup += 1;
            return;
        }
        let Some(segment) = self.store.segment(channel, data.seq) else {
            self.counters.data_without_manifest += 1;
            // The manifest may only be reordered behind its blocks: give it a moment.
            let at = now + self.config.repair_interval;
            self.learn_segment_at(now, channel, data.seq, from, at);
            return;
        };
        if segment.manifest().tag() != data.tag {
            self.counters.data_without_manifest += 1;
            return;
        }
        let index = usize::from(data.block);
        if segment.has_block(index) {
            self.counters.duplicate_fragments += 1;
            return;
        }
        let block_len = segment.manifest().manifest().block_len(index);
        if block_len == 0 {
            self.counters.bad_fragments += 1;
            self.strike(now, from, BanReason::Malformed);
            return;
        }
        if let Some(d) = self.dissemination.get_mut(&(channel, data.seq)) {
            d.last_activity = now;
        }
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.last_data = Some(now);
        }
        let key = (channel, data.seq, data.block);
        let added =
            self.blocks.add(key, data.tag, block_len, usize::from(data.offset), data.bytes, from, now);
        let partial = match added {
            Ok((done, evicted)) => {
                if evicted {
                    self.counters.reassembly_evicted += 1;
                }
                match done {
                    Some(p) => p,
                    None => {
                        self.schedule_repair(now);
                        return;
                    }
                }
            }
            Err(FragmentError::OutOfBounds) => {
                self.counters.bad_fragments += 1;
                self.strike(now, from, BanReason::Malformed);
                return;
            }
            Err(FragmentError::TooFragmented) => {
                self.counters.bad_fragments += 1;
                return;
            }
        };
        match self.store.put_block(channel, data.seq, data.tag, index, &partial.bytes) {
            Ok(BlockOutcome::Duplicate) => self.counters.duplicate_fragments += 1,
            Ok(outcome) => {
                self.on_block_verified(now, channel, data.seq, data.block, outcome == BlockOutcome::Completed)
            }
            Err(StoreError::BadBlock) => {
                self.counters.bad_blocks += 1;
                if partial.mixed {
                    // Several senders: no single culprit. Fetch it again from one source.
                    log::info!(
                        "{}: block {channel}/{}/{index} failed verification (mixed sources)",
                        self.me,
                        data.seq
                    );
                } else {
                    self.ban(now, partial.from, BanReason::BadBlock);
                }
            }
            Err(_) => self.counters.bad_fragments += 1,
        }
    }

    fn learn_segment_at(&mut self, now: Instant, channel: ChannelId, seq: u64, hint: NodeId, at: Instant) {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.newest_known = Some(state.newest_known.map_or(seq, |n| n.max(seq)));
        }
        self.want_manifest(now, channel, seq, hint, at);
    }

    /// A block is verified and stored: forward it down its tree (cut-through), and announce the
    /// segment once complete.
    fn on_block_verified(&mut self, now: Instant, channel: ChannelId, seq: u64, block: u16, completed: bool) {
        self.counters.blocks_received += 1;
        if let Some(o) = self.requests.remove(&(channel, seq, block)) {
            if let Some(peer) = self.peers.get_mut(&o.peer) {
                peer.outstanding = peer.outstanding.saturating_sub(1);
            }
        }
        let stripe = usize::from(block) % self.config.stripes;
        let mut children: Vec<NodeId> = self
            .dissemination
            .get(&(channel, seq))
            .and_then(|d| d.tree.as_ref())
            .and_then(|t| t.children.get(stripe))
            .cloned()
            .unwrap_or_default();
        // The farther child first: its block arrives later anyway, so starting it first
        // evens out when both children can forward (up to a link latency saved per level).
        children.sort_by_key(|c| core::cmp::Reverse(self.peers.get(c).and_then(|p| p.srtt)));
        if let Some(segment) = self.store.segment(channel, seq) {
            let manifest = segment.manifest().clone();
            let deadline = segment.admitted_at();
            for child in children {
                if self.peers.get(&child).is_some_and(|p| p.is_active(now) && !p.holds(channel, seq)) {
                    self.queue_task(
                        deadline,
                        block_task(child, &manifest, block, crate::RangeSet::new(), false),
                    );
                }
            }
        }
        if completed {
            self.counters.segments_received += 1;
            self.dissemination.remove(&(channel, seq));
            self.push_event(Event::SegmentComplete { channel, seq });
            self.announce_have(now, channel);
        }
    }

    fn on_request(&mut self, now: Instant, from: NodeId, request: Request) {
        let channel = request.channel;
        if let Some(peer) = self.peers.get_mut(&from) {
            if !peer.request_rate.take(1, now) {
                self.counters.rate_limited += 1;
                self.note_flood(now, from);
                return;
            }
        }
        let block = match &request.item {
            Item::Manifest => None,
            Item::Block { index, .. } => Some(*index),
        };
        let seq = request.seq;
        let reject = |reason| Reject { channel, seq, block, reason };
        let Some(segment) = self.store.segment(channel, request.seq) else {
            self.counters.requests_refused += 1;
            self.queue_control(from, Control::Reject(reject(RejectReason::Missing)));
            return;
        };
        let manifest = segment.manifest().clone();
        let deadline = segment.admitted_at() - REPAIR_PRIORITY;
        let (task, cost) = match request.item {
            Item::Manifest => (manifest_task(from, &manifest, true), manifest.encoded().len()),
            Item::Block { tag, index, ranges } => {
                let len = manifest.manifest().block_len(usize::from(index));
                if tag != manifest.tag() || !segment.has_block(usize::from(index)) {
                    self.counters.requests_refused += 1;
                    self.queue_control(from, Control::Reject(reject(RejectReason::Missing)));
                    return;
                }
                if !ranges.is_valid_within(len as u16) {
                    self.counters.bad_fragments += 1;
                    self.strike(now, from, BanReason::Malformed);
                    return;
                }
                let cost = if ranges.is_empty() { len } else { ranges.len_bytes() };
                (block_task(from, &manifest, index, ranges, true), cost)
            }
        };
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if !peer.serve_budget.take(cost as u64, now) {
            self.counters.requests_refused += 1;
            self.queue_control(from, Control::Reject(reject(RejectReason::Busy)));
            return;
        }
        if self.queue_task(deadline, task) {
            self.counters.requests_served += 1;
        } else {
            // An honest requester keeps at most 16 requests outstanding per peer; a full queue
            // of its requests means it is not honest.
            self.counters.requests_refused += 1;
            self.note_flood(now, from);
            self.queue_control(from, Control::Reject(reject(RejectReason::Busy)));
        }
    }

    fn on_reject(&mut self, now: Instant, from: NodeId, reject: Reject) {
        if reject.reason == RejectReason::Busy {
            if let Some(peer) = self.peers.get_mut(&from) {
                peer.busy_until = now + BUSY_BACKOFF;
            }
        }
        let Some(block) = reject.block else {
            if let Some(want) = self.manifest_wants.get_mut(&(reject.channel, reject.seq)) {
                // Ask someone else next time.
                if want.hint == from {
                    want.hint = self.me;
                }
            }
            return;
        };
        let key = (reject.channel, reject.seq, block);
        if self.requests.get(&key).is_some_and(|o| o.peer == from) {
            // Keep the entry's `tried` list but let the repair loop ask the next peer now.
            if let Some(o) = self.requests.get_mut(&key) {
                o.sent_at = Instant::ZERO;
            }
        }
    }
}
