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
# The socket, thread and epoll knobs: a bad value, a range, a conflict each.
expect_usage_error "invalid value 'abc' for --sndbuf: expected a whole number" --sndbuf abc
expect_usage_error "invalid value '-1' for --rcvbuf: expected a whole number" --rcvbuf -1
expect_usage_error "invalid value '2000000' for --busy-poll: expected a whole number from 0 to 1000000" \
  --busy-poll 2000000
expect_usage_error "invalid value 'maybe' for --quickack: expected on or off" --quickack maybe
expect_usage_error "invalid value 'x' for --notsent-lowat: expected a whole number" --notsent-lowat x
expect_usage_error "invalid value 'maybe' for --tcp-cork: expected on or off" --tcp-cork maybe
expect_usage_error "invalid value 'fast' for --max-pacing-rate: expected a whole number" --max-pacing-rate fast
expect_usage_error "invalid value 'a-name-longer-than-fifteen' for --congestion: expected a name such as reno, cubic or bbr" \
  --congestion a-name-longer-than-fifteen
expect_usage_error "--uring-recv-bundle applies to --dispatch uring only (--dispatch is epoll)" \
  --uring-recv-bundle on
expect_usage_error "--uring-send-bundle, --uring-registered-buffers and --uring-send-zc are three ways of sending: choose one" \
  --dispatch uring --uring-send-bundle on --uring-send-zc 16384
expect_usage_error "invalid value 'yes' for --uring-incremental-buffers: expected on or off" \
  --dispatch uring --uring-incremental-buffers yes
expect_usage_error "invalid value '1' for --uring-register-ring-fd: expected on or off" \
  --dispatch uring --uring-register-ring-fd 1
expect_usage_error "--uring-no-sqarray applies to --dispatch uring only (--dispatch is threaded)" \
  --dispatch threaded --uring-no-sqarray on
expect_usage_error "invalid value '1e3' for --backlog: expected a whole number" --backlog 1e3
expect_usage_error "invalid value 'yes' for --incoming-cpu: expected on or off" --incoming-cpu yes
expect_usage_error "invalid value '3-1' for --cpus: expected CPU numbers like 0,1 or 0-3" --cpus 3-1
expect_usage_error "invalid value 'sometimes' for --epoll-trigger; valid: edge, level" \
  --epoll-trigger sometimes
expect_usage_error "--epoll-max-events must be from 1 to 65536" --epoll-max-events 0
expect_usage_error "invalid value 'x' for --epoll-busy-poll: expected a whole number" --epoll-busy-poll x
expect_usage_error "--epoll-trigger applies to --dispatch epoll only (--dispatch is uring)" \
  --epoll-trigger level --dispatch uring
expect_usage_error "--epoll-max-events applies to --dispatch epoll only (--dispatch is blocking)" \
  --epoll-max-events 8 --dispatch blocking
expect_usage_error "--incoming-cpu needs --cpus" --incoming-cpu on
grep -q -- '--tls on|off' <<<"$help" || fail "--help lacks --tls"
# The deadlines and the thread bound (issue 15).
for flag in --preface-timeout --header-timeout --min-progress-window --min-progress-rate --max-threads; do
  grep -q -- "$flag" <<<"$help" || fail "--help lacks $flag"
done
expect_usage_error "invalid value 'soon' for --preface-timeout: expected a whole number" --preface-timeout soon
expect_usage_error "invalid value '-5' for --header-timeout: expected a whole number" --header-timeout -5
expect_usage_error "invalid value 'x' for --min-progress-rate: expected a whole number" --min-progress-rate x
expect_usage_error "--header-timeout must be at least 1 ms" --header-timeout 0
expect_usage_error "--max-threads applies to --dispatch threaded only (--dispatch is epoll)" --max-threads 10
expect_usage_error "--max-threads must be at least 1" --dispatch threaded --max-threads 0
expect_usage_error "--threads applies to --dispatch epoll and uring only (--dispatch is blocking)" \
  --dispatch blocking --threads 2
expect_usage_error "--cpus: this process may not run on CPU 1000" --cpus 1000
# io_uring knobs: values, and combinations the options refuse before any ring.
expect_usage_error "--uring-entries applies to --dispatch uring only (--dispatch is epoll)" \
  --uring-entries 1024
expect_usage_error "--uring-entries must be a power of two from 1 to 32768" \
  --dispatch uring --uring-entries 1000
expect_usage_error "invalid value 'fast' for --uring-flags; valid: auto, none, or a comma-separated list of coop, single, defer" \
  --dispatch uring --uring-flags fast
expect_usage_error "--uring-flags defer needs single as well" --dispatch uring --uring-flags defer
expect_usage_error "--uring-flags coop and defer cannot be combined with --uring-sqpoll" \
  --dispatch uring --uring-sqpoll --uring-flags coop
expect_usage_error "--uring-sqpoll-idle and --uring-sqpoll-cpu need --uring-sqpoll" \
  --dispatch uring --uring-sqpoll-idle 10
expect_usage_error "--uring-buffers must be a power of two from 1 to 32768" \
  --dispatch uring --uring-buffers 100
expect_usage_error "--uring-buffer-size must be from 512 to 1048576 octets" \
  --dispatch uring --uring-buffer-size 100
expect_usage_error "invalid value 'maybe' for --uring-fixed-files: expected on or off" \
  --dispatch uring --uring-fixed-files maybe
expect_usage_error "invalid value 'maybe' for --uring-registered-buffers: expected on or off" \
  --dispatch uring --uring-registered-buffers maybe
expect_usage_error "invalid value 'x' for --uring-send-zc: expected a whole number" \
  --dispatch uring --uring-send-zc x
expect_usage_error "invalid value 'x' for --uring-napi: expected a whole number" \
  --dispatch uring --uring-napi x
# Output and measurement knobs.
expect_usage_error "invalid value 'often' for --write-policy; valid: coalesce, per-response" \
  --write-policy often
expect_usage_error "--tls-record-size must be from 512 to 16384 octets" --tls-record-size 100
expect_usage_error "invalid value '20000' for --tls-record-size: expected a whole number from 0 to 16384" \
  --tls-record-size 20000
expect_usage_error "--tls-record-size applies to --tls on only" --tls off --tls-record-size 4096
expect_usage_error "invalid value 'boringssl' for --tls-records; valid: h2lab, openssl" \
  --tls-records boringssl
expect_usage_error "--tls-records applies to --tls on only" --tls off --tls-records openssl
expect_usage_error "invalid value 'x' for --stats-interval: expected a whole number" --stats-interval x
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
  # Emptied here, not by the redirection below: that one runs in the child,
  # which may not have run yet when the loop reads the previous server's
  # first line (seen under ASan, where exec is slower).
  : >"$out"
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
# The summary on stop counts what was served: curl's one request.
grep -qE "^  [0-9]+ connections \(0 refused\), 1 requests, 1 responses" "$TEST_TMPDIR/main.err" ||
  fail "no summary of 1 request on stop: $(cat "$TEST_TMPDIR/main.err")"
grep -qE "^  latency: mean [0-9.]+ µs" "$TEST_TMPDIR/main.err" || fail "no latency in the summary"

# --stats-interval: one live line per interval while serving.
start_main --port 0 --tls off --stats-interval 1
curl -sS --max-time 10 --http2-prior-knowledge "$url" >/dev/null
for _ in $(seq 30); do grep -q "^h2lab: stats: " "$TEST_TMPDIR/main.err" && break; sleep 0.1; done
grep -qE "^h2lab: stats: [0-9]+ req/s, [0-9.]+ MB/s out, [0-9]+ connections, " "$TEST_TMPDIR/main.err" ||
  fail "no live stats line within 3 s: $(cat "$TEST_TMPDIR/main.err")"
# … with the kernel's side: the process's CPU split and context switches.
grep -qE "^h2lab: stats: .*, CPU [0-9]+% user [0-9]+% system, [0-9.]+ voluntary and [0-9.]+ involuntary switches/req$" \
  "$TEST_TMPDIR/main.err" || fail "no CPU and context switches on the live line: $(cat "$TEST_TMPDIR/main.err")"
stop_main

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

# Knobs applied: what the kernel changed is logged, one line each; the loop
# thread is named and pinned.
cpu=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*\([0-9]*\).*/\1/p' /proc/self/status)
start_main --port 0 --tls off --sndbuf 100000000 --backlog 100000 --cpus "$cpu" --epoll-trigger level
err="$TEST_TMPDIR/main.err"
wmem_max=$(cat /proc/sys/net/core/wmem_max)
grep -qF "h2lab: --sndbuf 100000000: the kernel set $((2 * wmem_max)) (it caps the value at net.core.wmem_max = $wmem_max and doubles it)" "$err" ||
  fail "no --sndbuf clamp line: $(cat "$err")"
grep -qF "h2lab: --backlog 100000: the kernel keeps $(cat /proc/sys/net/core/somaxconn)" "$err" ||
  fail "no --backlog clamp line: $(cat "$err")"
loop_thread=""
for t in /proc/$pid/task/*; do
  [ "$(cat "$t/comm")" = "h2lab-epoll-0" ] && loop_thread=$t
done
if [ -z "$loop_thread" ]; then
  fail "no thread named h2lab-epoll-0"
else
  pinned=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$loop_thread/status")
  [ "$pinned" = "$cpu" ] || fail "h2lab-epoll-0 may run on '$pinned', want '$cpu' (--cpus $cpu)"
fi
body=$(curl -sS --max-time 10 --http2-prior-knowledge "$url")
[ "$body" = "Hello World" ] || fail "curl (level-triggered) got '$body'"
stop_main

if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "main CLI: all checks passed"
