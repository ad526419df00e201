"""h2lab's own counters (/stats) around a run: fetching them, and CSV columns.

h2lab serves {"connection": …, "server": {…, "uptime_s", "totals": {…}}} at
/stats. Its counters are cumulative since the server started and its ratios
and quantiles cover the whole life, so the harness reads /stats at two
instants and computes everything from the DIFFERENCE of the two samples
(window()). Latency buckets are per-bucket counts since start ({"below_ns":
exclusive upper bound, "count"}, log-linear, four per power of two); the
quantiles of an interval come from the difference of the bucket counts.

The fetching client is curl (Debian's, built with nghttp2): h2c with prior
knowledge, or TLS with ALPN h2 and the self-signed certificate accepted. A
Fetch starts curl ahead of time, blocked reading its (empty) config from
stdin (`-K -`), and closing stdin is the instant of the fetch: the server
then sees the request about 1-2 ms later instead of the 5 ms that starting
curl takes, so the sample sits that close to the CPU sample it follows.

A fetch is itself traffic: one connection, one request, its reads, writes,
wake-ups and a latency sample, all counted by the server. See net_of() for how
that is taken out.

The CSV columns (Δ = the difference of the two snapshots less one fetch's
own traffic, see net_of(); "" where a value is undefined or not counted):

  stats_window          main-phase: the snapshots follow the CPU samples at
                        h2load's phase lines; whole-run: before h2load starts
                        and after it exits (blocking dispatcher, or no phase
                        lines); "" when /stats was not read (note says why)
  stats_window_s        server uptime_s between the two snapshots (s)
  server_requests       Δrequests: streams the server accepted in the window
  syscalls_per_request  Δsyscalls / Δrequests
  reads_per_request     Δreads / Δrequests
  writes_per_response   Δwrites / Δresponses
  requests_per_wait     Δrequests / Δwaits (wake-ups: epoll_wait, or
                        io_uring_enter waiting); "" when no waits were counted
                        (blocking and threaded block in read(2) instead)
  events_per_wait       Δevents / Δwaits (epoll events or completions)
  partial_writes        Δpartial_writes: writes the kernel took only part of
  backpressure_pauses   Δbackpressure_pauses: times a connection stopped
                        reading because too much output was unsent
  server_p50_us,        nearest-rank p50 / p99 of the server-side request
  server_p99_us         latency over the window, from the difference of the
                        bucket counts: the upper bound (µs) of the bucket
                        holding that rank (bucket bounds are 25% apart)

The I/O columns (syscalls_per_request, reads_per_request,
writes_per_response, partial_writes) are "" when the dispatcher counted no
reads, writes and syscalls at all (io_uring at this revision), with a note.
"""

import json
import subprocess
import urllib.parse

# The totals the columns use (each a plain cumulative counter).
COUNTERS = ("connections", "requests", "responses", "reads", "writes", "partial_writes",
            "syscalls", "waits", "events", "backpressure_pauses")

# CSV columns, in order; the module's docstring says what each is.
COLUMNS = [
    "stats_window", "stats_window_s", "server_requests", "syscalls_per_request",
    "reads_per_request", "writes_per_response", "requests_per_wait", "events_per_wait",
    "partial_writes", "backpressure_pauses", "server_p50_us", "server_p99_us",
]

FETCH_TIMEOUT_S = 3.0


class StatsError(Exception):
    """/stats could not be fetched or parsed; the message says why in one line."""


def stats_url(server_url):
    """The /stats URL of a server announced as e.g. http://127.0.0.1:PORT/."""
    return urllib.parse.urljoin(server_url, "/stats")


def curl_argv(server_url, timeout=FETCH_TIMEOUT_S):
    """curl's command line for one /stats fetch (without the -K - gate)."""
    url = stats_url(server_url)
    mode = ["-k", "--http2"] if url.startswith("https://") else ["--http2-prior-knowledge"]
    return ["curl", "-sS", "--fail", "--max-time", f"{timeout:g}"] + mode + [url]


def parse(text):
    """One /stats body as {"uptime_s", "switches", "counters": {name: n},
    "buckets": {below_ns: n}}; "switches" is the process's (voluntary,
    involuntary) context switches (getrusage: ended threads included) or
    None.

    Raises StatsError when the body is not h2lab's /stats JSON.
    """
    try:
        server = json.loads(text)["server"]
        totals = server["totals"]
        process = server.get("process")  # absent from older builds of h2lab
        return {
            "uptime_s": float(server["uptime_s"]),
            "switches": ((int(process["voluntary_context_switches"]),
                          int(process["involuntary_context_switches"]))
                         if process else None),
            "counters": {name: int(totals[name]) for name in COUNTERS},
            "buckets": {int(b["below_ns"]): int(b["count"])
                        for b in totals["latency"]["buckets"]},
        }
    except (ValueError, KeyError, TypeError) as e:
        # The mini engine, for one, answers every path with its Hello World.
        raise StatsError(f"the answer is not h2lab's /stats JSON ({type(e).__name__}): "
                         f"{text[:40]!r}") from None


def difference(first, last):
    """What happened between two samples: counters and latency buckets subtracted."""
    switches = (tuple(b - a for a, b in zip(first["switches"], last["switches"]))
                if first.get("switches") and last.get("switches") else None)
    return {
        "uptime_s": last["uptime_s"] - first["uptime_s"],
        "switches": switches,
        "counters": {k: last["counters"][k] - first["counters"][k] for k in COUNTERS},
        "buckets": {b: n - first["buckets"].get(b, 0)
                    for b, n in sorted(last["buckets"].items())
                    if n - first["buckets"].get(b, 0) > 0},
    }


def net_of(window, overhead):
    """window's counters without the sampling's own traffic (overhead).

    The server renders a /stats body while serving the request, so a window
    between two fetches holds the rest of the first fetch (its response
    write, its connection's close, the request and response counts that land
    after the snapshot) and the start of the second (accept, reads, the
    wake-ups before the snapshot): one fetch's worth of traffic in all. The
    harness measures that worth on the idle server just before the run, as
    the difference of two back-to-back fetches (overhead), and subtracts it
    counter by counter, clamped at 0. Checked on every dispatcher: one
    request, one response and one connection exactly; the I/O counters vary
    by a few between fetches (epoll: 12-16 syscalls, 3-5 waits), which is
    what remains uncertain, against thousands of requests per window.
    The latency buckets are left alone: the window holds one /stats
    request's latency in a bucket that cannot be known, which moves a
    nearest-rank quantile by at most one rank.
    """
    return dict(window, counters={k: max(0, v - overhead["counters"].get(k, 0))
                                  for k, v in window["counters"].items()})


def quantile_ns(buckets, fraction):
    """The exclusive upper bound (ns) of the bucket holding the nearest-rank
    `fraction` quantile of a {below_ns: count} histogram; None when empty.

    The rank is computed as the server's own latency_quantile_ns computes it
    (server/stats.cc), so over a whole life both give the same value.
    """
    n = sum(buckets.values())
    if n == 0:
        return None
    rank = max(1, int(fraction * n + 0.999999))
    seen = 0
    for below, count in sorted(buckets.items()):
        seen += count
        if seen >= rank:
            return below
    return max(buckets)


def columns(window, overhead):
    """The CSV columns (strings, "" when undefined) and notes for one window.

    window: difference() of the two samples around the measured phase;
    overhead: difference() of two back-to-back fetches on the idle server.
    """
    net = net_of(window, overhead)
    c = net["counters"]
    notes = []
    # A dispatcher that counts no I/O at all (io_uring at this revision) would
    # give 0 syscalls per request: leave those cells empty rather than claim it.
    counts_io = c["syscalls"] or c["reads"] or c["writes"]
    if not counts_io:
        notes.append("/stats: this dispatcher counted no reads, writes or syscalls")

    def ratio(a, b, needs_io=True):
        if c[b] <= 0 or (needs_io and not counts_io):
            return ""
        return f"{c[a] / c[b]:.3f}"

    def us(ns):
        return "" if ns is None else f"{ns / 1000:.3f}"

    row = {
        "stats_window_s": f"{window['uptime_s']:.3f}",
        "server_requests": str(c["requests"]),
        "syscalls_per_request": ratio("syscalls", "requests"),
        "reads_per_request": ratio("reads", "requests"),
        "writes_per_response": ratio("writes", "responses"),
        # Blocking and threaded dispatchers block in read(2), not in a wait:
        # they count no waits and these stay empty.
        "requests_per_wait": ratio("requests", "waits", needs_io=False),
        "events_per_wait": ratio("events", "waits", needs_io=False),
        "partial_writes": str(c["partial_writes"]) if counts_io else "",
        "backpressure_pauses": str(c["backpressure_pauses"]),
        "server_p50_us": us(quantile_ns(window["buckets"], 0.5)),
        "server_p99_us": us(quantile_ns(window["buckets"], 0.99)),
    }
    return row, notes


class Fetch:
    """One /stats fetch by a curl started ahead of time; now() is the instant."""

    def __init__(self, registry, server_url, timeout=FETCH_TIMEOUT_S):
        self.registry = registry
        self.timeout = timeout
        # curl reads its config (-K -) while parsing its arguments, before any
        # transfer: it waits there until stdin is closed.
        self.proc = registry.popen(curl_argv(server_url, timeout) + ["-K", "-"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)

    def now(self):
        """Fetch now: the parsed sample; StatsError says why not."""
        try:
            out, err = self.proc.communicate(b"", timeout=self.timeout + 2)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise StatsError(f"curl gave no answer within {self.timeout + 2:g} s") from None
        finally:
            self.registry.stop(self.proc, 1)
        if self.proc.returncode != 0:
            reason = err.decode(errors="replace").strip().splitlines()
            raise StatsError(f"curl exit code {self.proc.returncode}"
                             + (f": {reason[-1]}" if reason else ""))
        return parse(out.decode(errors="replace"))

    def cancel(self):
        """Never fetched: stop curl before it sends anything."""
        self.registry.stop(self.proc, 1)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe and not pipe.closed:
                pipe.close()


class Sampler:
    """/stats samples of one server around one run, by name, with the errors."""

    def __init__(self, registry, server_url):
        self.registry = registry
        self.url = server_url
        self.samples = {}
        self.errors = {}
        self._armed = {}

    def take(self, name):
        """Fetch now (starting curl now); True when it worked."""
        return self._finish(name, Fetch(self.registry, self.url))

    def arm(self, names):
        """Start a waiting curl for each name, to be fired by on_phase(name)."""
        for name in names:
            self._armed[name] = Fetch(self.registry, self.url)

    def on_phase(self, name):
        """loadgen.run's callback: fire the curl armed for this instant, if any."""
        fetch = self._armed.pop(name, None)
        if fetch is not None:
            self._finish(name, fetch)

    def fired(self, name):
        """Whether a fetch was made for name (whether or not it worked)."""
        return name in self.samples or name in self.errors

    def close(self):
        """Stop the curls that were armed but never fired."""
        for fetch in self._armed.values():
            fetch.cancel()
        self._armed.clear()

    def _finish(self, name, fetch):
        try:
            self.samples[name] = fetch.now()
            return True
        except (StatsError, OSError) as e:
            self.errors[name] = str(e)
            return False
