"""Child processes of the bench harness, and what /proc says about them.

Every server and load generator the harness starts goes through a Registry so
that it is stopped on every exit path: normal end, error, Ctrl-C or SIGTERM.
Children are started in a session of their own, so that a Ctrl-C on the
terminal reaches the harness only and the harness decides the order of the
shutdown (and so that a forked worker, such as nginx's, is signalled with its
master through the process group).
"""

import os
import signal
import subprocess

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class Registry:
    """Keeps every child process the harness started until it is stopped."""

    def __init__(self):
        self._procs = []

    def popen(self, argv, **kwargs):
        """Start argv in its own session and remember it for stop_all()."""
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def stop(self, proc, timeout):
        """Stop proc: SIGTERM to its process group, SIGKILL after timeout.

        Returns the leader's exit code (negative: killed by that signal), so a
        caller can tell a graceful stop (0) from a crash or a forced kill.
        """
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # Workers forked by the leader may outlive it; none may stay behind.
        _signal_group(proc.pid, signal.SIGKILL)
        if proc in self._procs:
            self._procs.remove(proc)
        return proc.returncode

    def stop_all(self, timeout):
        """Stop every process still known, newest first (clients before servers)."""
        for proc in reversed(list(self._procs)):
            self.stop(proc, timeout)

    def __len__(self):
        return len(self._procs)


def _signal_group(pgid, sig):
    """Signal a process group, ignoring one that is already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def descendants(pid):
    """pid and all its descendants, found by walking /proc's parent links.

    Peers such as nginx serve from a forked worker: their CPU time and memory
    are those of the whole tree, not of the process the harness started.
    """
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read_stat_fields(int(entry))
        if stat is not None:
            children.setdefault(int(stat[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _read_stat_fields(pid):
    """Fields of /proc/PID/stat from 'state' on (index 0), or None if gone.

    The command name in parentheses may hold spaces, so the split starts after
    the last ')'. Index 1 is the parent pid, 11 utime, 12 stime (clock ticks).
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def cpu_seconds(pids):
    """User+system CPU seconds consumed so far by pids (all threads included).

    /proc/PID/stat counts in clock ticks (usually 10 ms): over a 5 s window of
    a busy server that is a resolution of about 0.2 %, good enough here.
    """
    total = 0
    for pid in pids:
        fields = _read_stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS_PER_SECOND


def machine_cpu_seconds():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat.

    busy counts user, nice and system time of every CPU: the server and the
    load generator, and whatever else runs (another build on a shared box).
    Interrupt time is left out, because loopback traffic is served in
    softirq context and belongs to the measurement. steal is time the
    hypervisor gave to other guests.
    """
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()
    ticks = [int(x) for x in fields[1:]]
    user, nice, system = ticks[0], ticks[1], ticks[2]
    steal = ticks[7] if len(ticks) > 7 else 0
    return ((user + nice + system) / CLOCK_TICKS_PER_SECOND,
            steal / CLOCK_TICKS_PER_SECOND)


def memory_kb(pids):
    """(VmRSS, VmHWM) in KiB summed over pids; (None, None) if none is readable."""
    rss = hwm = 0
    seen = False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                        seen = True
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
    return (rss, hwm) if seen else (None, None)
