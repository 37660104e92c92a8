//! `cargo xtask mixed-swarm`: boxes of three architectures in one swarm (issue 6, item 5).
//!
//! The bundle binaries of minipc-x86_64 (natively), rpi4 (aarch64, under qemu-user with
//! `-cpu cortex-a72`) and rpi-zero-w (ARMv6, under qemu-user with `-cpu arm1176`) run as three
//! hosts of a [`Bed`]: network namespaces on a bridge, nothing in the machine's own namespace
//! (`docs/TESTING.md`, "Network safety"). qemu-user is version 10 ([`toolchain::modern_qemu`]): Debian 12's 7.2 does
//! not emulate `IP_MULTICAST_IF`, which mdns-sd sets; under it no box ever finds another.
//!
//! Every box carries the same three always-on test-pattern channels, named so that the
//! swarm's election makes each box the ingester of exactly one: the boxes' identities are
//! seeded here, so their node ids, and so the election (`shoal_core::engine::election::rank`),
//! are known before they start. The run passes when the boxes found each other over mDNS, each
//! reports the board its binary was built for, each holds segments it received from the swarm
//! (`segments_from_peers`) for both channels another box publishes, and boxes holding the same
//! segment hold the same bytes. So an ARMv6 box verifies what an aarch64 and an x86_64 box
//! signed, and the other way round.
//!
//! Every process is bounded: the daemons by the bed's process lifetime ([`LIFETIME`]), every
//! wait by its own limit; dropping the bed kills what is left by PID and deletes the namespaces.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_core::engine::election;
use shoal_core::{ChannelId, Identity, NodeId};
use shoal_testbed::Bed;

use crate::dist::Bundle;
use crate::toolchain;

/// The longest any daemon may run: the whole test normally takes well under a minute.
const LIFETIME: Duration = Duration::from_secs(180);

/// How long the boxes have to find each other. Natively this takes about a second; under qemu
/// the emulated boxes need a few seconds to start and to finish mDNS probing.
const DISCOVERY_LIMIT: Duration = Duration::from_secs(60);

/// How long, after discovery, every box has to receive segments of both other boxes' channels.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(90);

/// Segments each box must have received from the swarm, per channel it does not ingest: more
/// than one, so a box cannot pass on a lucky first segment.
const MIN_FROM_PEERS: u64 = 2;

/// One-second segments at 300 kbit/s: cheap for an emulated ARMv6 core, and segments come often.
const SOURCE: &str = "test://pattern?bitrate=300000&duration=1";

const UDP_PORT: u16 = 7470;
const HTTP_PORT: u16 = 7471;

/// One box of the swarm.
struct Member {
    board: String,
    /// The program to start, and its arguments before `run --config ...`.
    program: PathBuf,
    prefix: Vec<String>,
    /// What the log calls it: `x86_64`, `aarch64 under qemu 10 -cpu cortex-a72`, ...
    how: String,
    node: NodeId,
}

/// Runs the swarm with the x86_64 bundle, the aarch64 one and the first 32-bit ARM one of
/// `bundles`.
pub(crate) fn mixed_swarm(root: &Path, bundles: &[Bundle]) -> Result<(), String> {
    if let Some(reason) = shoal_testbed::skip_reason() {
        return Err(format!(
            "the mixed swarm needs network namespaces, which this machine cannot make: {reason}"
        ));
    }
    let pick = |wanted: fn(&str) -> bool, what: &str| {
        bundles
            .iter()
            .find(|b| wanted(b.board.arch()))
            .ok_or_else(|| format!("the mixed swarm needs {what} bundle (boards given: {})", names(bundles)))
    };
    let chosen = [
        pick(|a| a == "x86_64", "an x86_64")?,
        pick(|a| a == "aarch64", "an aarch64")?,
        pick(|a| a.starts_with("arm"), "a 32-bit ARM")?,
    ];
    let qemu_dir = toolchain::modern_qemu(root)?;
    let dir = root.join("target/mixed-swarm");
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;

    // The deployment's network key, made by the x86_64 binary (no network involved).
    let key = dir.join("network.key");
    let keygen = Command::new(&chosen[0].binary).arg("keygen").arg("--out").arg(&key).output();
    if !keygen.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(format!("`shoal keygen --out {}` failed: {keygen:?}", key.display()));
    }

    let mut members = Vec::new();
    for (i, bundle) in chosen.iter().enumerate() {
        // Fixed seeds: fixed node ids, so a fixed election and a repeatable run.
        let seed = [0x51 + i as u8; 32];
        let state = dir.join(format!("state{i}"));
        write_private(&state.join("identity.key"), &format!("{}\n", hex(&seed)))?;
        let node = Identity::from_seed(seed).node_id();
        let (program, prefix, how) = match bundle.board.qemu() {
            None => (bundle.binary.clone(), Vec::new(), bundle.board.arch().to_owned()),
            Some(qemu) => {
                // qemu-aarch64-static → qemu-aarch64 of the modern qemu.
                let program = qemu_dir.join(qemu.trim_end_matches("-static"));
                let cpu = bundle.board.qemu_cpu.clone().unwrap_or_else(|| "max".to_owned());
                let how = format!("{} under {} -cpu {cpu}", bundle.board.arch(), program.display());
                (program, vec!["-cpu".to_owned(), cpu, bundle.binary.to_string_lossy().into_owned()], how)
            }
        };
        members.push(Member { board: bundle.board.name.clone(), program, prefix, how, node });
    }
    let nodes: Vec<NodeId> = members.iter().map(|m| m.node).collect();
    let channels: Vec<String> =
        (0..members.len()).map(|i| channel_for(&members[i].board, &nodes, i)).collect();
    let lineup: String = channels
        .iter()
        .map(|id| {
            format!(
                "\n[[channel]]\nid = \"{id}\"\nname = \"{id}\"\nsource = \"{SOURCE}\"\nalways_on = true\n"
            )
        })
        .collect();

    let mut bed = Bed::new(members.len()).map_err(|e| format!("building the test bed: {e}"))?;
    bed.set_process_lifetime(LIFETIME);
    for (i, member) in members.iter().enumerate() {
        let config = dir.join(format!("box{i}.toml"));
        // No `board`: each binary reports the board it was built for. No GPIO in a namespace.
        // Three channels, whatever the board's own limit (the Pi Zero W's is two).
        let text = format!(
            "state_dir = \"{state}\"\nnetwork_key_file = \"{key}\"\n\
             [net]\nudp_port = {UDP_PORT}\nhttp_port = {HTTP_PORT}\ninterfaces = [\"eth0\"]\n\
             [store]\nmax_channels = {count}\n[gpio]\nled = \"none\"\nbutton = \"none\"\n\
             [log]\nlevel = \"debug\"\n{lineup}",
            state = dir.join(format!("state{i}")).display(),
            key = key.display(),
            count = channels.len(),
        );
        fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = dir.join(format!("box{i}.log"));
        let config = config.to_string_lossy().into_owned();
        let mut args: Vec<&str> = member.prefix.iter().map(String::as_str).collect();
        args.extend(["run", "--config", &config]);
        println!(
            "    box {i} at {}: {} ({}), node {:#}, publishes {}",
            bed.ip(i),
            member.board,
            member.how,
            member.node,
            channels[i]
        );
        bed.spawn(i, &member.program, &args, &[], &log).map_err(|e| format!("starting box {i}: {e}"))?;
    }

    let start = Instant::now();
    let found = wait_all(&bed, DISCOVERY_LIMIT, |_, s| alive_peers(s) == members.len() - 1);
    if !found {
        return Err(format!(
            "the boxes did not all find each other within {DISCOVERY_LIMIT:?} (the ARM ones ran \
             under the qemu-user in {}; one that does not emulate IP_MULTICAST_IF, such as \
             Debian 12's 7.2, fails like this)\n{}",
            qemu_dir.display(),
            logs(&dir, &bed)
        ));
    }
    println!("    every box sees the other two after {:.1} s", start.elapsed().as_secs_f64());
    for (i, member) in members.iter().enumerate() {
        let status = status(&bed, i).ok_or_else(|| format!("box {i} stopped answering"))?;
        let board = status.pointer("/box/board").and_then(Value::as_str).unwrap_or("?");
        if board != member.board {
            return Err(format!(
                "box {i} reports board `{board}`, its binary was built for `{}`",
                member.board
            ));
        }
    }
    // The settled swarm: box i ingests exactly its own channel and holds segments of the other
    // two that came from the swarm. (Right after discovery a box may still ingest every channel,
    // until the others' hellos say they carry them too; that is not yet the swarm.)
    let exchanged = wait_all(&bed, EXCHANGE_LIMIT, |i, s| {
        let mut seen = 0;
        let settled = channels_of(s).all(|c| {
            seen += 1;
            let own = c["name"].as_str() == Some(channels[i].as_str());
            let from_peers = c["segments_from_peers"].as_u64().unwrap_or(0);
            if own {
                c["ingesting"] == true
            } else {
                c["ingesting"] == false && from_peers >= MIN_FROM_PEERS
            }
        });
        settled && seen == channels.len()
    });
    let table = report(&bed, &members);
    println!("{table}");
    if !exchanged {
        return Err(format!(
            "within {EXCHANGE_LIMIT:?}, the swarm did not settle into every box ingesting only its \
             own channel and holding at least {MIN_FROM_PEERS} segments from the swarm of each \
             channel another box publishes\n{}\n{}",
            peer_views(&bed),
            logs(&dir, &bed)
        ));
    }
    let compared = same_segments(&bed, &members, &channels)?;
    println!(
        "    every box publishes one channel and holds the other two's segments from the swarm; \
         {compared} segment copies compared equal across boxes; {:.1} s after start",
        start.elapsed().as_secs_f64()
    );
    drop(bed);
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

fn names(bundles: &[Bundle]) -> String {
    bundles.iter().map(|b| b.board.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// The first name `from-<board>-<n>` whose channel the election gives to `nodes[me]`.
fn channel_for(board: &str, nodes: &[NodeId], me: usize) -> String {
    (0u32..)
        .map(|n| format!("from-{board}-{n}"))
        .find(|id| {
            let mut ranking = nodes.to_vec();
            election::rank(ChannelId::derive(id, SOURCE), &mut ranking);
            ranking[0] == nodes[me]
        })
        .expect("one name in three on average elects a given box of three")
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn status(bed: &Bed, i: usize) -> Option<Value> {
    let url = format!("http://{}:{HTTP_PORT}/api/status", bed.ip(i));
    bed.http_get(i, &url).ok().and_then(|body| serde_json::from_str(&body).ok())
}

fn channels_of(status: &Value) -> impl Iterator<Item = &Value> {
    status["channels"].as_array().into_iter().flatten()
}

fn alive_peers(status: &Value) -> usize {
    status["peers"].as_array().map_or(0, |p| p.iter().filter(|p| p["alive"] == true).count())
}

/// Waits until `check(i, status)` holds for every box at once, or `limit` passes.
fn wait_all(bed: &Bed, limit: Duration, check: impl Fn(usize, &Value) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if (0..bed.hosts()).all(|i| status(bed, i).is_some_and(|s| check(i, &s))) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Per box and channel: who ingests it, and where the box's segments came from.
fn report(bed: &Bed, members: &[Member]) -> String {
    let mut out = String::from(
        "    box  board           channel                 ingesting  from origin  from peers  held\n",
    );
    for (i, member) in members.iter().enumerate() {
        let Some(status) = status(bed, i) else {
            let _ = writeln!(out, "    {i:<4} {:<15} (no answer)", member.board);
            continue;
        };
        for channel in channels_of(&status) {
            let _ = writeln!(
                out,
                "    {i:<4} {:<15} {:<23} {:<10} {:>11}  {:>10}  {:>4}",
                member.board,
                channel["name"].as_str().unwrap_or("?"),
                channel["ingesting"] == true,
                channel["segments_from_origin"].as_u64().unwrap_or(0),
                channel["segments_from_peers"].as_u64().unwrap_or(0),
                channel["segments_held"].as_u64().unwrap_or(0),
            );
        }
    }
    out
}

/// Checks the segments the boxes hold, as their windows in /api/status list them: each box
/// holds segments of every other box's channel signed by that box (its publisher, the elected
/// ingester), and every such segment (channel, seq) that two boxes hold has the same content on
/// both. Segments a box made itself before the election settled (right after start each box
/// ingests everything) are left out. Returns how many copies were compared.
fn same_segments(bed: &Bed, members: &[Member], channels: &[String]) -> Result<usize, String> {
    // (channel, seq) → (content, the first box seen holding it).
    let mut seen: Vec<(String, u64, String, usize)> = Vec::new();
    let mut compared = 0;
    for i in 0..bed.hosts() {
        let status = status(bed, i).ok_or_else(|| format!("box {i} stopped answering"))?;
        for channel in channels_of(&status) {
            let name = channel["name"].as_str().unwrap_or("?");
            let Some(owner) = channels.iter().position(|c| c == name) else {
                return Err(format!("box {i} lists a channel `{name}` that is not in the lineup"));
            };
            let publisher = format!("{:#}", members[owner].node);
            let mut published = 0;
            for segment in channel["window"].as_array().into_iter().flatten() {
                let (Some(seq), Some(content), Some(signer)) =
                    (segment["seq"].as_u64(), segment["content"].as_str(), segment["signer"].as_str())
                else {
                    continue;
                };
                if signer != publisher {
                    continue;
                }
                published += 1;
                if let Some((_, _, other, first)) = seen.iter().find(|(c, s, ..)| c == name && *s == seq) {
                    if other != content {
                        return Err(format!(
                            "segment {seq} of {name} differs between box {first} and box {i}"
                        ));
                    }
                    compared += 1;
                } else {
                    seen.push((name.to_owned(), seq, content.to_owned(), i));
                }
            }
            if published == 0 {
                return Err(format!(
                    "box {i} holds no complete segment of {name} signed by its publisher, box {owner}"
                ));
            }
        }
    }
    if compared == 0 {
        return Err("no segment is held by two boxes at once".into());
    }
    Ok(compared)
}

/// What each box knows of its peers, and the datagrams it rejected: where a swarm that does not
/// settle usually shows why.
fn peer_views(bed: &Bed) -> String {
    let mut out = String::new();
    for i in 0..bed.hosts() {
        let Some(status) = status(bed, i) else {
            let _ = writeln!(out, "--- box {i}: no answer");
            continue;
        };
        let _ = writeln!(out, "--- box {i} peers: {}", status["peers"]);
        let _ = writeln!(out, "--- box {i} rejected: {}", status["security"]["rejected"]);
    }
    out
}

/// The last lines of every box's log.
fn logs(dir: &Path, bed: &Bed) -> String {
    (0..bed.hosts())
        .map(|i| {
            let log = fs::read_to_string(dir.join(format!("box{i}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            format!("--- box {i} log (last lines)\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_box_gets_a_channel_the_election_gives_it() {
        let nodes: Vec<NodeId> = (0..3u8).map(|i| Identity::from_seed([0x51 + i; 32]).node_id()).collect();
        for me in 0..nodes.len() {
            let id = channel_for("rpi4", &nodes, me);
            assert!(id.starts_with("from-rpi4-"));
            let mut ranking = nodes.clone();
            election::rank(ChannelId::derive(&id, SOURCE), &mut ranking);
            assert_eq!(ranking[0], nodes[me], "{id}");
        }
    }
}
