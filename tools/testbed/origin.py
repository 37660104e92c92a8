#!/usr/bin/env python3
"""The test bed's HLS origin: a plain static-file HTTP(S) server with an access log and fault
injection, started by `shoal_testbed::Origin` inside a bed host's network namespace.

Python 3 standard library only. It serves the files under --root (which ffmpeg keeps updating
with a live HLS stream) and nothing else:

* GET and HEAD; HTTP/1.1 with persistent connections; every answer has a Content-Length;
* Content-Type by extension (.m3u8, .ts, .mp4, .m4s, .xml; others application/octet-stream);
* 404 for anything missing, for directories (no listings) and for paths that would leave the
  root; no Range support (a Range header is ignored and the whole file sent with 200, which
  HTTP allows);
* each file is opened once and answered from that open file, so ffmpeg replacing the playlist
  (write to a temporary file, rename) or deleting an old segment while it is being sent never
  yields a mixed or torn body.

The access log (--log) gets one line per request, written and flushed when the answer is done,
as space-separated key=value fields (values never contain spaces; `path` comes last and is the
request target exactly as received):

    time=1700000000.123 client=10.99.0.2 method=GET status=200 length=123456 sent=123456 truncated=- path=/live/seg3.ts

`length` is the Content-Length announced (- when none), `sent` the body bytes handed to the
kernel, `truncated` is `short` or `cut` when a fault below was applied, else `-`.

Fault injection: --control names a small file read on every request (missing or empty means no
fault). Its first line is one of

    none
    short <every>   media segments whose number n has n % every == 0: the full Content-Length
                    is announced, half the body is sent, then the connection is closed
    cut <every>     the same segments are cut to an odd length (never a multiple of 188), and
                    the Content-Length announces the cut length: a well-formed short answer
    missing <n>     media segment n answers 404 although the file exists (and is listed)
    slow <n> <ms>   media segment n is answered only after ms milliseconds

A media segment is a .ts or .m4s file; its number is the last run of digits in its name before
the extension (seg12.ts and seg12.m4s -> 12). Faults apply to GET only.

The server writes nothing but its log (and its stdout/stderr). It prints one line
"origin.py: serving ..." once it is listening, and exits with status 0 on SIGTERM or SIGINT.
"""

import argparse
import os
import posixpath
import re
import signal
import ssl
import stat
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".m4s": "video/mp4",
    ".xml": "application/xml",
}
MEDIA_SEGMENT_EXTENSIONS = (".ts", ".m4s")
SEGMENT_NUMBER = re.compile(r"(\d+)(?!.*\d)")
# Body chunks: what a response writes at a time, so `sent` stays close to the truth when a
# client goes away mid-body.
CHUNK = 64 * 1024
# An idle persistent connection, or a client stalled mid-request, is dropped after this long.
IDLE_TIMEOUT = 60.0
# A TLS client that connects but never completes the handshake is dropped after this long.
HANDSHAKE_TIMEOUT = 10.0
# How long closing a TLS connection waits for the client's close_notify.
CLOSE_NOTIFY_TIMEOUT = 1.0


class Fault:
    """What the control file asks for: kind is None, "short", "cut", "missing" or "slow"."""

    def __init__(self, kind=None, every=1, seq=None, delay=0.0):
        self.kind = kind
        self.every = every
        # For "missing" and "slow": the one segment number they apply to, and the delay.
        self.seq = seq
        self.delay = delay

    @staticmethod
    def read(path):
        if not path:
            return Fault()
        try:
            with open(path, "r", encoding="ascii", errors="replace") as control:
                words = control.readline().split()
        except OSError:
            return Fault()
        if len(words) == 2 and words[0] in ("short", "cut"):
            try:
                every = int(words[1])
            except ValueError:
                every = 0
            if every > 0:
                return Fault(words[0], every)
        if len(words) == 2 and words[0] == "missing" and words[1].isdigit():
            return Fault("missing", seq=int(words[1]))
        if len(words) == 3 and words[0] == "slow" and words[1].isdigit() and words[2].isdigit():
            return Fault("slow", seq=int(words[1]), delay=int(words[2]) / 1000.0)
        if words and words != ["none"]:
            print(f"origin.py: ignoring control line {' '.join(words)!r}", file=sys.stderr, flush=True)
        return Fault()

    def applies_to(self, name):
        if self.kind is None or not name.endswith(MEDIA_SEGMENT_EXTENSIONS):
            return False
        match = SEGMENT_NUMBER.search(os.path.splitext(name)[0])
        if match is None:
            return False
        number = int(match.group(1))
        if self.seq is not None:
            return number == self.seq
        return number % self.every == 0


def cut_length(size):
    """An odd length (so never a multiple of 188) about half of size, and below it."""
    if size < 2:
        return 0
    half = size // 2
    return half if half % 2 == 1 else half - 1


class AccessLog:
    def __init__(self, path):
        # Line-buffered append: one write and flush per line, from any thread.
        self.file = open(path, "a", buffering=1, encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, **fields):
        path = fields.pop("path")
        line = " ".join(f"{key}={value}" for key, value in fields.items())
        with self.lock:
            if not self.file.closed:
                self.file.write(f"{line} path={path}\n")
                self.file.flush()

    def close(self):
        with self.lock:
            self.file.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shoal-testbed-origin/1"
    timeout = IDLE_TIMEOUT
    # Set when the connection must end without a clean TLS close.
    abrupt = False

    def do_GET(self):
        self.answer(body=True)

    def do_HEAD(self):
        self.answer(body=False)

    def answer(self, body):
        config = self.server.config
        # 500 stands until an answer is chosen: only an unexpected exception leaves it.
        status, length, sent, truncated = 500, None, 0, "-"
        try:
            opened = self.open_file(config.root)
            fault = Fault.read(config.control) if body and opened is not None else Fault()
            if opened is not None and fault.applies_to(opened[0]):
                if fault.kind == "missing":
                    opened = None
                elif fault.kind == "slow":
                    time.sleep(fault.delay)
            if opened is None:
                message = b"not found\n"
                status, length = 404, len(message)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if body:
                    self.wfile.write(message)
                    sent = length
                return
            name, data = opened
            send = len(data)
            status, length = 200, len(data)
            if fault.kind in ("short", "cut") and fault.applies_to(name):
                truncated = fault.kind
                if fault.kind == "short":
                    send = len(data) // 2
                else:
                    send = length = cut_length(len(data))
            self.send_response(status)
            self.send_header("Content-Type", content_type(name))
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if body:
                view = memoryview(data)[:send]
                for start in range(0, send, CHUNK):
                    chunk = view[start : start + CHUNK]
                    self.wfile.write(chunk)
                    sent += len(chunk)
            if truncated == "short":
                # Abruptly, as an origin crashing mid-body would: no Connection: close, and
                # over TLS no close_notify.
                self.close_connection = True
                self.abrupt = True
        except OSError as error:
            # The client went away or stalled (ConnectionError, TimeoutError, ssl.SSLError...).
            self.close_connection = True
            print(f"origin.py: {self.command} {self.path}: {error}", file=sys.stderr, flush=True)
        finally:
            config.log.write(
                time=f"{time.time():.3f}",
                client=self.client_address[0],
                method=self.command,
                status=status,
                length="-" if length is None else length,
                sent=sent,
                truncated=truncated,
                path=self.path,
            )

    def open_file(self, root):
        """(file name, contents) for the request's path, or None for a 404."""
        path = urllib.parse.urlsplit(self.path).path
        parts = [part for part in urllib.parse.unquote(path).split("/") if part]
        if any(part in (".", "..") or "\0" in part for part in parts) or not parts:
            return None
        full = os.path.join(root, *parts)
        if os.path.commonpath([root, os.path.realpath(full)]) != root:
            return None
        try:
            # One open file from here on: a rename or delete by ffmpeg cannot change what we send.
            with open(full, "rb") as file:
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    return None
                data = file.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            return None
        return posixpath.basename(path), data

    def log_message(self, format, *args):
        # Protocol errors (400, 501...) go to stderr, the spawn log; the access log is ours.
        print(f"origin.py: {self.address_string()} {format % args}", file=sys.stderr, flush=True)

    def log_request(self, code="-", size="-"):
        pass


def content_type(name):
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


class Config:
    def __init__(self, root, log, control):
        self.root = root
        self.log = log
        self.control = control


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, config, tls):
        self.config = config
        self.tls = tls
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # Runs on the connection's own thread, so a slow TLS handshake holds up no one else.
        if self.tls is None:
            return super().finish_request(request, client_address)
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            print(f"origin.py: TLS handshake with {client_address[0]}: {error}", file=sys.stderr, flush=True)
            return
        abrupt = True
        try:
            # The handler sets its own (idle) timeout on the connection.
            handler = self.RequestHandlerClass(wrapped, client_address, self)
            abrupt = handler.abrupt
        finally:
            if not abrupt:
                # A clean TLS close (close_notify), which strict clients such as rustls expect.
                try:
                    wrapped.settimeout(CLOSE_NOTIFY_TIMEOUT)
                    wrapped.unwrap()
                except (ssl.SSLError, OSError, ValueError):
                    pass
            wrapped.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="directory to serve")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--log", required=True, help="access log, appended to")
    parser.add_argument("--cert", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--control", help="fault-injection control file, read on every request")
    args = parser.parse_args()
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")

    # SIGTERM ends serve_forever() through SystemExit, like Ctrl-C; exit status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0))

    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
    root = os.path.realpath(args.root)
    config = Config(root, AccessLog(args.log), args.control)
    server = Server((args.bind, args.port), config, tls)
    scheme = "https" if tls else "http"
    print(f"origin.py: serving {root} on {scheme} port {args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        config.log.close()


if __name__ == "__main__":
    main()
