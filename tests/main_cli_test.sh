#!/usr/bin/env bash
# //server:main as a user meets it: --help, clear errors for bad flags, the
# first output line, serving, and a clean exit on SIGTERM.
set -uo pipefail
main="${TEST_SRCDIR:-.}/h2lab/server/main"
[ -x "$main" ] || main="server/main"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

expect_usage_error() {  # expected-text, args...
  local want="$1"; shift
  local out rc
  out=$("$main" "$@" 2>&1); rc=$?
  [ "$rc" -eq 2 ] || fail "'$*' exited $rc, want 2"
  grep -qF -- "$want" <<<"$out" || fail "'$*' said: $out (want: $want)"
}

"$main" --help | grep -q -- '--dispatch NAME' || fail "--help lacks --dispatch"
"$main" --help | grep -q 'blocking' || fail "--help lacks the dispatcher names"
expect_usage_error "unknown dispatcher 'bogus' for --dispatch; valid: blocking" --dispatch bogus
expect_usage_error "unknown engine 'nope' for --engine; valid: full, mini" --engine nope
expect_usage_error "invalid value '99999' for --port" --port 99999
expect_usage_error "invalid value '-1' for --port" --port=-1
expect_usage_error "unknown option '--frobnicate'" --frobnicate
expect_usage_error "--port needs a value" --port

out="$TEST_TMPDIR/main.out"
"$main" --port 0 >"$out" 2>"$TEST_TMPDIR/main.err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
url=""
for _ in $(seq 50); do
  url=$(sed -n 's/^h2lab listening on \(http:[^ ]*\)$/\1/p' "$out" | head -1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || fail "no 'h2lab listening on URL' line: $(cat "$out")"
grep -qF "curl --http2-prior-knowledge $url" "$out" || fail "no ready-to-paste curl line"
grep -qF "h2load -n 100000 -c 1 -m 100 $url" "$out" || fail "no ready-to-paste h2load line"
body=$(curl -sS --max-time 10 --http2-prior-knowledge "$url")
[ "$body" = "Hello World" ] || fail "curl got '$body'"

kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  fail "still running 5 s after SIGTERM"
else
  wait "$pid"; rc=$?
  [ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM, want 0"
fi
grep -q "stopped" "$TEST_TMPDIR/main.err" || fail "no 'stopped' line on stderr"

if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "main CLI: all checks passed"
