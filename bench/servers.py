"""The servers the harness measures: h2lab itself and its peers from Debian.

A ServerSpec names one configuration; a Launcher turns it into a running,
pinned process with a URL, or raises Unavailable with a one-line reason that
the harness prints before skipping that configuration (a dispatcher that is
not built yet, a peer that is not installed).

Every peer serves the same request set with the same octets as h2lab (the
12 octets "Hello World\\n" at /, h2lab's pattern at /bytes/N from a document
root that workloads.layout_docroot writes, /echo where the peer can echo),
with one worker per server thread, HTTP/2 over cleartext with prior knowledge (h2c) or
over TLS with ALPN h2 and a self-signed certificate the harness makes with
`openssl req`. Configurations are generated into a temporary directory; the
system's own (/etc/nginx, /etc/h2o, services) are never touched.
"""

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time

import procs
import workloads

H2LAB = "h2lab"
DISPATCHERS = ("blocking", "threaded", "epoll", "uring")
LOOP_DISPATCHERS = ("epoll", "uring")   # the ones --threads applies to
ENGINES = ("full", "mini", "nghttp2")
MAX_STREAMS = 1024   # peers' concurrent stream limit, above the sweep's 120
# Peers' connection limits and idle timeouts, raised so that the mixed
# workload's 10,000 idle connections stay open (h2o: 1024 connections, 10 s
# idle by default; nginx: 512 connections a worker, 3 min idle).
MAX_CONNECTIONS = 30000
IDLE_TIMEOUT_S = 3600
LISTENING = re.compile(r"^h2lab listening on (\S+)")


class Unavailable(Exception):
    """This configuration cannot run here; the message says why in one line."""


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """One server configuration to measure."""
    server: str                 # "h2lab" or a peer name
    tls: bool
    dispatcher: str = ""        # h2lab only
    engine: str = ""            # h2lab only
    threads: int = 1            # h2lab --threads; a peer's worker count
    extra_args: tuple = ()      # h2lab only: more command-line flags
    variant: str = ""           # "A" or "B" in --compare
    cpus: tuple = ()            # CPUs to pin to (--scaling); empty: the launcher's set

    @property
    def label(self):
        """The name of this configuration's line in the plots and the progress."""
        if self.server == H2LAB:
            name = f"h2lab {self.dispatcher}/{self.engine}"
            if self.extra_args:
                name += " " + " ".join(self.extra_args)
        else:
            name = self.server
        return f"{self.variant}: {name}" if self.variant else name


@dataclasses.dataclass
class RunningServer:
    """A started server: what the load generator targets and the harness samples."""
    spec: ServerSpec
    proc: subprocess.Popen
    url: str
    argv: list
    pids: list
    version: str


@dataclasses.dataclass(frozen=True)
class Peer:
    """A peer server from Debian and how to install it."""
    name: str
    binary: str
    package: str


PEERS = {
    "h2o": Peer("h2o", "h2o", "h2o"),
    "nghttpd": Peer("nghttpd", "nghttpd", "nghttp2-server"),
    "nginx": Peer("nginx", "nginx", "nginx"),
}


class Launcher:
    """Starts and stops ServerSpecs: knows the binaries, pinning and paths."""

    def __init__(self, registry, h2lab_binary, pin_prefix, workdir, logdir,
                 startup_timeout=10.0, stop_timeout=5.0, log=print, docroot=None):
        self.registry = registry
        # One document root for every peer (a 64 MiB file is written once);
        # without one given, a Hello-only root in workdir, made when needed.
        self._docroot = docroot
        self.h2lab_binary = h2lab_binary
        self.pin_prefix = list(pin_prefix)
        self.workdir = workdir
        self.logdir = logdir
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log = log
        self._starts = 0
        self._h2lab_help = None     # --help text: which flags this build has
        self._omitted = set()       # flags already reported as missing
        self._cert = None
        self._versions = {}

    # -- common -----------------------------------------------------------

    def start(self, spec, h2lab_args=()):
        """Start spec and wait until it serves; raise Unavailable if it cannot.

        h2lab_args: flags a workload needs (mixed: no idle timeout), added to
        h2lab's command line without changing its label.
        """
        if spec.server == H2LAB:
            return self._start_h2lab(spec, tuple(h2lab_args))
        return self._start_peer(spec)

    @property
    def docroot(self):
        if self._docroot is None:
            self._docroot = workloads.layout_docroot(
                os.path.join(self.workdir, "htdocs"), [])
        return self._docroot

    def pin(self, spec):
        """The taskset prefix of spec: its own CPUs (--scaling) or the launcher's."""
        if spec.cpus:
            return ["taskset", "-c", ",".join(str(c) for c in spec.cpus)]
        return self.pin_prefix

    def stop(self, running):
        """Stop a server gracefully (SIGTERM), forcibly after the stop timeout.

        Returns the exit code; h2lab's contract is 0 after SIGTERM, anything
        else is worth a line in the output.
        """
        return self.registry.stop(running.proc, self.stop_timeout)

    def _log_paths(self, spec):
        """Fresh stdout/stderr file names for one start of spec."""
        self._starts += 1
        slug = re.sub(r"[^A-Za-z0-9]+", "-", spec.label).strip("-")
        stem = os.path.join(self.logdir, f"{self._starts:03d}-{slug}-tls-"
                            f"{'on' if spec.tls else 'off'}")
        return stem + ".out", stem + ".err"

    def _popen(self, argv, out_path, err_path):
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            return self.registry.popen(argv, stdout=out, stderr=err,
                                       stdin=subprocess.DEVNULL)

    # -- h2lab ------------------------------------------------------------

    def h2lab_argv(self, spec, h2lab_args=()):
        """h2lab's command line for spec (pinning prefix included).

        --threads and --tls are left out when the binary's --help does not
        list them (they arrive with later dispatchers); TLS on cannot be
        asked for without the flag, so that configuration is unavailable.
        """
        argv = self.pin(spec) + [
            self.h2lab_binary, "--host", "127.0.0.1", "--port", "0",
            "--dispatch", spec.dispatcher, "--engine", spec.engine]
        # h2lab refuses --threads with blocking (one thread) and threaded (one
        # per connection): it sizes the epoll and io_uring loop groups only.
        if spec.dispatcher in LOOP_DISPATCHERS and self.h2lab_supports("--threads"):
            argv += ["--threads", str(spec.threads)]
        if self.h2lab_supports("--tls"):
            argv += ["--tls", "on" if spec.tls else "off"]
        elif spec.tls:
            raise Unavailable("this h2lab binary has no --tls flag (see its --help)")
        return argv + list(h2lab_args) + list(spec.extra_args)

    def h2lab_supports(self, flag):
        """Whether h2lab's --help lists flag; True when --help says nothing useful."""
        if self._h2lab_help is None:
            try:
                done = subprocess.run([self.h2lab_binary, "--help"], capture_output=True,
                                      text=True, timeout=10)
                self._h2lab_help = done.stdout + done.stderr
            except (OSError, subprocess.TimeoutExpired):
                self._h2lab_help = ""
        if "--" not in self._h2lab_help:
            return True
        supported = re.search(rf"(?m)^\s*{re.escape(flag)}(?![-\w])", self._h2lab_help)
        if not supported and flag not in self._omitted:
            self._omitted.add(flag)
            self.log(f"note: this h2lab binary has no {flag} flag; it is left out")
        return bool(supported)

    def _start_h2lab(self, spec, h2lab_args):
        """Start h2lab; read the URL from its first line of output."""
        argv = self.h2lab_argv(spec, h2lab_args)
        out_path, err_path = self._log_paths(spec)
        proc = self._popen(argv, out_path, err_path)
        first = self._wait_ready(proc, "server", "an 'h2lab listening on' line "
                                 "(is stdout flushed?)", lambda: _first_line(out_path),
                                 (err_path, out_path))
        match = LISTENING.match(first)
        if not match:
            self.registry.stop(proc, self.stop_timeout)
            raise Unavailable(f"first line was {first!r}, "
                              "expected 'h2lab listening on URL'")
        url = match.group(1)
        if url.startswith("https://") != spec.tls:
            self.registry.stop(proc, self.stop_timeout)
            raise Unavailable(f"asked for TLS {'on' if spec.tls else 'off'}"
                              f" but the server announced {url}")
        return RunningServer(spec, proc, url, argv, procs.descendants(proc.pid),
                             self._h2lab_version())

    def _wait_ready(self, proc, name, awaited, ready, logs):
        """Poll ready() until it returns something; Unavailable if proc exits first.

        The reason given is the first line the process wrote to its logs,
        which is where a command-line or configuration error shows.
        """
        deadline = time.monotonic() + self.startup_timeout
        while True:
            value = ready()
            if value is not None:
                return value
            if proc.poll() is not None:
                reason = next((r for r in map(_reason, logs) if r), "no output")
                raise Unavailable(f"{name} exited with code {proc.returncode}: {reason}")
            if time.monotonic() > deadline:
                self.registry.stop(proc, self.stop_timeout)
                raise Unavailable(f"no {awaited} within {self.startup_timeout:g} s")
            time.sleep(0.01)

    def _h2lab_version(self):
        """h2lab has no --version: a short SHA-256 of the binary names the build."""
        if "h2lab" not in self._versions:
            digest = hashlib.sha256()
            with open(self.h2lab_binary, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._versions["h2lab"] = "sha256:" + digest.hexdigest()[:12]
        return self._versions["h2lab"]

    # -- peers ------------------------------------------------------------

    def peer_version(self, name):
        """The peer's version string, or "" if it is not installed."""
        if name not in self._versions:
            self._versions[name] = _peer_version(PEERS[name])
        return self._versions[name]

    def _start_peer(self, spec):
        peer = PEERS[spec.server]
        binary = _peer_binary(peer)
        if binary is None:
            raise Unavailable(f"{peer.name} is not installed "
                              f"(install it with: apt-get install {peer.package})")
        cert = self._certificate() if spec.tls else None
        port = free_port()
        peer_dir = os.path.join(self.workdir, f"{peer.name}-tls-{'on' if spec.tls else 'off'}")
        os.makedirs(peer_dir, exist_ok=True)
        os.chmod(peer_dir, 0o755)   # nginx's workers drop to 'nobody'
        argv = self.pin(spec) + CONFIGURERS[peer.name](
            binary, peer_dir, port, cert, spec.threads, self.docroot)
        out_path, err_path = self._log_paths(spec)
        proc = self._popen(argv, out_path, err_path)
        self._wait_ready(proc, peer.name, f"connection accepted on port {port}",
                         lambda: True if _accepts("127.0.0.1", port) else None,
                         (err_path, out_path))
        time.sleep(0.1)   # let a master fork its workers before the tree is read
        scheme = "https" if spec.tls else "http"
        return RunningServer(spec, proc, f"{scheme}://127.0.0.1:{port}/", argv,
                             procs.descendants(proc.pid), self.peer_version(peer.name))

    def _certificate(self):
        """(cert, key) paths of a self-signed P-256 certificate, made once."""
        if self._cert is None:
            if shutil.which("openssl") is None:
                raise Unavailable("openssl is not installed (apt-get install openssl)")
            cert = os.path.join(self.workdir, "cert.pem")
            key = os.path.join(self.workdir, "key.pem")
            done = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", cert, "-days", "7",
                 "-subj", "/CN=localhost"], capture_output=True, text=True)
            if done.returncode != 0:
                raise Unavailable(f"openssl req failed: {done.stderr.strip()[-200:]}")
            os.chmod(key, 0o644)   # a throwaway key; workers may run as 'nobody'
            self._cert = (cert, key)
        return self._cert


def _write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def configure_nghttpd(binary, peer_dir, port, cert, workers, docroot):
    """nghttpd serves the document root (index.html at /) and echoes POST
    bodies (--echo-upload); no config file, no idle timeout."""
    argv = [binary, "-a", "127.0.0.1", "-n", str(workers),
            "-m", str(MAX_STREAMS), "-d", docroot, "--echo-upload"]
    if cert is None:
        return argv + ["--no-tls", str(port)]
    return argv + [str(port), cert[1], cert[0]]


def configure_h2o(binary, peer_dir, port, cert, workers, docroot):
    """h2o 2.2: one listener, num-threads workers, the document root, and
    /echo from an mruby handler (Debian's h2o is built with mruby).

    Started as root h2o would switch to 'nobody'; 'user' keeps the current
    user so it can read the temporary directory. OCSP stapling is off (a
    self-signed certificate has no responder). Connection limit and idle
    timeout are raised (MAX_CONNECTIONS, IDLE_TIMEOUT_S) for the mixed workload.
    """
    listen = f"    listen:\n      host: 127.0.0.1\n      port: {port}\n"
    if cert is not None:
        listen += (f"      ssl:\n        certificate-file: {cert[0]}\n"
                   f"        key-file: {cert[1]}\n        ocsp-update-interval: 0\n")
    user = f"user: {_user_name()}\n" if os.geteuid() == 0 else ""
    conf = (f"{user}num-threads: {workers}\n"
            f"http2-max-concurrent-requests-per-connection: {MAX_STREAMS}\n"
            f"max-connections: {MAX_CONNECTIONS}\n"
            f"http2-idle-timeout: {IDLE_TIMEOUT_S}\n"
            f"error-log: {os.path.join(peer_dir, 'error.log')}\n"
            f"hosts:\n  default:\n{listen}"
            f"    paths:\n"
            f"      /echo:\n        mruby.handler: |\n"
            f"          Proc.new do |env|\n"
            f"            [200, {{\"content-type\" => \"application/octet-stream\"}}, "
            f"[env[\"rack.input\"] ? env[\"rack.input\"].read : \"\"]]\n"
            f"          end\n"
            f"      /:\n        file.dir: {docroot}\n")
    path = _write(os.path.join(peer_dir, "h2o.conf"), conf)
    return [binary, "-m", "worker", "-c", path]


def configure_nginx(binary, peer_dir, port, cert, workers, docroot):
    """nginx in the foreground with its own prefix, pid, logs and temp paths.

    Answers / from memory with `return 200`, everything else from the
    document root (sendfile on); it cannot echo a body (no such module in
    Debian's nginx), so it has no /echo and sits out the upload workload. keepalive_requests is raised
    (default 1000 closes an HTTP/2 connection after 1000 requests and h2load
    stalls); nginx older than 1.19.7 needs http2_max_requests for the same.
    TLS 1.3 is enabled (nginx 1.22's default stops at 1.2) to match h2o and
    h2lab's OpenSSL defaults.
    """
    for sub in ("logs", "tmp"):
        os.makedirs(os.path.join(peer_dir, sub), exist_ok=True)
    tmp = os.path.join(peer_dir, "tmp")
    nofile = _nofile_limit()
    connections = min(MAX_CONNECTIONS, nofile - 100)
    old = _version_tuple(_peer_version(PEERS["nginx"])) < (1, 19, 7)
    listen = f"127.0.0.1:{port} ssl http2" if cert else f"127.0.0.1:{port} http2"
    tls = (f"        ssl_certificate {cert[0]};\n"
           f"        ssl_certificate_key {cert[1]};\n"
           f"        ssl_protocols TLSv1.2 TLSv1.3;\n") if cert else ""
    conf = f"""daemon off;
master_process on;
worker_processes {workers};
pid {peer_dir}/nginx.pid;
error_log {peer_dir}/logs/error.log warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout {IDLE_TIMEOUT_S}s;
    http2_idle_timeout {IDLE_TIMEOUT_S}s;
    sendfile on;
{"    http2_max_requests 1000000000;" if old else ""}
    http2_max_concurrent_streams {MAX_STREAMS};
    server {{
        listen {listen};
{tls}        location = / {{
            default_type text/plain;
            return 200 "Hello World\\n";
        }}
        location / {{
            root {docroot};
        }}
    }}
}}
"""
    path = _write(os.path.join(peer_dir, "nginx.conf"), conf)
    return [binary, "-p", peer_dir, "-c", path,
            "-e", os.path.join(peer_dir, "logs", "error.log")]


CONFIGURERS = {
    "h2o": configure_h2o,
    "nghttpd": configure_nghttpd,
    "nginx": configure_nginx,
}


def _peer_version(peer):
    """'1.22.1' from the peer's version output, or '' when it is missing."""
    binary = _peer_binary(peer)
    if binary is None:
        return ""
    flag = "-v" if peer.name == "nginx" else "--version"
    try:
        done = subprocess.run([binary, flag], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"(\d+\.\d+\.\d+)", done.stdout + done.stderr)
    return match.group(1) if match else ""


def _peer_binary(peer):
    """The peer's executable: on PATH, or in an sbin directory a user's PATH may lack."""
    return shutil.which(peer.binary) or shutil.which(
        peer.binary, path="/usr/sbin:/sbin:/usr/local/sbin")


def _nofile_limit():
    """The hard RLIMIT_NOFILE (what a worker may raise itself to), at most 2^20."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)


def _version_tuple(text):
    return tuple(int(x) for x in text.split(".")) if text else (0,)


def _user_name():
    import pwd
    return pwd.getpwuid(os.geteuid()).pw_name


def free_port():
    """An ephemeral port the kernel just handed out on 127.0.0.1.

    The socket is closed before the peer binds it; another process could take
    the port in between, which then shows as a peer that fails to start.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(host, port):
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _first_line(path):
    """The first complete line of a file, or None until one is written."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    if b"\n" not in data:
        return None
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")


def _reason(path, limit=300):
    """The first non-empty line of a log file, shortened: the likely reason.

    A command-line error comes first and a usage text may follow it."""
    try:
        with open(path, "rb") as f:
            lines = [l for l in f.read().decode("utf-8", "replace").splitlines()
                     if l.strip()]
    except OSError:
        return ""
    # h2o opens with "[INFO] raised RLIMIT_NOFILE …": the reason comes after.
    told = [l for l in lines if not l.startswith("[INFO]")] or lines
    return told[0].strip()[:limit] if told else ""
