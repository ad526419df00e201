#!/usr/bin/python3
"""Cross-checks h2lab's HPACK against an independent implementation,
Debian's python3-hpack, in both directions:

  A. python hpack encodes header lists (raw and Huffman, with table size
     changes and never-indexed fields) into an inflatehd-style story;
     //proto:hpack_decode must decode every case to the same list, with the
     same dynamic table size.
  B. h2lab's Encoder (via //tests:hpack_encode_lines) encodes the same lists;
     python hpack's Decoder must decode each block to the same list, see our
     never-indexed fields as never-indexed, and repeated responses must
     shrink.

usage: hpack_python_crosscheck.py HPACK_DECODE HPACK_ENCODE_LINES
Offline, deterministic (fixed seed), a second or so.
"""
import codecs
import json
import random
import subprocess
import sys

import hpack
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hpack.table import HeaderTable

DECODE_TOOL, ENCODE_TOOL = sys.argv[1], sys.argv[2]
FAILURES = []
CHECKS = [0]


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILURES.append(what)


# hpack_decode writes valid UTF-8 as is and every other octet as \u00XX:
# this is what json.loads() gives back for a field's octets.
codecs.register_error(
    "h2lab_octets",
    lambda e: ("".join(chr(b) for b in e.object[e.start:e.end]), e.end))


def json_view(b):
    return b.decode("utf-8", errors="h2lab_octets")


# ---------------------------------------------------------------------------
# Header lists

STATIC = [(n, v) for n, v in HeaderTable.STATIC_TABLE]
RFC_LISTS = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
     (b":authority", b"www.example.com")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
     (b":authority", b"www.example.com"), (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
     (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
    [(b":status", b"302"), (b"cache-control", b"private"),
     (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
     (b"location", b"https://www.example.com")],
    [(b":status", b"200"), (b"cache-control", b"private"),
     (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
     (b"location", b"https://www.example.com"), (b"content-encoding", b"gzip"),
     (b"set-cookie",
      b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")],
]
RESPONSE = [(b":status", b"200"), (b"content-type", b"text/html; charset=utf-8"),
            (b"server", b"h2lab"), (b"content-length", b"1234"),
            (b"date", b"Tue, 25 Nov 2025 13:00:00 GMT"),
            (b"cache-control", b"public, max-age=3600"), (b"vary", b"accept-encoding")]


def random_lists(rng, count):
    names = [n for n, _ in STATIC] + [b"x-custom", b"x-trace-id", b"x-bin",
                                      bytes(range(256))]
    lists = []
    for _ in range(count):
        fields = []
        for _ in range(rng.randrange(0, 14)):
            kind = rng.randrange(10)
            if kind == 0:
                value = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            elif kind == 1:
                value = bytes(rng.choice(b"abcdefgh") for _ in range(rng.randrange(200, 1500)))
            elif kind == 2:
                value = rng.choice(STATIC)[1]
            else:
                value = rng.choice([b"", b"1", b"gzip", b"text/plain", b"no-cache",
                                    "caf\u00e9 \u2603".encode(), b"\xff\xfe",
                                    b"a\"b\\c\nd\te\x00f\x7f"])
            fields.append((rng.choice(names), value, rng.randrange(8) == 0))
        lists.append(fields)
    return lists


def build_lists():
    rng = random.Random(20260101)
    lists = [[(n, v, False) for n, v in l] for l in RFC_LISTS]
    lists.append([(n, v, False) for n, v in STATIC])                # full matches
    lists.append([(n, b"new-" + n, False) for n, _ in STATIC])      # name matches
    lists.append([(b"x-all-octets", bytes(range(256)), False),
                  (bytes(range(256)), b"v", False)])
    lists.append([(n, v, False) for n, v in RESPONSE])
    lists.append([(n, v, False) for n, v in RESPONSE])
    lists += random_lists(rng, 120)
    return lists


# Table size changes between blocks: position -> SETTINGS_HEADER_TABLE_SIZE.
SIZE_CHANGES = {10: 1024, 11: 0, 20: 4096, 40: 256, 41: 2048, 80: 4096}


# ---------------------------------------------------------------------------
# A. python encodes, h2lab decodes

def python_to_h2lab(lists, huffman):
    enc = hpack.Encoder()
    cases = []
    for i, fields in enumerate(lists):
        case = {"seqno": i}
        if i in SIZE_CHANGES:
            enc.header_table_size = SIZE_CHANGES[i]
            case["header_table_size"] = SIZE_CHANGES[i]
        wire = enc.encode([(n, v, s) for n, v, s in fields], huffman=huffman)
        case["wire"] = wire.hex()
        case["headers"] = "ignored by the tool"
        cases.append(case)
    story = json.dumps({"cases": cases})
    proc = subprocess.run(
        [DECODE_TOOL, "--max-header-list-size=10000000", "--max-fields=1000",
         "--max-field-size=1000000"],
        input=story.encode(), capture_output=True, timeout=60)
    label = "python->h2lab (huffman=%s)" % huffman
    check(proc.returncode == 0,
          "%s: exit %d: %s" % (label, proc.returncode, proc.stderr.decode()))
    if proc.returncode != 0:
        return
    out = json.loads(proc.stdout)
    check(len(out["cases"]) == len(lists), label + ": case count")
    sizes = {}
    enc2 = hpack.Encoder()  # replay to learn the table size after each case
    for i, fields in enumerate(lists):
        if i in SIZE_CHANGES:
            enc2.header_table_size = SIZE_CHANGES[i]
        enc2.encode([(n, v, s) for n, v, s in fields], huffman=huffman)
        sizes[i] = enc2.header_table_size
    for i, (fields, case) in enumerate(zip(lists, out["cases"])):
        got = [next(iter(h.items())) for h in case["headers"]]
        want = [(json_view(n), json_view(v)) for n, v, _ in fields]
        check(got == want, "%s: case %d headers differ:\n got %r\nwant %r"
              % (label, i, got[:5], want[:5]))
        check(case["seqno"] == i, "%s: case %d seqno" % (label, i))
        check(case["wire"] == cases[i]["wire"], "%s: case %d wire" % (label, i))
        check(case["header_table_size"] == sizes[i],
              "%s: case %d header_table_size %d, want %d"
              % (label, i, case["header_table_size"], sizes[i]))


# ---------------------------------------------------------------------------
# B. h2lab encodes, python decodes

NEVER_INDEXED_NAMES = {b"authorization", b"proxy-authorization", b"cookie",
                       b"set-cookie"}


def h2lab_to_python(lists):
    lines = []
    for i, fields in enumerate(lists):
        if i in SIZE_CHANGES:
            lines.append("size %d" % SIZE_CHANGES[i])
        for n, v, s in fields:
            lines.append("f %s %s%s" % (n.hex() or "-", v.hex() or "-",
                                        " never" if s else ""))
        lines.append("end")
    proc = subprocess.run([ENCODE_TOOL], input="\n".join(lines).encode(),
                          capture_output=True, timeout=60)
    check(proc.returncode == 0, "h2lab encoder: %s" % proc.stderr.decode())
    if proc.returncode != 0:
        return
    blocks = proc.stdout.decode().split()
    check(len(blocks) == len(lists), "h2lab->python: block count")
    dec = hpack.Decoder(max_header_list_size=10_000_000)
    sizes = []
    for i, (fields, hexwire) in enumerate(zip(lists, blocks)):
        if i in SIZE_CHANGES:
            dec.max_allowed_table_size = SIZE_CHANGES[i]
        wire = bytes.fromhex("" if hexwire == "-" else hexwire)
        sizes.append(len(wire))
        try:
            got = dec.decode(wire, raw=True)
        except Exception as e:  # pylint: disable=broad-except
            check(False, "h2lab->python: block %d: python hpack: %r" % (i, e))
            return
        check([(h[0], h[1]) for h in got] == [(n, v) for n, v, _ in fields],
              "h2lab->python: block %d headers differ" % i)
        for h, (n, _, s) in zip(got, fields):
            want_never = s or n in NEVER_INDEXED_NAMES
            check(isinstance(h, NeverIndexedHeaderTuple) == want_never,
                  "h2lab->python: block %d: %r never-indexed=%s"
                  % (i, n, not want_never))
    # RESPONSE is encoded twice in a row (lists 8 and 9): the repeat is smaller.
    check(sizes[9] < sizes[8], "repeated response not smaller: %s" % sizes[8:10])


def main():
    lists = build_lists()
    python_to_h2lab(lists, huffman=False)
    python_to_h2lab(lists, huffman=True)
    h2lab_to_python(lists)
    for f in FAILURES[:20]:
        print("FAIL:", f)
    if FAILURES:
        print("%d failures" % len(FAILURES))
        return 1
    print("PASS: %d header lists, %d checks, python3-hpack %s"
          % (len(lists), CHECKS[0], hpack.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
