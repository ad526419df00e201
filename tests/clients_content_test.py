#!/usr/bin/python3
"""//tests:clients_content_test: real HTTP/2 clients against //server:main,
every octet checked (issue 11: /bytes/N once restarted its pattern at every
DATA frame and every length check passed).

One server per dispatcher (blocking, threaded, epoll, uring) and TLS mode
(off: h2c with prior knowledge; on: h2 over TLS with the ephemeral
certificate), all started at once on loopback port 0. Each client fetches
GET /bytes/N for N in BYTES (across the 16384-octet frame and the 65535-octet
window boundaries) and POSTs /echo bodies of ECHO sizes (random octets, a
fixed seed), and checks each answer against what it computes itself:

  curl        --http2-prior-knowledge / --http2 -k, one process per server
  nghttp      default, and -w 14 -W 16 (16 KiB stream and 64 KiB connection
              windows), one process per request (its output interleaves
              concurrent streams)
  python3-h2  1, 4 and 16 KiB stream windows granted back in odd steps
              (tests/clients/h2_small_windows.py)
  httpx       httpx.Client(http2=True) (tests/clients/httpx_client.py)
  node        Node's http2 module, default and a 4099-octet window
              (tests/clients/node_h2.js)
  go          net/http, TLS only: Go 1.19's standard library has no h2c
              client (tests/clients/go/, built here, offline)
  chromium    headless fetch() through the DevTools protocol, TLS only
              (browsers do not speak h2c) (tests/clients/chromium_fetch.js)
  firefox     Firefox ESR headless fetch() through WebDriver BiDi, TLS only
              (tests/clients/firefox_fetch.js); both browsers run
              tests/clients/page_check.js in a page of the server

A missing client fails the test, naming ./setup. Prints a table of client ×
server; exits 1 if any cell failed. Every process started is stopped here.
Usage: clients_content_test.py RUNFILES_ROOT (the directory holding
server/main and tests/clients/).
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BYTES = [0, 1, 36, 37, 16383, 16384, 16385, 40000, 65535, 65536, 100003, 1048576 + 13]
ECHO = [1, 16385, 1048576]
DISPATCHERS = ["blocking", "threaded", "epoll", "uring"]
PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789\n"
CLIENT_TIMEOUT = 120
PYTHON = "/usr/bin/python3"  # Debian's, with python3-h2 and python3-httpx (not a pyenv shim)


def expected_bytes(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]  # octet i is PATTERN[i % 37]


def mismatch(got, want):
    if got == want:
        return None
    first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                 min(len(got), len(want)))
    return "%d octets (want %d), first difference at octet %d" % (len(got), len(want), first)


class Server:
    def __init__(self, main, dispatch, tls, tmp):
        self.dispatch, self.tls = dispatch, tls
        self.name = "%s/%s" % (dispatch, "tls" if tls else "h2c")
        tag = "%s-%s" % (dispatch, "tls" if tls else "h2c")
        # Files, not pipes: a chatty server never blocks on a full pipe, and
        # nothing it writes later can fail.
        self.out_path = os.path.join(tmp, "server-%s.out" % tag)
        self.err_path = os.path.join(tmp, "server-%s.err" % tag)
        self.err = open(self.err_path, "wb")
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [main, "--port", "0", "--dispatch", dispatch, "--tls", "on" if tls else "off"],
                stdout=out, stderr=self.err)
        self.url = None

    def wait_listening(self):
        """The first line of stdout: "h2lab listening on URL", within 10 s."""
        prefix = "h2lab listening on "
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.out_path, "rb") as f:
                line = f.readline().decode(errors="replace")
            if line.endswith("\n"):
                break
            time.sleep(0.05)
        if not line.startswith(prefix):
            raise RuntimeError("%s did not announce itself: %r; stderr: %s" % (
                self.name, line, self.log_tail()))
        self.url = line[len(prefix):].strip()

    def log_tail(self):
        self.err.flush()
        with open(self.err_path, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def stop(self):
        """SIGTERM, then a clean exit within 10 s; returns a complaint or None."""
        if self.proc.poll() is not None:
            return "%s had exited (status %s) before the end: %s" % (
                self.name, self.proc.returncode, self.log_tail())
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "%s still running 10 s after SIGTERM" % self.name
        return None if rc == 0 else "%s exited %d after SIGTERM: %s" % (self.name, rc, self.log_tail())


def run(argv, **kwargs):
    """A client process, bounded in time (killed with its process group)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, **kwargs)
    try:
        out, _ = proc.communicate(timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -1, out + b"\n(killed: no exit within %d s)" % CLIENT_TIMEOUT
    return proc.returncode, out


class Results:
    def __init__(self):
        self.cells = {}  # (client, server name) -> list of failure lines ([] = pass)
        self.checks = {}  # (client, server name) -> checks passed

    def record(self, client, server, failure=None):
        fails = self.cells.setdefault((client, server.name), [])
        if failure:
            fails.append(failure)
            print("FAIL %s against %s: %s" % (client, server.name, failure), flush=True)
        else:
            self.checks[(client, server.name)] = self.checks.get((client, server.name), 0) + 1

    def record_lines(self, client, servers, rc, out, per_server):
        """Parses a client's "PASS URL what" / "FAIL URL what: why" lines."""
        text = out.decode(errors="replace")
        by_url = {s.url: s for s in servers}
        passed = {s.url: 0 for s in servers}
        for line in text.splitlines():
            word, _, rest = line.partition(" ")
            url, _, what = rest.partition(" ")
            if word == "PASS" and url in by_url:
                passed[url] += 1
                self.record(client, by_url[url])
            elif word == "FAIL":  # "FAIL URL what: why", or several URLs when all failed
                for s in servers:
                    if s.url in rest.split(" "):
                        self.record(client, s, rest)
        for s in servers:
            if passed[s.url] != per_server and not self.cells.get((client, s.name)):
                self.record(client, s, "%d of %d checks passed (exit status %d); output: %s" % (
                    passed[s.url], per_server, rc, text[-1500:]))

    def missing(self, client, servers, what):
        for s in servers:
            self.record(client, s, "%s is missing: run ./setup" % what)


def curl_client(results, server, tmp):
    base = ["-sS", "--max-time", "60", "-w", "%{http_version} %{http_code}\n"]
    base += ["--http2", "-k"] if server.tls else ["--http2-prior-knowledge"]
    transfers = []  # (what, curl arguments of one transfer, output file, expected body)
    tag = server.name.replace("/", "-")
    for n in BYTES:
        out = os.path.join(tmp, "curl-%s-%d" % (tag, n))
        transfers.append(("GET /bytes/%d" % n, ["-o", out, server.url + "bytes/%d" % n], out,
                          expected_bytes(n)))
    rng = random.Random(1)
    for n in ECHO:
        body = rng.randbytes(n)
        src = os.path.join(tmp, "echo-%d.in" % n)
        with open(src, "wb") as f:
            f.write(body)
        out = os.path.join(tmp, "curl-%s-echo-%d" % (tag, n))
        transfers.append(("POST /echo (%d octets)" % n,
                          ["--data-binary", "@" + src, "-o", out, server.url + "echo"], out, body))
    if server.tls:
        # One process, every transfer on one connection (--next: each its own options).
        runs = [["curl"] + sum((base + t[1] + ["--next"] for t in transfers), [])[:-1]]
    else:
        # One process per transfer: curl 7.88 (Debian 12) fails the second
        # request on a reused h2c prior-knowledge connection with "Error in
        # the HTTP2 framing layer" before sending it, against any server
        # (nghttpd too): curl/curl#10634, fixed in 8.0 by curl/curl#10643.
        runs = [["curl"] + base + t[1] for t in transfers]
    statuses = []
    for argv in runs:
        rc, text = run(argv)
        if rc != 0:
            results.record("curl", server, "exit status %d: %s" % (
                rc, text[-1500:].decode(errors="replace")))
            return
        statuses += text.decode(errors="replace").splitlines()
    for i, (what, _, out, want) in enumerate(transfers):
        status = statuses[i] if i < len(statuses) else "(none)"
        with open(out, "rb") as f:
            got = f.read()
        why = mismatch(got, want)
        if status != "2 200":
            why = "answered '%s', want HTTP/2 200" % status
        results.record("curl", server, "%s: %s" % (what, why) if why else None)


def nghttp_client(results, server, tmp, label, extra):
    rng = random.Random(2)
    requests = [("GET /bytes/%d" % n, [server.url + "bytes/%d" % n], expected_bytes(n)) for n in BYTES]
    for n in ECHO:
        body = rng.randbytes(n)
        src = os.path.join(tmp, "nghttp-echo-%d.in" % n)
        with open(src, "wb") as f:
            f.write(body)
        requests.append(("POST /echo (%d octets)" % n, ["-d", src, server.url + "echo"], body))
    for what, args, want in requests:
        # stdout is the body alone; stderr apart, so a warning cannot corrupt it.
        try:
            proc = subprocess.run(["nghttp", "-t", "60"] + extra + args, capture_output=True,
                                  timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            results.record(label, server, "%s: no exit within %d s" % (what, CLIENT_TIMEOUT))
            continue
        why = mismatch(proc.stdout, want)
        if proc.returncode != 0:
            why = "exit status %d: %s" % (proc.returncode, proc.stderr[-500:].decode(errors="replace"))
        results.record(label, server, "%s: %s" % (what, why) if why else None)


def main():
    root = sys.argv[1]
    main_bin = os.path.join(root, "server", "main")
    clients_dir = os.path.join(root, "tests", "clients")
    tmp = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp()
    env = dict(os.environ, H2LAB_BYTES=" ".join(map(str, BYTES)), H2LAB_ECHO=" ".join(map(str, ECHO)))
    started = time.monotonic()
    results = Results()
    servers = []
    complaints = []
    try:
        for d in DISPATCHERS:
            for tls in (False, True):
                servers.append(Server(main_bin, d, tls, tmp))
        for s in servers:
            s.wait_listening()
        print("servers: " + ", ".join("%s %s" % (s.name, s.url) for s in servers), flush=True)
        tls_servers = [s for s in servers if s.tls]
        per = len(BYTES) + len(ECHO)

        def timed(name, fn):
            t = time.monotonic()
            fn()
            print("%s: %.1f s" % (name, time.monotonic() - t), flush=True)

        if shutil.which("curl"):
            timed("curl", lambda: [curl_client(results, s, tmp) for s in servers])
        else:
            results.missing("curl", servers, "curl")
        if shutil.which("nghttp"):
            timed("nghttp", lambda: [nghttp_client(results, s, tmp, "nghttp", []) for s in servers])
            timed("nghttp -w 14 -W 16", lambda: [
                nghttp_client(results, s, tmp, "nghttp -w14 -W16", ["-w", "14", "-W", "16"])
                for s in servers])
        else:
            results.missing("nghttp", servers, "nghttp (nghttp2-client)")
            results.missing("nghttp -w14 -W16", servers, "nghttp (nghttp2-client)")

        def python_client(label, module, script, per_server):
            if subprocess.run([PYTHON, "-c", "import " + module], capture_output=True).returncode != 0:
                results.missing(label, servers, "%s with python3-%s" % (PYTHON, module))
                return
            rc, out = run([PYTHON, os.path.join(clients_dir, script)] + [s.url for s in servers], env=env)
            results.record_lines(label, servers, rc, out, per_server)

        timed("python3-h2", lambda: python_client(
            "python3-h2 small windows", "h2", "h2_small_windows.py", 3 * per))
        timed("httpx", lambda: python_client("httpx", "httpx", "httpx_client.py", per))

        node = shutil.which("node")
        if node:
            timed("node", lambda: results.record_lines("node http2", servers, *run(
                [node, os.path.join(clients_dir, "node_h2.js")] + [s.url for s in servers], env=env),
                2 * per))
        else:
            results.missing("node http2", servers, "node (nodejs)")

        go = shutil.which("go")
        if go:
            def go_client():
                # Built here, offline: the standard library only, caches in TEST_TMPDIR.
                go_env = dict(env, GOCACHE=os.path.join(tmp, "gocache"), GOPATH=os.path.join(tmp, "gopath"),
                              HOME=tmp, GOPROXY="off", GOFLAGS="", GO111MODULE="off", CGO_ENABLED="0")
                binary = os.path.join(tmp, "go_client")
                rc, out = run([go, "build", "-o", binary, os.path.join(clients_dir, "go", "main.go")],
                              env=go_env)
                if rc != 0:
                    for s in tls_servers:
                        results.record("go net/http", s, "go build failed: %s" % out.decode(errors="replace"))
                    return
                results.record_lines("go net/http", tls_servers, *run(
                    [binary] + [s.url for s in tls_servers], env=go_env), per)
            timed("go", go_client)
        else:
            results.missing("go net/http", tls_servers, "go (golang-go)")

        # Last: the browsers keep their connections until they exit, and the
        # blocking dispatcher serves one connection at a time.
        chromium = shutil.which("chromium")
        if chromium and node:
            profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
            timed("chromium", lambda: results.record_lines("chromium fetch", tls_servers, *run(
                [node, os.path.join(clients_dir, "chromium_fetch.js"), chromium, profile]
                + [s.url for s in tls_servers], env=env), per + 2))
        else:
            results.missing("chromium fetch", tls_servers, "chromium (and node)")
        firefox = shutil.which("firefox-esr")
        if firefox and node:
            profile = tempfile.mkdtemp(prefix="firefox-", dir=tmp)
            timed("firefox", lambda: results.record_lines("firefox fetch", tls_servers, *run(
                [node, os.path.join(clients_dir, "firefox_fetch.js"), firefox, profile]
                + [s.url for s in tls_servers], env=env), per + 2))
        else:
            results.missing("firefox fetch", tls_servers, "firefox-esr (and node)")
    finally:
        for s in servers:
            if s.url is None and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
                continue
            complaint = s.stop()
            if complaint:
                complaints.append(complaint)

    # The table: one row per client, one column per server.
    clients = []
    for client, _ in results.cells:
        if client not in clients:
            clients.append(client)
    names = [s.name for s in servers]
    width = max(len(c) for c in clients) + 2
    print("\n" + " " * width + " ".join("%-14s" % n for n in names))
    failed = bool(complaints)
    for c in clients:
        row = []
        for n in names:
            if (c, n) not in results.cells:
                row.append("-")  # not applicable: h2c for go and chromium
            elif results.cells[(c, n)]:
                row.append("FAIL")
                failed = True
            else:
                row.append("ok %d" % results.checks.get((c, n), 0))
        print(("%-" + str(width) + "s") % c + " ".join("%-14s" % r for r in row))
    for complaint in complaints:
        print("FAIL " + complaint)
    print("\n%s in %.0f s" % ("FAILED" if failed else "all passed", time.monotonic() - started))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
