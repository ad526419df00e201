#!/usr/bin/env bash
# //tests:h2_peer_test: python3-h2 as a hostile peer against //server:main
# (--engine full, or the engine given as an argument); the cases and what
# they assert are in h2_peer_test.py.
set -euo pipefail
root="${TEST_SRCDIR:-.}/h2lab"
[ -d "$root/tests" ] || root="."
if ! /usr/bin/python3 -c 'import h2, hpack' 2>/dev/null; then
  echo "FAIL: Debian's python3-h2 is missing (run ./setup)"
  exit 1
fi
exec /usr/bin/python3 "$root/tests/h2_peer_test.py" "$root/server/main" "$@"
