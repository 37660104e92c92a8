//! Datagrams out: the next control message or fragment, paced.

use super::sender::{Control, Payload};
use super::{Engine, Transmit};
use crate::wire::{self, Data, Header, Hello, Ingesting, ManifestPart, Message, Ping};
use crate::Instant;

impl Engine {
    /// The next datagram to send, written into `buf` (at least the configured `max_datagram`
    /// bytes; a smaller buffer limits datagrams to its size). `None` when nothing is due: either
    /// nothing is queued or the pacer holds it until [`Engine::poll_timeout`].
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let limit = buf.len().min(self.config.max_datagram);
        let buf = &mut buf[..limit];
        loop {
            if !self.sender.may_send(now) {
                return None;
            }
            let sent = if let Some((peer, control)) = self.sender.next_control(now) {
                self.encode_control(now, peer, control, buf)
            } else if self.sender.task_count() > 0 {
                self.encode_fragment(buf)
            } else {
                return None;
            };
            if let Some(transmit) = sent {
                self.sender.sent(now, transmit.len);
                self.counters.datagrams_out += 1;
                self.counters.bytes_out += transmit.len as u64;
                return Some(transmit);
            }
        }
    }

    fn encode_control(
        &mut self,
        now: Instant,
        id: crate::NodeId,
        control: Control,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        // Where it goes when not to the peer's address: a probe, to the address it probes.
        let mut probed = None;
        let message = match control {
            Control::Hello | Control::Probe => {
                let peer = self.peers.get(&id)?;
                let challenge = match control {
                    Control::Probe => {
                        let (addr, challenge) = peer.probe?;
                        probed = Some(addr);
                        challenge
                    }
                    _ => peer.our_challenge,
                };
                Message::Hello(Hello {
                    public_key: self.public_key,
                    challenge,
                    echo: peer.their_challenge,
                    confirmed: peer.session.as_ref().map(|s| s.id),
                    lineup: self.channels.keys().copied().collect(),
                })
            }
            Control::Ping => {
                let wants = self
                    .channels
                    .iter()
                    .filter(|(_, c)| c.wanted)
                    .map(|(&c, _)| c)
                    .take(wire::MAX_STATUS_CHANNELS)
                    .collect();
                let ingesting = self
                    .channels
                    .iter()
                    .filter(|(_, c)| c.ingesting)
                    .map(|(&channel, c)| Ingesting {
                        channel,
                        newest: self.store.have(channel).map(|h| h.0),
                        origin_failing: c.origin_failing,
                    })
                    .take(wire::MAX_STATUS_CHANNELS)
                    .collect();
                Message::Ping(Ping { time: now.as_micros(), wants, ingesting })
            }
            Control::Pong { echo } => Message::Pong { echo },
            Control::Goodbye => Message::Goodbye,
            Control::Have(have) => Message::Have(have),
            Control::Request(request) => Message::Request(request),
            Control::Reject(reject) => Message::Reject(reject),
            Control::Vouch(vouch) => Message::Vouch(vouch),
        };
        let peer = self.peers.get_mut(&id)?;
        let header =
            Header { sender: self.me, receiver: peer.id, session: self.session, packet: peer.tx_packet };
        match wire::encode(&self.config.auth, &header, &message, buf) {
            Ok(len) => {
                peer.tx_packet += 1;
                peer.bytes_out += len as u64;
                Some(Transmit { destination: probed.unwrap_or(peer.addr), len })
            }
            Err(_) => {
                log::error!("control message does not fit in {} bytes", buf.len());
                None
            }
        }
    }

    /// Cuts the next fragment of the most urgent task; `None` if that task cannot go on (its
    /// segment was evicted or its peer is gone), after dropping it.
    fn encode_fragment(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (_, task) = self.sender.front_task()?;
        let (peer_id, channel, seq, tag, payload) =
            (task.peer, task.channel, task.seq, task.tag, task.payload);
        let next_range = task.remaining.first();
        let written = self.write_fragment(buf, peer_id, channel, seq, tag, payload, next_range);
        match written {
            Some((transmit, start, end)) => {
                if let Some((_, task)) = self.sender.front_task() {
                    task.remaining.remove(start, end);
                    if task.remaining.is_empty() {
                        self.sender.finish_front();
                    }
                }
                Some(transmit)
            }
            None => {
                self.sender.finish_front();
                None
            }
        }
    }

    /// Writes bytes from `range` of a manifest or block to `peer` into `buf`; returns the
    /// datagram and the byte range it carried.
    #[allow(clippy::too_many_arguments)]
    fn write_fragment(
        &mut self,
        buf: &mut [u8],
        peer_id: crate::NodeId,
        channel: crate::ChannelId,
        seq: u64,
        tag: u32,
        payload: Payload,
        range: Option<(u16, u16)>,
    ) -> Option<(Transmit, u16, u16)> {
        let (start, end) = range?;
        let peer = self.peers.get_mut(&peer_id)?;
        let segment = self.store.segment(channel, seq).filter(|s| s.manifest().tag() == tag)?;
        let source: &[u8] = match payload {
            Payload::Manifest => segment.manifest().encoded(),
            Payload::Block(index) => segment.block(usize::from(index))?,
        };
        let header =
            Header { sender: self.me, receiver: peer.id, session: self.session, packet: peer.tx_packet };
        let (start, end) = (usize::from(start), usize::from(end).min(source.len()));
        if start >= end {
            return None;
        }
        let signer = segment.manifest().manifest().signer;
        let message_with = |bytes| match payload {
            Payload::Manifest => Message::ManifestPart(ManifestPart {
                channel,
                seq,
                signer,
                total: source.len() as u32,
                offset: start as u32,
                bytes,
            }),
            Payload::Block(index) => {
                Message::Data(Data { channel, seq, tag, block: index, offset: start as u16, bytes })
            }
        };
        // Room for the payload: the datagram minus framing, the message without payload, and
        // the payload's length prefix (at most 3 bytes).
        let overhead = wire::FRAMING_LEN + wire::body_len(&header, &message_with(&[])) + 3;
        let room = buf.len().saturating_sub(overhead);
        if room == 0 {
            return None;
        }
        let end = end.min(start + room);
        let len = wire::encode(&self.config.auth, &header, &message_with(&source[start..end]), buf).ok()?;
        peer.tx_packet += 1;
        peer.bytes_out += len as u64;
        // Both fit in u16: manifests and blocks are at most u16::MAX bytes.
        Some((Transmit { destination: peer.addr, len }, start as u16, end as u16))
    }
}
