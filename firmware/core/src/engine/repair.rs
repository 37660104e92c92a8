//! Pull: whatever the push trees missed.
//!
//! Runs every `repair_interval` while anything is incomplete:
//! 1. a partial block that stopped growing asks its sender for the missing ranges (a NACK);
//! 2. a segment that received nothing for `stall_timeout`, while its tree parents and signer
//!    sent us nothing either (or that is older than its own duration), pulls its missing blocks from peers
//!    that announced it (`Have`), else from its tree parent, else from the signer — oldest
//!    segment first (deadline-first), among equal deadlines the segment with fewest holders
//!    first (rarest-first), spreading requests over holders and capping them per peer;
//! 3. unanswered requests time out and go to the next holder;
//! 4. segments known to exist without a manifest get their manifest requested.

use core::time::Duration;

use super::sender::Control;
use super::{Engine, Outstanding, MAX_OUTSTANDING, MAX_OUTSTANDING_PER_PEER, REQUEST_TIMEOUT};
use crate::wire::{Item, Request};
use crate::{ChannelId, Instant, NodeId};

/// NACKs for one partial block before the whole-block pull takes over.
const MAX_NACKS: u8 = 3;
/// Manifest requests per segment before giving up (it is sought again when next announced).
const MAX_MANIFEST_ATTEMPTS: u8 = 6;

impl Engine {
    pub(super) fn repair(&mut self, now: Instant) {
        self.nack_partials(now);
        self.expire_requests(now);
        self.pull_blocks(now);
        self.request_manifests(now);
        let pending = !self.blocks.blocks.is_empty()
            || !self.requests.is_empty()
            || !self.manifest_wants.is_empty()
            || !self.dissemination.is_empty();
        if pending {
            self.schedule_repair(now);
        }
    }

    fn nack_delay(&self, peer: NodeId) -> Duration {
        let srtt = self.peers.get(&peer).and_then(|p| p.srtt).unwrap_or(Duration::from_millis(2));
        (srtt * 2 + Duration::from_millis(2)).clamp(Duration::from_millis(3), Duration::from_millis(100))
    }

    fn nack_partials(&mut self, now: Instant) {
        let mut nacks = Vec::new();
        for (&(channel, seq, index), partial) in &self.blocks.blocks {
            if partial.nacks >= MAX_NACKS
                || now.saturating_since(partial.last_at) < self.nack_delay(partial.from)
            {
                continue;
            }
            let missing = partial.got.complement(partial.bytes.len() as u16);
            nacks.push((partial.from, channel, seq, partial.tag, index, missing));
        }
        for (peer, channel, seq, tag, index, ranges) in nacks {
            if let Some(partial) = self.blocks.blocks.get_mut(&(channel, seq, index)) {
                partial.nacks += 1;
                partial.last_at = now;
            }
            self.counters.requests_sent += 1;
            let request = Request { channel, seq, item: Item::Block { tag, index, ranges } };
            self.queue_control(peer, Control::Request(request));
        }
    }

    fn expire_requests(&mut self, now: Instant) {
        let expired: Vec<_> = self
            .requests
            .iter()
            .filter(|(_, o)| now.saturating_since(o.sent_at) >= REQUEST_TIMEOUT)
            .map(|(&k, o)| (k, o.peer))
            .collect();
        for (_, peer) in &expired {
            if let Some(p) = self.peers.get_mut(peer) {
                p.outstanding = p.outstanding.saturating_sub(1);
            }
        }
        // Expired entries stay (with their `tried` list) until re-requested below.
        for (key, _) in expired {
            if let Some(o) = self.requests.get_mut(&key) {
                o.peer = self.me;
            }
        }
    }

    fn pull_blocks(&mut self, now: Instant) {
        // Stalled segments, oldest first, rarest first among equals.
        let mut stalled: Vec<(Instant, usize, ChannelId, u64)> = Vec::new();
        let mut gone = Vec::new();
        for (&(channel, seq), d) in &self.dissemination {
            let Some(segment) = self.store.segment(channel, seq) else {
                gone.push((channel, seq));
                continue;
            };
            if segment.is_complete() || seq < self.interest_floor(channel) {
                gone.push((channel, seq));
                continue;
            }
            if now.saturating_since(d.last_activity) < self.config.stall_timeout {
                continue;
            }
            // A parent (or the signer) that is still sending us data is still pushing: the
            // segment waits its turn behind the ones before it. Past its own duration it is
            // pulled regardless.
            let stall = self.config.stall_timeout;
            let feeders_busy = d
                .tree
                .iter()
                .flat_map(|t| t.parents.iter())
                .chain(core::iter::once(&segment.manifest().manifest().signer))
                .any(|p| {
                    self.peers
                        .get(p)
                        .and_then(|p| p.last_data)
                        .is_some_and(|t| now.saturating_since(t) < stall)
                });
            let overdue =
                now.saturating_since(segment.admitted_at()) >= segment.manifest().manifest().duration();
            if feeders_busy && !overdue {
                continue;
            }
            let holders = self.peers.values().filter(|p| p.is_active(now) && p.holds(channel, seq)).count();
            stalled.push((segment.admitted_at(), holders, channel, seq));
        }
        for key in gone {
            self.dissemination.remove(&key);
            self.blocks.remove_segment(key.0, key.1);
            self.requests.retain(|&(c, s, _), _| (c, s) != key);
        }
        stalled.sort();
        for (_, _, channel, seq) in stalled {
            if self.requests.len() >= MAX_OUTSTANDING {
                break;
            }
            self.pull_segment(now, channel, seq);
        }
    }

    fn pull_segment(&mut self, now: Instant, channel: ChannelId, seq: u64) {
        let Some(segment) = self.store.segment(channel, seq) else {
            return;
        };
        let manifest = segment.manifest().clone();
        let count = manifest.block_count();
        // Start at a point of this box's own so boxes missing the same blocks ask in different
        // orders and spread the load over holders.
        let offset = usize::from(self.me.0[0]) % count.max(1);
        let missing: Vec<u16> = (0..count)
            .map(|i| (i + offset) % count)
            .filter(|&i| !segment.has_block(i))
            .map(|i| i as u16)
            .collect();
        for index in missing {
            if self.requests.len() >= MAX_OUTSTANDING {
                return;
            }
            let key = (channel, seq, index);
            let mut tried: heapless::Vec<NodeId, 4> = heapless::Vec::new();
            if let Some(o) = self.requests.get(&key) {
                if o.peer != self.me {
                    continue; // still outstanding
                }
                tried = o.tried.clone();
            }
            // A partial block still being repaired by NACKs is left to that.
            let partial = self.blocks.blocks.get(&key);
            if partial.is_some_and(|p| p.nacks < MAX_NACKS) {
                continue;
            }
            let Some(holder) = self.choose_holder(now, channel, seq, index, &tried) else {
                if !tried.is_empty() {
                    // Everyone was tried: start over next round.
                    self.requests.remove(&key);
                }
                continue;
            };
            let ranges = partial.map(|p| p.got.complement(p.bytes.len() as u16)).unwrap_or_default();
            if tried.is_full() {
                tried.remove(0);
            }
            let _ = tried.push(holder);
            self.requests.insert(key, Outstanding { peer: holder, sent_at: now, tried });
            if let Some(p) = self.peers.get_mut(&holder) {
                p.outstanding += 1;
            }
            self.counters.requests_sent += 1;
            let item = Item::Block { tag: manifest.tag(), index, ranges };
            self.queue_control(holder, Control::Request(Request { channel, seq, item }));
        }
    }

    /// Who to ask for block `index`: a peer that announced the whole segment (least loaded, then
    /// nearest), else this box's tree parent for the block, else the signer.
    fn choose_holder(
        &self,
        now: Instant,
        channel: ChannelId,
        seq: u64,
        index: u16,
        tried: &[NodeId],
    ) -> Option<NodeId> {
        let usable = |id: &NodeId| {
            !tried.contains(id)
                && self.peers.get(id).is_some_and(|p| {
                    p.is_active(now) && p.outstanding < MAX_OUTSTANDING_PER_PEER && now >= p.busy_until
                })
        };
        let announced = self
            .peers
            .values()
            .filter(|p| p.holds(channel, seq) && usable(&p.id))
            .min_by_key(|p| (p.outstanding, p.srtt.unwrap_or(Duration::MAX), p.id));
        if let Some(p) = announced {
            return Some(p.id);
        }
        let stripe = usize::from(index) % self.config.stripes;
        let parent = self
            .dissemination
            .get(&(channel, seq))
            .and_then(|d| d.tree.as_ref())
            .and_then(|t| t.parents.get(stripe).copied());
        if let Some(parent) = parent.filter(usable) {
            return Some(parent);
        }
        let signer = self.store.segment(channel, seq)?.manifest().manifest().signer;
        Some(signer).filter(usable)
    }

    fn request_manifests(&mut self, now: Instant) {
        let due: Vec<(ChannelId, u64)> =
            self.manifest_wants.iter().filter(|(_, w)| now >= w.next_try).map(|(&k, _)| k).collect();
        for (channel, seq) in due {
            if self.store.segment(channel, seq).is_some() || seq < self.interest_floor(channel) {
                self.manifest_wants.remove(&(channel, seq));
                continue;
            }
            let Some(want) = self.manifest_wants.get(&(channel, seq)) else {
                continue;
            };
            let (hint, attempts) = (want.hint, want.attempts);
            if attempts >= MAX_MANIFEST_ATTEMPTS {
                self.manifest_wants.remove(&(channel, seq));
                continue;
            }
            // The hint first; after a miss, any peer that announced it, else the ingester.
            let hinted = self.peers.get(&hint).is_some_and(|p| p.is_active(now)) && attempts == 0;
            let target = if hinted {
                Some(hint)
            } else {
                let holders: Vec<NodeId> = self
                    .peers
                    .values()
                    .filter(|p| p.is_active(now) && p.holds(channel, seq))
                    .map(|p| p.id)
                    .collect();
                let ingester = self.channels.get(&channel).and_then(|c| c.ranking.first().copied());
                if holders.is_empty() {
                    ingester.filter(|&i| i != self.me).or(Some(hint).filter(|&h| h != self.me))
                } else {
                    Some(holders[usize::from(attempts) % holders.len()])
                }
            };
            let srtt = target
                .and_then(|t| self.peers.get(&t))
                .and_then(|p| p.srtt)
                .unwrap_or(Duration::from_millis(5));
            if let Some(want) = self.manifest_wants.get_mut(&(channel, seq)) {
                want.attempts += 1;
                want.next_try = now + (srtt * 4).max(Duration::from_millis(30));
            }
            if let Some(target) = target {
                self.counters.requests_sent += 1;
                self.queue_control(target, Control::Request(Request { channel, seq, item: Item::Manifest }));
            }
        }
    }
}
