#!/usr/bin/env bash
# Runs hpack_corpus_test.py: //proto:hpack_decode over hpack-test-case.
set -euo pipefail
root="${TEST_SRCDIR:-.}/h2lab"
[ -d "$root/tests" ] || root="."
exec /usr/bin/python3 "$root/tests/hpack_corpus_test.py" "$root/proto/hpack_decode"
