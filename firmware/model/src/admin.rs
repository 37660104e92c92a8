//! Who may change things: actions that alter a box (identify, config reload, lifting bans) are
//! answered only for clients in the admin networks; everything else gets 403.
//!
//! By default the admin networks are loopback and the subnets of the box's own interfaces
//! (read when asked, so they follow address changes). A config can name them instead, e.g. to
//! leave out a guest VLAN of TVs: `http.admin_networks = ["192.168.10.0/24"]`.

use std::fmt;
use std::net::IpAddr;

/// An IP network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a network: write it as ADDRESS/PREFIX, e.g. 192.168.1.0/24 or fd00::/64")]
pub struct NetworkError(String);

impl Network {
    /// Parses `ADDRESS/PREFIX` (a bare address is a /32 or /128).
    pub fn parse(text: &str) -> Result<Network, NetworkError> {
        let error = || NetworkError(text.chars().take(64).collect());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| error())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(error)?,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The networks admin actions are accepted from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminNetworks {
    /// Loopback and the subnets of the box's own interfaces, as they are when asked.
    OwnSubnets,
    /// Exactly these (loopback is always allowed: whoever is on the box owns it).
    Configured(Vec<Network>),
}

impl AdminNetworks {
    /// Whether a client at `ip` may change things.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if ip.is_loopback() {
            return true;
        }
        match self {
            AdminNetworks::Configured(networks) => networks.iter().any(|n| n.contains(ip)),
            AdminNetworks::OwnSubnets => own_subnets().iter().any(|n| n.contains(ip)),
        }
    }

    /// The networks, for messages and status.
    pub fn describe(&self) -> String {
        match self {
            AdminNetworks::OwnSubnets => {
                let own: Vec<String> = own_subnets().iter().map(ToString::to_string).collect();
                format!("loopback and this box's subnets ({})", own.join(", "))
            }
            AdminNetworks::Configured(networks) => {
                let list: Vec<String> = networks.iter().map(ToString::to_string).collect();
                format!("loopback and {}", list.join(", "))
            }
        }
    }
}

/// The subnets of the box's interfaces (loopback left out: it is always allowed).
fn own_subnets() -> Vec<Network> {
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    interfaces
        .iter()
        .filter(|i| !i.is_loopback())
        .map(|i| {
            let (addr, prefix) = match &i.addr {
                if_addrs::IfAddr::V4(v4) => (IpAddr::V4(v4.ip), v4.prefixlen),
                if_addrs::IfAddr::V6(v6) => (IpAddr::V6(v6.ip), v6.prefixlen),
            };
            Network { addr, prefix }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let lan = Network::parse("192.168.10.0/24").unwrap();
        assert!(lan.contains("192.168.10.77".parse().unwrap()));
        assert!(!lan.contains("192.168.11.1".parse().unwrap()));
        assert!(lan.contains("::ffff:192.168.10.5".parse().unwrap()), "IPv4-mapped");
        assert!(!lan.contains("fd00::1".parse().unwrap()));
        let v6 = Network::parse("fd00:1::/64").unwrap();
        assert!(v6.contains("fd00:1::abcd".parse().unwrap()));
        assert!(!v6.contains("fd00:2::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert_eq!(Network::parse("10.0.0.1").unwrap().to_string(), "10.0.0.1/32");
        for bad in ["10.0.0.0/33", "10.0.0/8", "fd00::/129", "", "x/8", "10.0.0.0/-1"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_always_admin_and_guests_are_not() {
        let networks = AdminNetworks::Configured(vec![Network::parse("10.1.0.0/16").unwrap()]);
        assert!(networks.allows("127.0.0.1".parse().unwrap()));
        assert!(networks.allows("::1".parse().unwrap()));
        assert!(networks.allows("10.1.2.3".parse().unwrap()));
        assert!(!networks.allows("10.2.0.1".parse().unwrap()));
        assert!(AdminNetworks::OwnSubnets.allows("127.0.0.1".parse().unwrap()));
    }
}
