//! udpxy-compatible relay URLs: `/udp/<group>:<port>` and `/rtp/<group>:<port>` on any box.
//!
//! A feed asked for this way becomes a channel of the swarm for as long as TVs watch it: its id
//! derives from the canonical feed URL, so every box that relays the same group names the same
//! channel, the boxes that carry it elect one to join the group, and the others get its
//! segments from their peers. A feed the config already lists is served as that channel.
//!
//! What may be joined is the operator's choice: multicast groups by default (never the
//! link-local control block 224.0.0.0/24, where mDNS and routing protocols live), and unicast
//! only where the config allows it; a box relays at most `relay.max_joins` feeds at once.

use std::net::{IpAddr, Ipv4Addr};

use crate::admin::Network;

use super::input::{Encapsulation, TsInput, UdpInput};
use super::{Channel, SourceKind};

/// Why a relay URL is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayRefused {
    /// Not `<group>:<port>`.
    #[error("not a relay address: use /udp/<group>:<port>, for example /udp/239.1.1.1:5000")]
    Malformed,
    /// Relaying is switched off in the config.
    #[error("relay URLs are switched off on this box (relay.enabled)")]
    Disabled,
    /// A unicast (or link-local multicast) address the config does not allow.
    #[error("{0} is not a multicast group this box may join (relay.allow)")]
    NotAllowed(Ipv4Addr),
    /// The box already relays as many feeds as it may.
    #[error("this box already relays {0} feeds (relay.max_joins)")]
    TooMany(usize),
}

/// What the config says about relay URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayPolicy {
    /// Whether `/udp/` and `/rtp/` are served at all.
    pub enabled: bool,
    /// Addresses that may be joined.
    pub allow: Vec<Network>,
    /// Feeds relayed at once.
    pub max_joins: usize,
}

impl Default for RelayPolicy {
    fn default() -> Self {
        RelayPolicy { enabled: true, allow: default_allow(), max_joins: 8 }
    }
}

/// Every multicast group.
pub fn default_allow() -> Vec<Network> {
    vec![Network::parse("224.0.0.0/4").unwrap_or_else(|e| unreachable!("a valid network: {e}"))]
}

/// The link-local control block: never joined for a TV, whatever `allow` says.
fn is_local_control(group: Ipv4Addr) -> bool {
    group.octets()[..3] == [224, 0, 0]
}

impl RelayPolicy {
    /// The feed a relay path names (`rest` is what follows `/udp/` or `/rtp/`), if this box may
    /// join it. udpxy's forms are accepted: `239.1.1.1:5000`, `@239.1.1.1:5000` and
    /// `10.0.0.9@232.1.1.1:5000` (source-specific).
    pub fn check(&self, encapsulation: Encapsulation, rest: &str) -> Result<UdpInput, RelayRefused> {
        if !self.enabled {
            return Err(RelayRefused::Disabled);
        }
        let rest = rest.trim_end_matches('/');
        let scheme = match encapsulation {
            Encapsulation::Udp => "udp",
            Encapsulation::Rtp => "rtp",
        };
        // Options (an interface) are the operator's to set in the config, not a TV's.
        if rest.contains(['?', '&', '/']) || !rest.contains(':') {
            return Err(RelayRefused::Malformed);
        }
        let input = UdpInput::parse(&format!("{scheme}://{rest}")).map_err(|_| RelayRefused::Malformed)?;
        if input.group.is_unspecified() {
            return Err(RelayRefused::Malformed);
        }
        let allowed = self.allow.iter().any(|n| n.contains(IpAddr::V4(input.group)));
        if !allowed || is_local_control(input.group) {
            return Err(RelayRefused::NotAllowed(input.group));
        }
        Ok(input)
    }
}

/// The channel a relayed feed becomes: the same id and source on every box.
pub fn relay_channel(input: &UdpInput, segment: std::time::Duration) -> Channel {
    let scheme = match input.encapsulation {
        Encapsulation::Udp => "udp",
        Encapsulation::Rtp => "rtp",
    };
    let id = format!("{scheme}-{}-{}", input.group, input.port).replace('.', "_");
    Channel {
        name: format!("{scheme}://{}:{}", input.group, input.port),
        id,
        source: input.canonical(),
        kind: SourceKind::Ts(TsInput::Udp(input.clone())),
        always_on: false,
        number: None,
        group: Some("Relayed feeds".to_owned()),
        logo: None,
        max_bitrate: None,
        segment,
        interface: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_groups_are_relayed_and_unicast_refused() {
        let policy = RelayPolicy::default();
        let input = policy.check(Encapsulation::Udp, "239.1.2.3:5000").expect("a multicast group");
        assert_eq!(input.canonical(), "udp://@239.1.2.3:5000");
        assert!(policy.check(Encapsulation::Rtp, "@239.1.2.3:5000").is_ok());
        assert!(policy.check(Encapsulation::Udp, "10.0.0.9@232.1.1.1:5000").is_ok());
        assert_eq!(
            policy.check(Encapsulation::Udp, "8.8.8.8:53"),
            Err(RelayRefused::NotAllowed(Ipv4Addr::new(8, 8, 8, 8)))
        );
        assert_eq!(
            policy.check(Encapsulation::Udp, "224.0.0.251:5353"),
            Err(RelayRefused::NotAllowed(Ipv4Addr::new(224, 0, 0, 251))),
            "mDNS's group is never joined for a TV"
        );
        for bad in
            ["239.1.2.3", "239.1.2.3:0", ":5000", "239.1.2.3:5000?iface=eth0", "239.1.2.3:5000/x", "x:1"]
        {
            assert_eq!(policy.check(Encapsulation::Udp, bad), Err(RelayRefused::Malformed), "{bad}");
        }
        let off = RelayPolicy { enabled: false, ..RelayPolicy::default() };
        assert_eq!(off.check(Encapsulation::Udp, "239.1.2.3:5000"), Err(RelayRefused::Disabled));
    }

    #[test]
    fn the_config_may_allow_unicast_or_narrow_the_groups() {
        let policy = RelayPolicy {
            allow: vec![
                Network::parse("239.10.0.0/16").expect("valid"),
                Network::parse("10.0.0.5").expect("valid"),
            ],
            ..RelayPolicy::default()
        };
        assert!(policy.check(Encapsulation::Udp, "239.10.1.1:1234").is_ok());
        assert!(policy.check(Encapsulation::Udp, "10.0.0.5:1234").is_ok());
        assert!(policy.check(Encapsulation::Udp, "239.11.1.1:1234").is_err());
    }

    #[test]
    fn every_box_names_a_relayed_feed_alike() {
        let input = RelayPolicy::default().check(Encapsulation::Udp, "239.1.2.3:5000").expect("valid");
        let a = relay_channel(&input, std::time::Duration::from_secs(2));
        let b = relay_channel(
            &UdpInput::parse("udp://239.1.2.3:5000").expect("valid"),
            std::time::Duration::from_secs(2),
        );
        assert_eq!(a.channel_id(), b.channel_id());
        assert_eq!(a.id, "udp-239_1_2_3-5000");
    }
}
