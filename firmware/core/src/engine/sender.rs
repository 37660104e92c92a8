//! What the engine has to send, in what order, at what pace.
//!
//! Two queues feed [`crate::Engine::poll_transmit`]:
//! - *control* messages (hello, ping, have, request, reject...): small, sent first, FIFO;
//! - *tasks*: a manifest or a block (or ranges of one) for one peer, cut into fragments as they
//!   go out. Tasks are ordered deadline-first: by when the segment entered this box's store
//!   (older segments are closer to their playback deadline), then first-come first-served. A task
//!   in progress keeps going fragment by fragment, so a receiver gets a block in one burst and
//!   can verify and forward it (cut-through) as early as possible;
//! - *background* control messages (the `Have` sent to every peer when a segment completes):
//!   useful, never urgent. They wait until no task is queued, or until they have waited
//!   [`BACKGROUND_PATIENCE`]. Sent first, 63 of them would hold up the blocks a box is still
//!   forwarding at the very moment its segment completes.
//!
//! A pacer spreads datagrams at the configured upload rate, counting the IP and UDP headers, so
//! the engine, not a kernel queue, decides what goes next when the link is busy.

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use crate::ranges::RangeSet;
use crate::wire::{Have, Reject, Request, Vouch};
use crate::{ChannelId, Instant, NodeId};

/// Bytes of IPv4 + UDP header that every datagram costs on the link besides its payload.
pub const IP_UDP_OVERHEAD: usize = 28;

/// Longest a background message waits behind tasks.
pub(crate) const BACKGROUND_PATIENCE: Duration = Duration::from_millis(20);

/// A small message waiting to go out.
#[derive(Clone, Debug)]
pub(crate) enum Control {
    Hello,
    /// A hello to the peer's unproven new address, carrying the challenge of [`Peer::probe`]
    /// (`crate::engine::peer::Peer`).
    Probe,
    Ping,
    Pong {
        echo: u64,
    },
    Goodbye,
    Have(Have),
    Request(Request),
    Reject(Reject),
    Vouch(Vouch),
}

/// What a task sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    Manifest,
    Block(u16),
}

/// A manifest or block (ranges of it) on its way to one peer.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) peer: NodeId,
    pub(crate) channel: ChannelId,
    pub(crate) seq: u64,
    pub(crate) tag: u32,
    pub(crate) payload: Payload,
    /// Byte ranges still to send.
    pub(crate) remaining: RangeSet,
    /// Whether it answers a request (counted against the requester's serve queue) or is a push.
    pub(crate) requested: bool,
}

/// Why a task was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueFull {
    Peer,
    Total,
}

#[derive(Debug, Default)]
struct PeerLoad {
    pushes: usize,
    requests: usize,
}

/// The send queues and pacer.
#[derive(Debug)]
pub(crate) struct Sender {
    pub(crate) control: VecDeque<(NodeId, Control)>,
    background: VecDeque<(Instant, NodeId, Control)>,
    tasks: BTreeMap<(Instant, u64), Task>,
    load: BTreeMap<NodeId, PeerLoad>,
    next_order: u64,
    /// Earliest time the pacer lets the next datagram out, in nanoseconds (microseconds would
    /// round every datagram's cost down and pace about 1 % fast).
    next_send_ns: u64,
    bytes_per_sec: u64,
    burst: Duration,
    limits: SenderLimits,
}

/// Queue capacities.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SenderLimits {
    pub(crate) control: usize,
    pub(crate) tasks: usize,
    pub(crate) pushes_per_peer: usize,
    pub(crate) requests_per_peer: usize,
}

impl Sender {
    pub(crate) fn new(bytes_per_sec: u64, burst: Duration, limits: SenderLimits) -> Self {
        Sender {
            control: VecDeque::new(),
            background: VecDeque::new(),
            tasks: BTreeMap::new(),
            load: BTreeMap::new(),
            next_order: 0,
            next_send_ns: 0,
            bytes_per_sec: bytes_per_sec.max(1),
            burst,
            limits,
        }
    }

    /// Queues a control message; `false` if the queue was full and the oldest was dropped.
    pub(crate) fn control(&mut self, peer: NodeId, message: Control) -> bool {
        let mut kept = true;
        if self.control.len() >= self.limits.control {
            self.control.pop_front();
            kept = false;
        }
        self.control.push_back((peer, message));
        kept
    }

    /// Queues a background message; `false` if the queue was full and the oldest was dropped.
    pub(crate) fn background(&mut self, now: Instant, peer: NodeId, message: Control) -> bool {
        let mut kept = true;
        if self.background.len() >= self.limits.control {
            self.background.pop_front();
            kept = false;
        }
        self.background.push_back((now, peer, message));
        kept
    }

    /// The next control message to send at `now`: urgent ones first, background ones when no
    /// task waits or they have waited long enough.
    pub(crate) fn next_control(&mut self, now: Instant) -> Option<(NodeId, Control)> {
        if let Some(next) = self.control.pop_front() {
            return Some(next);
        }
        let due = self.background.front().is_some_and(|(at, _, _)| {
            self.tasks.is_empty() || now.saturating_since(*at) >= BACKGROUND_PATIENCE
        });
        if due {
            return self.background.pop_front().map(|(_, peer, message)| (peer, message));
        }
        None
    }

    /// Queues a task under deadline `deadline`.
    pub(crate) fn task(&mut self, deadline: Instant, task: Task) -> Result<(), QueueFull> {
        if self.tasks.len() >= self.limits.tasks {
            return Err(QueueFull::Total);
        }
        let load = self.load.entry(task.peer).or_default();
        if task.requested {
            if load.requests >= self.limits.requests_per_peer {
                return Err(QueueFull::Peer);
            }
            load.requests += 1;
        } else {
            if load.pushes >= self.limits.pushes_per_peer {
                return Err(QueueFull::Peer);
            }
            load.pushes += 1;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.tasks.insert((deadline, order), task);
        Ok(())
    }

    /// The most urgent task, to cut its next fragment.
    pub(crate) fn front_task(&mut self) -> Option<(&(Instant, u64), &mut Task)> {
        self.tasks.iter_mut().next()
    }

    /// Removes the most urgent task (finished or no longer possible).
    pub(crate) fn finish_front(&mut self) {
        if let Some((_, task)) = self.tasks.pop_first() {
            self.release(&task);
        }
    }

    fn release(&mut self, task: &Task) {
        if let Some(load) = self.load.get_mut(&task.peer) {
            if task.requested {
                load.requests = load.requests.saturating_sub(1);
            } else {
                load.pushes = load.pushes.saturating_sub(1);
            }
            if load.pushes == 0 && load.requests == 0 {
                self.load.remove(&task.peer);
            }
        }
    }

    /// Drops everything queued for `peer` (it left or was banned).
    pub(crate) fn forget_peer(&mut self, peer: NodeId) {
        self.control.retain(|(p, _)| *p != peer);
        self.background.retain(|(_, p, _)| *p != peer);
        self.tasks.retain(|_, t| t.peer != peer);
        self.load.remove(&peer);
    }

    /// Number of queued tasks.
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the pacer lets a datagram out at `now`.
    pub(crate) fn may_send(&self, now: Instant) -> bool {
        now.as_micros().saturating_mul(1_000) >= self.next_send_ns
    }

    /// When the pacer next lets a datagram out, if anything waits.
    pub(crate) fn next_send(&self) -> Option<Instant> {
        let paced = Instant::from_micros(self.next_send_ns.div_ceil(1_000));
        if !self.control.is_empty() || !self.tasks.is_empty() {
            return Some(paced);
        }
        // Only background messages wait: they go as soon as the pacer allows.
        self.background.front().map(|_| paced)
    }

    /// Charges the pacer for a datagram of `len` bytes sent at `now`.
    pub(crate) fn sent(&mut self, now: Instant, len: usize) {
        let wire = (len + IP_UDP_OVERHEAD) as u64;
        let cost_ns = wire.saturating_mul(1_000_000_000) / self.bytes_per_sec;
        let now_ns = now.as_micros().saturating_mul(1_000);
        // Credit for idle time is capped at `burst`, so a quiet engine cannot later flood the link.
        let base = self.next_send_ns.max(now_ns.saturating_sub(self.burst.as_nanos() as u64));
        self.next_send_ns = base + cost_ns;
    }
}
