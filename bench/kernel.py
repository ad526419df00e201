"""What the kernel did during a run: counters read from /proc around h2load's
measured phase, beside the server's CPU time (loadgen samples both at the
same two instants), as deltas per run. docs/KERNEL.md says what each means
and which knob moves it.

Per process (the server's tree, every thread of it — /proc/PID/status
counts one thread only): user and system CPU time, voluntary and involuntary
context switches, CPU migrations (/proc/PID/task/TID/sched, which exists only
on kernels built with CONFIG_SCHED_DEBUG: empty where absent). Switches and
migrations are counted per thread, so a thread that ended between the two
snapshots takes its share with it (/proc keeps nothing of it): each thread
seen at both instants counts its difference, one that began in between all
it has, and the ones that ended are counted in cs_source. h2lab reports the
whole process's switches itself (/stats "process", getrusage: ended threads
included); the sweep passes those in (columns(switches=…)) and cs_source
says "getrusage". CPU time needs neither: /proc/PID/stat keeps the time of
ended threads.
Per CPU (the server's CPU set): irq and softirq time from /proc/stat — on
loopback the receive path of a segment runs in softirq on the CPU that sent
it, so the server's CPUs also serve the client's TCP input.
Machine-wide: TCP and socket counters from /proc/net/snmp and
/proc/net/netstat (every process's, so a busy neighbour moves them too) and
/proc/net/sockstat at the end of the run.
"""

import os

import procs

# (CSV column, /proc/net/{snmp,netstat} section, counter): the fixed columns.
TCP_COUNTERS = (
    ("tcp_in_segs", "Tcp", "InSegs"),
    ("tcp_out_segs", "Tcp", "OutSegs"),
    ("tcp_retrans_segs", "Tcp", "RetransSegs"),
    ("tcp_out_rsts", "Tcp", "OutRsts"),
    ("tcp_delayed_acks", "TcpExt", "DelayedACKs"),
    ("tcp_autocorking", "TcpExt", "TCPAutoCorking"),
    ("tcp_listen_overflows", "TcpExt", "ListenOverflows"),
    ("tcp_listen_drops", "TcpExt", "ListenDrops"),
    ("tcp_backlog_drop", "TcpExt", "TCPBacklogDrop"),
    ("tcp_prune_called", "TcpExt", "PruneCalled"),
    ("tcp_rcv_collapsed", "TcpExt", "TCPRcvCollapsed"),
    ("tcp_to_zero_window", "TcpExt", "TCPToZeroWindowAdv"),
)
# Tcp counters that are gauges or constants, not events: never deltas.
_NOT_EVENTS = {("Tcp", "RtoAlgorithm"), ("Tcp", "RtoMin"), ("Tcp", "RtoMax"),
               ("Tcp", "MaxConn"), ("Tcp", "CurrEstab")}

# The one column that is not a number: the names of the other TCP counters
# that moved, with their deltas ("Name=+N;...").
MOVED_COLUMN = "tcp_counters_moved"
COLUMNS = [
    "server_user_cpu_percent", "server_sys_cpu_percent",
    "voluntary_cs_per_request", "involuntary_cs_per_request", "migrations_per_request",
    "cs_source",
    "server_cpus_softirq_percent", "server_cpus_irq_percent",
    *(column for column, _, _ in TCP_COUNTERS),
    MOVED_COLUMN,
    "sockstat_tcp_inuse", "sockstat_tcp_orphan", "sockstat_tcp_tw", "sockstat_tcp_mem_pages",
]
# Where the context switch columns come from ("getrusage", "threads" or
# "threads, N ended"): text, like MOVED_COLUMN.
SOURCE_COLUMN = "cs_source"
# Every other column is a number or empty: what --compare takes medians of.
NUMBER_COLUMNS = [column for column in COLUMNS if column not in (MOVED_COLUMN, SOURCE_COLUMN)]


def moved_names(cell):
    """The counter names of a tcp_counters_moved cell: "A=+1;B=+2" -> ["A", "B"]."""
    return [item.partition("=")[0] for item in (cell or "").split(";") if item]


def parse_snmp(text):
    """{(section, name): value} of /proc/net/snmp or /proc/net/netstat text:
    each section is a header line of names and a line of values."""
    counters, header = {}, None
    for line in text.splitlines():
        section, _, rest = line.partition(":")
        fields = rest.split()
        if header is not None and header[0] == section:
            for name, value in zip(header[1], fields):
                try:
                    counters[(section, name)] = int(value)
                except ValueError:
                    pass
            header = None
        else:
            header = (section, fields)
    return counters


def parse_sockstat(text):
    """{name: value} of /proc/net/sockstat's "TCP:" line (inuse, orphan, tw,
    alloc, mem — mem in pages)."""
    for line in text.splitlines():
        if line.startswith("TCP:"):
            fields = line.split()[1:]
            return {fields[i]: int(fields[i + 1]) for i in range(0, len(fields) - 1, 2)}
    return {}


def parse_cpu_irq(text, cpus):
    """(irq, softirq) clock ticks summed over the CPUs `cpus` of /proc/stat."""
    irq = softirq = 0
    for line in text.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            irq += int(fields[5])
            softirq += int(fields[6])
    return irq, softirq


def parse_task_status(text):
    """(voluntary, involuntary) context switches of one /proc/.../status."""
    voluntary = involuntary = 0
    for line in text.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            voluntary = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            involuntary = int(line.split()[1])
    return voluntary, involuntary


def parse_migrations(text):
    """se.nr_migrations of one /proc/.../sched, or None where it is absent."""
    for line in text.splitlines():
        if line.startswith("se.nr_migrations"):
            return int(line.split(":")[1])
    return None


def _read(path):
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def snapshot(server_pids, server_cpus, proc_root="/proc"):
    """The counters at one instant (raw values; columns() makes them a run's).

    "threads" maps (pid, tid) to (voluntary, involuntary, migrations or
    None) of every thread of the server's processes.
    """
    user = system = 0
    threads = {}
    for pid in server_pids:
        fields = _read(f"{proc_root}/{pid}/stat")
        if fields is not None:
            fields = fields[fields.rfind(")") + 2:].split()
            user += int(fields[11])
            system += int(fields[12])
        try:
            tids = os.listdir(f"{proc_root}/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            status = _read(f"{proc_root}/{pid}/task/{tid}/status")
            if status is None:
                continue   # ended between the listing and the read
            sched = _read(f"{proc_root}/{pid}/task/{tid}/sched")
            threads[(pid, tid)] = (*parse_task_status(status),
                                   parse_migrations(sched) if sched is not None else None)
    # Unpinned (no CPU set): the server may run on any CPU, so all count.
    cpus = set(server_cpus) or set(range(os.cpu_count() or 1))
    irq, softirq = parse_cpu_irq(_read(f"{proc_root}/stat") or "", cpus)
    tcp = parse_snmp(_read(f"{proc_root}/net/snmp") or "")
    tcp.update(parse_snmp(_read(f"{proc_root}/net/netstat") or ""))
    return {"user": user, "system": system, "threads": threads,
            "irq": irq, "softirq": softirq, "tcp": tcp}


def thread_deltas(first, last):
    """(voluntary, involuntary, migrations or None, threads ended) between
    two snapshots, thread by thread: a thread seen at both counts its
    difference, one that began in between all it has; one that ended in
    between cannot be counted (ended says how many)."""
    voluntary = involuntary = migrations = 0
    have_migrations = True
    for key, (v, i, m) in last["threads"].items():
        v0, i0, m0 = first["threads"].get(key, (0, 0, 0))
        voluntary += v - v0
        involuntary += i - i0
        if m is None or m0 is None:
            have_migrations = False
        else:
            migrations += m - m0
    ended = sum(1 for key in first["threads"] if key not in last["threads"])
    return voluntary, involuntary, migrations if have_migrations else None, ended


def sockstat(proc_root="/proc"):
    """The TCP line of /proc/net/sockstat now (at the end of a run)."""
    return parse_sockstat(_read(f"{proc_root}/net/sockstat") or "")


def columns(first, last, wall_s, requests, socket_state, cpus_count, switches=None):
    """The CSV cells of one run from two snapshots: per request where the
    counter scales with requests, CPU shares as % of one CPU (softirq and irq
    as % of the server's CPU set), the fixed TCP counters as deltas, the
    other TCP counters that moved as "Name=+N" in tcp_counters_moved.

    switches: (voluntary, involuntary) of the whole server process over the
    run when the server counts them itself (h2lab's /stats), used instead of
    the per-thread sums."""
    ticks = procs.CLOCK_TICKS_PER_SECOND

    def percent(delta_ticks, cpus=1):
        return f"{100.0 * delta_ticks / ticks / wall_s / cpus:.1f}" if wall_s > 0 else ""

    def per_request(delta):
        return f"{delta / requests:.4f}" if requests and delta is not None else ""

    voluntary, involuntary, migrations, ended = thread_deltas(first, last)
    if switches is not None:
        voluntary, involuntary = switches
        source = "getrusage"
    else:
        source = f"threads, {ended} ended" if ended else "threads"
    cells = {
        "server_user_cpu_percent": percent(last["user"] - first["user"]),
        "server_sys_cpu_percent": percent(last["system"] - first["system"]),
        "voluntary_cs_per_request": per_request(voluntary),
        "involuntary_cs_per_request": per_request(involuntary),
        "migrations_per_request": per_request(migrations),
        SOURCE_COLUMN: source,
        "server_cpus_softirq_percent": percent(last["softirq"] - first["softirq"],
                                               max(1, cpus_count)),
        "server_cpus_irq_percent": percent(last["irq"] - first["irq"], max(1, cpus_count)),
    }
    fixed = set()
    for column, section, name in TCP_COUNTERS:
        fixed.add((section, name))
        key = (section, name)
        cells[column] = (last["tcp"][key] - first["tcp"][key]
                         if key in first["tcp"] and key in last["tcp"] else "")
    moved = []
    for key in sorted(last["tcp"]):
        if key in fixed or key in _NOT_EVENTS or key not in first["tcp"]:
            continue
        delta = last["tcp"][key] - first["tcp"][key]
        if delta != 0:
            moved.append(f"{key[1]}={delta:+d}")
    cells[MOVED_COLUMN] = ";".join(moved)
    for name in ("inuse", "orphan", "tw"):
        cells[f"sockstat_tcp_{name}"] = socket_state.get(name, "")
    cells["sockstat_tcp_mem_pages"] = socket_state.get("mem", "")
    return cells
