#!/usr/bin/python3
"""//proto:hpack_decode over the public hpack-test-case corpus.

Every story with "wire" blocks (one directory per encoder that produced it;
raw-data has none) is decoded case by case by one decoder, and each case's
decoded list must equal the story's "headers", field for field and in order.
./setup puts the corpus in /usr/local/share/h2lab/hpack-test-case (from the
npm package hpack@1.0.0, which ships it).
"""
import glob
import json
import os
import subprocess
import sys

import hpack  # python3-hpack: an independent RFC 7541 decoder, to judge the stale stories

CORPUS = os.environ.get("HPACK_TEST_CASE", "/usr/local/share/h2lab/hpack-test-case")
# The stories of hpack@1.0.0's snapshot: 14 encoders' directories.
EXPECTED_STORIES = 444
# Three directories of this snapshot were written by encoders of HPACK
# drafts (another static table, another Huffman code): no RFC 7541 decoder
# reads them. They are checked to be unreadable by python3-hpack too, so a
# directory is never left out on h2lab's word alone.
DRAFT_ERA = {"hyper-hpack", "node-http2-protocol", "twitter-hpack"}


def python_hpack_reads(story):
    """True if python3-hpack decodes every case to the story's headers."""
    dec = hpack.Decoder()
    try:
        for case in story["cases"]:
            if case.get("header_table_size") is not None:
                dec.header_table_size = case["header_table_size"]
            got = [(n.decode(), v.decode()) for n, v in dec.decode(bytes.fromhex(case["wire"]), raw=True)]
            if got != fields(case):
                return False
    except Exception:  # any refusal: not readable
        return False
    return True


def fields(case):
    """A story's headers: a list of one-member objects."""
    out = []
    for h in case.get("headers") or []:
        (name, value), = h.items()
        out.append((name, value))
    return out


def main():
    tool = sys.argv[1]
    stories = sorted(p for p in glob.glob(os.path.join(CORPUS, "*", "story_*.json"))
                     if os.path.basename(os.path.dirname(p)) != "raw-data")
    if len(stories) != EXPECTED_STORIES:
        print("found %d stories under %s, want %d: run ./setup" % (len(stories), CORPUS, EXPECTED_STORIES))
        return 1
    failures = 0
    cases = 0
    draft = 0
    for path in stories:
        with open(path, "rb") as f:
            raw = f.read()
        story = json.loads(raw)
        if os.path.basename(os.path.dirname(path)) in DRAFT_ERA:
            draft += 1
            if python_hpack_reads(story):
                print("FAIL %s: left out as draft-era, but python3-hpack reads it" % path)
                failures += 1
            continue
        # Limits no story of real traffic reaches: every block must decode.
        r = subprocess.run([tool, "--max-header-list-size=16777216", "--max-fields=100000",
                            "--max-field-size=16777216"], input=raw, capture_output=True)
        name = os.path.relpath(path, CORPUS)
        if r.returncode != 0:
            print("FAIL %s: exit %d: %s" % (name, r.returncode, r.stderr.decode(errors="replace").strip()))
            failures += 1
            continue
        decoded = json.loads(r.stdout)["cases"]
        want = story["cases"]
        if len(decoded) != len(want):
            print("FAIL %s: %d cases decoded, story has %d" % (name, len(decoded), len(want)))
            failures += 1
            continue
        for i, (d, w) in enumerate(zip(decoded, want)):
            cases += 1
            if fields(d) != fields(w):
                print("FAIL %s case %d: decoded %r, story says %r" % (name, i, fields(d)[:3], fields(w)[:3]))
                failures += 1
                break
    print("%d/%d RFC 7541 stories decode to their headers (%d cases); %d draft-era stories left out"
          % (len(stories) - draft - failures, len(stories) - draft, cases, draft))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
