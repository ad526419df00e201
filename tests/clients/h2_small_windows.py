#!/usr/bin/python3
"""python3-h2 with small receive windows, against h2lab's /bytes/N and /echo.

Usage: h2_small_windows.py URL...   (http:// is h2c with prior knowledge,
https:// is h2 over TLS taking any certificate)

For each URL and each initial stream window (1 KiB, 4 KiB, 16 KiB), one
connection carries every request at once: GET /bytes/N for each N of
$H2LAB_BYTES and POST /echo for each size of $H2LAB_ECHO. Windows come back
in odd-sized steps (whole multiples of an odd unit that changes at every
grant, the rest held back), so the server must send DATA frames cut at odd
places on both the stream and the connection window; the request bodies go
out in odd-sized DATA frames too. h2 itself raises FlowControlError if the
server ever sends beyond a window.

Prints "PASS URL what" or "FAIL URL what: why" per check; exits 1 on any FAIL.
Run with Debian's /usr/bin/python3 (python3-h2).
"""

import os
import random
import socket
import ssl
import sys
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.settings

PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789\n"
BYTES = [int(n) for n in os.environ.get(
    "H2LAB_BYTES", "0 1 36 37 16383 16384 16385 40000 65535 65536 100003 1048589").split()]
ECHO = [int(n) for n in os.environ.get("H2LAB_ECHO", "1 16385 1048576").split()]
WINDOWS = [1024, 4096, 16384]
# The odd units windows are granted in, and the odd sizes request bodies are
# cut into; cycled through so that no two consecutive steps are alike.
ODD_UNITS = [1, 7, 61, 127, 251, 509, 3, 97]
ODD_CHUNKS = [1, 333, 4097, 16383, 9999, 3, 1021]
TIMEOUT = 60


def expected_bytes(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]  # octet i is PATTERN[i % 37]


def first_difference(got, want):
    for i in range(min(len(got), len(want))):
        if got[i] != want[i]:
            return i
    return min(len(got), len(want))


class OddGrants:
    """Gives a window back only in whole multiples of an odd unit no larger
    than half the window, so the peer always has some window left (liveness)
    but rarely a round amount."""

    def __init__(self, window):
        self.units = [u for u in ODD_UNITS if u <= window // 2] or [1]
        self.turn = 0
        self.owed = 0

    def take(self, n):
        self.owed += n

    def grant(self):
        unit = self.units[self.turn % len(self.units)]
        self.turn += 1
        amount = (self.owed // unit) * unit
        self.owed -= amount
        return amount


def run(url, window):
    """One connection with every request on it; returns [(ok, what, why)]."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=TIMEOUT)
    # Without it, a TLS write of several records waits on Nagle and the
    # server's delayed ACK (40 ms a turn: seconds for 1 MiB in odd frames).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if u.scheme == "https":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the server's certificate is self-signed
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(sock, server_hostname="localhost")
        if sock.selected_alpn_protocol() != "h2":
            return [(False, "ALPN", "negotiated %r" % sock.selected_alpn_protocol())]
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    # The stream window every response starts with: sent in the first
    # SETTINGS, in force for our accounting at once (RFC 9113 §6.9.2).
    conn.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    conn.initiate_connection()

    rng = random.Random(window)
    requests = [{"what": "GET /bytes/%d" % n, "path": "/bytes/%d" % n, "send": b"",
                 "want": expected_bytes(n)} for n in BYTES]
    for n in ECHO:
        body = rng.randbytes(n)
        requests.append({"what": "POST /echo (%d octets)" % n, "path": "/echo", "send": body,
                         "want": body})
    streams = {}  # stream id -> request state
    for s in requests:
        sid = conn.get_next_available_stream_id()  # the same until its HEADERS are sent
        conn.send_headers(sid, [
            (":method", "POST" if s["send"] else "GET"), (":scheme", u.scheme),
            (":authority", u.netloc), (":path", s["path"])], end_stream=not s["send"])
        s.update(sent=0, got=bytearray(), status=None, ended=False, reset=None,
                 grants=OddGrants(window))
        streams[sid] = s
    connection_grants = OddGrants(65535)
    chunk_turn = 0

    deadline = time.monotonic() + TIMEOUT
    while not all(s["ended"] or s["reset"] is not None for s in streams.values()):
        # Request bodies, in odd-sized frames, as far as the server's windows allow.
        for sid, s in streams.items():
            while s["sent"] < len(s["send"]) and s["reset"] is None:
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if room <= 0:
                    break
                size = min(room, ODD_CHUNKS[chunk_turn % len(ODD_CHUNKS)], len(s["send"]) - s["sent"])
                chunk_turn += 1
                done = s["sent"] + size == len(s["send"])
                conn.send_data(sid, s["send"][s["sent"]:s["sent"] + size], end_stream=done)
                s["sent"] += size
        sock.sendall(conn.data_to_send())
        if time.monotonic() > deadline:
            break
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                streams[ev.stream_id]["status"] = dict(ev.headers).get(b":status")
            elif isinstance(ev, h2.events.DataReceived):
                s = streams[ev.stream_id]
                s["got"] += ev.data
                s["grants"].take(ev.flow_controlled_length)
                connection_grants.take(ev.flow_controlled_length)
            elif isinstance(ev, h2.events.StreamEnded):
                streams[ev.stream_id]["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                streams[ev.stream_id]["reset"] = ev.error_code
        # The windows back, in odd steps (never on a closed stream).
        for sid, s in streams.items():
            if not s["ended"] and s["reset"] is None:
                amount = s["grants"].grant()
                if amount:
                    conn.increment_flow_control_window(amount, sid)
        amount = connection_grants.grant()
        if amount:
            conn.increment_flow_control_window(amount)
    conn.close_connection()
    try:
        sock.sendall(conn.data_to_send())
    except OSError:
        pass
    sock.close()

    results = []
    for s in streams.values():
        what = "%s, %d-octet stream window" % (s["what"], window)
        got, want = bytes(s["got"]), s["want"]
        if s["status"] != b"200" or not s["ended"] or got != want:
            results.append((False, what, "status %s, ended %s, reset %s, %d octets (want %d), "
                            "first difference at octet %d" % (
                                s["status"], s["ended"], s["reset"], len(got), len(want),
                                first_difference(got, want))))
        else:
            results.append((True, what, ""))
    return results


def main():
    failed = False
    for url in sys.argv[1:]:
        for window in WINDOWS:
            try:
                results = run(url, window)
            except Exception as e:  # a protocol error, a timeout: every request of this run fails
                results = [(False, "connection with a %d-octet stream window" % window,
                            "%s: %s" % (type(e).__name__, e))]
            for ok, what, why in results:
                print("%s %s %s%s" % ("PASS" if ok else "FAIL", url, what, "" if ok else ": " + why),
                      flush=True)
                failed = failed or not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
