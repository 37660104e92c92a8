//! Per-channel election by rendezvous hashing, and the push trees built from its ranking.
//!
//! Every box ranks the boxes that carry a channel (itself and its live peers) by a hash of
//! (node id, channel id), highest first. Rank 0 is the channel's ingester, rank 1 its standby.
//! Boxes with the same view compute the same ranking with no coordinator; when a box comes or
//! goes only the channels it ranked high in change hands.
//!
//! Dissemination reuses the ranking. The boxes other than the segment's signer, in ranking
//! order, form `stripes` trees of fan-out `stripes`; block `i` travels down tree `i % stripes`.
//! Tree `s` is the ranking rotated by `⌊s·m/stripes⌋`, so the interior (forwarding) nodes of the
//! trees are disjoint (always for two stripes, the default): every box forwards the blocks of exactly one stripe to `stripes`
//! children, its upload is spent once per block it receives, and a block reaches all `m` boxes
//! after about `stripes·log_stripes(m)` block times (SplitStream's idea, made deterministic).

use sha2::{Digest, Sha256};

use crate::{ChannelId, NodeId};

/// The rendezvous score of `node` for `channel`: the highest score ingests.
pub fn score(node: NodeId, channel: ChannelId) -> u64 {
    let digest =
        Sha256::new().chain_update(b"shoal-rank").chain_update(node.0).chain_update(channel.0).finalize();
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// Sorts `nodes` into election order for `channel`: ingester first, then standby, and so on.
pub fn rank(channel: ChannelId, nodes: &mut [NodeId]) {
    nodes.sort_by_cached_key(|&n| (core::cmp::Reverse(score(n, channel)), n));
}

/// Where a box sits in the push trees of one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreePosition {
    /// Per stripe, the boxes this box forwards that stripe's blocks to.
    pub children: Vec<Vec<NodeId>>,
    /// Per stripe, the box this box receives that stripe's blocks from (the signer for a root).
    pub parents: Vec<NodeId>,
}

/// The roots of the trees: where the signer sends each stripe's blocks.
pub fn roots(members: &[NodeId], stripes: usize) -> Vec<NodeId> {
    (0..stripes).filter_map(|s| order(members, stripes, s).next()).collect()
}

/// The position of `me` in the trees over `members` (the ranking without the signer), or `None`
/// if `me` is not a member.
pub fn position(members: &[NodeId], stripes: usize, signer: NodeId, me: NodeId) -> Option<TreePosition> {
    let m = members.len();
    members.iter().position(|&n| n == me)?;
    let mut children = Vec::with_capacity(stripes);
    let mut parents = Vec::with_capacity(stripes);
    for s in 0..stripes {
        let ordered: Vec<NodeId> = order(members, stripes, s).collect();
        let p = ordered.iter().position(|&n| n == me)?;
        let first = p * stripes + 1;
        children.push((first..(first + stripes).min(m)).map(|c| ordered[c]).collect());
        parents.push(if p == 0 { signer } else { ordered[(p - 1) / stripes] });
    }
    Some(TreePosition { children, parents })
}

/// Stripe `s`'s order of `members`: the ranking rotated so each stripe has its own interior.
fn order(members: &[NodeId], stripes: usize, s: usize) -> impl Iterator<Item = NodeId> + '_ {
    let m = members.len();
    let shift = if m == 0 { 0 } else { (s * m / stripes.max(1)) % m };
    members.iter().cycle().skip(shift).take(m).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn nodes(n: u8) -> Vec<NodeId> {
        (0..n).map(|i| NodeId([i; 16])).collect()
    }

    #[test]
    fn ranking_is_a_pure_function_of_the_set() {
        let ch = ChannelId([1; 8]);
        let mut a = nodes(10);
        let mut b: Vec<_> = a.iter().rev().copied().collect();
        rank(ch, &mut a);
        rank(ch, &mut b);
        assert_eq!(a, b);
        // Removing a box that is not the ingester does not change the ingester.
        let ingester = a[0];
        let mut c: Vec<_> = a.iter().copied().filter(|&n| n != a[5]).collect();
        rank(ch, &mut c);
        assert_eq!(c[0], ingester);
    }

    #[test]
    fn every_member_gets_every_stripe_once_and_interiors_are_disjoint() {
        let signer = NodeId([200; 16]);
        for m in 1..70u8 {
            for stripes in 1..4 {
                let members = nodes(m);
                let mut received = vec![vec![0; members.len()]; stripes];
                let mut interior: Vec<BTreeSet<NodeId>> = vec![BTreeSet::new(); stripes];
                for &me in &members {
                    let pos = position(&members, stripes, signer, me).unwrap();
                    for (s, kids) in pos.children.iter().enumerate() {
                        if !kids.is_empty() {
                            interior[s].insert(me);
                        }
                        for k in kids {
                            received[s][members.iter().position(|n| n == k).unwrap()] += 1;
                        }
                    }
                }
                let roots = roots(&members, stripes);
                for s in 0..stripes {
                    for (i, &count) in received[s].iter().enumerate() {
                        let expected = usize::from(members[i] != roots[s]);
                        assert_eq!(count, expected, "m={m} stripes={stripes} s={s} i={i}");
                    }
                }
                let m = usize::from(m);
                if stripes > 1 && (m - 1).div_ceil(stripes) <= m / stripes {
                    for a in 0..stripes {
                        for b in a + 1..stripes {
                            assert!(interior[a].is_disjoint(&interior[b]), "m={m} stripes={stripes}");
                        }
                    }
                }
            }
        }
    }
}
