//! Former signers: who signed a channel's window before its current ingester.
//!
//! A box trusts a manifest when its own election names the signer as the channel's ingester or
//! standby. That leaves out segments signed by an ingester that has since died or handed over:
//! a box that joins afterwards never met the signer (no key) and its election does not name it,
//! so the window it joins into is partly unverifiable, and a box that lacked one of them when the
//! election changed can no longer repair it.
//!
//! Every box therefore remembers, per channel, the other boxes whose manifests it accepted
//! (their key and the sequence numbers they signed), and the current ingester vouches for them
//! ([`Vouch`]) to each peer that lacks one of those segments. A box accepts a vouch only from the
//! box its own election names as ingester or standby: it grants nothing that box could not do
//! anyway (it could sign those sequence numbers itself), and the vouched-for signer is trusted
//! for exactly the sequence numbers vouched for.

use super::sender::Control;
use super::Engine;
use crate::crypto::PublicKey;
use crate::wire::Vouch;
use crate::{ChannelId, Instant, NodeId};

/// Former signers remembered per channel; the one whose segments are oldest goes first.
pub(super) const MAX_SIGNERS: usize = 4;

/// A box other than this one whose signature on segments `first..=last` of a channel this box
/// accepted, or had vouched for.
#[derive(Clone, Debug)]
pub(super) struct Signer {
    pub(super) id: NodeId,
    pub(super) public_key: [u8; 32],
    pub(super) key: PublicKey,
    pub(super) first: u64,
    pub(super) last: u64,
}

/// The former signers of one channel.
#[derive(Debug, Default)]
pub(super) struct Signers(heapless::Vec<Signer, MAX_SIGNERS>);

impl Signers {
    /// `id` signed `seq` (or was vouched for up to it): widens its range, or remembers it,
    /// forgetting the signer of the oldest segments when full.
    pub(super) fn record(&mut self, id: NodeId, key: &PublicKey, first: u64, last: u64) {
        if let Some(known) = self.0.iter_mut().find(|s| s.id == id) {
            known.first = known.first.min(first);
            known.last = known.last.max(last);
            return;
        }
        let signer = Signer { id, public_key: key.to_bytes(), key: key.clone(), first, last };
        if let Err(signer) = self.0.push(signer) {
            let oldest = (0..self.0.len()).min_by_key(|&i| self.0[i].last).expect("full, so not empty");
            if self.0[oldest].last < signer.last {
                self.0[oldest] = signer;
            }
        }
    }

    /// The key to check `id`'s signature on segment `seq` with, if it is trusted for it.
    pub(super) fn key_for(&self, id: NodeId, seq: u64) -> Option<&PublicKey> {
        self.0.iter().find(|s| s.id == id && (s.first..=s.last).contains(&seq)).map(|s| &s.key)
    }

    /// Forgets signers whose segments are all below `floor` (out of the window).
    pub(super) fn prune(&mut self, floor: u64) {
        self.0.retain(|s| s.last >= floor);
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Signer> {
        self.0.iter()
    }
}

impl Engine {
    /// Remembers that `signer`'s manifest for `seq` of `channel` was admitted.
    pub(super) fn record_signer(&mut self, channel: ChannelId, signer: NodeId, key: &PublicKey, seq: u64) {
        if signer == self.me {
            return;
        }
        let floor = self.interest_floor(channel);
        if let Some(state) = self.channels.get_mut(&channel) {
            state.signers.record(signer, key, seq, seq);
            state.signers.prune(floor);
        }
    }

    /// The key to check a manifest of `channel`/`seq` signed by `signer`, when this box does not
    /// know `signer` as a peer: a former signer it accepted or had vouched for.
    pub(super) fn former_signer_key(
        &self,
        channel: ChannelId,
        signer: NodeId,
        seq: u64,
    ) -> Option<PublicKey> {
        self.channels.get(&channel)?.signers.key_for(signer, seq).cloned()
    }

    /// Vouches due to `peer` with this ping: for each channel this box ingests, each former
    /// signer of the window whose segments `peer` does not all hold.
    pub(super) fn vouches_due(&self, now: Instant, peer: NodeId) -> Vec<Vouch> {
        let Some(p) = self.peers.get(&peer).filter(|p| p.is_active(now)) else {
            return Vec::new();
        };
        let mut due = Vec::new();
        for (&channel, state) in self.channels.iter().filter(|&(&c, state)| state.ingesting && p.carries(c)) {
            let floor = self.interest_floor(channel);
            for signer in state.signers.iter().filter(|s| s.id != peer && s.last >= floor) {
                let lacks = (signer.first.max(floor)..=signer.last)
                    .any(|seq| self.store.segment(channel, seq).is_some() && !p.holds(channel, seq));
                if lacks {
                    due.push(Vouch {
                        channel,
                        public_key: signer.public_key,
                        first: signer.first.max(floor),
                        last: signer.last,
                    });
                }
            }
        }
        due
    }

    /// A peer vouches for a former signer of a channel.
    pub(super) fn on_vouch(&mut self, now: Instant, from: NodeId, vouch: Vouch) {
        let channel = vouch.channel;
        if !self.channels.contains_key(&channel) {
            self.counters.not_in_lineup += 1;
            return;
        }
        let names = |engine: &Engine| {
            let state = &engine.channels[&channel];
            state.ranking.iter().take(2).any(|&n| n == from) || state.ingester == Some(from)
        };
        if !names(self) {
            // The ranking is recomputed on the timer: judge by a fresh one before refusing.
            self.rank_channel(now, channel);
        }
        if !names(self) {
            self.counters.vouches_refused += 1;
            return;
        }
        let id = NodeId::from_public_key(&vouch.public_key);
        let Some(key) = PublicKey::from_bytes(&vouch.public_key) else {
            self.counters.bad_identity += 1;
            return;
        };
        let floor = self.interest_floor(channel);
        if vouch.first > vouch.last || id == self.me || vouch.last < floor {
            self.counters.vouches_refused += 1;
            return;
        }
        let first = vouch.first.max(floor);
        let state = self.channels.get_mut(&channel).expect("lineup checked above");
        if state.signers.key_for(id, first).is_some() && state.signers.key_for(id, vouch.last).is_some() {
            return;
        }
        log::debug!("{}: {from} vouches for {id} as signer of {channel}/{first}..={}", self.me, vouch.last);
        state.signers.record(id, &key, first, vouch.last);
        state.signers.prune(floor);
        // Segments of that range this box lacks: their manifests may have been refused already,
        // so ask again now, from the voucher first.
        let lacking: Vec<u64> = (first..=vouch.last)
            .take(super::MAX_MANIFEST_WANTS)
            .filter(|&seq| self.store.segment(channel, seq).is_none())
            .collect();
        for seq in lacking {
            self.manifest_wants.remove(&(channel, seq));
            self.want_manifest(now, channel, seq, from, now);
        }
    }

    /// Queues the vouches due to `peer` (with its ping).
    pub(super) fn queue_vouches(&mut self, now: Instant, peer: NodeId) {
        for vouch in self.vouches_due(now, peer) {
            self.queue_control(peer, Control::Vouch(vouch));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    fn key(seed: u8) -> (NodeId, PublicKey) {
        let identity = Identity::from_seed([seed; 32]);
        (identity.node_id(), PublicKey::from_bytes(&identity.public_key()).expect("valid key"))
    }

    #[test]
    fn a_signer_is_trusted_for_the_range_it_signed() {
        let (a, key_a) = key(1);
        let mut signers = Signers::default();
        signers.record(a, &key_a, 5, 5);
        signers.record(a, &key_a, 7, 7);
        assert!(signers.key_for(a, 4).is_none());
        assert!(signers.key_for(a, 6).is_some());
        assert!(signers.key_for(a, 8).is_none());
        signers.prune(8);
        assert!(signers.key_for(a, 7).is_none(), "out of the window, forgotten");
    }

    #[test]
    fn when_full_the_signer_of_the_oldest_segments_goes() {
        let mut signers = Signers::default();
        let keys: Vec<_> = (1..=MAX_SIGNERS as u8 + 1).map(key).collect();
        for (i, (id, key)) in keys.iter().enumerate() {
            signers.record(*id, key, i as u64 * 10, i as u64 * 10 + 1);
        }
        assert!(signers.key_for(keys[0].0, 0).is_none());
        for (i, (id, _)) in keys.iter().enumerate().skip(1) {
            assert!(signers.key_for(*id, i as u64 * 10).is_some());
        }
    }
}
