#!/usr/bin/env bash
# //tests:clients_content_test: real clients (curl, nghttp, python3-h2,
# httpx, Node, Go, Chromium) against //server:main under every dispatcher
# and TLS mode, every octet of /bytes/N and /echo checked. The cases and what
# they assert are in clients_content_test.py. Debian's /usr/bin/python3
# (python3-h2, python3-httpx), not whatever python3 comes first in PATH.
set -euo pipefail
root="${TEST_SRCDIR:-.}/h2lab"
[ -d "$root/tests" ] || root="."
if [ ! -x /usr/bin/python3 ]; then
  echo "FAIL: /usr/bin/python3 is missing (run ./setup)"
  exit 1
fi
exec /usr/bin/python3 "$root/tests/clients_content_test.py" "$root"
