"""The harness's workload axis: what the load generator asks for, per workload.

    hello      GET /, 12 octets: the seed's case (replay caches make it cheap)
    varied     a distinct :path per request (/?v=<i>, routed like /), so no
               request header block repeats
    browser    a page load: Chromium's request header set, a ~1 KB cookie,
               ~100 resources of mixed sizes (/bytes/N)
    download   /bytes/N with N = 16 KiB, 1 MiB, 64 MiB: throughput, CPU per GB
    upload     POST /echo with a 1 MiB body (h2load -d)
    churn      one request per connection: connections/s
    mixed      hello while IDLE_CONNECTIONS idle connections are held open
    open-loop  hello at a fixed rate (h2load --rps) of 25/50/75% of the
               capacity a closed-loop run measured first: p50/p99/p99.9

A workload expands into Loads (download: one per body size), each a set of
h2load arguments; an open-loop Load is measured closed-loop first, then at
each OPEN_LOOP_PERCENTS share of that capacity. Every server answers the
same request set with the same octets: h2lab from its routes (/, /bytes/N,
/echo; proto/routes.h), the peers from a document root laid out here
(layout_docroot) whose /bytes/N files hold h2lab's exact pattern, and
check_content compares a sample answer of each server with it byte for byte.
"""

import dataclasses
import os
import random
import subprocess

WORKLOADS = ("hello", "varied", "browser", "download", "upload", "churn", "mixed",
             "open-loop")
HELLO = b"Hello World\n"
# proto/routes.h: octet i of /bytes/N is PATTERN_ALPHABET[i % len(PATTERN_ALPHABET)].
PATTERN_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789\n"
VARIED_PATHS = 2000            # the 2000 distinct paths
DOWNLOAD_SIZES = (16 << 10, 1 << 20, 64 << 20)
UPLOAD_BYTES = 1 << 20
OPEN_LOOP_PERCENTS = (25, 50, 75)
BROWSER_RESOURCES = 100
QUANTILES = (0.5, 0.99, 0.999)

# Chromium 120 on Linux, a subresource request as DevTools shows it (h2load
# sends one header set for every request; a browser varies accept and
# sec-fetch-dest by resource type). The cookie is ~1 KB: analytics and
# session cookies of a typical site.
CHROMIUM_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/120.0.0.0 Safari/537.36")


def _browser_cookie():
    rng = random.Random(13)
    hexes = lambda n: "".join(rng.choice("0123456789abcdef") for _ in range(n))
    parts = [f"_ga=GA1.1.{rng.randrange(10**9)}.{rng.randrange(10**9)}",
             f"_ga_{hexes(10).upper()}=GS1.1.1700000000.3.1.1700000123.0.0.0",
             f"_gid=GA1.2.{rng.randrange(10**9)}.{rng.randrange(10**9)}",
             f"sessionid={hexes(64)}", f"csrftoken={hexes(64)}",
             f"_fbp=fb.1.1700000000000.{rng.randrange(10**9)}",
             "consent=" + "%7B%22necessary%22%3Atrue%2C%22analytics%22%3Atrue%7D",
             f"ab_bucket={rng.randrange(100)}", "theme=dark", "lang=en-US",
             f"_hjSessionUser_{rng.randrange(10**6)}=" + hexes(160),
             f"cf_clearance={hexes(200)}", f"tracking={hexes(240)}"]
    return "; ".join(parts)


BROWSER_HEADERS = (
    ("user-agent", CHROMIUM_UA),
    ("accept", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-US,en;q=0.9"),
    ("cookie", _browser_cookie()),
    ("referer", "https://localhost/"),
    ("sec-ch-ua", '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"'),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Linux"'),
    ("sec-fetch-dest", "image"),
    ("sec-fetch-mode", "no-cors"),
    ("sec-fetch-site", "same-origin"),
)


def browser_sizes(count=BROWSER_RESOURCES):
    """Body sizes of a page's resources, distinct, deterministic (seeded).

    Roughly an HTTP Archive median page (~2 MB): one 30 KB document, a few
    large scripts and stylesheets, many small images and icons.
    """
    rng = random.Random(100)
    sizes, seen = [], set()
    for i in range(count):
        if i == 0:
            size = 30_000                                   # the document
        elif i < 11:
            size = int(rng.lognormvariate(10.5, 0.8))      # scripts, ~36 KB
        elif i < 21:
            size = int(rng.lognormvariate(9.5, 0.7))       # stylesheets, ~13 KB
        else:
            size = int(rng.lognormvariate(9.0, 1.2))       # images, icons, ~8 KB
        size = max(100, min(size, 1_000_000))
        while size in seen:                                 # distinct paths
            size += 1
        seen.add(size)
        sizes.append(size)
    return sizes


@dataclasses.dataclass(frozen=True)
class Load:
    """One measured load: the h2load arguments of a workload variant."""
    workload: str
    variant: str = ""              # "16KiB", "25%": a figure and CSV key
    paths: tuple = ("/",)          # request paths, in order (h2load -i when > 1)
    headers: tuple = ()            # (name, value) pairs, h2load -H
    body_bytes: int = 0            # response body of each request (download)
    upload_bytes: int = 0          # request body (h2load -d), POST
    one_request_per_connection: bool = False   # churn
    open_loop: bool = False        # open-loop: capacity first, then OPEN_LOOP_PERCENTS
    idle_connections: int = 0      # mixed: idle connections held meanwhile


def loads(workload, idle_connections=10000):
    """The Loads one workload expands into, in the order they are run."""
    if workload == "hello":
        return [Load("hello")]
    if workload == "varied":
        return [Load("varied", paths=tuple(varied_paths()))]
    if workload == "browser":
        return [Load("browser", paths=tuple(f"/bytes/{n}" for n in browser_sizes()),
                     headers=BROWSER_HEADERS)]
    if workload == "download":
        return [Load("download", size_text(n), paths=(f"/bytes/{n}",), body_bytes=n)
                for n in DOWNLOAD_SIZES]
    if workload == "upload":
        return [Load("upload", size_text(UPLOAD_BYTES), paths=("/echo",),
                     body_bytes=UPLOAD_BYTES, upload_bytes=UPLOAD_BYTES)]
    if workload == "churn":
        return [Load("churn", one_request_per_connection=True)]
    if workload == "mixed":
        return [Load("mixed", f"{idle_connections} idle", idle_connections=idle_connections)]
    if workload == "open-loop":
        return [Load("open-loop", open_loop=True)]
    raise ValueError(f"unknown workload {workload!r} (valid: {', '.join(WORKLOADS)})")


def varied_paths(count=VARIED_PATHS):
    """Distinct paths that every server answers with Hello World: /?v=<i>.

    h2lab routes a path with a query like the path (routes.cc path_only);
    the peers' file handlers ignore the query and serve index.html.
    """
    return [f"/?v={i}" for i in range(count)]


def size_text(n):
    """16384 -> '16KiB', 1048576 -> '1MiB'."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n}B"


def pattern(n):
    """The exact octets of h2lab's /bytes/n."""
    period = len(PATTERN_ALPHABET)
    return (PATTERN_ALPHABET * (n // period + 1))[:n]


def expected_body(path, upload=b""):
    """What every server must answer at path (None: not checked)."""
    bare = path.split("?", 1)[0]
    if bare == "/":
        return HELLO
    if bare.startswith("/bytes/"):
        return pattern(int(bare[len("/bytes/"):]))
    if bare == "/echo":
        return upload
    return None


def docroot_files(load_list):
    """{relative path: size or None for Hello} that the peers' document root needs."""
    files = {"index.html": None}
    for load in load_list:
        for path in load.paths:
            bare = path.split("?", 1)[0]
            if bare.startswith("/bytes/"):
                files[bare.lstrip("/")] = int(bare[len("/bytes/"):])
    return files


def layout_docroot(root, load_list):
    """Write the document root the peers serve: index.html = Hello World, and
    bytes/N = h2lab's /bytes/N octets for every path the loads ask for.

    Files already there with the right size are kept (one root serves every
    peer and workload of a sweep). Returns root.
    """
    os.makedirs(os.path.join(root, "bytes"), exist_ok=True)
    for d in (root, os.path.join(root, "bytes")):
        os.chmod(d, 0o755)   # nginx's workers drop to 'nobody'
    for rel, size in docroot_files(load_list).items():
        path = os.path.join(root, rel)
        want = len(HELLO) if size is None else size
        if os.path.exists(path) and os.path.getsize(path) == want:
            continue
        with open(path, "wb") as f:
            if size is None:
                f.write(HELLO)
            else:
                _write_pattern(f, size)
        os.chmod(path, 0o644)
    return root


def _write_pattern(f, size, block=1 << 20):
    """size octets of the pattern, in blocks that keep the phase."""
    period = len(PATTERN_ALPHABET)
    chunk = pattern(block - block % period + period)   # a whole number of periods
    step = len(chunk) - period
    written = 0
    while written < size:
        n = min(step, size - written)
        f.write(chunk[:n])
        written += n


def write_upload_file(path, size=UPLOAD_BYTES):
    """The request body h2load -d posts: the pattern, so that the echo is checkable."""
    with open(path, "wb") as f:
        _write_pattern(f, size)
    return path


def write_uri_file(path, url, paths):
    """The h2load -i list: the server's URL joined with each path, one a line."""
    base = url.rstrip("/")
    with open(path, "w", encoding="ascii") as f:
        for p in paths:
            f.write(base + p + "\n")
    return path


def h2load_extra(load, uri_file=None, upload_file=None, rps=None):
    """h2load arguments beyond the case's -c/-m/-t/-D (before the URL)."""
    extra = []
    for name, value in load.headers:
        extra += ["-H", f"{name}: {value}"]
    if uri_file:
        extra += ["-i", uri_file]
    if upload_file:
        extra += ["-d", upload_file]
    if rps:
        extra += ["--rps", str(rps)]
    return extra


def sample_path(load):
    """The path check_content fetches for a load: its largest body up to 1 MiB."""
    candidates = [p for p in load.paths if (expected_body(p) is not None)]
    sized = sorted(candidates, key=lambda p: len(expected_body(p) or b""))
    small = [p for p in sized if len(expected_body(p) or b"") <= 1 << 20]
    return (small or sized or ["/"])[-1]


def check_content(url, path, upload=b"", timeout=30):
    """Fetch url+path with curl (h2, prior knowledge or TLS) and compare the body
    with what h2lab's routes define; returns "" or a one-line difference."""
    want = expected_body(path, upload)
    argv = ["curl", "-sS", "--max-time", str(timeout), "-k",
            "--http2" if url.startswith("https") else "--http2-prior-knowledge",
            "-o", "-", url.rstrip("/") + path]
    if path.split("?", 1)[0] == "/echo":
        argv[1:1] = ["--data-binary", "@-", "-H", "content-type: application/octet-stream"]
    try:
        done = subprocess.run(argv, input=upload, capture_output=True, timeout=timeout + 5)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"content check of {path} failed: {e}"
    if done.returncode != 0:
        return (f"content check of {path}: curl exit {done.returncode}: "
                f"{done.stderr.decode(errors='replace').strip()[:200]}")
    return body_difference(want, done.stdout, path)


def body_difference(want, got, path):
    """'' when got == want, else where they first differ."""
    if want is None or got == want:
        return ""
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return (f"content of {path} differs from h2lab's: {len(got)} octets, expected "
            f"{len(want)}; first difference at octet {at}")


class IdleConnections:
    """Connections opened and left idle while a mixed run measures (bench/idle_connections.py
    opens them: client preface + SETTINGS, or a TLS 1.3 handshake first)."""

    def __init__(self, url, count, batch=200):
        import idle_connections   # stdlib only; imported here: other workloads need none
        host_port = url.split("//", 1)[1].rstrip("/")
        self.port = int(host_port.rsplit(":", 1)[1])
        mode = "tls-idle" if url.startswith("https") else "h2c"
        self.conns = idle_connections.open_connections(
            self.port, count, batch, mode, idle_connections.client_context())

    def still_open(self):
        """How many the server has not closed (a peek that finds EOF means closed)."""
        import socket
        alive = 0
        for c in self.conns:
            try:
                data = c.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                alive += 1 if data else 0
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        return alive

    def close(self):
        for c in self.conns:
            c.sock.close()
        self.conns = []


def raise_fd_limit(need):
    """Raise RLIMIT_NOFILE to the hard limit (servers started later inherit it);
    returns a warning when the hard limit is below need."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < need:
        return (f"RLIMIT_NOFILE hard limit {hard} < {need}: fewer idle connections "
                "will open (raise it with ulimit -Hn)")
    return ""
