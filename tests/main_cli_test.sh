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

# Read whole: grep -q would stop reading early and fail main's write (pipefail).
help=$("$main" --help) || fail "--help exited $?"
grep -q -- '--dispatch NAME' <<<"$help" || fail "--help lacks --dispatch"
grep -q 'blocking' <<<"$help" || fail "--help lacks the dispatcher names"
expect_usage_error "unknown dispatcher 'bogus' for --dispatch; valid: blocking" --dispatch bogus
expect_usage_error "unknown engine 'nope' for --engine; valid: full, mini" --engine nope
expect_usage_error "invalid value '99999' for --port" --port 99999
expect_usage_error "invalid value '-1' for --port" --port=-1
expect_usage_error "unknown option '--frobnicate'" --frobnicate
expect_usage_error "invalid value 'maybe' for --tcp-nodelay: expected on or off" --tcp-nodelay maybe
expect_usage_error "--port needs a value" --port
grep -q -- '--tls on|off' <<<"$help" || fail "--help lacks --tls"
expect_usage_error "invalid value 'maybe' for --tls: expected on or off" --tls maybe
expect_usage_error "invalid value 'no' for --tls-resumption: expected on or off" --tls-resumption no
out=$("$main" --port 0 --cert "$TEST_TMPDIR/absent.pem" --key "$TEST_TMPDIR/absent.pem" 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "--cert with a missing file exited $rc, want 1"
grep -qF "cannot read certificate file '$TEST_TMPDIR/absent.pem': No such file or directory" <<<"$out" ||
  fail "--cert with a missing file said: $out"
out=$("$main" --port 0 --cert "$TEST_TMPDIR/absent.pem" 2>&1)
grep -qF "a certificate file needs a key file (--key)" <<<"$out" || fail "--cert alone said: $out"

out="$TEST_TMPDIR/main.out"
# Starts main with "$@"; sets pid, and url from the first line, which must be
# "h2lab listening on URL" (the bench harness reads it).
start_main() {
  "$main" "$@" >"$out" 2>"$TEST_TMPDIR/main.err" &
  pid=$!
  url=""
  for _ in $(seq 50); do
    url=$(sed -n '1s/^h2lab listening on \([^ ]*\)$/\1/p' "$out")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || fail "'$*': no first line 'h2lab listening on URL': $(cat "$out")"
}
# SIGTERM, then a clean exit (status 0) within 5 s.
stop_main() {
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "still running 5 s after SIGTERM"
  else
    wait "$pid"; rc=$?
    [ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM, want 0"
  fi
}
trap 'kill -9 $pid 2>/dev/null' EXIT

start_main --port 0 --tls off
[[ "$url" == http://* ]] || fail "--tls off serves '$url', want http://"
grep -qF "curl --http2-prior-knowledge $url" "$out" || fail "no ready-to-paste curl line"
grep -qF "h2load -n 100000 -c 1 -m 100 $url" "$out" || fail "no ready-to-paste h2load line"
body=$(curl -sS --max-time 10 --http2-prior-knowledge "$url")
[ "$body" = "Hello World" ] || fail "curl got '$body'"
stop_main
grep -q "stopped" "$TEST_TMPDIR/main.err" || fail "no 'stopped' line on stderr"

# TLS is the default: https, the certificate's fingerprint and pin, client lines.
start_main --port 0
[[ "$url" == https://* ]] || fail "the default serves '$url', want https://"
grep -qE "^  SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}$" "$out" || fail "no fingerprint line"
grep -qF "ephemeral self-signed certificate for localhost, 127.0.0.1, ::1" "$out" ||
  fail "no certificate line"
grep -qF "curl -k --http2 $url" "$out" || fail "no ready-to-paste TLS curl line"
grep -qF "h2load -n 100000 -c 1 -m 100 $url" "$out" || fail "no ready-to-paste TLS h2load line"
grep -qF "nghttp -v $url" "$out" || fail "no ready-to-paste nghttp line"
body=$(curl -sS -k --http2 --max-time 10 -w '|%{http_version}' "$url")
[ "$body" = "Hello World
|2" ] || fail "curl -k --http2 got '$body'"
pin=$(grep -o 'sha256//[A-Za-z0-9+/=]*' "$out")
body=$(curl -sS -k --http2 --pinnedpubkey "$pin" --max-time 10 "$url")
[ "$body" = "Hello World" ] || fail "curl with the printed --pinnedpubkey got '$body'"
stop_main

if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "main CLI: all checks passed"
