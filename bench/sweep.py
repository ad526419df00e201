"""h2lab's bench harness: h2load sweeps over server configurations.

    bazel run //bench:sweep -- [options]        (see --help)

For every server configuration (h2lab dispatcher x engine x TLS, and with
--peers h2o, nghttpd and nginx) the harness starts the server pinned to the
server CPUs, runs h2load pinned to the client CPUs for every (clients,
streams per client) case and repetition, and writes one CSV row per run with
h2load's numbers, the server's CPU time per request and memory, and for h2lab
its own counters from /stats (syscalls per request, requests per wake-up,
server-side latency; see read_server_stats). Then it
renders the figures with gnuplot and writes meta.json and summary.md.

Everything goes to one directory, by default bench/results/<timestamp>/ in the
user's work tree: results.csv, meta.json, summary.md, plots.gp and the
figures (*.svg, *.png), compare.csv with --compare, h2load.log (every h2load
output) and logs/ (every server's stdout and stderr).
"""

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import typing

import kernel
import loadgen
import plots
import procs
import serverstats
import workloads
from servers import DISPATCHERS, ENGINES, H2LAB, PEERS, Launcher, ServerSpec, Unavailable

TLS_MODES = ("on", "off")
SEED_STREAMS = "1,5,10,20,30,40,50,60,70,80,100,120"
DEFAULTS = {
    "dispatchers": ",".join(DISPATCHERS),
    "tls": "on,off",
    "engines": "full,mini",
    "clients": "1,5,100",
    "streams": SEED_STREAMS,
    "duration": 5.0,
    "warmup": 1.0,
    "repetitions": 1,
    "workloads": "hello",
    "idle_connections": 10000,
    "churn_connections": "2000",
}
SCALING_THREADS = (1, 2, 4, 8)
# --smoke: two short cases with whatever h2lab configuration starts first.
SMOKE = {
    "tls": "off",
    "clients": "1",
    "streams": "1,10",
    "duration": 1.0,
    "warmup": 0.0,
    "repetitions": 1,
    "idle_connections": 50,
    "churn_connections": "50",
}
# Workloads --compare refuses, and why: it alternates A and B run by run,
# each on a freshly started server, so a workload whose runs depend on what
# one server measured or held before them cannot be split that way.
COMPARE_REFUSED_WORKLOADS = {
    "open-loop": "its fixed-rate levels come from a capacity run of its own server, "
                 "so A and B would be offered different rates",
    "mixed": "it opens its idle connections once per server and holds them across "
             "its runs, while --compare starts a fresh server for every run",
}
BUSY_MACHINE_PERCENT = 20   # other processes' CPU above this: say so per run
CSV_COLUMNS = [
    "started", "mode", "workload", "workload_variant", "variant", "label", "server",
    "server_version",
    "dispatcher", "engine", "server_threads", "extra_args", "tls", "clients",
    "streams", "h2load_threads", "repetition", "warmup_s", "duration_s",
    "status", "requests_per_s", "mean_request_us", "min_request_us",
    "max_request_us", "sd_request_us", "p50_request_us", "p99_request_us",
    "p999_request_us", "body_bytes", "load_percent", "offered_rps", "bytes_per_s",
    "server_cpu_s_per_gb", "connections_per_s", "idle_connections",
    "requests_total", "succeeded", "failed", "errored", "timeout",
    "status_2xx", "status_4xx", "status_5xx", "traffic_bytes",
    "server_cpu_s", "server_cpu_us_per_request", "server_cpu_percent",
    "client_cpu_percent", "other_cpu_percent", "steal_percent", "cpu_window",
    "window_s",
    "server_vmrss_kb", "server_vmhwm_kb",
    *serverstats.COLUMNS,
    *kernel.COLUMNS,
    "application_protocol", "tls_protocol", "cipher",
    "server_cpus", "client_cpus", "server_cmd", "h2load_cmd", "note",
]
CPU_WINDOW_TEXT = (
    "Server CPU (user+sys from /proc/PID/stat, summed over the server's process "
    "tree) is sampled when h2load prints that its main phase started and again "
    "when every h2load thread says it is over (cpu_window=main-phase), so warm-up, "
    "connection set-up and TLS handshakes are not charged; whole-run means "
    "h2load printed no phase lines and the whole h2load process was sampled.")
STATS_WINDOW_TEXT = (
    "h2lab's /stats is fetched with curl right after each of the two CPU samples "
    "(stats_window=main-phase; 1-2 ms later, curl being started beforehand) and the "
    "columns are differences of the two snapshots, net of one /stats fetch's own "
    "traffic measured on the idle server before the run; the blocking dispatcher "
    "serves one client at a time, so for it (and without h2load phase lines) /stats "
    "is read before h2load starts and after it exits (stats_window=whole-run). "
    "Peers have no /stats: their columns are empty.")


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def choice_list(valid):
    """argparse type: a comma-separated list whose items are all in valid."""
    def parse(text):
        items = [x.strip() for x in text.split(",") if x.strip()]
        if not items:
            raise argparse.ArgumentTypeError(
                f"empty list (valid: {', '.join(valid)})")
        for item in items:
            if item not in valid:
                raise argparse.ArgumentTypeError(
                    f"invalid choice {item!r} (valid: {', '.join(valid)})")
        return list(dict.fromkeys(items))
    return parse


def int_list(text):
    """argparse type: comma-separated positive integers, e.g. 1,5,100."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 1,5,100")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give integers >= 1, e.g. 1,5,100")
    return list(dict.fromkeys(values))


def cpu_list(text):
    """argparse type: CPUs as taskset takes them: 0  or  0,2  or  0-3."""
    cpus = []
    try:
        for part in text.split(","):
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                cpus.extend(range(low, high + 1))
            elif part.strip():
                cpus.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a CPU list; examples: 0  0,2  0-3")
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: no CPUs; examples: 0  0,2  0-3")
    return sorted(set(cpus))


def seconds(minimum, inclusive):
    """argparse type factory: a number of seconds above (or at) minimum."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(
                f"{text!r}: must be {'>=' if inclusive else '>'} {minimum:g}")
        return value
    return parse


positive_float = seconds(0, inclusive=False)
non_negative_float = seconds(0, inclusive=True)


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= 1")
    return value


EXAMPLES = """\
examples:
  bazel run //bench:sweep -- --smoke
  bazel run //bench:sweep -- --dispatchers blocking --engines mini --tls off \\
      --clients 1 --streams 1,10,100 --peers
  bazel run //bench:sweep -- --peers          # the seed's figures, h2lab and peers
  bazel run //bench:sweep -- --compare "--dispatch epoll" "--dispatch uring" \\
      --tls off --clients 1 --streams 10,100 --repetitions 5
  bazel run //bench:sweep -- --compare "peer:nginx" "" --dispatchers epoll
  bazel run //bench:sweep -- --compare "" "--uring-recv-bundle on" \\
      --workloads upload --dispatchers uring --tls off
  bazel run //bench:sweep -- --compare "--backlog 16" "--backlog 4096" \\
      --workloads churn --churn-connections 250,500,1000
  bazel run //bench:sweep -- --replot bench/results/20260101-120000

--compare ARGS_A ARGS_B: each is a string of extra h2lab flags (may be empty);
--dispatch/--engine/--tls/--threads in it replace the sweep's value for that
side; "peer:NAME" measures a peer instead. --workloads takes the closed-loop
workloads and churn (not open-loop or mixed). Runs alternate A B A B per
workload, case and repetition; B/A ratios of the throughput and of server CPU
per unit of it (requests; churn: connections; download, upload: GB) are
printed with their min/median/max over the repetitions, then what the kernel
did (each side's medians and their B/A; docs/KERNEL.md); compare.csv holds
all of it. Relative paths are taken from the directory bazel run was started in.
"""


def parse_args(argv):
    """Parse the command line; values not given are filled in (smoke or default)."""
    argv, compare = _take_compare(list(argv))
    p = argparse.ArgumentParser(
        prog="sweep", description="h2load sweeps over h2lab configurations and peers.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cases = p.add_argument_group("cases")
    cases.add_argument("--dispatchers", type=choice_list(DISPATCHERS), metavar="LIST",
                       help=f"h2lab dispatchers (default: {DEFAULTS['dispatchers']}; "
                            f"valid: {', '.join(DISPATCHERS)}; unavailable ones are skipped)")
    cases.add_argument("--tls", type=choice_list(TLS_MODES), metavar="LIST",
                       help="TLS modes (default: on,off; valid: on, off)")
    cases.add_argument("--engines", type=choice_list(ENGINES), metavar="LIST",
                       help=f"h2lab engines (default: {DEFAULTS['engines']}; valid: "
                            f"{', '.join(ENGINES)}; unavailable ones are skipped)")
    cases.add_argument("--clients", type=int_list, metavar="LIST",
                       help=f"h2load clients, -c (default: {DEFAULTS['clients']})")
    cases.add_argument("--streams", type=int_list, metavar="LIST",
                       help=f"streams per client, h2load -m (default: {SEED_STREAMS})")
    cases.add_argument("--duration", type=positive_float, metavar="SEC",
                       help="measured seconds per run, h2load -D (default: 5)")
    cases.add_argument("--warmup", type=non_negative_float, metavar="SEC",
                       help="warm-up seconds before each run, h2load --warm-up-time "
                            "(default: 1; 0 = none)")
    cases.add_argument("--repetitions", type=positive_int, metavar="N",
                       help="runs per case (default: 1)")
    cases.add_argument("--peers", nargs="?", const=",".join(PEERS),
                       type=choice_list(tuple(PEERS)), metavar="LIST",
                       help=f"also measure peers (LIST default: {','.join(PEERS)}; "
                            f"valid: {', '.join(PEERS)})")
    cases.add_argument("--no-h2lab", action="store_true",
                       help="measure only the peers")
    cases.add_argument("--smoke", action="store_true",
                       help="two 1-second cases (1 client, 1 and 10 streams, TLS off) "
                            "with the first h2lab configuration that starts")
    cases.add_argument("--percentiles", action="store_true",
                       help="p50/p99/p99.9 request times from h2load --log-file (costs "
                            "h2load a write per request; off by default; always on for "
                            "open-loop)")
    cases.add_argument("--workloads", type=choice_list(workloads.WORKLOADS), metavar="LIST",
                       help=f"what is asked for (default: hello; valid: "
                            f"{', '.join(workloads.WORKLOADS)}; docs/BENCHMARKS.md)")
    cases.add_argument("--idle-connections", type=positive_int, metavar="N",
                       help="mixed: idle connections held open meanwhile (default: 10000)")
    cases.add_argument("--churn-connections", type=int_list, metavar="LIST",
                       help="churn: connections per burst, each one request, all started "
                            "at once (h2load -c N -n N); one case per value, the x axis "
                            f"of churn's figures (default: {DEFAULTS['churn_connections']})")
    cases.add_argument("--scaling", action="store_true",
                       help=f"run every server at {', '.join(map(str, SCALING_THREADS))} "
                            "threads/workers (capped to the server CPUs; n threads are "
                            "pinned to the first n of them)")
    srv = p.add_argument_group("server and pinning")
    srv.add_argument("--server", metavar="PATH",
                     help="h2lab binary (default: //server:main from the runfiles, "
                          "else bazel-bin/server/main)")
    srv.add_argument("--server-threads", type=positive_int, metavar="N",
                     help="h2lab --threads and the peers' worker count "
                          "(default: the number of server CPUs)")
    srv.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                     help="extra h2lab flag, repeatable; write --server-arg=--flag")
    srv.add_argument("--server-cpus", type=cpu_list, default=[0], metavar="CPUS",
                     help="CPUs for the server, taskset -c syntax (default: 0)")
    srv.add_argument("--client-cpus", type=cpu_list, default=[1], metavar="CPUS",
                     help="CPUs for h2load, one h2load thread each (default: 1)")
    srv.add_argument("--no-pin", action="store_true", help="run nothing under taskset")
    srv.add_argument("--h2load", default="h2load", metavar="PATH",
                     help="h2load binary (default: h2load from PATH)")
    srv.add_argument("--startup-timeout", type=positive_float, default=10.0, metavar="SEC",
                     help="wait this long for a server to listen (default: 10)")
    srv.add_argument("--stop-timeout", type=positive_float, default=5.0, metavar="SEC",
                     help="SIGKILL a server this long after SIGTERM (default: 5)")
    srv.add_argument("--wait-for-quiet", type=non_negative_float, default=0.0,
                     metavar="SEC",
                     help="before each run wait up to SEC seconds until other "
                          f"processes use less than {BUSY_MACHINE_PERCENT}%% of a CPU "
                          "(for shared machines; default: 0 = do not wait)")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR",
                     help="output directory (default: bench/results/<timestamp>/ "
                          "in the work tree)")
    out.add_argument("--no-plots", action="store_true", help="skip gnuplot")
    out.add_argument("--quiet-only", action="store_true",
                     help="leave runs marked DISTURBED (other processes or steal above "
                          f"{BUSY_MACHINE_PERCENT}%% of a CPU) out of figures and "
                          "summary.md; the CSV keeps them")
    out.add_argument("--replot", metavar="DIR",
                     help="only re-render figures and summary from DIR/results.csv")
    out.add_argument("--dry-run", action="store_true",
                     help="print the plan and the command lines, run nothing")
    args = p.parse_args(argv)
    args.compare = compare
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            value = SMOKE.get(key, default) if args.smoke else default
            if key in ("dispatchers", "engines", "tls", "workloads"):
                value = choice_list({"dispatchers": DISPATCHERS, "engines": ENGINES,
                                     "tls": TLS_MODES,
                                     "workloads": workloads.WORKLOADS}[key])(value)
            elif key in ("clients", "streams", "churn_connections"):
                value = int_list(value)
            setattr(args, key, value)
    if args.no_h2lab and not args.peers:
        p.error("--no-h2lab needs --peers (there would be nothing to measure)")
    if compare and args.smoke:
        p.error("--compare and --smoke do not combine")
    if compare and args.scaling:
        p.error("--compare measures at one thread count: --scaling does not combine with it")
    refused = [w for w in args.workloads if w in COMPARE_REFUSED_WORKLOADS] if compare else []
    if refused:
        p.error("--compare takes the closed-loop workloads and churn, not "
                + "; ".join(f"{w}: {COMPARE_REFUSED_WORKLOADS[w]}" for w in refused))
    if args.scaling and args.server_threads:
        p.error("--scaling chooses the thread counts: leave out --server-threads")
    return args


def _take_compare(argv):
    """Remove '--compare A B' from argv before argparse sees it.

    A and B are flag strings such as "--uring-sqpoll" that argparse would
    take for options of its own; they are taken verbatim here.
    """
    if "--compare" not in argv:
        return argv, None
    i = argv.index("--compare")
    if len(argv) < i + 3:
        sys.exit("sweep: error: --compare needs two arguments, ARGS_A and ARGS_B "
                 "(each a quoted string of h2lab flags, may be \"\", or peer:NAME)")
    compare = (argv[i + 1], argv[i + 2])
    for side in compare:
        parse_variant(side)   # exits with a message on a bad value
    return argv[:i] + argv[i + 3:], compare


def parse_variant(text):
    """One side of --compare: {"peer": NAME} or h2lab overrides and extra flags."""
    words = shlex.split(text)
    if len(words) == 1 and words[0].startswith("peer:"):
        name = words[0][5:]
        if name not in PEERS:
            sys.exit(f"sweep: error: --compare: unknown peer {name!r} "
                     f"(valid: {', '.join('peer:' + p for p in PEERS)})")
        return {"peer": name}
    overrides, extra = {}, []
    valid = {"--dispatch": DISPATCHERS, "--engine": ENGINES, "--tls": TLS_MODES,
             "--threads": None}
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if name in valid:
            if not eq:
                if i + 1 >= len(words):
                    sys.exit(f"sweep: error: --compare: {name} needs a value")
                value = words[i + 1]
                i += 1
            if valid[name] is not None and value not in valid[name]:
                sys.exit(f"sweep: error: --compare: {name} {value!r} "
                         f"(valid: {', '.join(valid[name])})")
            if name == "--threads" and not value.isdigit():
                sys.exit(f"sweep: error: --compare: --threads {value!r} is not an integer")
            overrides[name[2:]] = value
        else:
            extra.append(word)
        i += 1
    return {"overrides": overrides, "extra": extra}


# --------------------------------------------------------------------------
# Paths, machine, pinning
# --------------------------------------------------------------------------

def workspace_dir():
    """The user's h2lab work tree: where outputs go and git is asked.

    Under `bazel run` that is BUILD_WORKSPACE_DIRECTORY; run as a plain
    script from a checkout it is the checkout; else the current directory.
    """
    if os.environ.get("BUILD_WORKSPACE_DIRECTORY"):
        return os.environ["BUILD_WORKSPACE_DIRECTORY"]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.exists(os.path.join(here, "WORKSPACE")) and ".runfiles" not in here:
        return here
    return os.getcwd()


def user_path(path):
    """A path as the user meant it: relative to where they typed the command."""
    base = os.environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd()
    return os.path.abspath(os.path.join(base, os.path.expanduser(path)))


def default_server():
    """//server:main in the runfiles (bazel run/test), else bazel-bin's copy."""
    candidates = [os.path.join(os.environ[v], "h2lab", "server", "main")
                  for v in ("RUNFILES_DIR", "TEST_SRCDIR") if os.environ.get(v)]
    candidates.append(os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "server", "main"))
    candidates.append(os.path.join(workspace_dir(), "bazel-bin", "server", "main"))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def invocation():
    """The command line as the user typed it (bazel run, or the script)."""
    if os.environ.get("BUILD_WORKSPACE_DIRECTORY"):
        return shlex.join(["bazel", "run", "//bench:sweep", "--"] + sys.argv[1:])
    return shlex.join(sys.argv)


def cpu_model():
    """The CPU's marketing name from /proc/cpuinfo (architecture if none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "Model", "cpu model")):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.machine()


def cpus_text(cpus):
    return ",".join(str(c) for c in cpus) if cpus else "unpinned"


def plan_pinning(args):
    """Which CPUs server and h2load get, and warnings when that is not what was asked.

    Returns (server_cpus, client_cpus, warnings); an empty list means unpinned.
    A CPU that does not exist here is dropped with a warning rather than
    letting taskset fail, so a sweep still runs on a smaller machine and says
    how its numbers were made.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if args.no_pin:
        return [], [], ["pinning disabled (--no-pin): server and h2load share all CPUs"]
    if shutil.which("taskset") is None:
        return [], [], ["taskset not found (apt-get install util-linux): nothing is pinned"]
    warnings = []
    asked = sorted(set(args.server_cpus) | set(args.client_cpus))
    if len(allowed) < len(asked):
        warnings.append(f"this machine offers {len(allowed)} CPU(s) ({cpus_text(allowed)}) "
                        f"but {len(asked)} were asked for ({cpus_text(asked)})")
    chosen = []
    for role, wanted in (("server", args.server_cpus), ("h2load", args.client_cpus)):
        present = [c for c in wanted if c in allowed]
        missing = [c for c in wanted if c not in allowed]
        if missing:
            warnings.append(f"{role} CPU(s) {cpus_text(missing)} not available here"
                            + ("" if present else f"; {role} runs unpinned"))
        chosen.append(present)
    shared = sorted(set(chosen[0]) & set(chosen[1]))
    if shared or not chosen[0] or not chosen[1]:
        warnings.append("server and h2load may run on the same CPU: the numbers "
                        "include that contention")
    return chosen[0], chosen[1], warnings


def taskset(cpus):
    """The command prefix that pins to cpus (none when unpinned)."""
    return ["taskset", "-c", cpus_text(cpus)] if cpus else []


def git_revision(path):
    """(HEAD commit, dirty?) of the work tree at path, or (None, None)."""
    try:
        rev = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", path, "status", "--porcelain",
                                 "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
        return rev.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def tool_version(argv):
    """First line of a tool's version output, or None."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def kernel_knobs():
    """A few kernel settings that move HTTP/2-over-loopback numbers."""
    knobs = {}
    for name in ("net/core/somaxconn", "net/core/rmem_max", "net/core/wmem_max",
                 "net/ipv4/tcp_rmem", "net/ipv4/tcp_wmem", "kernel/io_uring_disabled"):
        try:
            with open(f"/proc/sys/{name}", encoding="ascii") as f:
                knobs[name.replace("/", ".")] = " ".join(f.read().split())
        except OSError:
            pass
    for cpu in range(os.cpu_count() or 0):
        path = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"
        if os.path.exists(path):
            with open(path, encoding="ascii") as f:
                knobs[f"cpu{cpu}.governor"] = f.read().strip()
    return knobs


# --------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------

def server_threads(args, server_cpus):
    """h2lab's --threads and the peers' workers: one per server CPU unless given."""
    return args.server_threads or max(1, len(server_cpus))


def thread_plan(args, server_cpus):
    """[(threads, cpus)] per server configuration: one entry, or --scaling's
    1, 2, 4, 8 capped to the server CPUs (the largest count the set allows is
    added when it is not a power of two), n threads pinned to the first n CPUs.
    cpus is () outside --scaling: the launcher's whole server set."""
    if not args.scaling:
        return [(server_threads(args, server_cpus), ())]
    limit = len(server_cpus) or os.cpu_count() or 1
    counts = sorted({t for t in SCALING_THREADS if t <= limit} | {min(limit, max(SCALING_THREADS))})
    return [(t, tuple(server_cpus[:t])) for t in counts]


def sweep_specs(args, threads, server_cpus=()):
    """The configurations of a sweep, grouped by TLS so each figure fills in order
    (with --scaling, each at every thread count of thread_plan)."""
    plan = thread_plan(args, list(server_cpus)) if args.scaling else [(threads, ())]
    specs = []
    for tls in args.tls:
        for count, cpus in plan:
            if not args.no_h2lab:
                for dispatcher in args.dispatchers:
                    for engine in args.engines:
                        specs.append(ServerSpec(H2LAB, tls == "on", dispatcher, engine,
                                                count, tuple(args.server_arg), cpus=cpus))
            for peer in args.peers or []:
                specs.append(ServerSpec(peer, tls == "on", threads=count, cpus=cpus))
    return specs


def loads_of(args):
    """The workloads' Loads in run order."""
    return [load for name in args.workloads
            for load in workloads.loads(name, args.idle_connections)]


def workload_text(workload, variant):
    """A load as the terminal names it: "hello", "download 1MiB"."""
    return f"{workload} {variant}".strip()


def load_cases(args, load):
    """(clients, streams) pairs of a load. churn: one per --churn-connections
    value, in the order given (its connections per burst are h2load's
    clients, one stream each); the others: every clients x streams case."""
    if load.one_request_per_connection:
        return [(connections, 1) for connections in args.churn_connections]
    return cases_of(args)


def runs_per_case(load):
    """open-loop: a closed-loop capacity run, then one per load level."""
    return 1 + len(workloads.OPEN_LOOP_PERCENTS) if load.open_loop else 1


def spec_sits_out(spec, load):
    """Why spec cannot serve load ("" if it can): nginx has no echo."""
    if load.upload_bytes and spec.server == "nginx":
        return "nginx cannot echo a request body (no echo module in Debian's nginx)"
    return ""


def compare_cases(args, pair, load):
    """The cases of load a --compare pair can run: those of load_cases that
    h2load's timed mode can measure on both sides, as in a sweep."""
    return [(clients, streams) for clients, streams in load_cases(args, load)
            if all(timed_mode_can_measure(spec, clients) for spec in pair)]


def pair_sits_out(pair, load):
    """Why a --compare pair cannot run load ("" if it can): a side that sits
    it out leaves nothing for the other to be compared with."""
    return next((why for why in (spec_sits_out(spec, load) for spec in pair) if why), "")


def compare_pairs(args, threads):
    """(A, B) spec pairs for --compare, one per distinct sweep configuration.

    A side that fixes --dispatch (say) makes the --dispatchers list moot for
    that side; pairs that come out identical are run once.
    """
    sides = [parse_variant(text) for text in args.compare]
    pairs = []
    for tls in args.tls:
        for dispatcher in args.dispatchers:
            for engine in args.engines:
                pair = tuple(_apply_variant(side, name, tls, dispatcher, engine,
                                            threads, args.server_arg)
                             for side, name in zip(sides, "AB"))
                if pair not in pairs:
                    pairs.append(pair)
    return pairs


def _apply_variant(side, name, tls, dispatcher, engine, threads, server_args):
    if "peer" in side:
        return ServerSpec(side["peer"], tls == "on", threads=threads, variant=name)
    o = side["overrides"]
    return ServerSpec(H2LAB, o.get("tls", tls) == "on", o.get("dispatch", dispatcher),
                      o.get("engine", engine), int(o.get("threads", threads)),
                      tuple(server_args) + tuple(side["extra"]), variant=name)


def planned_runs(args, specs, pairs):
    """How many h2load runs the plan holds (--smoke: one h2lab config per TLS mode)."""
    if pairs:
        # run_compare: every case of each load, A and B per repetition, for
        # each pair that can serve the load (one h2load run each: --compare
        # takes no open-loop, whose cases hold several).
        return sum(len(compare_cases(args, pair, load)) * args.repetitions * 2
                   for load in loads_of(args) for pair in pairs
                   if not pair_sits_out(pair, load))
    total = 0
    for load in loads_of(args):
        per_config = len(load_cases(args, load)) * args.repetitions * runs_per_case(load)
        configs = [s for s in specs if not spec_sits_out(s, load)]
        count = len(configs)
        if args.smoke:
            count = sum(1 for s in configs if s.server != H2LAB) + (
                0 if args.no_h2lab else
                len({(s.tls, s.threads) for s in configs if s.server == H2LAB}))
        total += count * per_config
    return total


def cases_of(args):
    """(clients, streams) pairs in sweep order."""
    return [(c, s) for c in args.clients for s in args.streams]


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------

class Progress:
    """One line per finished run, with an estimate of the time left."""

    def __init__(self, total, seconds_per_run):
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.guess = seconds_per_run

    def skip(self, runs):
        """Runs that will not happen (configuration unavailable)."""
        self.total -= runs

    def report(self, row):
        self.done += 1
        elapsed = time.monotonic() - self.started
        left = (self.total - self.done) * (elapsed / self.done if self.done else self.guess)
        print(f"[{self.done:>{len(str(self.total))}}/{self.total}] {headline(row)}"
              f"  | left ~{_duration_text(left)}", flush=True)


def headline(row):
    """The numbers of one run in one line."""
    case = (f"{row['label']} tls={row['tls']} c={row['clients']} m={row['streams']}"
            f" #{row['repetition']}")
    if row["status"] != "ok":
        return f"{case}: {row['status']} ({row['note']})"
    parts = [f"{float(row['requests_per_s']) / 1000:.1f}k req/s"]
    if row["mean_request_us"] != "":
        parts.append(f"mean {float(row['mean_request_us']):.0f} µs")
    if row["server_cpu_us_per_request"] != "":
        parts.append(f"server {float(row['server_cpu_us_per_request']):.2f} µs CPU/req "
                     f"({float(row['server_cpu_percent']):.0f}% CPU)")
    if row.get("syscalls_per_request"):
        parts.append(f"{float(row['syscalls_per_request']):.2f} syscalls/req")
    if row.get("requests_per_wait"):
        parts.append(f"{float(row['requests_per_wait']):.2f} req/wait")
    if row["failed"] not in ("", 0, "0"):
        parts.append(f"{row['failed']} failed")
    if disturbed(row):
        parts.append("DISTURBED: " + ", ".join(disturbed(row)))
    return f"{case}: " + ", ".join(parts)


def disturbed(row):
    """What else took CPU during a run, beyond BUSY_MACHINE_PERCENT ([] if nothing)."""
    return [f"{name} {float(row[column]):.0f}% CPU"
            for name, column in (("others", "other_cpu_percent"), ("steal", "steal_percent"))
            if row.get(column) not in (None, "")
            and float(row[column]) > BUSY_MACHINE_PERCENT]


def _duration_text(seconds):
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Context:
    """What every run needs: options, pinning, the launcher, the outputs."""

    def __init__(self, args, registry, launcher, server_cpus, client_cpus, out_dir,
                 work_dir, mode):
        self.args = args
        self.registry = registry
        self.launcher = launcher
        self.server_cpus = server_cpus
        self.client_cpus = client_cpus
        self.out_dir = out_dir
        self.work_dir = work_dir
        self.mode = mode
        self.idle = None     # mixed: the idle connections held during its runs
        self.rows = []
        self.skipped = []
        self.notes = []
        csv_path = os.path.join(out_dir, "results.csv")
        self._csv_file = open(csv_path, "w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._csv_file, CSV_COLUMNS)
        self._csv.writeheader()
        self._h2load_log = open(os.path.join(out_dir, "h2load.log"), "w", encoding="utf-8")

    def note(self, text):
        """A one-line message for the terminal, kept for meta.json too."""
        print(text, flush=True)
        self.notes.append(text)

    def record(self, row):
        """Append a row to the CSV at once, so an interrupted sweep keeps its rows."""
        self.rows.append(row)
        self._csv.writerow(row)
        self._csv_file.flush()

    def log_h2load(self, argv, text):
        """Keep h2load's whole output: the CSV holds only what was parsed."""
        self._h2load_log.write(f"### {shlex.join(argv)}\n{text}\n")
        self._h2load_log.flush()

    def close(self):
        self._csv_file.close()
        self._h2load_log.close()


def stats_sampler(ctx, running):
    """Start sampling an h2lab server's /stats for one run (None for peers).

    Two back-to-back fetches on the idle server first: their difference is
    what one fetch adds to a window (serverstats.net_of), and the second is
    the "before" sample of a whole-run window. Then, unless the server serves
    one client at a time, a curl is armed for each of loadgen.run's two CPU
    sampling instants (on_phase).
    """
    if running.spec.server != H2LAB:
        return None   # peers have no /stats: their columns stay empty
    sampler = serverstats.Sampler(ctx.registry, running.url)
    if sampler.take("idle") and sampler.take("before") \
            and not serves_one_client_at_a_time(running.spec):
        sampler.arm(("main_start", "main_end"))
    return sampler


def read_server_stats(sampler, window):
    """The server's own counters over the run as CSV columns, and a note.

    The window is the CPU window's: /stats is fetched right after the CPU
    samples at h2load's "main phase started" and "all threads over" lines
    (stats_window=main-phase; the two snapshots are 1-2 ms after the CPU
    samples, the time curl, already started, takes to connect and ask).
    The `blocking` dispatcher serves one client at a time, so a fetch during
    h2load's run would wait for h2load to leave: for it, and when h2load
    printed no phase lines, /stats is read just before h2load starts and
    just after it exits (stats_window=whole-run, warm-up included).
    Returns ({column: text}, note, switches); the columns are empty when a
    fetch failed, and the note says why. switches: the server process's
    (voluntary, involuntary) context switches over a main-phase window, net
    of one fetch's, as its /stats counts them (getrusage: threads that ended
    included), or None (also for a whole-run window, which is not the CPU
    window). Peers (sampler None) get empty columns, no note and
    no switches.
    """
    empty = {column: "" for column in serverstats.COLUMNS}
    if sampler is None:
        return empty, "", None
    if "before" not in sampler.samples:
        return empty, "/stats not read: " + "; ".join(sampler.errors.values()), None
    phase = ("main_start", "main_end")
    if window["method"] == "main-phase" and all(map(sampler.fired, phase)):
        method, first, last = "main-phase", *phase
    elif not any(map(sampler.fired, phase)):
        # Nothing was fetched inside the run: before..after holds exactly the
        # one fetch's worth that the idle pair measured.
        method, first, last = "whole-run", "before", "after"
        sampler.take("after")
    else:
        return empty, ("/stats: the main phase was sampled at one end only "
                       f"({', '.join(n for n in phase if sampler.fired(n))})"), None
    if first not in sampler.samples or last not in sampler.samples:
        return empty, "/stats not read: " + "; ".join(
            f"{n}: {sampler.errors[n]}" for n in (first, last) if n in sampler.errors), None
    overhead = serverstats.difference(sampler.samples["idle"], sampler.samples["before"])
    win = serverstats.difference(sampler.samples[first], sampler.samples[last])
    columns, notes = serverstats.columns(win, overhead)
    columns["stats_window"] = method
    # Only a main-phase window is the CPU window the per-request columns
    # divide by; a whole-run one holds the warm-up too.
    switches = (tuple(max(0, w - o) for w, o in zip(win["switches"], overhead["switches"]))
                if method == "main-phase" and win["switches"] and overhead["switches"]
                else None)
    return columns, "; ".join(notes), switches


def wait_for_quiet(limit, log):
    """Wait up to limit seconds for the machine to be quiet; return a note or "".

    Called between runs, when the server is idle and h2load not started,
    so the machine's busy time is other people's work (a build, a test).
    """
    if not limit:
        return ""
    start = time.monotonic()
    announced = False
    while True:
        before, _ = procs.machine_cpu_seconds()
        time.sleep(0.5)
        after, _ = procs.machine_cpu_seconds()
        busy = 100 * (after - before) / 0.5
        waited = time.monotonic() - start
        if busy < BUSY_MACHINE_PERCENT:
            return f"waited {waited:.0f} s for a quiet machine" if announced else ""
        if waited > limit:
            return f"machine still busy ({busy:.0f}% CPU) after {limit:g} s; measured anyway"
        if not announced:
            log(f"waiting for a quiet machine (others use {busy:.0f}% CPU)")
            announced = True


HELLO_LOAD = workloads.Load("hello")


def measure_case(ctx, running, load, clients, streams, repetition):
    """The runs of one case of a load: one row, or open-loop's capacity row
    and a row per OPEN_LOOP_PERCENTS level (h2load --rps per client)."""
    rows = [measure(ctx, running, clients, streams, repetition, load)]
    if not load.open_loop:
        return rows
    rows[0]["workload_variant"] = "capacity"
    capacity = float(rows[0]["requests_per_s"] or 0) if rows[0]["status"] == "ok" else 0
    if capacity <= 0:
        ctx.note(f"note: open-loop {rows[0]['label']} c={clients} m={streams}: no "
                 "capacity measured, so no fixed-rate runs")
        return rows
    for percent_ in workloads.OPEN_LOOP_PERCENTS:
        rps = max(1, round(capacity * percent_ / 100 / clients))
        rows.append(measure(ctx, running, clients, streams, repetition, load,
                            rps=rps, load_percent=percent_))
    return rows


def measure(ctx, running, clients, streams, repetition, load=HELLO_LOAD, rps=None,
            load_percent=None):
    """One h2load run of load against a running server: returns the CSV row.

    rps: open-loop's requests/s per client (h2load --rps), with
    load_percent the share of capacity it stands for; the request times'
    quantiles are then read from h2load's --log-file.
    """
    args = ctx.args
    quiet_note = wait_for_quiet(args.wait_for_quiet, ctx.note)
    threads = min(max(1, len(ctx.client_cpus)), clients)
    log_file = (os.path.join(ctx.work_dir, "h2load-requests.log")
                if args.percentiles or rps else None)
    url, extra = request_args(ctx, running, load, rps)
    churn = load.one_request_per_connection
    argv = taskset(ctx.client_cpus) + loadgen.h2load_argv(
        args.h2load, url, clients, streams, threads, args.duration,
        args.warmup, log_file, extra, requests=clients if churn else None)
    # Forked workers may have been replaced since the last run; read the tree
    # outside the measured window.
    running.pids = procs.descendants(running.proc.pid)
    sampler = stats_sampler(ctx, running)
    try:
        if churn:
            texts, window = loadgen.run_bursts(ctx.registry, argv, running.pids,
                                               args.duration, timeout=30 + clients / 50,
                                               server_cpus=ctx.server_cpus)
        else:
            text, window = loadgen.run(ctx.registry, argv, running.pids,
                                       timeout=args.warmup + args.duration + 30,
                                       on_phase=sampler.on_phase if sampler else None,
                                       server_cpus=ctx.server_cpus)
            texts = [text]
        stats, stats_note, switches = read_server_stats(sampler, window)
    finally:
        if sampler:
            sampler.close()
    rss, hwm = procs.memory_kb(running.pids)
    socket_state = kernel.sockstat()
    text = "".join(texts)
    result = loadgen.combine([loadgen.parse(t) for t in texts])
    if log_file and os.path.exists(log_file):
        (result["p50_request_us"], result["p99_request_us"],
         result["p999_request_us"]) = loadgen.percentiles(log_file, workloads.QUANTILES)
        os.remove(log_file)
    ctx.log_h2load(argv, text)

    status, note = "ok", ""
    if running.proc.poll() is not None:
        status, note = "server-died", f"server exited with code {running.proc.returncode}"
    elif window["exit_code"] != 0 or "requests_per_s" not in result:
        status = "h2load-failed"
        note = f"h2load exit code {window['exit_code']}; see h2load.log"
    note = "; ".join(n for n in (note, quiet_note, stats_note) if n)
    succeeded = result.get("succeeded", 0)
    cpu_s = window["server_cpu_s"]
    spec = running.spec
    row = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": ctx.mode, "workload": load.workload,
        "workload_variant": f"{load_percent}%" if load_percent else load.variant,
        "variant": spec.variant, "label": row_label(running),
        "server": spec.server, "server_version": running.version,
        "dispatcher": spec.dispatcher, "engine": spec.engine,
        "server_threads": spec.threads, "extra_args": shlex.join(spec.extra_args),
        "tls": "on" if spec.tls else "off", "clients": clients, "streams": streams,
        "h2load_threads": threads, "repetition": repetition,
        "warmup_s": args.warmup, "duration_s": args.duration, "status": status,
        "server_cpu_s": f"{cpu_s:.3f}",
        "server_cpu_us_per_request": f"{cpu_s * 1e6 / succeeded:.4f}" if succeeded else "",
        "server_cpu_percent": percent(cpu_s, window["wall_s"]),
        "client_cpu_percent": percent(window["client_cpu_s"], window["wall_s"]),
        "other_cpu_percent": percent(window["other_cpu_s"], window["wall_s"]),
        "steal_percent": percent(window["steal_s"], window["wall_s"]),
        "cpu_window": window["method"], "window_s": f"{window['wall_s']:.3f}",
        "server_vmrss_kb": rss if rss is not None else "",
        "server_vmhwm_kb": hwm if hwm is not None else "",
        "server_cpus": cpus_text(ctx.server_cpus), "client_cpus": cpus_text(ctx.client_cpus),
        "server_cmd": shlex.join(running.argv), "h2load_cmd": shlex.join(argv),
        "note": note,
    }
    row.update(workload_columns(load, result, cpu_s, clients, rps, load_percent,
                                ctx.idle.still_open() if ctx.idle else None))
    row.update(stats)
    row.update(kernel.columns(window["kernel_first"], window["kernel_last"], window["wall_s"],
                              succeeded, socket_state,
                              len(ctx.server_cpus) or os.cpu_count() or 1, switches))
    for column in CSV_COLUMNS:
        if column not in row:
            value = result.get(column, "")
            row[column] = f"{value:.2f}" if isinstance(value, float) else value
    return row


def request_args(ctx, running, load, rps):
    """(URL, extra h2load arguments) for load: one path is put in the URL,
    several go to an h2load -i list (written for this server's URL)."""
    url, uri_file = running.url, None
    if len(load.paths) > 1:
        uri_file = workloads.write_uri_file(os.path.join(ctx.work_dir, "uris.txt"),
                                            running.url, load.paths)
    elif load.paths != ("/",):
        url = running.url.rstrip("/") + load.paths[0]
    upload = None
    if load.upload_bytes:
        upload = os.path.join(ctx.work_dir, f"upload-{load.upload_bytes}")
        if not os.path.exists(upload):
            workloads.write_upload_file(upload, load.upload_bytes)
    return url, workloads.h2load_extra(load, uri_file, upload, rps)


def workload_columns(load, result, cpu_s, clients, rps, load_percent, idle_open):
    """The workload-specific CSV cells of one run (empty where they do not apply)."""
    bytes_per_s = result.get("bytes_per_s")
    seconds_ = result.get("finished_s")
    succeeded = result.get("succeeded", 0)
    cells = {"body_bytes": load.body_bytes or "", "load_percent": load_percent or "",
             "offered_rps": rps * clients if rps else "",
             "bytes_per_s": f"{bytes_per_s:.0f}" if bytes_per_s is not None else "",
             "server_cpu_s_per_gb": "", "connections_per_s": "",
             "idle_connections": idle_open if idle_open is not None else ""}
    if load.body_bytes and bytes_per_s and seconds_:
        cells["server_cpu_s_per_gb"] = f"{cpu_s / (bytes_per_s * seconds_ / 1e9):.4f}"
    if load.one_request_per_connection and seconds_:
        cells["connections_per_s"] = f"{succeeded / seconds_:.1f}"
    return cells


def percent(seconds, wall):
    """CPU seconds over a wall interval as a percentage of one CPU ("" if unknown)."""
    if seconds is None or wall <= 0:
        return ""
    return f"{100 * seconds / wall:.1f}"


def row_label(running):
    """A run's line name: peers carry their version, h2lab its configuration."""
    if running.spec.server == H2LAB or not running.version:
        return running.spec.label
    return f"{running.spec.label} {running.version}"


def start_or_skip(ctx, spec, progress, runs, load=HELLO_LOAD):
    """Start spec for load, or print why it is skipped and take its runs off.

    The server's answer to the load's sample path is compared byte for byte
    with h2lab's routes (workloads.check_content): a server that answers
    other octets is skipped, as one that cannot start.
    """
    tls = "on" if spec.tls else "off"
    try:
        running = ctx.launcher.start(spec, h2lab_load_args(ctx.args, load))
    except Unavailable as e:
        ctx.note(f"skip {spec.label} tls={tls}: {e}")
        ctx.skipped.append({"label": spec.label, "tls": tls, "workload": load.workload,
                            "reason": str(e)})
        progress.skip(runs)
        return None
    difference = workloads.check_content(
        running.url, workloads.sample_path(load),
        workloads.pattern(4096) if load.upload_bytes else b"")
    if difference:
        stop_server(ctx, running)
        ctx.note(f"skip {spec.label} tls={tls} for {load.workload}: {difference}")
        ctx.skipped.append({"label": spec.label, "tls": tls,
                            "workload": load.workload, "reason": difference})
        progress.skip(runs)
        return None
    return running


def h2lab_load_args(args, load):
    """h2lab flags a load needs: mixed holds idle connections, so no idle
    timeout, no minimum progress and room for them and the active clients."""
    if not load.idle_connections:
        return ()
    room = load.idle_connections + max(args.clients) + 1000
    return ("--idle-timeout", "3600000", "--min-progress-window", "0",
            "--max-connections", str(room))


def stop_server(ctx, running):
    """Stop a server; say so when h2lab did not exit 0 on SIGTERM (its contract)."""
    code = ctx.launcher.stop(running)
    if code != 0 and running.spec.server == H2LAB:
        ctx.note(f"note: {running.spec.label} exited with code {code} on SIGTERM "
                 "(expected 0)")


def run_sweep(ctx, specs, progress):
    """Every load, then every spec, case and repetition: one server process per
    (load, spec), so a load's server flags (mixed) apply to it alone.

    A server that dies mid-sweep is restarted for the next run (its row says
    so); one that cannot be restarted loses its remaining runs.
    """
    for load in loads_of(ctx.args):
        chosen = set()   # --smoke: (TLS, threads) that already have an h2lab config
        for spec in specs:
            why = spec_sits_out(spec, load)
            if why:
                ctx.note(f"skip {spec.label} for {load.workload}: {why}")
                continue
            if ctx.args.smoke and spec.server == H2LAB and (spec.tls, spec.threads) in chosen:
                continue
            if run_load(ctx, spec, load, progress) and spec.server == H2LAB:
                chosen.add((spec.tls, spec.threads))


def run_load(ctx, spec, load, progress):
    """Every case of load against spec; returns whether the server started."""
    args = ctx.args
    cases = load_cases(args, load)
    per_case = args.repetitions * runs_per_case(load)
    runs_per_spec = len(cases) * per_case
    # --smoke plans one h2lab configuration per TLS mode, not each candidate.
    smoke_candidate = args.smoke and spec.server == H2LAB
    running = start_or_skip(ctx, spec, progress, 0 if smoke_candidate else runs_per_spec,
                            load)
    if running is None:
        return False
    if smoke_candidate:
        ctx.note(f"smoke: using {spec.label} for {load.workload}")
    left = runs_per_spec
    noted_one_at_a_time = False
    try:
        hold_idle_connections(ctx, running, load)
        for clients, streams in cases:
            if not timed_mode_can_measure(spec, clients):
                if not noted_one_at_a_time:
                    ctx.note(f"skip {spec.label} tls={'on' if spec.tls else 'off'} with "
                             "more than 1 client: it serves one client at a time, which "
                             "h2load's timed mode cannot measure")
                    noted_one_at_a_time = True
                progress.skip(per_case)
                left -= per_case
                continue
            for rep in range(1, args.repetitions + 1):
                if running.proc.poll() is not None:
                    ctx.note(f"note: {spec.label} died (code "
                             f"{running.proc.returncode}); restarting it")
                    release_idle_connections(ctx)
                    running = start_or_skip(ctx, spec, progress, left, load)
                    if running is None:
                        raise _GiveUp()
                    hold_idle_connections(ctx, running, load)
                for row in measure_case(ctx, running, load, clients, streams, rep):
                    ctx.record(row)
                    progress.report(row)
                    left -= 1
    except _GiveUp:
        pass
    finally:
        release_idle_connections(ctx)
        if running is not None:
            stop_server(ctx, running)
    return True


def hold_idle_connections(ctx, running, load):
    """mixed: open load.idle_connections idle connections to the server first."""
    if not load.idle_connections:
        return
    started = time.monotonic()
    ctx.idle = workloads.IdleConnections(running.url, load.idle_connections)
    ctx.note(f"mixed: {len(ctx.idle.conns)} idle connections open to {running.spec.label} "
             f"in {time.monotonic() - started:.1f} s")


def release_idle_connections(ctx):
    if ctx.idle:
        ctx.idle.close()
        ctx.idle = None


def serves_one_client_at_a_time(spec):
    """h2lab's `blocking` dispatcher: one client, then the next."""
    return spec.server == H2LAB and spec.dispatcher == "blocking"


def timed_mode_can_measure(spec, clients):
    """Whether h2load's timed mode (-D) can measure spec with this many
    clients: it waits for every client, and `blocking` serves the second
    only when the first leaves, so such a run could only end by the
    watchdog."""
    return clients == 1 or not serves_one_client_at_a_time(spec)


class _GiveUp(Exception):
    """A configuration that cannot be (re)started loses its remaining runs."""


def run_compare(ctx, pairs, progress):
    """Every load, then every pair: A and B alternately for every case of the
    load and repetition, A B A B ...

    Each run gets a freshly started server and nothing else runs meanwhile:
    an idle second server could still take CPU (an io_uring SQPOLL thread
    spins for a while after its last request), so A and B never coexist.
    Alternating spreads slow drifts of the machine (thermal, other tenants)
    evenly over both sides; the spread of the B/A ratios shows what is left.
    Loads come first, as in run_sweep, so that one load's runs stay together.
    """
    for load in loads_of(ctx.args):
        for pair in pairs:
            why = pair_sits_out(pair, load)
            if why:
                ctx.note(f"skip {pair[0].label} vs {pair[1].label} for "
                         f"{workload_text(load.workload, load.variant)}: {why}")
                continue
            compare_load(ctx, pair, load, progress)


def compare_load(ctx, pair, load, progress):
    """One pair's runs of one load (run_compare). A side that cannot start,
    or answers other octets than h2lab's for this load (start_or_skip's
    content check), ends the pair's runs of this load: their B/A needs both.
    measure prepares what the load sends (upload's request body file) as in
    a sweep."""
    args = ctx.args
    cases = compare_cases(args, pair, load)
    if len(cases) < len(load_cases(args, load)):
        ctx.note(f"skip {pair[0].label} vs {pair[1].label} for "
                 f"{workload_text(load.workload, load.variant)} with more than 1 client: "
                 "a side serves one client at a time, which h2load's timed mode cannot "
                 "measure")
    runs_left = len(cases) * args.repetitions * 2
    for clients, streams in cases:
        for rep in range(1, args.repetitions + 1):
            for spec in pair:
                running = start_or_skip(ctx, spec, progress, runs_left, load)
                if running is None:
                    return   # start_or_skip took runs_left off the plan
                try:
                    row = measure(ctx, running, clients, streams, rep, load)
                finally:
                    stop_server(ctx, running)
                ctx.record(row)
                progress.report(row)
                runs_left -= 1


COMPARE_COUNTERS = ("syscalls_per_request", "requests_per_wait")


class CompareRatio(typing.NamedTuple):
    """One B/A ratio of the compare table: of which results.csv column, and
    under which names."""
    key: str        # compare.csv's KEY_ratio_{min,median,max} and {a,b}_KEY_median
    column: str     # the results.csv column whose B/A is taken
    heading: str    # its unit on the terminal: "req/s"
    scale: float    # the terminal shows the A and B medians times this


# What the B/A ratios are of, per kind of workload: a throughput, then the
# server's CPU per unit of it (the columns plots.py draws for that workload).
# A workload not named in COMPARE_RATIOS counts requests. churn's unit is the
# connection: one request each, so its requests/s are its connections/s and
# its CPU per request is CPU per connection. download's and upload's is the
# octet, as in their figures: a request there is 16 KiB to 64 MiB, and GB/s
# and CPU per GB read alike at every size.
REQUEST_RATIOS = (CompareRatio("rps", "requests_per_s", "req/s", 1.0),
                  CompareRatio("cpu", "server_cpu_us_per_request", "CPU/req", 1.0))
CHURN_RATIOS = (CompareRatio("conns", "connections_per_s", "conn/s", 1.0),
                CompareRatio("cpu", "server_cpu_us_per_request", "CPU/conn", 1.0))
TRANSFER_RATIOS = (CompareRatio("gbps", "bytes_per_s", "GB/s", 1e-9),
                   CompareRatio("cpugb", "server_cpu_s_per_gb", "CPU/GB", 1.0))
COMPARE_RATIOS = {"churn": CHURN_RATIOS, "download": TRANSFER_RATIOS,
                  "upload": TRANSFER_RATIOS}
# Every entry of the compare table has the cells of every key, empty where
# its workload's ratios are others: one uniform table, one compare.csv header.
COMPARE_RATIO_KEYS = tuple(dict.fromkeys(
    ratio.key for ratios in (REQUEST_RATIOS, *COMPARE_RATIOS.values()) for ratio in ratios))


def compare_ratios(workload):
    """The (throughput, CPU per unit) CompareRatios of a workload's entries."""
    return COMPARE_RATIOS.get(workload, REQUEST_RATIOS)


def _compare_case(row):
    """What a run's partner on the other side shares with it: the load, the
    case and the repetition (a row from before the workload columns is
    hello's)."""
    return (plots.workload_of(row), row.get("workload_variant") or "", row["tls"],
            int(row["clients"]), int(row["streams"]), row["repetition"])


def compare_table(rows):
    """Per pair, load and case: B/A ratios of the load's throughput and CPU per
    unit of it (compare_ratios: requests, churn's connections, download's and
    upload's GB), min/median/max, each side's median syscalls/request and
    requests/wait (from /stats), and what the kernel did (bench/kernel.py):
    each side's median of every number column with B/A of the two medians,
    and the other TCP counters that moved in any run of a side."""
    # run_compare records each B right after its A (same load, case,
    # repetition): a pair of runs is such an A row followed by its B row.
    # Keyed by both labels too, so that the pairs of configurations (say full
    # and mini engines) that share a case stay apart, and by the load, so
    # that two loads' runs of one case (download 1MiB and 64MiB) never mix.
    runs = {}
    for a, b in zip(rows, rows[1:]):
        if (a["variant"], b["variant"]) != ("A", "B") or \
                _compare_case(a) != _compare_case(b) or \
                not (plots.usable(a) and plots.usable(b)):
            continue
        key = (a["label"], b["label"]) + _compare_case(a)[:-1]   # all repetitions
        runs.setdefault(key, []).append((a, b))
    table = []
    for (a_label, b_label, workload, variant, tls, clients, streams), pairs_of_runs \
            in runs.items():
        a_rows = [a for a, _ in pairs_of_runs]
        b_rows = [b for _, b in pairs_of_runs]
        entry = {"workload": workload, "workload_variant": variant, "tls": tls,
                 "clients": clients, "streams": streams, "pairs": len(pairs_of_runs),
                 "a_label": a_label, "b_label": b_label}
        for key in COMPARE_RATIO_KEYS:
            entry.update(dict.fromkeys(_ratio_cell_names(key)))   # None: not this kind's
        for ratio in compare_ratios(workload):
            column = ratio.column
            pairs = [(float(a[column]), float(b[column])) for a, b in zip(a_rows, b_rows)
                     if a.get(column) not in ("", None) and b.get(column) not in ("", None)
                     and float(a[column]) > 0]
            if pairs:
                ratios = sorted(bv / av for av, bv in pairs)
                entry.update(zip(_ratio_cell_names(ratio.key), (
                    ratios[0], statistics.median(ratios), ratios[-1],
                    statistics.median(av for av, _ in pairs),
                    statistics.median(bv for _, bv in pairs))))
        # The server's own counters (h2lab sides only; a peer's are empty):
        # each side's median over its runs, not paired, as either may be absent.
        for column in COMPARE_COUNTERS:
            for side, side_rows in (("a", a_rows), ("b", b_rows)):
                entry[f"{side}_{column}_median"] = _median_of(side_rows, column)
        # The kernel's columns, every server's (peers too), medians per side
        # as above: a cell is empty where /proc could not be read (migrations
        # on a kernel without CONFIG_SCHED_DEBUG). The ratio is B/A of the two
        # medians beside it rather than a median of paired ratios, since a
        # counter that is 0 in some A runs (resets, drops) has no such ratio.
        for column in kernel.NUMBER_COLUMNS:
            a_median, b_median = _median_of(a_rows, column), _median_of(b_rows, column)
            entry[f"a_{column}_median"] = a_median
            entry[f"b_{column}_median"] = b_median
            entry[f"{column}_ratio"] = (b_median / a_median if a_median and b_median is not None
                                        else None)
        for side, side_rows in (("a", a_rows), ("b", b_rows)):
            entry[f"{side}_{kernel.MOVED_COLUMN}"] = sorted({
                name for r in side_rows
                for name in kernel.moved_names(r.get(kernel.MOVED_COLUMN))})
            # Where each side's context switches came from (kernel.columns).
            entry[f"{side}_{kernel.SOURCE_COLUMN}"] = sorted({
                r[kernel.SOURCE_COLUMN] for r in side_rows if r.get(kernel.SOURCE_COLUMN)})
        table.append(entry)
    return table


def _ratio_cell_names(key):
    """The compare table's cells of one CompareRatio key, in column order."""
    return (f"{key}_ratio_min", f"{key}_ratio_median", f"{key}_ratio_max",
            f"a_{key}_median", f"b_{key}_median")


def _median_of(rows, column):
    """The median of a column over the rows that have a value in it (None if none)."""
    values = [float(r[column]) for r in rows if r.get(column) not in ("", None)]
    return statistics.median(values) if values else None


def _case_heading(load_width):
    """The heading of the cells _case_cells writes."""
    return f"{'workload':<{load_width}} {'tls':>4} {'clients':>7} {'streams':>7}"


def _entry_load(e):
    """The load of a compare entry as the terminal names it."""
    return workload_text(e["workload"], e["workload_variant"])


def _case_cells(e, load_width):
    """The load and case of a compare entry, first on each of its lines, so
    that the rows of several loads in one table are told apart."""
    return (f"{_entry_load(e):<{load_width}} {e['tls']:>4} {e['clients']:>7} "
            f"{e['streams']:>7}")


def print_compare(table):
    """The compare table on the terminal: per pair, a table of ratios per kind
    of workload (compare_ratios), then what the kernel did."""
    if not table:
        print("compare: no case has both an A and a B run that succeeded")
        return
    by_pair = {}
    for e in table:
        by_pair.setdefault((e["a_label"], e["b_label"]), []).append(e)

    def spread(e, ratio):
        if e[f"{ratio.key}_ratio_median"] is None:
            return "-".center(20)
        return (f"{e[f'{ratio.key}_ratio_min']:.3f}/{e[f'{ratio.key}_ratio_median']:.3f}/"
                f"{e[f'{ratio.key}_ratio_max']:.3f}")

    def scaled(value, ratio):
        return _cell(None if value is None else value * ratio.scale)

    for (a, b), entries in by_pair.items():
        load_width = max(map(len, ["workload"] + [_entry_load(e) for e in entries]))
        print(f"\nB/A ratios (min/median/max over repetitions)\n"
              f"  A = {a.partition(': ')[2]}\n  B = {b.partition(': ')[2]}")
        by_ratios = {}
        for e in entries:
            by_ratios.setdefault(compare_ratios(e["workload"]), []).append(e)
        for (throughput, cost), group in by_ratios.items():
            print(f"{_case_heading(load_width)} {'pairs':>5}  "
                  f"{throughput.heading + ' B/A':>20}  {cost.heading + ' B/A':>20}  "
                  f"{'A ' + throughput.heading:>10} {'B ' + throughput.heading:>10}  "
                  f"{'A sys/req':>9} {'B sys/req':>9}  {'A req/wait':>10} {'B req/wait':>10}")
            for e in group:
                print(f"{_case_cells(e, load_width)} {e['pairs']:>5}  "
                      f"{spread(e, throughput):>20}  {spread(e, cost):>20}  "
                      f"{scaled(e[f'a_{throughput.key}_median'], throughput):>10} "
                      f"{scaled(e[f'b_{throughput.key}_median'], throughput):>10}  "
                      f"{_cell(e['a_syscalls_per_request_median']):>9} "
                      f"{_cell(e['b_syscalls_per_request_median']):>9}  "
                      f"{_cell(e['a_requests_per_wait_median']):>10} "
                      f"{_cell(e['b_requests_per_wait_median']):>10}")
        print("sys/req, req/wait: h2lab's syscalls per request and requests per wake-up "
              "(/stats; median of the runs; - = not counted)")
        if any(e["workload"] == "churn" for e in entries):
            print("churn: clients = connections per burst, one request each")
        print_kernel_compare(entries, load_width)


# Kernel columns side by side per printed table: four of them keep a line
# within the width of the ratios' table above (the longest name is 27 wide).
KERNEL_COLUMNS_PER_TABLE = 4


def print_kernel_compare(entries, load_width):
    """What the kernel did, for one pair's cases: A, B and B/A of each of
    kernel.NUMBER_COLUMNS, a few columns to a table, then the other TCP
    counters that moved. A column that is 0 in every run of the pair (drops,
    resets on a healthy loopback run) or empty in every one (migrations
    without CONFIG_SCHED_DEBUG) gets no table space: its name is listed
    instead, so the ones that moved stay readable and none is hidden.
    load_width: the width of the workload cells, as in the ratios' table."""
    def everywhere(column, value):
        return all(e[f"{side}_{column}_median"] == value for e in entries for side in "ab")
    still = [c for c in kernel.NUMBER_COLUMNS if everywhere(c, 0)]
    absent = [c for c in kernel.NUMBER_COLUMNS if everywhere(c, None)]
    shown = [c for c in kernel.NUMBER_COLUMNS if c not in still + absent]
    print("\nwhat the kernel did (docs/KERNEL.md; median of the runs, B/A of the medians, "
          "- = not counted)")
    case_width = len(_case_heading(load_width))
    b_and_ratio = 1 + 8 + 1 + 6          # " B B/A" after A, which takes the rest
    for first in range(0, len(shown), KERNEL_COLUMNS_PER_TABLE):
        columns = shown[first:first + KERNEL_COLUMNS_PER_TABLE]
        # Each column's three cells under its name, A at least 8 wide.
        widths = [max(len(c), 8 + b_and_ratio) for c in columns]
        print((f"{'':{case_width}}" + "".join(f"  {c:^{w}}" for c, w in zip(columns, widths))
               ).rstrip())
        print(_case_heading(load_width) + "".join(
            f"  {'A':>{w - b_and_ratio}} {'B':>8} {'B/A':>6}" for w in widths))
        for e in entries:
            print(_case_cells(e, load_width) + "".join(
                f"  {_cell(e[f'a_{c}_median']):>{w - b_and_ratio}} "
                f"{_cell(e[f'b_{c}_median']):>8} {_ratio_cell(e[f'{c}_ratio']):>6}"
                for c, w in zip(columns, widths)))
    for names, why in ((still, "0 in every run"), (absent, "not counted in any run")):
        if names:
            print(textwrap.fill(f"{why}: {', '.join(names)}", 100, subsequent_indent="  "))
    moved = kernel.MOVED_COLUMN
    if any(e[f"a_{moved}"] or e[f"b_{moved}"] for e in entries):
        print(f"other TCP counters that moved in any run ({moved}):")
        for e in entries:
            for side in "ab":
                print(f"{_case_cells(e, load_width)}  {side.upper()}: "
                      + (" ".join(e[f"{side}_{moved}"]) or "-"))
    print("tcp_*: deltas of the whole machine over the run (h2load's sockets count too); "
          "sockstat_*: after the run")


def _cell(value):
    """A median for the compare table: three significant digits, '-' if
    absent; no decimals from 100 on, where three digits would turn a segment
    count into 1.23e+06."""
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ratio_cell(value):
    """A B/A of the kernel block: two decimals, '-' where there is none."""
    return "-" if value is None else f"{value:.2f}"


def write_compare_csv(table, path):
    """compare.csv: every entry of the compare table, a number to four
    decimals, a list of counter names joined by ';', empty where absent."""
    if not table:
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(table[0]))
        writer.writeheader()
        for entry in table:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float)
                             else ";".join(v) if isinstance(v, list) else v
                             for k, v in entry.items()})


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------

def machine_text(meta):
    """Machine and pinning in one line, for figure titles."""
    pin = meta["pinning"]
    return (f"{meta['cpu_model']} ({meta['cpus_online']} CPUs), server on CPU "
            f"{pin['server_cpus']}, h2load on CPU {pin['client_cpus']}")


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")


def finish_outputs(out_dir, rows, meta, quiet_only=False, log=print):
    """Figures and summary.md from the rows; returns the figure paths."""
    date = meta["date"][:16].replace("T", " ")
    if quiet_only:
        kept = [r for r in rows if not disturbed(r)]
        log(f"--quiet-only: {len(rows) - len(kept)} of {len(rows)} runs left out "
            "of figures and summary.md")
        rows = kept
    figures = []
    if not meta["options"].get("no_plots"):
        figures = plots.render(rows, out_dir, machine_text(meta), date, log)
    with open(os.path.join(out_dir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(f"# h2lab bench run {date}\n\n{machine_text(meta)}; kernel "
                f"{meta['kernel']}; h2lab {meta.get('h2lab_git_revision') or '?'}\n\n")
        if quiet_only:
            f.write(f"Runs disturbed by other processes (> {BUSY_MACHINE_PERCENT}% of a "
                    "CPU) are left out; a table cell is the median of the rest.\n\n")
        f.write(plots.summary_markdown(rows))
    return figures


def replot(args):
    """--replot DIR: figures and summary again from a finished run's files."""
    out_dir = user_path(args.replot)
    with open(os.path.join(out_dir, "results.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(out_dir, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    meta["options"]["no_plots"] = False
    figures = finish_outputs(out_dir, rows, meta, args.quiet_only)
    print(f"{len(figures)} figure files and summary.md written to {out_dir}")
    return 0


def dry_run(args, specs, pairs, server_cpus, client_cpus, binary):
    """Print what a run would do, without starting anything."""
    cases = cases_of(args)
    per_run = args.warmup + args.duration + 0.3
    runs = planned_runs(args, specs, pairs)
    if pairs:
        for a, b in pairs:
            print(f"pair: A = {a.label} (tls {'on' if a.tls else 'off'})  "
                  f"B = {b.label} (tls {'on' if b.tls else 'off'})")
    else:
        for spec in specs:
            pin = f" cpus={cpus_text(spec.cpus)}" if spec.cpus else ""
            print(f"server: {spec.label} tls={'on' if spec.tls else 'off'} "
                  f"threads={spec.threads}{pin}")
    print("workloads: " + ", ".join(workload_text(load.workload, load.variant)
                                    for load in loads_of(args)))
    print(f"cases (clients x streams): {len(cases)}; repetitions: {args.repetitions}; "
          f"runs: {runs}; at most about {_duration_text(runs * per_run)}")
    example = ServerSpec(H2LAB, False, args.dispatchers[0], args.engines[0],
                         server_threads(args, server_cpus), tuple(args.server_arg))
    launcher = Launcher(None, binary or "<h2lab>", taskset(server_cpus), "", "")
    try:
        print("h2lab command, e.g.: " + shlex.join(launcher.h2lab_argv(example)))
    except Unavailable as e:
        print(f"h2lab: {e}")
    c, s = cases[0]
    print("h2load command, e.g.: " + shlex.join(taskset(client_cpus) + loadgen.h2load_argv(
        args.h2load, "http://127.0.0.1:PORT/", c, s, min(max(1, len(client_cpus)), c),
        args.duration, args.warmup)))
    return 0


def run(args, registry):
    """The whole run: plan, measure, write CSV/meta/figures. Returns the exit code."""
    started = datetime.datetime.now()
    server_cpus, client_cpus, warnings = plan_pinning(args)
    for w in warnings:
        print(f"warning: {w}", flush=True)
    threads = server_threads(args, server_cpus)
    needs_h2lab = not args.no_h2lab or (args.compare and any(
        "peer" not in parse_variant(v) for v in args.compare))
    binary = user_path(args.server) if args.server else default_server()
    pairs = compare_pairs(args, threads) if args.compare else []
    specs = [] if args.compare else sweep_specs(args, threads, server_cpus)
    if args.dry_run:
        return dry_run(args, specs, pairs, server_cpus, client_cpus, binary)
    if needs_h2lab and (binary is None or not os.access(binary, os.X_OK)):
        sys.exit("sweep: error: no h2lab server binary: build it (bazel build "
                 "//server:main), pass --server PATH, or use --peers --no-h2lab")
    if shutil.which(args.h2load) is None:
        sys.exit(f"sweep: error: {args.h2load} not found (apt-get install nghttp2-client)")

    out_dir = user_path(args.out) if args.out else os.path.join(
        workspace_dir(), "bench", "results", started.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(os.path.join(out_dir, "logs"), exist_ok=True)
    revision, dirty = git_revision(workspace_dir())
    meta = {
        "date": started.isoformat(timespec="seconds"),
        "mode": "compare" if args.compare else ("smoke" if args.smoke else "sweep"),
        "command": invocation(),
        "kernel": f"{platform.release()} {platform.version()}",
        "cpu_model": cpu_model(),
        "cpus_online": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "h2lab_git_revision": revision,
        "h2lab_git_dirty": dirty,
        "h2lab_binary": binary if needs_h2lab else None,
        "h2load_version": tool_version([args.h2load, "--version"]),
        "python": platform.python_version(),
        "pinning": {"server_cpus": cpus_text(server_cpus),
                    "client_cpus": cpus_text(client_cpus), "warnings": warnings},
        "server_threads": threads,
        "cpu_window": CPU_WINDOW_TEXT,
        "stats_window": STATS_WINDOW_TEXT,
        "kernel_knobs": kernel_knobs(),
        "options": {k: v for k, v in vars(args).items()},
        "finished": False,
    }
    write_json(os.path.join(out_dir, "meta.json"), meta)

    interrupted = False
    if "mixed" in args.workloads:
        warning = workloads.raise_fd_limit(2 * args.idle_connections + max(args.clients) + 200)
        if warning:
            print(f"warning: {warning}", flush=True)
            meta["pinning"]["warnings"].append(warning)
    with tempfile.TemporaryDirectory(prefix="h2lab-bench-") as work_dir:
        os.chmod(work_dir, 0o755)   # nginx's workers (nobody) read the docroot below it
        # The peers' document root: every path the loads ask for, h2lab's octets.
        docroot = workloads.layout_docroot(os.path.join(work_dir, "htdocs"), loads_of(args))
        launcher = Launcher(registry, binary, taskset(server_cpus), work_dir,
                            os.path.join(out_dir, "logs"), args.startup_timeout,
                            args.stop_timeout, docroot=docroot)
        ctx = Context(args, registry, launcher, server_cpus, client_cpus, out_dir,
                      work_dir, meta["mode"])
        launcher.log = ctx.note
        per_run = args.warmup + args.duration + 0.3
        total = planned_runs(args, specs, pairs)
        print(f"{meta['mode']}: {total} runs planned, at most about "
              f"{_duration_text(total * per_run)}; output in {out_dir}", flush=True)
        progress = Progress(total, per_run)
        try:
            if pairs:
                run_compare(ctx, pairs, progress)
            else:
                run_sweep(ctx, specs, progress)
        except KeyboardInterrupt:
            interrupted = True
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("\ninterrupted: servers and h2load stopped; keeping the rows "
                  "measured so far", flush=True)
            registry.stop_all(args.stop_timeout)
        finally:
            ctx.close()
        _save_peer_configs(work_dir, out_dir)

    meta.update({
        "finished": not interrupted, "interrupted": interrupted,
        "runs": len(ctx.rows), "skipped": ctx.skipped, "notes": ctx.notes,
        "server_versions": sorted({f"{r['server']} {r['server_version']}".strip()
                                   for r in ctx.rows}),
    })
    write_json(os.path.join(out_dir, "meta.json"), meta)
    if pairs:
        table = compare_table(ctx.rows)
        print_compare(table)
        write_compare_csv(table, os.path.join(out_dir, "compare.csv"))
    figures = finish_outputs(out_dir, ctx.rows, meta, args.quiet_only)
    ok = sum(1 for r in ctx.rows if plots.usable(r))
    print(f"\n{len(ctx.rows)} runs ({ok} ok), {len(ctx.skipped)} configuration(s) "
          f"skipped; {len(figures)} figure files\nresults: {out_dir}", flush=True)
    if interrupted:
        return 130
    return 0 if ctx.rows or not (specs or pairs) else 1


def _save_peer_configs(work_dir, out_dir):
    """Keep the generated peer configurations with the results (provenance)."""
    for name in sorted(os.listdir(work_dir)):
        for conf in ("nginx.conf", "h2o.conf"):
            path = os.path.join(work_dir, name, conf)
            if os.path.exists(path):
                os.makedirs(os.path.join(out_dir, "configs"), exist_ok=True)
                shutil.copy(path, os.path.join(out_dir, "configs", f"{name}-{conf}"))


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.replot:
        return replot(args)
    registry = procs.Registry()
    # SIGTERM and SIGHUP end a sweep like Ctrl-C does: servers are stopped.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    try:
        return run(args, registry)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        registry.stop_all(args.stop_timeout)


if __name__ == "__main__":
    sys.exit(main())
