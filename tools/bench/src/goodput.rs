//! UDP goodput of the swarm protocol between two boxes on loopback, against `iperf3 -u` with the
//! same datagram size, measured in the same run.
//!
//! `cargo run --profile bench -p shoal-bench --bin goodput -- [--seconds S] [--datagram BYTES] [--rates MBIT,...]`
//! (`GOODPUT_DEBUG=1` prints both engines' counters.)
//!
//! The engine has no congestion control: a box paces itself to its configured upload rate. So
//! the run sweeps the pacing rate (as an operator would tune `upload_mbit`) and reports the best
//! sustained goodput; above it the receiver's core saturates, its socket overflows and the
//! protocol spends its time repairing.
//!
//! Two engines, each on its own thread (one core each) and its own UDP socket on 127.0.0.1. The
//! ingester publishes 4 MiB segments back to back (keeping a few in flight); the other box
//! receives, verifies every block (SHA-256) and every datagram (HMAC). Goodput is verified
//! segment bytes per second at the receiver. The comparison is iperf3's UDP receiver rate for
//! the same payload size with no pacing (`-b 0`): a plain blaster with no integrity checks.
//! DESIGN.md §11's floor: Shoal ≥ 0.5 × iperf3.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_core::{
    Authenticator, ChannelId, Config, Engine, Event, Identity, Instant, LineupEntry, NetworkKey, SegmentInfo,
};

const SEGMENT: usize = 4 * 1024 * 1024;
const IN_FLIGHT: u64 = 3;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 10);
    let datagram = arg(&args, "--datagram", 1232) as usize;
    println!("command: cargo run --profile bench -p shoal-bench --bin goodput -- --seconds {seconds} --datagram {datagram}");
    println!(
        "setup: two engines on 127.0.0.1, one thread each, {datagram}-byte datagrams, HMAC-SHA256 per datagram, \
         SHA-256 per 16 KiB block, {} MiB segments; machine: {} cores",
        SEGMENT >> 20,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut shoal: f64 = 0.0;
    // `--rates 500,1000` limits the sweep of pacing rates (Mbit/s).
    let rates: Vec<u64> = args
        .iter()
        .position(|a| a == "--rates")
        .and_then(|i| args.get(i + 1))
        .map(|r| r.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![250, 500, 1000, 2000, 4000]);
    for rate_mbit in rates {
        match shoal_goodput(Duration::from_secs(seconds), datagram, rate_mbit) {
            Ok(rate) => {
                println!(
                    "shoal paced at {rate_mbit} Mbit/s: {:.1} Mbit/s of verified segment data",
                    rate * 8.0 / 1e6
                );
                shoal = shoal.max(rate);
            }
            Err(e) => {
                eprintln!("goodput: shoal run failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("shoal, best: {:.1} Mbit/s", shoal * 8.0 / 1e6);
    let iperf = match iperf_goodput(seconds, datagram) {
        Ok(rate) => rate,
        Err(e) => {
            eprintln!("goodput: iperf3 run failed: {e} (apt-get install iperf3)");
            return ExitCode::FAILURE;
        }
    };
    println!("iperf3: {:.1} Mbit/s received (UDP, -b 0, -l {datagram})", iperf * 8.0 / 1e6);
    let ratio = shoal / iperf;
    println!("ratio shoal / iperf3: {ratio:.2} (floor 0.5)");
    if ratio >= 0.5 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn engine(seed: u8, datagram: usize, rate_mbit: u64, now: Instant) -> Engine {
    let auth = Authenticator::new(&NetworkKey::from_bytes([7; 32]));
    let mut config = Config::new(Identity::from_seed([seed; 32]), auth);
    config.seed = u64::from(seed);
    config.max_datagram = datagram;
    config.upload_rate = rate_mbit * 1_000_000 / 8;
    // Segments here are published as fast as they are delivered, not at a live rate: a target
    // duration longer than the run keeps the standby from deposing the ingester as late.
    config.default_target_duration = Duration::from_secs(60);
    config.store_budget = 64 * 1024 * 1024;
    config.lineup = vec![LineupEntry { channel: channel(), always_on: true }];
    Engine::new(config, now).expect("valid settings")
}

fn channel() -> ChannelId {
    ChannelId::derive("bench", "bench://goodput")
}

/// Bytes per second of verified segments received.
fn shoal_goodput(duration: Duration, datagram: usize, rate_mbit: u64) -> std::io::Result<f64> {
    let start = std::time::Instant::now();
    let clock = move || Instant::from_micros(start.elapsed().as_micros() as u64);
    let sockets = [bind()?, bind()?];
    let addrs = [sockets[0].local_addr()?, sockets[1].local_addr()?];
    let engines = [engine(1, datagram, rate_mbit, clock()), engine(2, datagram, rate_mbit, clock())];
    let ids = [engines[0].node_id(), engines[1].node_id()];
    let received = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicU64::new(u64::MAX));
    let mut threads = Vec::new();
    for (i, (mut engine, socket)) in engines.into_iter().zip(sockets).enumerate() {
        let peer = (ids[1 - i], addrs[1 - i]);
        let (received, completed, stop, measuring) =
            (received.clone(), completed.clone(), stop.clone(), measuring.clone());
        threads.push(std::thread::spawn(move || -> std::io::Result<()> {
            engine.add_peer(clock(), peer.0, peer.1);
            let mut buf = vec![0u8; 65_536];
            let mut out = vec![0u8; 65_536];
            let segment: Vec<u8> =
                (0..SEGMENT).map(|k| (k as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect();
            let mut next_seq = 0u64;
            let mut next_debug = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if std::env::var_os("GOODPUT_DEBUG").is_some() && std::time::Instant::now() >= next_debug {
                    next_debug += Duration::from_millis(250);
                    eprintln!(
                        "{:?} box {i}: out {} in {} timeout {:?} seg {}",
                        clock(),
                        engine.counters().datagrams_out,
                        engine.counters().datagrams_in,
                        engine.poll_timeout(),
                        engine.counters().segments_received
                    );
                }
                // Receive whatever is there (bounded), then let the engine act.
                // Wait for a datagram no longer than the engine's next timeout (its pacer included),
                // as the daemon's event loop does; then take what else is queued.
                let wait = engine.poll_timeout().map_or(Duration::from_millis(5), |t| {
                    Duration::from_micros(t.as_micros().saturating_sub(clock().as_micros()))
                });
                let wait = wait.min(Duration::from_millis(5));
                // SO_RCVTIMEO counts in jiffies (4 ms here): below a few milliseconds, poll instead.
                if wait < Duration::from_millis(4) {
                    socket.set_nonblocking(true)?;
                } else {
                    socket.set_nonblocking(false)?;
                    socket.set_read_timeout(Some(wait))?;
                }
                for _ in 0..64 {
                    match socket.recv_from(&mut buf) {
                        Ok((len, from)) => engine.handle_datagram(clock(), from, &buf[..len]),
                        Err(_) => break,
                    }
                    socket.set_nonblocking(true)?;
                }
                engine.handle_timeout(clock());
                // Publish only once the two boxes see each other, so the election has settled.
                if engine.is_ingesting(channel())
                    && engine.peers().any(|p| p.alive)
                    && next_seq < completed.load(Ordering::Relaxed) + IN_FLIGHT
                {
                    let info = SegmentInfo::new(channel(), next_seq, Duration::from_secs(60));
                    if engine.publish_segment(clock(), info, &segment).is_ok() {
                        next_seq += 1;
                    }
                }
                while let Some(t) = engine.poll_transmit(clock(), &mut out) {
                    send(&socket, &out[..t.len], t.destination);
                }
                while let Some(event) = engine.poll_event() {
                    if let Event::SegmentComplete { seq, .. } = event {
                        // Count segments this box received, not those it published.
                        if seq >= next_seq {
                            completed.store(seq + 1, Ordering::Relaxed);
                            if seq >= measuring.load(Ordering::Relaxed) {
                                received.fetch_add(SEGMENT as u64, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            if std::env::var_os("GOODPUT_DEBUG").is_some() {
                eprintln!(
                    "box {i} {:?}: ingesting {} election {:?} peers {:?} next_seq {next_seq} {:?}",
                    engine.node_id(),
                    engine.is_ingesting(channel()),
                    engine.election(channel()),
                    engine.peers().collect::<Vec<_>>(),
                    engine.counters()
                );
            }
            Ok(())
        }));
    }
    // Warm up (handshake, first segments), then measure whole segments completed in the window.
    std::thread::sleep(Duration::from_secs(1));
    let first = completed.load(Ordering::Relaxed);
    measuring.store(first, Ordering::Relaxed);
    let t0 = std::time::Instant::now();
    std::thread::sleep(duration);
    let bytes = received.load(Ordering::Relaxed);
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| std::io::Error::other("engine thread panicked"))??;
    }
    Ok(bytes as f64 / elapsed.as_secs_f64())
}

/// A loopback socket with the daemon's buffer sizes.
fn bind() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(4 * 1024 * 1024);
    let _ = socket.set_send_buffer_size(1024 * 1024);
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    Ok(socket.into())
}

fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    // A full socket buffer drops the datagram; the protocol repairs it, as on a real link.
    let _ = socket.send_to(bytes, to);
}

/// iperf3's UDP receive rate in bytes per second.
fn iperf_goodput(seconds: u64, datagram: usize) -> Result<f64, String> {
    let port = "5299";
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-p", port, "-B", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(500));
    let output = Command::new("timeout")
        .args([&(seconds + 20).to_string(), "iperf3", "-c", "127.0.0.1", "-p", port, "-u", "-b", "0"])
        .args(["-l", &datagram.to_string(), "-t", &seconds.to_string(), "-J"])
        .output()
        .map_err(|e| e.to_string())?;
    let _ = server.wait();
    let text = String::from_utf8_lossy(&output.stdout);
    // The receiver's figure: end.sum_received.bits_per_second (iperf3 ≥ 3.11), else end.sum.
    let rate = json_number_after(&text, "\"sum_received\"")
        .or_else(|| json_number_after(&text, "\"sum\""))
        .ok_or_else(|| {
        format!("no rate in iperf3 output: {}", text.chars().take(300).collect::<String>())
    })?;
    Ok(rate / 8.0)
}

/// The first `"bits_per_second": N` after `key` in iperf3's JSON (no JSON dependency for this).
fn json_number_after(text: &str, key: &str) -> Option<f64> {
    let at = text.rfind(key)?;
    let rest = &text[at..];
    let field = rest.find("\"bits_per_second\"")?;
    let value = rest[field + 17..].trim_start_matches([':', ' ']);
    let end = value.find([',', '\n', '}'])?;
    value[..end].trim().parse().ok()
}
