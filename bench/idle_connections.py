#!/usr/bin/env python3
"""Server memory per idle HTTP/2 connection (issue 5: at most 16 KiB each).

Starts bazel-bin/server/main (cleartext h2c, port 0), reads its VmRSS from
/proc/PID/status, opens N connections to 127.0.0.1 that each send the
client preface and SETTINGS, read the server's SETTINGS and acknowledge it,
holds them all open, reads VmRSS again, and reports the growth per
connection. Python stdlib only; raises RLIMIT_NOFILE to its hard limit (the
server inherits it).

    python3 bench/idle_connections.py --dispatch epoll --connections 10000
    python3 bench/idle_connections.py --dispatch uring --engine mini

Run `bazel build //server:main` first. Not a test: numbers go to
docs/ARCHITECTURE.md with the command that produced them.
"""

import argparse
import os
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + bytes([0x4, 0x0]) + struct.pack(">I", 0)  # empty SETTINGS
SETTINGS_ACK = struct.pack(">I", 0)[1:] + bytes([0x4, 0x1]) + struct.pack(">I", 0)


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def start_server(args):
    cmd = [args.server, "--tls", "off", "--port", "0", "--dispatch", args.dispatch,
           "--engine", args.engine, "--idle-timeout", "3600000",
           "--max-connections", str(args.connections + 100)] + args.server_args
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    m = re.match(r"h2lab listening on http://([^:/]+):(\d+)/", first)
    if not m:
        proc.kill()
        sys.exit(f"server did not announce its URL: {first!r}")
    return proc, int(m.group(2)), " ".join(cmd)


class Conn:
    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))
        self.out = PREFACE + SETTINGS
        self.inbuf = b""
        self.done = False  # got the server's SETTINGS and acknowledged it

    def on_writable(self):
        n = self.sock.send(self.out)
        self.out = self.out[n:]

    def on_readable(self):
        data = self.sock.recv(4096)
        if not data:
            raise ConnectionError("server closed an idle connection")
        self.inbuf += data
        while len(self.inbuf) >= 9:
            length = int.from_bytes(self.inbuf[:3], "big")
            if len(self.inbuf) < 9 + length:
                break
            ftype, flags = self.inbuf[3], self.inbuf[4]
            self.inbuf = self.inbuf[9 + length:]
            if ftype == 0x4 and not flags & 0x1:
                self.out += SETTINGS_ACK
                self.done = True


def open_connections(port, count, batch):
    """Opens `count` connections, `batch` handshakes in flight at a time."""
    sel = selectors.DefaultSelector()
    conns, pending = [], 0
    while len(conns) < count or pending:
        while len(conns) < count and pending < batch:
            c = Conn(port)
            conns.append(c)
            sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
            pending += 1
        for key, events in sel.select(timeout=5):
            c = key.data
            if events & selectors.EVENT_WRITE and c.out:
                c.on_writable()
            if events & selectors.EVENT_READ:
                c.on_readable()
            if c.done and not c.out:
                sel.unregister(c.sock)
                pending -= 1
            else:
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0)
                if want != key.events:
                    sel.modify(c.sock, want, c)
    sel.close()
    return conns


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="bazel-bin/server/main")
    p.add_argument("--dispatch", default="epoll")
    p.add_argument("--engine", default="full")
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--batch", type=int, default=200, help="handshakes in flight at once")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading RSS")
    p.add_argument("server_args", nargs="*", help="more //server:main flags (after --)")
    args = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 256
    if hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need}: raise it (ulimit -Hn) first")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    proc, port, cmd = start_server(args)
    try:
        # One connection first, so that what every server allocates once
        # (threads' buffers, first-use pages) is in the baseline.
        warm = open_connections(port, 1, 1)
        time.sleep(args.settle)
        before = vm_kib(proc.pid, "VmRSS")
        t0 = time.monotonic()
        conns = open_connections(port, args.connections, args.batch)
        opened = time.monotonic() - t0
        time.sleep(args.settle)
        after = vm_kib(proc.pid, "VmRSS")
        if proc.poll() is not None:
            sys.exit("the server exited during the run")
        growth = (after - before) * 1024 / args.connections
        print(f"server: {cmd}")
        print(f"dispatch={args.dispatch} engine={args.engine} connections={args.connections} "
              f"opened_in={opened:.1f}s VmRSS before={before} KiB after={after} KiB "
              f"growth={after - before} KiB = {growth:.0f} bytes/connection "
              f"({'within' if growth <= 16384 else 'ABOVE'} the 16 KiB goal)")
        for c in conns + warm:
            c.sock.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
