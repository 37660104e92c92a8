//! The peer table: what discovery knows of other boxes, and the events about them that wait
//! for the caller. No IO: the browse loop feeds it mdns-sd's events, tests feed it records.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use log::{debug, info, trace, warn};
use mdns_sd::{DaemonEvent, ScopedIp, ServiceEvent};
use shoal_core::wire::PROTOCOL_VERSION;
use shoal_core::NodeId;

use super::txt::{parse_txt, Expected, TxtRejection};
use super::{DiscoveryConfig, DiscoveryEvent};
use crate::model::status::DiscoveryStatus;

/// Peers remembered at once. A LAN of set-top boxes holds tens to hundreds; at 200 to 700 bytes a
/// peer (names, board, up to `MAX_ADDRS_PER_PEER` addresses) this keeps the table under 1 MB even
/// if something on the LAN floods us with made-up ids.
const MAX_PEERS: usize = 1024;

/// Addresses kept per peer. A box has a few (v4 and v6 on one or two interfaces); more means it
/// was renumbered, and then the newest record's addresses replace the accumulated ones.
const MAX_ADDRS_PER_PEER: usize = 16;

/// Events waiting for the caller: one per node at most, and a node is either in the table
/// (`PeerFound`) or was just removed from it (`PeerLost`), hence twice the table.
const OUTBOX_CAPACITY: usize = 2 * MAX_PEERS;

/// Counters shared between the browse thread and `Discovery::counters`.
#[derive(Default)]
pub(super) struct Counters {
    found: AtomicU64,
    lost: AtomicU64,
    ignored_foreign_key: AtomicU64,
    ignored_bad_txt: AtomicU64,
    ignored_version: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn bump(&self, counter: &AtomicU64) {
        // Independent statistics: no ordering with other memory is needed.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> DiscoveryStatus {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DiscoveryStatus {
            found: read(&self.found),
            lost: read(&self.lost),
            ignored_foreign_key: read(&self.ignored_foreign_key),
            ignored_bad_txt: read(&self.ignored_bad_txt),
            ignored_version: read(&self.ignored_version),
            errors: read(&self.errors),
        }
    }
}

/// What we know of one peer.
#[derive(Debug)]
struct Peer {
    /// Its service's full name, lowercase (DNS names compare without case).
    fullname: String,
    /// Its SRV port.
    port: u16,
    addrs: BTreeSet<SocketAddr>,
    http_port: u16,
    board: String,
}

/// The peers seen so far, and the events about them not yet taken by the caller. No IO: the
/// browse loop feeds it mdns-sd's events.
pub(super) struct PeerTable {
    /// Lowercase, like `Peer::fullname`.
    own_fullname: String,
    own_id: NodeId,
    expected: Expected,
    peers: HashMap<NodeId, Peer>,
    outbox: Outbox,
    counters: Arc<Counters>,
}

impl PeerTable {
    pub(super) fn new(config: &DiscoveryConfig, own_fullname: &str, counters: Arc<Counters>) -> Self {
        PeerTable {
            own_fullname: own_fullname.to_ascii_lowercase(),
            own_id: config.node_id,
            expected: Expected { version: PROTOCOL_VERSION, fingerprint: config.key_fingerprint },
            peers: HashMap::new(),
            outbox: Outbox::default(),
            counters,
        }
    }

    /// The event the caller should get next, if any. It stays queued (and may still be replaced
    /// by a newer one for the same node) until `event_delivered`.
    pub(super) fn next_event(&self) -> Option<&DiscoveryEvent> {
        self.outbox.front()
    }

    /// The caller took the event `next_event` returned.
    pub(super) fn event_delivered(&mut self) {
        self.outbox.pop_front();
    }

    /// mdns-sd ended our browse subscription.
    pub(super) fn subscription_lost(&mut self) {
        self.counters.bump(&self.counters.errors);
    }

    pub(super) fn handle_service_event(&mut self, event: ServiceEvent) {
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let addrs = socket_addrs(&service.addresses, service.port);
                let txt = service.txt_properties.iter().map(|property| (property.key(), property.val()));
                self.handle_resolved(&service.fullname, service.port, addrs, txt);
            }
            ServiceEvent::ServiceRemoved(_, fullname) => self.handle_removed(&fullname),
            other => trace!("discovery: {other:?}"),
        }
    }

    pub(super) fn handle_daemon_event(&mut self, event: DaemonEvent) {
        match event {
            DaemonEvent::Error(e) => {
                self.counters.bump(&self.counters.errors);
                warn!("discovery: mDNS: {e}");
            }
            DaemonEvent::NameChange(change) => warn!(
                "discovery: mDNS renamed {} to {} after a name conflict",
                change.original, change.new_name
            ),
            DaemonEvent::IpAdd(ip) => info!("discovery: now announcing on {ip}"),
            DaemonEvent::IpDel(ip) => info!("discovery: no longer announcing on {ip}"),
            other => trace!("discovery: {other:?}"),
        }
    }

    /// A service was resolved, or its records changed.
    fn handle_resolved<'a>(
        &mut self,
        fullname: &str,
        port: u16,
        addrs: Vec<SocketAddr>,
        txt: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) {
        let fullname = fullname.to_ascii_lowercase();
        if fullname == self.own_fullname {
            return;
        }
        let parsed = match parse_txt(txt, self.expected) {
            Ok(parsed) if port != 0 => parsed,
            Ok(_) => {
                self.ignore(&fullname, TxtRejection::Malformed { key: "SRV port" });
                return;
            }
            Err(rejection) => {
                self.ignore(&fullname, rejection);
                return;
            }
        };
        if parsed.node_id == self.own_id {
            warn!("discovery: {fullname} claims our node id; ignored");
            self.forget(&fullname);
            return;
        }
        // The name now belongs to another box: the one that had it is gone.
        if let Some(previous) = self.node_named(&fullname) {
            if previous != parsed.node_id {
                self.remove(previous);
            }
        }

        let fresh = bounded_addrs(addrs);
        if fresh.is_empty() {
            debug!("discovery: {fullname} has no usable address yet");
            return;
        }
        match self.peers.get_mut(&parsed.node_id) {
            Some(peer) => {
                let addrs = if peer.port == port {
                    let mut union = peer.addrs.clone();
                    union.extend(fresh.iter().copied());
                    if union.len() > MAX_ADDRS_PER_PEER {
                        fresh
                    } else {
                        union
                    }
                } else {
                    // A new port makes every old address useless.
                    fresh
                };
                let changed =
                    addrs != peer.addrs || parsed.http_port != peer.http_port || parsed.board != peer.board;
                peer.fullname = fullname;
                peer.port = port;
                peer.addrs = addrs;
                peer.http_port = parsed.http_port;
                peer.board = parsed.board;
                if changed {
                    let event = found_event(parsed.node_id, peer);
                    self.send(event);
                }
            }
            None => {
                if self.peers.len() >= MAX_PEERS {
                    self.counters.bump(&self.counters.errors);
                    warn!("discovery: {MAX_PEERS} peers known already; {fullname} ignored");
                    return;
                }
                let peer =
                    Peer { fullname, port, addrs: fresh, http_port: parsed.http_port, board: parsed.board };
                info!(
                    "discovery: found {:#} ({}, board {}) at {:?}",
                    parsed.node_id, peer.fullname, peer.board, peer.addrs
                );
                let event = found_event(parsed.node_id, &peer);
                self.peers.insert(parsed.node_id, peer);
                self.counters.bump(&self.counters.found);
                self.send(event);
            }
        }
    }

    /// A service said goodbye or expired.
    fn handle_removed(&mut self, fullname: &str) {
        let fullname = fullname.to_ascii_lowercase();
        if fullname != self.own_fullname {
            self.forget(&fullname);
        }
    }

    /// Counts a rejected record; a known peer that now announces one is gone for us.
    fn ignore(&mut self, fullname: &str, rejection: TxtRejection) {
        let counter = match rejection {
            TxtRejection::Version(_) => &self.counters.ignored_version,
            TxtRejection::ForeignKey(_) => &self.counters.ignored_foreign_key,
            TxtRejection::Malformed { .. } => &self.counters.ignored_bad_txt,
        };
        self.counters.bump(counter);
        // Debug, not warn: another deployment on the same LAN is normal.
        debug!("discovery: ignoring {fullname}: {rejection:?}");
        self.forget(fullname);
    }

    fn forget(&mut self, fullname: &str) {
        if let Some(node_id) = self.node_named(fullname) {
            self.remove(node_id);
        }
    }

    fn node_named(&self, fullname: &str) -> Option<NodeId> {
        // A linear scan: the table is small and names change rarely.
        self.peers.iter().find(|(_, peer)| peer.fullname == fullname).map(|(node_id, _)| *node_id)
    }

    fn remove(&mut self, node_id: NodeId) {
        if let Some(peer) = self.peers.remove(&node_id) {
            info!("discovery: lost {node_id:#} ({})", peer.fullname);
            self.counters.bump(&self.counters.lost);
            self.send(DiscoveryEvent::PeerLost { node_id });
        }
    }

    fn send(&mut self, event: DiscoveryEvent) {
        if !self.outbox.push(event) {
            self.counters.bump(&self.counters.errors);
            warn!("discovery: {OUTBOX_CAPACITY} events wait for a reader already; one dropped");
        }
    }
}

fn found_event(node_id: NodeId, peer: &Peer) -> DiscoveryEvent {
    DiscoveryEvent::PeerFound {
        node_id,
        addrs: peer.addrs.iter().copied().collect(),
        http_port: peer.http_port,
        board: peer.board.clone(),
    }
}

/// The first `MAX_ADDRS_PER_PEER` of `addrs` in order (IPv4 first).
fn bounded_addrs(addrs: Vec<SocketAddr>) -> BTreeSet<SocketAddr> {
    let mut set: BTreeSet<SocketAddr> = addrs.into_iter().collect();
    while set.len() > MAX_ADDRS_PER_PEER {
        set.pop_last();
    }
    set
}

/// Where a resolved service's `port` is reached. An IPv6 link-local address is only usable with
/// its interface, so one that came without a scope id is left out.
fn socket_addrs<'a>(ips: impl IntoIterator<Item = &'a ScopedIp>, port: u16) -> Vec<SocketAddr> {
    ips.into_iter()
        .filter_map(|ip| match ip {
            ScopedIp::V4(v4) => Some(SocketAddr::new(IpAddr::V4(*v4.addr()), port)),
            ScopedIp::V6(v6) => {
                let scope_id = if is_unicast_link_local(v6.addr()) {
                    match v6.scope_id().index {
                        0 => return None,
                        index => index,
                    }
                } else {
                    0
                };
                Some(SocketAddr::V6(SocketAddrV6::new(*v6.addr(), port, 0, scope_id)))
            }
            other => {
                trace!("discovery: unknown address kind {other:?}");
                None
            }
        })
        .collect()
}

/// `fe80::/10`; `Ipv6Addr::is_unicast_link_local` is not stable on our MSRV.
fn is_unicast_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// Events for the caller, newest per node, oldest node first.
#[derive(Default)]
struct Outbox {
    order: VecDeque<NodeId>,
    pending: HashMap<NodeId, DiscoveryEvent>,
}

impl Outbox {
    /// Queues `event`, replacing one for the same node that waits. `false` when full.
    fn push(&mut self, event: DiscoveryEvent) -> bool {
        let node_id = event.node_id();
        if let Some(waiting) = self.pending.get_mut(&node_id) {
            *waiting = event;
            return true;
        }
        if self.order.len() >= OUTBOX_CAPACITY {
            return false;
        }
        self.order.push_back(node_id);
        self.pending.insert(node_id, event);
        true
    }

    fn front(&self) -> Option<&DiscoveryEvent> {
        self.order.front().and_then(|node_id| self.pending.get(node_id))
    }

    fn pop_front(&mut self) {
        if let Some(node_id) = self.order.pop_front() {
            self.pending.remove(&node_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;
    use crate::discovery::instance_name;
    use crate::discovery::tests::config;
    use crate::discovery::txt::txt_records;

    #[test]
    fn link_local_v6_needs_a_scope() {
        let link_local = |last| Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last);
        let unique_local = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
        let scoped = ScopedIp::from(&if_addrs::Interface {
            name: "eth0".into(),
            addr: if_addrs::IfAddr::V6(if_addrs::Ifv6Addr {
                ip: link_local(2),
                netmask: Ipv6Addr::UNSPECIFIED,
                prefixlen: 64,
                broadcast: None,
            }),
            index: Some(3),
            oper_status: if_addrs::IfOperStatus::Up,
            is_p2p: false,
        });
        let ips = [
            ScopedIp::from(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1))),
            ScopedIp::from(IpAddr::V6(link_local(1))),
            ScopedIp::from(IpAddr::V6(unique_local)),
            scoped,
        ];
        let mut addrs = socket_addrs(&ips, 7400);
        addrs.sort();
        assert_eq!(
            addrs,
            [
                v4(1, 7400),
                SocketAddr::V6(SocketAddrV6::new(unique_local, 7400, 0, 0)),
                SocketAddr::V6(SocketAddrV6::new(link_local(2), 7400, 0, 3)),
            ]
        );
    }

    fn table() -> PeerTable {
        PeerTable::new(&config(1), "shoal-01010101._shoal._udp.local.", Arc::default())
    }

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, last), port))
    }

    fn resolve(table: &mut PeerTable, node: u8, port: u16, addrs: &[SocketAddr], board: &str) {
        let mut peer = config(node);
        peer.board = board.into();
        let txt = txt_records(&peer);
        table.handle_resolved(
            &format!("{}._shoal._udp.local.", instance_name(peer.node_id)),
            port,
            addrs.to_vec(),
            txt.iter().map(|(k, v)| (*k, Some(v.as_bytes()))),
        );
    }

    fn drain(table: &mut PeerTable) -> Vec<DiscoveryEvent> {
        let mut events = Vec::new();
        while let Some(event) = table.outbox.front().cloned() {
            events.push(event);
            table.outbox.pop_front();
        }
        events
    }

    fn found(node: u8, addrs: &[SocketAddr]) -> DiscoveryEvent {
        DiscoveryEvent::PeerFound {
            node_id: NodeId([node; 16]),
            addrs: addrs.to_vec(),
            http_port: 8080,
            board: "rpi4".into(),
        }
    }

    #[test]
    fn peers_are_found_updated_with_the_union_and_lost() {
        let mut t = table();
        resolve(&mut t, 2, 7400, &[v4(2, 7400)], "rpi4");
        assert_eq!(drain(&mut t), [found(2, &[v4(2, 7400)])]);

        // The same record again changes nothing.
        resolve(&mut t, 2, 7400, &[v4(2, 7400)], "rpi4");
        assert_eq!(drain(&mut t), []);

        // A later record with one more address: the union.
        resolve(&mut t, 2, 7400, &[v4(3, 7400)], "rpi4");
        assert_eq!(drain(&mut t), [found(2, &[v4(2, 7400), v4(3, 7400)])]);

        // A new port replaces the set.
        resolve(&mut t, 2, 7500, &[v4(3, 7500)], "rpi4");
        assert_eq!(drain(&mut t), [found(2, &[v4(3, 7500)])]);

        t.handle_removed("SHOAL-02020202._shoal._udp.local.");
        assert_eq!(drain(&mut t), [DiscoveryEvent::PeerLost { node_id: NodeId([2; 16]) }]);
        let counters = t.counters.snapshot();
        assert_eq!((counters.found, counters.lost), (1, 1));
        // Removing an unknown name does nothing.
        t.handle_removed("shoal-02020202._shoal._udp.local.");
        assert_eq!(drain(&mut t), []);
    }

    #[test]
    fn too_many_addresses_keep_the_newest_record() {
        let mut t = table();
        let first: Vec<_> = (1..=10).map(|i| v4(i, 7400)).collect();
        let second: Vec<_> = (101..=110).map(|i| v4(i, 7400)).collect();
        resolve(&mut t, 2, 7400, &first, "rpi4");
        resolve(&mut t, 2, 7400, &second, "rpi4");
        assert_eq!(drain(&mut t), [found(2, &second)]);
    }

    #[test]
    fn own_records_and_rejected_records_are_ignored() {
        let mut t = table();
        // Our own service, and another name claiming our id.
        resolve(&mut t, 1, 7400, &[v4(1, 7400)], "rpi4");
        t.handle_resolved(
            "impostor._shoal._udp.local.",
            7400,
            vec![v4(9, 7400)],
            txt_records(&config(1)).iter().map(|(k, v)| (*k, Some(v.as_bytes()))),
        );
        // A foreign deployment, a bad record, port 0.
        let mut foreign = config(3);
        foreign.key_fingerprint = [0; 4];
        let txt = txt_records(&foreign);
        let pairs = || txt.iter().map(|(k, v)| (*k, Some(v.as_bytes())));
        t.handle_resolved("f._shoal._udp.local.", 7400, vec![v4(3, 7400)], pairs());
        let ours = txt_records(&config(4));
        t.handle_resolved(
            "b._shoal._udp.local.",
            7400,
            vec![v4(4, 7400)],
            ours.iter().skip(1).map(|(k, v)| (*k, Some(v.as_bytes()))),
        );
        resolve(&mut t, 5, 0, &[v4(5, 0)], "rpi4");
        assert_eq!(drain(&mut t), []);
        let counters = t.counters.snapshot();
        assert_eq!(
            counters,
            DiscoveryStatus { ignored_foreign_key: 1, ignored_bad_txt: 2, ..DiscoveryStatus::default() }
        );
    }

    #[test]
    fn a_known_peer_with_a_broken_record_is_lost() {
        let mut t = table();
        resolve(&mut t, 2, 7400, &[v4(2, 7400)], "rpi4");
        resolve(&mut t, 2, 7400, &[v4(2, 7400)], "");
        let events = drain(&mut t);
        // Found then lost before the caller took anything: only the newest is left.
        assert_eq!(events, [DiscoveryEvent::PeerLost { node_id: NodeId([2; 16]) }]);
        assert_eq!(t.counters.snapshot().ignored_bad_txt, 1);
    }

    #[test]
    fn a_name_taken_over_by_another_node_loses_the_first() {
        let mut t = table();
        resolve(&mut t, 2, 7400, &[v4(2, 7400)], "rpi4");
        drain(&mut t);
        let txt = txt_records(&config(3));
        t.handle_resolved(
            "shoal-02020202._shoal._udp.local.",
            7400,
            vec![v4(3, 7400)],
            txt.iter().map(|(k, v)| (*k, Some(v.as_bytes()))),
        );
        assert_eq!(
            drain(&mut t),
            [DiscoveryEvent::PeerLost { node_id: NodeId([2; 16]) }, found(3, &[v4(3, 7400)])]
        );
    }

    #[test]
    fn addressless_records_wait_for_addresses() {
        let mut t = table();
        resolve(&mut t, 2, 7400, &[], "rpi4");
        assert_eq!(drain(&mut t), []);
        assert_eq!(t.counters.snapshot(), DiscoveryStatus::default());
    }

    #[test]
    fn the_peer_table_is_bounded() {
        let mut t = table();
        for i in 0..=MAX_PEERS {
            let node_id = NodeId(u128::try_from(i + 1000).unwrap_or(0).to_be_bytes());
            let mut peer = config(0);
            peer.node_id = node_id;
            let txt = txt_records(&peer);
            t.handle_resolved(
                &format!("n{i}._shoal._udp.local."),
                7400,
                vec![v4(7, 7400)],
                txt.iter().map(|(k, v)| (*k, Some(v.as_bytes()))),
            );
        }
        assert_eq!(t.peers.len(), MAX_PEERS);
        let counters = t.counters.snapshot();
        assert_eq!((counters.found, counters.errors), (MAX_PEERS as u64, 1));
    }

    #[test]
    fn the_outbox_keeps_the_newest_event_per_node_in_order() {
        let mut outbox = Outbox::default();
        assert!(outbox.push(found(2, &[v4(2, 1)])));
        assert!(outbox.push(found(3, &[v4(3, 1)])));
        assert!(outbox.push(found(2, &[v4(9, 1)])));
        assert_eq!(outbox.front(), Some(&found(2, &[v4(9, 1)])));
        outbox.pop_front();
        assert_eq!(outbox.front(), Some(&found(3, &[v4(3, 1)])));
        outbox.pop_front();
        assert_eq!(outbox.front(), None);
        for i in 0..OUTBOX_CAPACITY {
            let node_id = NodeId(u128::try_from(i).unwrap_or(0).to_be_bytes());
            assert!(outbox.push(DiscoveryEvent::PeerLost { node_id }));
        }
        assert!(!outbox.push(found(2, &[v4(2, 1)])));
    }
}
