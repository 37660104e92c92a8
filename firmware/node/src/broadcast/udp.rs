//! Receiving a UDP or RTP feed: a socket bound to the group and port, the group joined on the
//! chosen interface (or any-source/source-specific), and the link watched so the box joins again
//! when the interface's address changes or it goes away and comes back.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use smol::Async;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use crate::lineup::UdpInput;

/// Kernel receive buffer asked for: about 0.8 s of a 40 Mbit/s feed, so the ingester can hash
/// and publish a segment without the kernel dropping datagrams meanwhile.
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Where a feed is joined: the interface's index and IPv4 address when named, so a change of
/// either is noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface name (`None`: the kernel's route for the group decides).
    pub name: Option<String>,
    /// Its index, when named.
    pub index: Option<u32>,
    /// Its IPv4 address, when named and it has one.
    pub address: Option<Ipv4Addr>,
}

impl Link {
    /// The current state of `interface`. A named interface that does not exist (yet) is an
    /// error: the caller retries.
    pub fn current(interface: Option<&str>) -> io::Result<Link> {
        let Some(name) = interface else {
            return Ok(Link { name: None, index: None, address: None });
        };
        let interfaces = if_addrs::get_if_addrs()?;
        let mut matching = interfaces.iter().filter(|i| i.name == name);
        let first = matching
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))?;
        let address = std::iter::once(first).chain(matching).find_map(|i| match i.ip() {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        });
        Ok(Link { name: Some(name.to_owned()), index: first.index, address })
    }

    fn describe(&self) -> String {
        self.name.as_deref().map_or_else(|| "the default route".to_owned(), |n| format!("interface {n}"))
    }
}

/// A joined feed.
pub struct Feed {
    /// The socket, readable as datagrams arrive.
    pub socket: Async<UdpSocket>,
    /// Where it was joined.
    pub link: Link,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("link", &self.link).finish_non_exhaustive()
    }
}

/// Opens `input` on `link`: binds the port (to the group, for multicast, so other groups on the
/// same port stay out) and joins the group. Unicast feeds bind the port on `input.group`
/// (0.0.0.0 for every address).
pub fn open(input: &UdpInput, link: Link) -> io::Result<Feed> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several sockets (a re-join, another process such as a recorder) may listen to one group.
    socket.set_reuse_address(true)?;
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    let context =
        |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what} {}: {e}", input.address()));
    if input.is_multicast() {
        // Without this Linux delivers every group joined on the port by any socket on the box.
        socket.set_multicast_all_v4(false).map_err(|e| context("IP_MULTICAST_ALL for", e))?;
        socket.bind(&SocketAddr::from(input.address()).into()).map_err(|e| context("bind", e))?;
        let interface_address = link.address.unwrap_or(Ipv4Addr::UNSPECIFIED);
        match (input.source, link.index) {
            (Some(source), _) => socket.join_ssm_v4(&source, &input.group, &interface_address),
            (None, Some(index)) => {
                socket.join_multicast_v4_n(&input.group, &InterfaceIndexOrAddress::Index(index))
            }
            (None, None) => socket.join_multicast_v4(&input.group, &interface_address),
        }
        .map_err(|e| context(&format!("join on {}", link.describe()), e))?;
    } else {
        socket.bind(&SocketAddr::from(input.address()).into()).map_err(|e| context("bind", e))?;
    }
    log::info!(
        "receiving {} on {} (receive buffer {} KiB)",
        input.canonical(),
        link.describe(),
        socket.recv_buffer_size().map_or(0, |b| b / 1024)
    );
    Ok(Feed { socket: Async::new(UdpSocket::from(socket))?, link })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unicast_feed_receives_on_its_port() {
        let input = UdpInput::parse("udp://127.0.0.1:0").map(|_| ()).err();
        assert!(input.is_some(), "port 0 is refused by the parser");
        // Bind a free port first to learn one, then open a feed on it.
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        let input = UdpInput::parse(&format!("udp://127.0.0.1:{port}")).expect("valid");
        let feed = open(&input, Link::current(None).expect("no interface needed")).expect("opens");
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sender.send_to(&[0x47; 188], ("127.0.0.1", port)).expect("send");
        let mut buf = [0u8; 2048];
        let len = smol::block_on(feed.socket.recv(&mut buf)).expect("receives");
        assert_eq!(len, 188);
    }

    #[test]
    fn a_missing_interface_is_an_error_to_retry() {
        assert!(Link::current(Some("nosuchif0")).is_err());
        assert_eq!(Link::current(Some("lo")).expect("lo exists").address, Some(Ipv4Addr::LOCALHOST));
    }
}
