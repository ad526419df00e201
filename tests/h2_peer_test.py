#!/usr/bin/python3
"""//server:main (--engine full, or the engine named after the binary) against a hostile HTTP/2 peer.

Sends over loopback what real clients never send -- a bad preface, frames on
stream 0 that must not be there, oversized frames, window overflow,
CONTINUATION misuse, invalid pseudo-headers, RST_STREAM and PING floods --
and asserts the exact GOAWAY / RST_STREAM code RFC 9113 requires, then that
the server still serves a fresh, well-behaved python3-h2 client.

Raw frames are built by hand where h2 refuses to send something invalid;
header blocks come from python3-hpack, so HPACK state stays in sync.

Usage: h2_peer_test.py PATH/TO/server/main
Bounded in time: socket timeouts and an overall alarm; the server is stopped
with SIGTERM at the end (exit status 0 required), and killed on any failure.
"""
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import h2.config
import h2.connection
import h2.events
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR = 0x0, 0x1, 0x3, 0x5, 0x6
REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x7, 0x9, 0xB
INTERNAL_ERROR = 0x2
NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 5: "STREAM_CLOSED",
         6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 9: "COMPRESSION_ERROR", 0xB: "ENHANCE_YOUR_CALM"}
TIMEOUT = 5.0

failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def frame(ftype, flags, stream, payload=b"", length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(stream, increment):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def rst_stream(stream, code):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def ping(opaque=b"\0" * 8, flags=0):
    return frame(PING, flags, 0, opaque)


def request(method="GET", path="/", extra=()):
    return [(b":method", method.encode()), (b":scheme", b"http"), (b":path", path.encode()),
            (b":authority", b"localhost")] + [(n.encode(), v.encode()) for n, v in extra]


class Peer:
    """A raw-socket HTTP/2 client that reads the server's frames one by one."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.eof = False
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.responses = {}  # stream -> decoded response headers

    def close(self):
        self.sock.close()

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # the server may have closed already: what it sent is still readable

    def block(self, headers):
        return self.enc.encode(headers)

    def headers(self, stream, headers, flags=END_STREAM | END_HEADERS):
        return frame(HEADERS, flags, stream, self.block(headers))

    def _fill(self, deadline):
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.sock], [], [], left)
        if not ready:
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_raw(self, timeout=TIMEOUT):
        """Everything until EOF or the timeout."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def next_frame(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    ftype, flags = self.buf[3], self.buf[4]
                    stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload = self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    if ftype == HEADERS:  # keep HPACK in sync
                        self.responses[stream] = self.dec.decode(payload, raw=True)
                    return ftype, flags, stream, payload
            if not self._fill(deadline):
                return None

    def open(self, *pairs):
        """Preface + SETTINGS; returns the server's preface frames."""
        self.send(PREFACE + settings(*pairs))
        got = [self.next_frame() for _ in range(3)]
        check(got[0] is not None and got[0][0] == SETTINGS and got[0][1] == 0, "server preface is SETTINGS")
        check(got[1] is not None and got[1][0] == WINDOW_UPDATE, "then a connection WINDOW_UPDATE")
        check(got[2] is not None and got[2][:2] == (SETTINGS, ACK), "then the ACK of our SETTINGS")
        return got

    def until(self, predicate, timeout=TIMEOUT):
        """Frames up to and including the first that matches, or None."""
        seen = []
        while True:
            f = self.next_frame(timeout)
            if f is None:
                return seen, None
            seen.append(f)
            if predicate(f):
                return seen, f

    def closed_within(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        return self.eof


def describe(f):
    if f is None:
        return "nothing (timeout or EOF)"
    ftype, flags, stream, payload = f
    if ftype == GOAWAY:
        last, code = struct.unpack(">II", payload[:8])
        return "GOAWAY(last=%d, %s, %r)" % (last, NAMES.get(code, code), payload[8:])
    if ftype == RST_STREAM:
        return "RST_STREAM(%d, %s)" % (stream, NAMES.get(struct.unpack(">I", payload)[0]))
    return "frame(type=%d, flags=%#x, stream=%d, %d octets)" % (ftype, flags, stream, len(payload))


def expect_goaway(peer, code, what, last=None, f=None):
    """The next GOAWAY or RST_STREAM (or `f`, already read) is GOAWAY(code), then a close."""
    if f is None:
        _, f = peer.until(lambda f: f[0] in (GOAWAY, RST_STREAM))
    ok = f is not None and f[0] == GOAWAY and struct.unpack(">I", f[3][4:8])[0] == code
    if ok and last is not None:
        ok = struct.unpack(">I", f[3][:4])[0] & 0x7FFFFFFF == last
    check(ok, "%s: want GOAWAY %s%s, got %s" % (what, NAMES[code], "" if last is None else " last=%d" % last,
                                                  describe(f)))
    check(peer.closed_within(), "%s: the server closes after its GOAWAY" % what)


def expect_rst(peer, stream, code, what):
    _, f = peer.until(lambda f: f[0] in (GOAWAY, RST_STREAM))
    check(f is not None and f[0] == RST_STREAM and f[2] == stream and struct.unpack(">I", f[3])[0] == code,
          "%s: want RST_STREAM(%d, %s), got %s" % (what, stream, NAMES[code], describe(f)))


def expect_answer(peer, stream, status, what):
    _, f = peer.until(lambda f: f[2] == stream and f[0] in (HEADERS, RST_STREAM, GOAWAY))
    got = peer.responses.get(stream) if f is not None and f[0] == HEADERS else None
    check(got is not None and (b":status", status) in got,
          "%s: want :status %s on stream %d, got %s" % (what, status.decode(), stream, got or describe(f)))


# ---------------------------------------------------------------------------
# The cases. Each gets a fresh connection.

def case_bad_preface(port):
    p = Peer(port)
    p.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    data = p.read_raw()
    # RFC 9113 §3.4: PROTOCOL_ERROR — our (empty) SETTINGS, then
    # GOAWAY(last stream 0, PROTOCOL_ERROR), then a close.
    debug = b"invalid connection preface"
    want = (b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" +
            struct.pack(">I", 8 + len(debug))[1:] + b"\x07\x00\x00\x00\x00\x00" +
            struct.pack(">II", 0, 1) + debug)
    check(data == want and p.eof, "bad preface: SETTINGS, GOAWAY(PROTOCOL_ERROR), close; got %r" % data[:60])
    p.close()


def case_h2spec_3_5(port):
    """h2spec's two §3.5 (RFC 7540 numbering; RFC 9113 §3.4) cases, as h2spec sends them."""
    # 3.5/1: the client preface is answered with the server preface, a
    # SETTINGS frame, as the first frame.
    p = Peer(port)
    p.send(PREFACE + settings())
    f = p.next_frame()
    check(f is not None and f[0] == SETTINGS and f[1] == 0 and f[2] == 0,
          "h2spec 3.5/1: first frame is SETTINGS, got %s" % describe(f))
    p.close()
    # 3.5/2: an invalid preface is a connection error: GOAWAY(PROTOCOL_ERROR), close.
    p = Peer(port)
    p.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    expect_goaway(p, PROTOCOL_ERROR, "h2spec 3.5/2 invalid connection preface", last=0)
    p.close()


def case_http1(port):
    p = Peer(port)
    p.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = p.read_raw()
    check(data.startswith(b"HTTP/1.1 505 ") and b"--http2-prior-knowledge" in data and p.eof,
          "HTTP/1.1 request: the 505 text and a close, got %r" % data[:60])
    p.close()


def case_first_frame_not_settings(port):
    p = Peer(port)
    p.send(PREFACE + ping())
    expect_goaway(p, PROTOCOL_ERROR, "§3.4 first frame PING", last=0)
    p.close()


def conn_error_cases():
    """(name, bytes after the preface + one answered GET on stream 1, code)."""
    big = 16385
    return [
        ("§6.1 DATA on stream 0", frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR),
        ("§6.2 HEADERS on stream 0", None, PROTOCOL_ERROR),  # built with the peer's encoder
        ("§6.3 PRIORITY on stream 0", frame(PRIORITY, 0, 0, b"\0\0\0\1\x0f"), PROTOCOL_ERROR),
        ("§6.4 RST_STREAM on stream 0", rst_stream(0, 8), PROTOCOL_ERROR),
        ("§6.10 CONTINUATION on stream 0", frame(CONTINUATION, END_HEADERS, 0), PROTOCOL_ERROR),
        ("§6.5 SETTINGS on stream 1", frame(SETTINGS, 0, 1), PROTOCOL_ERROR),
        ("§6.7 PING on stream 1", frame(PING, 0, 1, b"\0" * 8), PROTOCOL_ERROR),
        ("§6.8 GOAWAY on stream 1", frame(GOAWAY, 0, 1, b"\0" * 8), PROTOCOL_ERROR),
        ("§8.4 PUSH_PROMISE from a client", frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2\x82"), PROTOCOL_ERROR),
        ("§4.2 DATA header announcing 16385 octets (payload never sent)", frame(DATA, 0, 1, b"", length=big),
         FRAME_SIZE_ERROR),
        ("§4.2 an unknown type announcing 16385 octets", frame(0xFA, 0, 0, b"", length=big), FRAME_SIZE_ERROR),
        ("§6.7 PING of 7 octets", ping(b"\0" * 7), FRAME_SIZE_ERROR),
        ("§6.5 SETTINGS ACK with a payload", frame(SETTINGS, ACK, 0, b"\0" * 6), FRAME_SIZE_ERROR),
        ("§6.9 WINDOW_UPDATE of 3 octets", frame(WINDOW_UPDATE, 0, 0, b"\0\0\1"), FRAME_SIZE_ERROR),
        ("§6.9 WINDOW_UPDATE increment 0 on stream 0", window_update(0, 0), PROTOCOL_ERROR),
        ("§6.9.1 connection window above 2^31-1", window_update(0, 0x7FFFFFFF), FLOW_CONTROL_ERROR),
        ("§6.5.2 SETTINGS_INITIAL_WINDOW_SIZE 2^31", settings((4, 0x80000000)), FLOW_CONTROL_ERROR),
        ("§6.5.2 SETTINGS_MAX_FRAME_SIZE 16383", settings((5, 16383)), PROTOCOL_ERROR),
        ("§6.5.2 SETTINGS_ENABLE_PUSH 2", settings((2, 2)), PROTOCOL_ERROR),
        ("§5.1 DATA on an idle stream", frame(DATA, 0, 5, b"x"), PROTOCOL_ERROR),
        ("§5.1 WINDOW_UPDATE on an idle stream", window_update(5, 1), PROTOCOL_ERROR),
        ("§5.1 RST_STREAM on an idle stream", rst_stream(5, 8), PROTOCOL_ERROR),
        ("§5.1 DATA on an even (server, idle) stream below the last client one", "after 5", frame(DATA, 0, 4, b"x"),
         PROTOCOL_ERROR),
        ("§6.10 CONTINUATION without HEADERS", frame(CONTINUATION, END_HEADERS, 1, b"\x82"), PROTOCOL_ERROR),
        ("RFC 7541 §6.1 indexed field 0", frame(HEADERS, END_STREAM | END_HEADERS, 3, b"\x80"), COMPRESSION_ERROR),
        ("RFC 7541 §6.3 table size update above 4096",
         frame(HEADERS, END_STREAM | END_HEADERS, 3, b"\x3f\xe2\x1f\x82"), COMPRESSION_ERROR),
    ]


def case_connection_errors(port):
    for case in conn_error_cases():
        name, data, code = case[0], case[-2], case[-1]
        p = Peer(port)
        p.open()
        p.send(p.headers(1, request()))
        expect_answer(p, 1, b"200", name + " (setup)")
        last = 1
        if len(case) == 4:  # ("after 5"): stream 5 answered first
            p.send(p.headers(5, request()))
            expect_answer(p, 5, b"200", name + " (setup)")
            last = 5
        if data is None:
            data = p.headers(0, request())
        p.send(data)
        # nghttp2 counts a stream whose HEADERS it began to decode as
        # processed (§6.8 allows either): last-stream-id 3 there.
        if nghttp2() and data[3] == HEADERS and int.from_bytes(data[5:9], "big") == 3:
            last = 3
        expect_goaway(p, code, name, last=last)
        p.close()


def case_window_overflow_on_a_stream(port):
    p = Peer(port)
    p.open()
    p.send(p.headers(1, request("POST", "/echo"), END_HEADERS))
    expect_answer(p, 1, b"200", "§6.9.1 stream window overflow (setup)")
    p.send(window_update(1, 0x7FFFFFFF))
    expect_rst(p, 1, FLOW_CONTROL_ERROR, "§6.9.1 stream window above 2^31-1")
    p.send(window_update(1, 1))  # a closed stream now: ignored
    p.send(p.headers(3, request()))
    expect_answer(p, 3, b"200", "after a stream window overflow")
    p.close()


def case_continuation_misuse(port):
    cases = [
        ("§6.10 PING inside a header block", lambda p, b: frame(HEADERS, END_STREAM, 3, b) + ping() +
         frame(CONTINUATION, END_HEADERS, 3), PROTOCOL_ERROR),
        ("§6.10 CONTINUATION of another stream", lambda p, b: frame(HEADERS, END_STREAM, 3, b) +
         frame(CONTINUATION, END_HEADERS, 5), PROTOCOL_ERROR),
        ("§5.5/§6.10 an unknown frame inside a header block", lambda p, b: frame(HEADERS, END_STREAM, 3, b) +
         frame(0xFA, 0, 3) + frame(CONTINUATION, END_HEADERS, 3), PROTOCOL_ERROR),
        ("HARDENING a 9th CONTINUATION", lambda p, b: frame(HEADERS, END_STREAM, 3, b[:1]) +
         b"".join(frame(CONTINUATION, 0, 3, b[1:2]) for _ in range(9)), ENHANCE_YOUR_CALM),
    ]
    for name, build, code in cases:
        p = Peer(port)
        p.open()
        p.send(p.headers(1, request()))
        expect_answer(p, 1, b"200", name + " (setup)")
        p.send(build(p, p.block(request())))
        if nghttp2() and code == ENHANCE_YOUR_CALM:
            # nghttp2 decodes each fragment as it comes: the repeated octet
            # is a malformed field long before a 9th CONTINUATION, a stream
            # error; the connection goes on.
            expect_rst(p, 3, PROTOCOL_ERROR, name + " (nghttp2)")
        else:
            expect_goaway(p, code, name, last=3 if nghttp2() else 1)
        p.close()
    # A block split over HEADERS + CONTINUATIONs is fine.
    p = Peer(port)
    p.open()
    b = p.block(request(extra=[("x-long", "v" * 60)]))
    pieces = [b[i:i + 10] for i in range(0, len(b), 10)][:9]
    pieces[-1] += b[90:]
    data = frame(HEADERS, END_STREAM, 1, pieces[0])
    for i, piece in enumerate(pieces[1:], 1):
        data += frame(CONTINUATION, END_HEADERS if i == len(pieces) - 1 else 0, 1, piece)
    p.send(data)
    expect_answer(p, 1, b"200", "§6.10 a block over HEADERS + CONTINUATIONs")
    p.close()


def case_invalid_pseudo_headers(port):
    p = Peer(port)
    p.open()
    get = request()
    bad = [
        ("§8.3.1 :path missing", [h for h in get if h[0] != b":path"]),
        ("§8.3.1 :method missing", [h for h in get if h[0] != b":method"]),
        ("§8.3.1 :path empty", request(path="")),
        ("§8.3 :method twice", [(b":method", b"GET")] + get),
        ("§8.3 unknown pseudo-header", get + [(b":foo", b"bar")]),
        ("§8.3.2 :status in a request", get[:3] + [(b":status", b"200")]),
        ("§8.3 pseudo-header after a regular field", get[:2] + [(b"accept", b"*/*")] + get[2:]),
        ("§8.2.1 uppercase field name", get + [(b"X-Upper", b"1")]),
        ("§8.2.2 connection-specific field", get + [(b"connection", b"keep-alive")]),
        ("§8.2.2 te other than trailers", get + [(b"te", b"gzip")]),
    ]
    stream = 1
    for name, headers in bad:
        # x-sync enters the dynamic table here and is referenced by the next
        # request: it is answered only if the server decoded this block too.
        p.send(p.headers(stream, headers + [(b"x-sync", name.encode())]))
        expect_rst(p, stream, PROTOCOL_ERROR, name)
        p.send(p.headers(stream + 2, request() + [(b"x-sync", name.encode())]))
        expect_answer(p, stream + 2, b"200", name + ": the next request (HPACK in sync)")
        stream += 4
    p.close()


def case_rapid_reset(port):
    p = Peer(port)
    p.open()
    data = b""
    # nghttp2's reset rate limit: a burst of 1000, then GOAWAY(INTERNAL_ERROR)
    # naming the last stream received.
    pairs = 1100 if nghttp2() else 1000
    for i in range(pairs):
        sid = 2 * i + 1
        data += p.headers(sid, request("POST", "/echo"), END_HEADERS) + rst_stream(sid, 8)
    p.send(data)
    seen, f = p.until(lambda f: f[0] == GOAWAY, timeout=10)
    if nghttp2():
        check(sum(1 for f in seen if f[0] == HEADERS) >= 1000, "Rapid Reset: a response HEADERS per stream")
        expect_goaway(p, INTERNAL_ERROR, "Rapid Reset (CVE-2023-44487), nghttp2's limit", f=f)
    else:
        check(sum(1 for f in seen if f[0] == HEADERS) == 1000, "Rapid Reset: a response HEADERS per stream")
        expect_goaway(p, ENHANCE_YOUR_CALM, "Rapid Reset (CVE-2023-44487): 1000 HEADERS+RST_STREAM",
                      last=1999, f=f)
    p.close()


def case_ping_flood(port):
    p = Peer(port)
    p.open()
    p.send(b"".join(ping(struct.pack(">Q", i)) for i in range(1000)))
    if nghttp2():
        # nghttp2 bounds ACKs it has not sent (1000); a peer that reads them
        # may ping on, and gets every one back.
        seen, f = p.until(lambda f: f[0] == PING and f[3] == struct.pack(">Q", 999), timeout=10)
        acks = [f for f in seen if f[0] == PING]
        check(len(acks) == 1000 and all(f[1] == ACK and f[3] == struct.pack(">Q", i) for i, f in enumerate(acks)),
              "PING flood, nghttp2: 1000 ACKs with the same opaque data, got %d" % len(acks))
        p.close()
        return
    seen, f = p.until(lambda f: f[0] in (GOAWAY, RST_STREAM), timeout=10)
    acks = [f for f in seen if f[0] == PING]
    check(len(acks) == 999 and all(f[1] == ACK and f[3] == struct.pack(">Q", i) for i, f in enumerate(acks)),
          "PING flood: 999 ACKs with the same opaque data before the GOAWAY, got %d" % len(acks))
    expect_goaway(p, ENHANCE_YOUR_CALM, "PING flood (CVE-2019-9512): 1000 PINGs", last=0, f=f)
    p.close()


def case_refused_stream(port):
    p = Peer(port)
    p.open()
    p.send(b"".join(p.headers(2 * i + 1, request("POST", "/echo"), END_HEADERS) for i in range(100)))
    p.until(lambda f: f[0] == HEADERS and f[2] == 199)
    p.send(p.headers(201, request("POST", "/echo"), END_HEADERS))
    expect_rst(p, 201, REFUSED_STREAM, "§5.1.2 the 101st concurrent stream")
    p.close()


def fresh_client(port):
    """A well-behaved python3-h2 client: /, /bytes/100000, /echo."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    # Every octet checked against what this script computes (issue 11:
    # /bytes/N once restarted its pattern at every DATA frame, at the right
    # length): the 37-octet pattern, and random octets from a fixed seed.
    pattern = b"abcdefghijklmnopqrstuvwxyz0123456789\n"
    echo_body = random.Random(11).randbytes(30000)
    wanted = {
        "/": ("GET", b"", b"Hello World\n"),
        "/bytes/100000": ("GET", b"", bytes(pattern[i % 37] for i in range(100000))),
        "/echo": ("POST", echo_body, echo_body),
    }
    streams = {}
    for path, (method, body, _) in wanted.items():
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", method), (":scheme", "http"), (":path", path),
                                (":authority", "localhost")], end_stream=not body)
        if body:
            conn.send_data(sid, body[:16384])
            conn.send_data(sid, body[16384:], end_stream=True)
        streams[sid] = {"path": path, "status": None, "body": b"", "ended": False}
    sock.sendall(conn.data_to_send())
    deadline = time.monotonic() + 10
    while not all(s["ended"] for s in streams.values()) and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                streams[ev.stream_id]["status"] = dict(ev.headers).get(":status")
            elif isinstance(ev, h2.events.DataReceived):
                streams[ev.stream_id]["body"] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                streams[ev.stream_id]["ended"] = True
        sock.sendall(conn.data_to_send())
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    for s in streams.values():
        method, _, expected = wanted[s["path"]]
        ok = s["ended"] and s["status"] == "200"
        got = s["body"]
        first = next((i for i in range(min(len(got), len(expected))) if got[i] != expected[i]),
                     min(len(got), len(expected)))
        ok = ok and got == expected
        check(ok, "fresh h2 client: %s %s -> status %s, %d octets (want %d, first difference at %s), ended %s" % (
            method, s["path"], s["status"], len(got), len(expected),
            "none" if got == expected else first, s["ended"]))


# ---------------------------------------------------------------------------

def start_server(main, engine):
    help_text = subprocess.run([main, "--help"], capture_output=True, text=True, timeout=10).stdout
    argv = [main, "--port", "0", "--engine", engine]
    if "--tls" in help_text:
        argv += ["--tls", "off"]
    # stderr to a file: a chatty server must never block on a full pipe.
    err = tempfile.TemporaryFile()
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
    server.err_file = err
    try:
        ready, _, _ = select.select([server.stdout], [], [], 10)
        line = server.stdout.readline() if ready else ""
        prefix = "h2lab listening on http://"
        if not line.startswith(prefix):
            raise RuntimeError("server did not announce itself: %r" % line)
        return server, int(line[len(prefix):].split("/", 1)[0].rsplit(":", 1)[1])
    except BaseException:
        server.kill()
        server.wait()
        raise


# The engine under test. libnghttp2 (--engine nghttp2) answers some abuse its
# own way; each difference is spelled out where it is checked.
ENGINE = "full"


def nghttp2():
    return ENGINE == "nghttp2"


class Deadline(Exception):
    pass


def on_alarm(signum, frame):
    raise Deadline("the test took longer than its overall deadline")


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    global ENGINE
    ENGINE = sys.argv[2] if len(sys.argv) == 3 else "full"
    engine = ENGINE
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(200)  # the whole test, whatever happens (the server is stopped in `finally`)
    server, port = start_server(sys.argv[1], engine)
    try:
        for case in (case_bad_preface, case_h2spec_3_5, case_http1, case_first_frame_not_settings, case_connection_errors,
                     case_window_overflow_on_a_stream, case_continuation_misuse, case_invalid_pseudo_headers,
                     case_refused_stream, case_rapid_reset, case_ping_flood):
            print("--", case.__name__, flush=True)
            case(port)
            fresh_client(port)  # the server keeps serving after each hostile peer
        check(server.poll() is None, "the server is still running")
    except Deadline as e:
        check(False, str(e))
    finally:
        signal.alarm(0)
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            code = "killed after 10 s"
        server.err_file.seek(0)
        stderr = server.err_file.read().decode(errors="replace")
    check(code == 0, "exit status after SIGTERM: %s, want 0; stderr: %s" % (code, stderr[-500:]))
    if failures:
        print("%d of %d checks failed" % (len(failures), checks))
        return 1
    print("h2 peer: all %d checks passed" % checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
