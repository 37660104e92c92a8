#!/usr/bin/python3
"""A BitTorrent swarm for the `vodfill` bench: one seed and N leechers, all libtorrent
(Debian's python3-libtorrent), each started by the bench inside its own host of a test bed.

Subcommands:

    make  --file F --torrent T [--piece-kib K]
        writes a private, v1-only .torrent of file F with K KiB pieces (no tracker, no web seeds)
    seed  --torrent T --dir D --listen IP:PORT --timeout S
        serves D/<name> (hash-checked first); prints "seeding" once it can upload, then runs
        until SIGTERM or S seconds
    leech --torrent T --dir D --listen IP:PORT --peer IP:PORT [--peer ...] --timeout S
        downloads into D, connecting to every --peer itself; prints "complete <epoch seconds>"
        once every piece has passed its hash check, then goes on uploading to the others until
        SIGTERM or S seconds; exits 3 if the S seconds run out first

seed and leech print "uploaded <bytes> downloaded <bytes>" (payload) when they stop, and exit 0
on SIGTERM.

Network: every session is built with its settings in place, so nothing starts before they
apply: DHT, local service discovery, UPnP, NAT-PMP and uTP off, TCP only, listening on the one
--listen address and connecting from it. There is no tracker: peers come only from --peer
(and peer exchange, which only passes on those same addresses; the torrent is also private,
which turns PEX and DHT off for it). The bench runs this only inside bed namespaces, which have
no route out.

Tuning: unchoke slots unlimited (every peer is served at once, as in a small swarm with a fast
seed), no rate limits, default piece picking (rarest first).
"""

import argparse
import os
import signal
import sys
import time

try:
    import libtorrent as lt
except ImportError:
    print("bittorrent.py: python3-libtorrent is missing: apt-get install python3-libtorrent", file=sys.stderr)
    sys.exit(4)

# How often a leecher dials the --peer addresses it is not connected to. libtorrent itself waits
# min_reconnect_time (60 s by default) before retrying a peer that refused: leechers start at
# the same moment and some dial others before those listen.
REDIAL_SECONDS = 0.5
# Longest wait for an alert; it also paces the redial and timeout checks.
ALERT_WAIT_MS = 50


def session(listen):
    host, port = listen.rsplit(":", 1)
    settings = {
        "listen_interfaces": f"{host}:{port}",
        "outgoing_interfaces": host,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "dht_bootstrap_nodes": "",
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_tcp": True,
        "enable_incoming_tcp": True,
        "unchoke_slots_limit": -1,
        "upload_rate_limit": 0,
        "download_rate_limit": 0,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
        "user_agent": "shoal-vodfill",
    }
    return lt.session(settings)


def add(ses, torrent, directory):
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = directory
    return ses.add_torrent(params)


def stop_on_signal():
    """A list that holds True once SIGTERM or SIGINT arrived."""
    stopped = [False]

    def handler(signum, frame):
        stopped[0] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stopped


def report(ses, handle):
    """Prints what was transferred and stops transferring; the session closes its files when
    the caller returns and drops it."""
    status = handle.status()
    print(f"uploaded {status.total_payload_upload} downloaded {status.total_payload_download}", flush=True)
    ses.pause()


def endpoint(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def make(args):
    files = lt.file_storage()
    lt.add_files(files, args.file)
    torrent = lt.create_torrent(files, args.piece_kib * 1024, flags=lt.create_torrent.v1_only)
    torrent.set_priv(True)
    torrent.set_creator("shoal vodfill")
    lt.set_piece_hashes(torrent, os.path.dirname(os.path.abspath(args.file)))
    with open(args.torrent, "wb") as out:
        out.write(lt.bencode(torrent.generate()))
    print(f"torrent: {files.total_size()} bytes, {torrent.num_pieces()} pieces of {args.piece_kib} KiB", flush=True)
    return 0


def seed(args):
    stopped = stop_on_signal()
    deadline = time.monotonic() + args.timeout
    ses = session(args.listen)
    handle = add(ses, args.torrent, args.dir)
    announced = False
    while not stopped[0] and time.monotonic() < deadline:
        ses.wait_for_alert(ALERT_WAIT_MS)
        for alert in ses.pop_alerts():
            if alert.category() & lt.alert.category_t.error_notification:
                print(f"alert: {alert.message()}", file=sys.stderr, flush=True)
        if not announced and handle.status().is_seeding:
            print("seeding", flush=True)
            announced = True
    report(ses, handle)
    return 0


def leech(args):
    stopped = stop_on_signal()
    deadline = time.monotonic() + args.timeout
    ses = session(args.listen)
    handle = add(ses, args.torrent, args.dir)
    peers = [endpoint(p) for p in args.peer]
    complete = False
    next_dial = 0.0
    while not stopped[0] and time.monotonic() < deadline:
        ses.wait_for_alert(ALERT_WAIT_MS)
        for alert in ses.pop_alerts():
            if alert.category() & lt.alert.category_t.error_notification:
                print(f"alert: {alert.message()}", file=sys.stderr, flush=True)
        status = handle.status()
        if not complete and status.is_seeding:
            # is_seeding: every piece downloaded and its SHA-1 checked against the torrent.
            print(f"complete {time.time():.3f}", flush=True)
            complete = True
        if time.monotonic() >= next_dial:
            next_dial = time.monotonic() + REDIAL_SECONDS
            # By address only: an incoming connection comes from an ephemeral port.
            connected = {info.ip[0] for info in handle.get_peer_info()}
            for peer in peers:
                if peer[0] not in connected:
                    handle.connect_peer(peer)
            if not complete:
                print(
                    f"progress {status.progress * 100:.1f} % peers {status.num_peers} "
                    f"down {status.download_payload_rate * 8 / 1e6:.1f} Mbit/s",
                    flush=True,
                )
    report(ses, handle)
    return 0 if complete else 3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("make")
    p.add_argument("--file", required=True)
    p.add_argument("--torrent", required=True)
    p.add_argument("--piece-kib", type=int, default=256)
    for name in ("seed", "leech"):
        p = commands.add_parser(name)
        p.add_argument("--torrent", required=True)
        p.add_argument("--dir", required=True)
        p.add_argument("--listen", required=True, help="IP:PORT, the host's bed address")
        p.add_argument("--timeout", type=float, required=True, help="seconds before giving up")
        if name == "leech":
            p.add_argument("--peer", action="append", default=[], help="IP:PORT to connect to")
    args = parser.parse_args()
    code = {"make": make, "seed": seed, "leech": leech}[args.command](args)
    # The session is gone by now (it was local to the command), its files closed.
    sys.exit(code)


if __name__ == "__main__":
    main()
