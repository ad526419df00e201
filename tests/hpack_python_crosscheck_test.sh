#!/usr/bin/env bash
# Runs hpack_python_crosscheck.py (h2lab HPACK vs Debian's python3-hpack).
set -euo pipefail
root="${TEST_SRCDIR:-.}/h2lab"
[ -d "$root/tests" ] || root="."
if ! /usr/bin/python3 -c "import hpack" 2>/dev/null; then
  echo "python3-hpack is not installed (apt-get install python3-hpack)" >&2
  exit 1
fi
exec /usr/bin/python3 "$root/tests/hpack_python_crosscheck.py" \
  "$root/proto/hpack_decode" "$root/tests/hpack_encode_lines"
