#!/usr/bin/env python3
"""Writes the hand-made seed corpora under tests/fuzz/corpus/<target>/.

Seeds are small, meaningful inputs in each target's input format (see the
comment at the top of each *_fuzz.cc): the RFC 7541 Appendix C blocks, the
conversations the unit tests script, a real ClientHello. Run from the
repository root; it only (re)writes files named seed-*, so minimised
campaign corpora and regression inputs (crash-*) beside them stay.

    python3 tests/fuzz/make_seeds.py
"""
import os
import ssl
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def frame(ftype, flags, stream, payload=b""):
    n = len(payload)
    return bytes([n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF, ftype, flags]) + struct.pack(
        ">I", stream) + payload


DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WU, CONT = range(10)
ES, EH, PAD, PRIO, ACK = 0x1, 0x4, 0x8, 0x20, 0x1


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", i, v) for i, v in pairs))


def lit(index, value):  # literal with incremental indexing, indexed name
    value = value.encode()
    return bytes([0x40 | index, len(value)]) + value


def block(method=0x82, path="/", scheme=0x87):
    p = bytes([0x84]) if path == "/" else lit(4, path)
    m = bytes([method]) if isinstance(method, int) else lit(2, method)
    return m + bytes([scheme]) + p + lit(1, "localhost")


def get(stream, path="/", method=0x82):
    return frame(HEADERS, ES | EH, stream, block(method, path))


# ---------------------------------------------------------------- frames
FRAMES = {
    "settings": settings((1, 4096), (3, 100), (4, 65535), (5, 16384), (6, 65536)),
    "settings-ack": frame(SETTINGS, ACK, 0),
    "settings-bad-length": frame(SETTINGS, 0, 0, b"\x00\x01\x00"),
    "ping": frame(PING, 0, 0, b"12345678"),
    "ping-ack": frame(PING, ACK, 0, b"abcdefgh"),
    "headers-padded-priority": frame(HEADERS, EH | PAD | PRIO, 1,
                                     b"\x03" + b"\x80\x00\x00\x00\x10" + block() + b"\0\0\0"),
    "headers-pad-too-long": frame(HEADERS, EH | PAD, 1, b"\x09" + b"\x82"),
    "data-padded": frame(DATA, PAD | ES, 1, b"\x02hello\0\0"),
    "data-stream0": frame(DATA, 0, 0, b"x"),
    "priority": frame(PRIORITY, 0, 3, b"\x00\x00\x00\x01\x0f"),
    "rst": frame(RST, 0, 1, b"\x00\x00\x00\x08"),
    "push-promise": frame(PUSH, EH | PAD, 1, b"\x01\x00\x00\x00\x02\x82\x00"),
    "goaway": frame(GOAWAY, 0, 0, b"\x00\x00\x00\x05\x00\x00\x00\x00debug"),
    "window-update": frame(WU, 0, 1, b"\x00\x00\x10\x00"),
    "window-update-zero": frame(WU, 0, 0, b"\x00\x00\x00\x00"),
    "continuation": frame(CONT, EH, 1, b"\x84"),
    "unknown-type": frame(0x42, 0xFF, 0x80000007, b"whatever"),
    "truncated": frame(DATA, 0, 1, b"0123456789")[:14],
}
for name, data in FRAMES.items():
    write("frame_fuzz", name, data)
write("frame_fuzz", "all", b"".join(FRAMES.values()))

# ---------------------------------------------------------------- HPACK
# RFC 7541 Appendix C, byte for byte.
C3 = ["828684410f7777772e6578616d706c652e636f6d",
      "828684be58086e6f2d6361636865",
      "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"]
C4 = ["828684418cf1e3c2e5f23a6ba0ab90f4ff",
      "828684be5886a8eb10649cbf",
      "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]
C5 = ["4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a"
      "323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
      "4803333037c1c0bf",
      "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69"
      "7077383866726f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b2060"
      "6d61782d6167653d333630303b2076657273696f6e3d31"]
C6 = ["488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29"
      "ad171863c78f0b97c8e9ae82ae43d3",
      "4883640effc1c0bf",
      "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7"
      "f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d50"
      "07"]
C2 = ["400a637573746f6d2d6b65790d637573746f6d2d686561646572",
      "040c2f73616d706c652f70617468", "100870617373776f726406736563726574", "82"]


def blocks(hexes, control=0, prefix=b""):
    out = b""
    for i, h in enumerate(hexes):
        b = (prefix if i == 0 else b"") + bytes.fromhex(h)
        out += bytes([control if i == 0 else 0]) + struct.pack(">H", len(b)) + b
    return out


DEFAULTS = b"\x00\x00\x00\x00"
write("hpack_decode_fuzz", "c2", DEFAULTS + blocks(C2))
write("hpack_decode_fuzz", "c3", DEFAULTS + blocks(C3))
write("hpack_decode_fuzz", "c4", DEFAULTS + blocks(C4))
# C.5 and C.6 assume a 256-octet table: the limit goes to 256 (table size
# pick 7), and the first block announces it with a size update (0x3fe101).
write("hpack_decode_fuzz", "c5", DEFAULTS + blocks(C5, 0x80, b"\x3f\xe1\x01").replace(
    b"\x80", b"\x80\x07", 1))
write("hpack_decode_fuzz", "c6", DEFAULTS + blocks(C6, 0x80, b"\x3f\xe1\x01").replace(
    b"\x80", b"\x80\x07", 1))
write("hpack_decode_fuzz", "c5-no-update", DEFAULTS + blocks(C5, 0x80).replace(
    b"\x80", b"\x80\x07", 1))
write("hpack_decode_fuzz", "small-limits", b"\x01\x01\x01\x01" + blocks(C3 + C5))
write("hpack_decode_fuzz", "bad-index", DEFAULTS + blocks(["80", "be"]))
write("hpack_decode_fuzz", "update-after-field", DEFAULTS + blocks(["8220"]))


def hlist(fields, control=0):
    out = bytes([control, len(fields)])
    for shape, payload in fields:
        out += bytes([shape]) + payload
    return out


def literal(name, value, never=False, long=False):
    shape = 2 | (0x40 if never else 0) | (0x20 if long else 0)
    n = name.encode()
    v = value.encode()
    vl = struct.pack(">H", len(v)) if long else bytes([len(v)])
    return (shape, b"\x00" + bytes([len(n)]) + n + vl + v)


def static(index, value=None):  # static name (index 1-61), static or literal value
    if value is None:
        return (0x10, bytes([index - 1]))
    v = value.encode()
    return (0x00, bytes([index - 1, len(v)]) + v)


RESPONSE = [static(8), static(31, "text/plain"), static(28, "12"), literal("server", "h2lab")]
write("hpack_roundtrip_fuzz", "response", b"\x00" + hlist(RESPONSE) * 3)
write("hpack_roundtrip_fuzz", "table-changes",
      b"\x00" + hlist(RESPONSE) + hlist(RESPONSE, 0x81) + hlist(RESPONSE, 0xC0 | 0x01) + b"\x05"
      + hlist(RESPONSE, 0x20))
write("hpack_roundtrip_fuzz", "credentials",
      b"\x02" + hlist([(0x01, b"\x00\x05" + b"a=b;c"), (0x05, b"\x00\x06" + b"Bearer"),
                       literal("x-secret", "s", never=True), literal("big", "v" * 3000, long=True)]))
write("hpack_roundtrip_fuzz", "small-table", b"\x03" + hlist(RESPONSE) * 2)

HUFFMAN = {"www": "f1e3c2e5f23a6ba0ab90f4ff", "no-cache": "a8eb10649cbf",
           "custom-key": "25a849e95ba97d7f", "custom-value": "25a849e95bb8e8b4bf",
           "302": "6402", "private": "aec3771a4b",
           "date": "d07abe941054d444a8200595040b8166e082a62d1bff",
           "bad-eos": "ffffffff", "bad-padding": "f1e3c2e5f23a6ba0ab90f400"}
for name, h in HUFFMAN.items():
    write("huffman_fuzz", name, bytes.fromhex(h))
write("huffman_fuzz", "text", b"Hello World\n")
write("huffman_fuzz", "binary", bytes(range(256)))

# ---------------------------------------------------------------- engines
CLIENT_START = settings((3, 100), (4, 65535)) + frame(SETTINGS, ACK, 0)
CONVERSATIONS = {
    "hello": CLIENT_START + get(1),
    "three-gets": CLIENT_START + get(1) + get(3) + get(5, "/nope"),
    "bytes": CLIENT_START + frame(WU, 0, 0, b"\x00\x10\x00\x00") + get(1, "/bytes/100000")
    + frame(WU, 0, 1, b"\x00\x10\x00\x00"),
    "echo": CLIENT_START + frame(HEADERS, EH, 1, block(0x83, "/echo"))
    + frame(DATA, 0, 1, b"hello ") + frame(DATA, PAD | ES, 1, b"\x03world\0\0\0"),
    "head-stats": CLIENT_START + get(1, "/stats") + get(3, "/bytes/7", "HEAD"),
    "continuation": CLIENT_START + frame(HEADERS, ES, 1, block()[:3]) + frame(CONT, 0, 1, block()[3:5])
    + frame(CONT, EH, 1, block()[5:]),
    "ping-priority-rst": CLIENT_START + frame(PING, 0, 0, b"01234567") + frame(PRIORITY, 0, 1, b"\0\0\0\0\x10")
    + frame(HEADERS, EH, 1, block(0x83, "/echo")) + frame(RST, 0, 1, b"\0\0\0\x08") + get(3),
    "goaway": CLIENT_START + get(1) + frame(GOAWAY, 0, 0, b"\0\0\0\x01\0\0\0\0"),
    "table-size": settings((1, 0)) + get(1) + get(3),
    "max-frame": settings((5, 1 << 20), (4, 1 << 30)) + frame(WU, 0, 0, b"\x7f\x00\x00\x00") + get(1, "/bytes/3000000"),
    "bad-frame-size": CLIENT_START + frame(PING, 0, 0, b"0123"),
    "oversized": CLIENT_START + b"\x01\x00\x00\x00\x00\x00\x00\x00\x01",
    "not-settings-first": get(1),
    "http1": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}


def script_one_chunk(conv):
    return b"\x00" + struct.pack(">H", len(conv) + 24) + conv + b"\x0b"


def script_split(conv, step=7):
    out = b"\x00" + struct.pack(">H", 24)
    for i in range(0, len(conv), step):
        piece = conv[i:i + step]
        out += bytes([0x08 | (len(piece) - 1) << 4]) + piece
        out += b"\x03\x00\x05"  # the socket takes 5 octets now and then
    return out + b"\x07"


def script_backpressure(conv):
    # Everything at once, nothing written until shutdown, then a drain.
    return b"\x00" + struct.pack(">H", len(conv) + 24) + conv + b"\x04\x06\x07\x05"


for name, conv in CONVERSATIONS.items():
    for target, options in (("connection_fuzz", [b"\x00", b"\x02", b"\x35"]), ("mini_fuzz", [b""])):
        write(target, name, options[0] + script_one_chunk(conv))
        write(target, name + "-split", options[0] + script_split(conv))
        write(target, name + "-backpressure", options[-1] + script_backpressure(conv))

# ---------------------------------------------------------------- TLS
def client_hello(tls12=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


HELLO13, HELLO12 = client_hello(), client_hello(True)


def tls_script(stream, room_op=0x30):
    return bytes([room_op]) + struct.pack(">H", len(stream)) + stream


write("tls_session_fuzz", "mode0-data", b"\x00" + tls_script(b"\x17\x03\x03\x00\x05hello") + b"\x0a\x03\x04\x0a")
write("tls_session_fuzz", "mode0-12", b"\x03" + b"\x01\x05hello" + b"\x0a" + b"\x03")
write("tls_session_fuzz", "mode1-hello13", b"\x01" + tls_script(HELLO13) + b"\x0a\x01\x03abc\x0a\x04\x0a")
write("tls_session_fuzz", "mode1-hello12", b"\x04" + tls_script(HELLO12) + b"\x0a\x05\x0a")
split = b"".join(bytes([0x08 | 0xF0]) + HELLO13[i:i + 16] for i in range(0, len(HELLO13), 16))
write("tls_session_fuzz", "mode1-hello13-split", b"\x01" + split + b"\x0a")
write("tls_session_fuzz", "mode1-http", b"\x01" + tls_script(b"GET / HTTP/1.1\r\n\r\n"))
write("tls_session_fuzz", "mode1-plain-h2", b"\x01" + tls_script(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
H2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + CONVERSATIONS["hello"]
write("tls_session_fuzz", "mode2-clean", b"\x02\x00\x01" + H2 + b"\xff" + b"server bytes")
write("tls_session_fuzz", "mode2-clean12", b"\x05\x00\x01" + H2 + b"\xff" + b"x" * 40)
write("tls_session_fuzz", "mode2-flip-hello", b"\x02\x01\x00\x30\x01\x08" + H2)
write("tls_session_fuzz", "mode2-flip-data", b"\x02\x01\x09\x00\x80\x04" + H2)


def session_script(conv, raw=False):
    return bytes([0x08 if raw else 0x00]) + struct.pack(">H", len(conv) + 24) + b"\0" * 24 + conv + b"\x0b"


# The preface is sent by the driver; the 24 filler octets above stand for it
# in the length but are dropped (the driver substitutes the real preface).
for name in ("hello", "bytes", "echo", "three-gets", "continuation", "goaway"):
    conv = CONVERSATIONS[name]
    for config, tag in ((0x00, "plain"), (0x01, "tls13"), (0x03, "tls12"), (0x05, "tls-per-response"),
                        (0x0C, "plain-per-response-stats"), (0x21, "tls-16k")):
        write("server_session_fuzz", f"{tag}-{name}", bytes([config]) + session_script(conv))
write("server_session_fuzz", "tls-raw-garbage", b"\x01" + session_script(b"\x17\x03\x03\x00\x02hi", raw=True))
write("server_session_fuzz", "plain-eof-shutdown", b"\x00" + session_script(CONVERSATIONS["bytes"]) + b"\x05\x04\x07")
