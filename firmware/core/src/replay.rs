//! Replay protection: a sliding window over packet numbers, per peer session.
//!
//! The same scheme as IPsec and WireGuard: remember the highest packet number seen and a bitmap
//! of the [`WINDOW`] numbers below it. A number already seen, or older than the window, is a
//! replay (or hopelessly late) and is dropped.
//!
//! ```
//! use shoal_core::ReplayWindow;
//! let mut w = ReplayWindow::new();
//! assert!(w.accept(5));
//! assert!(w.accept(3));
//! assert!(!w.accept(5));
//! ```

/// How far behind the newest packet a reordered packet may still arrive. Reordering on a LAN is
/// a few packets deep; 256 leaves room for bursts at line rate.
pub const WINDOW: u64 = 256;

/// Packet numbers seen in one session.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    /// Highest packet number accepted, plus one (0: none yet).
    next: u64,
    /// Bit `i` set: packet `next - 1 - i` was seen.
    seen: [u64; (WINDOW / 64) as usize],
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub const fn new() -> Self {
        ReplayWindow { next: 0, seen: [0; (WINDOW / 64) as usize] }
    }

    /// A window for a session confirmed by packet `packet`: that packet and every earlier one
    /// count as seen, so nothing sent before confirmation can be replayed into the session.
    pub fn after(packet: u64) -> Self {
        ReplayWindow { next: packet.saturating_add(1), seen: [u64::MAX; (WINDOW / 64) as usize] }
    }

    /// Records `packet`; `false` if it was seen before or is older than the window.
    pub fn accept(&mut self, packet: u64) -> bool {
        if packet == u64::MAX {
            return false;
        }
        if packet >= self.next {
            let shift = packet + 1 - self.next;
            self.shift(shift);
            self.next = packet + 1;
            self.set(0);
            return true;
        }
        let age = self.next - 1 - packet;
        if age >= WINDOW {
            return false;
        }
        if self.get(age) {
            return false;
        }
        self.set(age);
        true
    }

    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.seen = [0; (WINDOW / 64) as usize];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        let n = self.seen.len();
        for i in (0..n).rev() {
            let src = i.checked_sub(words);
            let hi = src.map_or(0, |s| self.seen[s]);
            let lo = src.and_then(|s| s.checked_sub(1)).map_or(0, |s| self.seen[s]);
            self.seen[i] = if bits == 0 { hi } else { (hi << bits) | (lo >> (64 - bits)) };
        }
    }

    fn get(&self, age: u64) -> bool {
        self.seen[(age / 64) as usize] & (1 << (age % 64)) != 0
    }

    fn set(&mut self, age: u64) {
        self.seen[(age / 64) as usize] |= 1 << (age % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_window_after_confirmation_refuses_everything_earlier() {
        let mut w = ReplayWindow::after(500);
        assert!(!w.accept(500));
        assert!(!w.accept(499));
        assert!(!w.accept(3));
        assert!(w.accept(501));
        assert!(w.accept(900));
    }

    proptest! {
        /// Against a model that remembers everything: accept exactly the new numbers that are
        /// within the window of the highest seen.
        #[test]
        fn matches_a_model(packets in proptest::collection::vec(0u64..1200, 0..400)) {
            let mut w = ReplayWindow::new();
            let mut seen = BTreeSet::new();
            let mut max: Option<u64> = None;
            for p in packets {
                let fresh = !seen.contains(&p);
                let in_window = max.is_none_or(|m| p + WINDOW > m);
                let expect = fresh && in_window;
                prop_assert_eq!(w.accept(p), expect, "packet {}", p);
                if expect {
                    seen.insert(p);
                    max = Some(max.map_or(p, |m| m.max(p)));
                }
            }
        }
    }
}
