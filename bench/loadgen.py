"""h2load: its command line, one timed run with the server sampled, its output.

Why the server's CPU time is sampled while h2load runs, on h2load's own words:
h2load in timing-based mode (-D, optionally --warm-up-time) prints
"Main benchmark duration is started for thread #N." when its measured phase
begins and "Main benchmark duration is over for thread #N." when it ends, and
flushes each line. Its requests/s, request times and request counts cover that
phase only. The harness reads h2load's output line by line and samples the
server's user+system CPU time (/proc/PID/stat) at the first "started" line and
again when every thread has said "over", so that CPU time and request count
describe the same interval: connection set-up and TLS handshakes happen during
the warm-up and are not charged to the requests. Reading /proc around the
whole h2load process instead would charge them (100 TLS handshakes are a few
percent of a 5 s run) and the warm-up's requests would not be in the count.
If the phase lines are missing (another h2load version), the harness falls
back to sampling around the whole process and says so in the cpu_window
column ("whole-run" instead of "main-phase").
"""

import math
import re
import resource
import subprocess
import threading
import time

import kernel
import procs

PHASE_STARTED = "Main benchmark duration is started"
PHASE_OVER = "Main benchmark duration is over"


def h2load_argv(h2load, url, clients, streams, threads, duration, warmup, log_file=None,
                extra=(), requests=None):
    """The h2load command line for one case (without any taskset prefix).

    Timed (-D DURATION, --warm-up-time) unless requests is given: then -n
    REQUESTS, which with -n = -c is one request per connection (churn).
    extra (workloads.h2load_extra: -H, -i, -d, --rps) goes before the URL.
    """
    argv = [h2load, "-c", str(clients), "-m", str(streams), "-t", str(threads)]
    if requests:
        argv += ["-n", str(requests)]
    else:
        argv += ["-D", _seconds(duration)]
        if warmup > 0:
            argv += ["--warm-up-time", _seconds(warmup)]
    if log_file:
        argv += ["--log-file", log_file]
    argv += list(extra)
    argv.append(url)
    return argv


def _seconds(value):
    """Seconds as h2load wants them: an integer when whole, else with an 's' unit."""
    return str(int(value)) if float(value).is_integer() else f"{int(value * 1000)}ms"


def run(registry, argv, server_pids, timeout, on_phase=None, server_cpus=()):
    """Run h2load, sampling the server around the measured phase.

    Returns (output text, window) where window holds the server's CPU seconds,
    the client's CPU seconds, the wall seconds of the window and the method
    ("main-phase" or "whole-run"). A run that exceeds timeout is killed and
    its output ends with a note saying so.

    on_phase("main_start") and on_phase("main_end"), when given, are called
    right after the CPU samples of those two instants (and only then), so
    that whatever else samples the server (its /stats) sits beside the CPU
    samples; the CPU samples themselves are taken first and not delayed.
    The window's kernel_first and kernel_last are kernel.snapshot()s of
    the same two instants (server_cpus: the CPUs whose irq time counts;
    None: not read, both None).
    """
    proc = registry.popen(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, bufsize=1)
    timed_out = threading.Event()

    def kill_on_timeout():
        timed_out.set()
        registry.stop(proc, 2)

    watchdog = threading.Timer(timeout, kill_on_timeout)
    watchdog.start()
    samples = {"start": _sample(server_pids, proc.pid, server_cpus)}
    lines, threads_over, threads = [], 0, _thread_count(argv)
    try:
        for line in proc.stdout:
            if PHASE_STARTED in line and "main_start" not in samples:
                samples["main_start"] = _sample(server_pids, proc.pid, server_cpus)
                if on_phase:
                    on_phase("main_start")
            elif PHASE_OVER in line:
                threads_over += 1
                if threads_over == threads:
                    samples["main_end"] = _sample(server_pids, proc.pid, server_cpus)
                    if on_phase:
                        on_phase("main_end")
            lines.append(line)
        proc.wait()
    finally:
        watchdog.cancel()
        registry.stop(proc, 2)
        proc.stdout.close()
    samples["end"] = _sample(server_pids, None, server_cpus)
    if timed_out.is_set():
        lines.append(f"\n[harness] h2load killed after {timeout:.0f} s\n")
    if "main_start" in samples and "main_end" in samples:
        first, last, method = samples["main_start"], samples["main_end"], "main-phase"
    else:
        first, last, method = samples["start"], samples["end"], "whole-run"
    server_cpu = last["server"] - first["server"]
    client_cpu = last["client"] - first["client"] if method == "main-phase" else None
    window = {
        "method": method,
        "wall_s": last["wall"] - first["wall"],
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        # CPU time of everything else on the machine during the window: a
        # sign that the numbers were disturbed (see procs.machine_cpu_seconds).
        "other_cpu_s": (max(0.0, last["busy"] - first["busy"] - server_cpu - client_cpu)
                        if client_cpu is not None else None),
        "steal_s": last["steal"] - first["steal"],
        "exit_code": proc.returncode,
        "kernel_first": first["kernel"], "kernel_last": last["kernel"],
    }
    return "".join(lines), window


def run_bursts(registry, argv, server_pids, duration, timeout, server_cpus=()):
    """churn: run argv (h2load -n N -c N: N connections, one request each) again
    and again until duration seconds have passed, the server sampled once
    around them all (one burst of a fast server is a few clock ticks).

    Returns (output texts, window) as run() does, method "bursts"; h2load's
    CPU comes from RUSAGE_CHILDREN (every burst is a reaped child).
    """
    first = _sample(server_pids, None, server_cpus)
    children = _children_cpu()
    texts, exit_code = [], 0
    while True:
        # The kernel is read once around all bursts, not around each.
        text, window = run(registry, argv, server_pids, timeout, server_cpus=None)
        texts.append(text)
        exit_code = window["exit_code"]
        if exit_code != 0 or time.monotonic() - first["wall"] >= duration:
            break
    last = _sample(server_pids, None, server_cpus)
    server_cpu = last["server"] - first["server"]
    client_cpu = _children_cpu() - children
    return texts, {
        "method": "bursts", "wall_s": last["wall"] - first["wall"],
        "server_cpu_s": server_cpu, "client_cpu_s": client_cpu,
        "other_cpu_s": max(0.0, last["busy"] - first["busy"] - server_cpu - client_cpu),
        "steal_s": last["steal"] - first["steal"], "exit_code": exit_code,
        "bursts": len(texts),
        "kernel_first": first["kernel"], "kernel_last": last["kernel"],
    }


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_SUMMED = ("requests_total", "started", "done", "succeeded", "failed", "errored", "timeout",
           "status_2xx", "status_3xx", "status_4xx", "status_5xx", "traffic_bytes",
           "finished_s")


def combine(results):
    """One summary from several parse() results (churn's bursts): counts and
    times summed, rates over the summed h2load time, request times' min/max
    of all and mean weighted by requests (their sd is left out)."""
    if len(results) == 1:
        return results[0]
    total = {k: v for k, v in results[0].items() if isinstance(v, str)}
    for key in _SUMMED:
        if any(key in r for r in results):
            total[key] = sum(r.get(key, 0) for r in results)
    seconds = total.get("finished_s") or 0
    if seconds:
        total["requests_per_s"] = total.get("succeeded", 0) / seconds
        total["bytes_per_s"] = sum(r.get("bytes_per_s", 0) * r.get("finished_s", 0)
                                   for r in results) / seconds
    timed = [r for r in results if "mean_request_us" in r]
    if timed:
        total["min_request_us"] = min(r["min_request_us"] for r in timed)
        total["max_request_us"] = max(r["max_request_us"] for r in timed)
        weight = sum(r.get("succeeded", 0) for r in timed) or len(timed)
        total["mean_request_us"] = sum(r["mean_request_us"] * (r.get("succeeded", 0) or 1)
                                       for r in timed) / weight
    return total


def _thread_count(argv):
    """The -t value of an h2load argv: how many 'over' lines end the phase."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "-t":
            return int(argv[i + 1])
    return 1


def _sample(server_pids, client_pid, server_cpus=()):
    """One instant: wall clock, server, client and whole-machine CPU seconds,
    then the kernel's counters (read after the CPU times, which they do not
    delay)."""
    busy, steal = procs.machine_cpu_seconds()
    sample = {
        "wall": time.monotonic(),
        "server": procs.cpu_seconds(server_pids),
        "client": procs.cpu_seconds([client_pid]) if client_pid else 0.0,
        "busy": busy,
        "steal": steal,
    }
    sample["kernel"] = (kernel.snapshot(server_pids, server_cpus)
                        if server_cpus is not None else None)
    return sample


_FINISHED = re.compile(r"^finished in (\S+), ([\d.]+) req/s, ([\d.]+)([KMG]?)B/s")
# h2load's util::utos_funit: K, M, G are powers of 1024.
_UNIT = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored, (\d+) timeout")
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_TRAFFIC = re.compile(r"^traffic: \S+ \((\d+)\) total")
_REQUEST_TIME = re.compile(
    r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)")
_KEY_VALUE = {
    "Application protocol:": "application_protocol",
    "TLS Protocol:": "tls_protocol",
    "Cipher:": "cipher",
}


def parse(text):
    """h2load's summary as a dict of numbers (times in µs); missing keys absent.

    h2load prints no percentiles: p50/p99 come from its --log-file instead
    (see percentiles()). bytes_per_s is the finished line's rate (all
    octets received over the measured phase, frames and headers included;
    K/M/G are powers of 1024), finished_s its duration.
    """
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if m := _FINISHED.match(line):
            result["finished_s"] = duration_us(m.group(1)) / 1e6
            result["requests_per_s"] = float(m.group(2))
            result["bytes_per_s"] = float(m.group(3)) * _UNIT[m.group(4)]
        elif m := _REQUESTS.match(line):
            for key, value in zip(("requests_total", "started", "done", "succeeded",
                                   "failed", "errored", "timeout"), m.groups()):
                result[key] = int(value)
        elif m := _STATUS.match(line):
            for key, value in zip(("status_2xx", "status_3xx", "status_4xx",
                                   "status_5xx"), m.groups()):
                result[key] = int(value)
        elif m := _TRAFFIC.match(line):
            result["traffic_bytes"] = int(m.group(1))
        elif m := _REQUEST_TIME.match(line):
            for key, value in zip(("min_request_us", "max_request_us",
                                   "mean_request_us", "sd_request_us"), m.groups()):
                result[key] = duration_us(value)
        else:
            for prefix, key in _KEY_VALUE.items():
                if line.startswith(prefix):
                    result[key] = line[len(prefix):].strip()
    return result


def duration_us(text):
    """h2load's '31us', '1.89ms', '2.5s' as microseconds (float)."""
    for unit, factor in (("us", 1.0), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * factor
    raise ValueError(f"not an h2load duration: {text!r}")


def percentiles(log_file, quantiles=(0.5, 0.99)):
    """Nearest-rank quantiles (µs) of the request times in an h2load --log-file.

    Each line is "start-time<TAB>status<TAB>elapsed-µs"; h2load writes it for
    requests of the measured phase only, so warm-up does not skew these.
    Returns a list of None when the log is empty.
    """
    times = []
    with open(log_file, encoding="ascii", errors="replace") as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3:
                times.append(int(parts[2]))
    if not times:
        return [None for _ in quantiles]
    times.sort()
    return [times[min(len(times) - 1, max(0, math.ceil(q * len(times)) - 1))]
            for q in quantiles]
