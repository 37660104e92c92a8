//! Boxes started in this test process through [`shoal::app::start`], the function `shoal run`
//! and `shoal demo` use, on 127.0.0.1 with each other's addresses given (no mDNS, so no
//! namespace is needed and nothing leaves loopback). A TV that asks one box for a cold channel
//! gets a playlist as soon as the swarm has a segment (the wait wakes on the published window),
//! one box fetches the channel for both, and both statuses say so by field.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use shoal::app::{self, BoxSpec, Keys, Peers, Running};
use shoal::config::Config;
use shoal::discovery::DiscoveryEvent;
use shoal::lineup::OriginUrl;
use shoal::model::status::{ChannelState, Status, SwarmReport};
use shoal::origin::Fetcher;
use shoal_core::{Authenticator, Identity, NetworkKey};

/// Every wait of this test is bounded by this.
const LIMIT: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
[[channel]]
id = "pattern"
name = "Test pattern"
source = "test://pattern?bitrate=400000&duration=1"
"#;

struct TwoBoxes {
    running: Vec<Running>,
    http: Vec<SocketAddr>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Two boxes on loopback ports the kernel picks, each told of the other.
fn start_two() -> TwoBoxes {
    let key = NetworkKey::from_bytes([42; 32]);
    let identities = [Identity::from_seed([1; 32]), Identity::from_seed([2; 32])];
    let node_ids: Vec<_> = identities.iter().map(Identity::node_id).collect();
    let sockets: Vec<_> = (0..2).map(|_| app::listen_udp(loopback(0)).expect("UDP on loopback")).collect();
    let listeners: Vec<_> =
        (0..2).map(|_| app::listen_http(loopback(0)).expect("HTTP on loopback")).collect();
    let udp: Vec<SocketAddr> = sockets.iter().map(|s| s.get_ref().local_addr().expect("bound")).collect();
    let http: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().expect("bound")).collect();
    let mut config = Config::parse(CONFIG).expect("a valid config");
    config.http_bind = Ipv4Addr::LOCALHOST.into();
    config.cache = None;
    let mut running = Vec::new();
    for (i, ((socket, listener), identity)) in sockets.into_iter().zip(listeners).zip(identities).enumerate()
    {
        let other = 1 - i;
        let peer = DiscoveryEvent::PeerFound {
            node_id: node_ids[other],
            addrs: vec![udp[other]],
            http_port: http[other].port(),
            board: "test".to_owned(),
        };
        let spec = BoxSpec {
            config: config.clone(),
            config_path: None,
            keys: Keys { identity, auth: Authenticator::new(&key), fingerprint: key.fingerprint() },
            socket,
            listener,
            peers: Peers::Known(vec![peer]),
            status_led: false,
        };
        running.push(app::start(spec).expect("the box starts"));
    }
    TwoBoxes { running, http }
}

async fn get(addr: SocketAddr, path: &str) -> Result<Vec<u8>, String> {
    let fetcher = Fetcher::new(None, LIMIT).map_err(|e| e.to_string())?;
    let url = OriginUrl::parse(&format!("http://{addr}{path}")).map_err(|e| e.to_string())?;
    let fetched = fetcher.session().get(&url, None, 16 << 20).await.map_err(|e| e.to_string())?;
    Ok(fetched.bytes)
}

async fn status(addr: SocketAddr) -> Status {
    let bytes = get(addr, "/api/status").await.expect("a status");
    serde_json::from_slice(&bytes).expect("the status reads as a Status")
}

#[test]
fn two_boxes_started_in_process_share_one_fetch_of_a_cold_channel() {
    smol::block_on(async {
        let boxes = start_two();
        // Both see each other before a TV asks.
        let deadline = Instant::now() + LIMIT;
        loop {
            let a = status(boxes.http[0]).await;
            let b = status(boxes.http[1]).await;
            if a.alive_peers().count() == 1 && b.alive_peers().count() == 1 {
                assert_eq!(a.channel("pattern").map(|c| c.state), Some(ChannelState::Idle));
                break;
            }
            assert!(Instant::now() < deadline, "the boxes did not see each other: {a:?} {b:?}");
            smol::Timer::after(Duration::from_millis(100)).await;
        }
        // A TV on box 1 asks for the idle channel: the playlist waits for the first segment.
        let asked = Instant::now();
        let playlist = get(boxes.http[1], "/hls/pattern/index.m3u8").await.expect("a playlist, not a 503");
        let playlist = String::from_utf8(playlist).expect("text");
        assert!(playlist.starts_with("#EXTM3U") && playlist.contains("#EXTINF"), "{playlist}");
        assert!(asked.elapsed() < Duration::from_secs(8), "the cold start took {:?}", asked.elapsed());
        let first = playlist.lines().find(|l| l.ends_with(".ts")).expect("a segment URI").to_owned();
        let segment = get(boxes.http[1], &format!("/hls/pattern/{first}")).await.expect("the segment");
        assert_eq!(segment.len(), 400_000 / 8, "one second at 400 kbit/s");
        // A few more segments cross the swarm; then exactly one box is the ingester, and the
        // other received what it serves from its peer.
        smol::Timer::after(Duration::from_secs(4)).await;
        let a = status(boxes.http[0]).await;
        let b = status(boxes.http[1]).await;
        let (ca, cb) = (a.channel("pattern").expect("listed"), b.channel("pattern").expect("listed"));
        assert_eq!(u8::from(ca.ingesting) + u8::from(cb.ingesting), 1, "one fetcher: {ca:?} {cb:?}");
        let (ingester, other) = if ca.ingesting { (ca, cb) } else { (cb, ca) };
        assert!(ingester.segments_from_origin >= 3, "{ingester:?}");
        assert_eq!(other.segments_from_origin, 0, "{other:?}");
        assert!(other.segments_from_peers >= 2, "{other:?}");
        assert_eq!(cb.viewers, 1, "the TV on box 1, counted once");
        assert!(cb.wanted_here && cb.bytes_to_tvs >= 50_000, "{cb:?}");
        assert_eq!(cb.state, ChannelState::Live);
        // The swarm view from box 0 covers both boxes and matches their own figures.
        let swarm: SwarmReport =
            serde_json::from_slice(&get(boxes.http[0], "/api/swarm").await.expect("a report"))
                .expect("reads");
        assert_eq!(swarm.boxes.len(), 2);
        assert!(swarm.boxes.iter().all(|b| b.reachable));
        let channel = swarm.channels.iter().find(|c| c.id == "pattern").expect("the channel");
        assert!(channel.ingester.is_some());
        assert_eq!(channel.figures.traffic.viewers, 1);
        assert!(channel.figures.figures.origin_fetches_per_segment.is_some_and(|f| f <= 1.0));
        for running in boxes.running {
            running.shutdown().await;
        }
    });
}
