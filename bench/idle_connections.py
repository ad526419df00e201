#!/usr/bin/env python3
"""Server memory per connection: idle h2c, TLS handshakes pending, idle TLS
(issues 5 and 15).

Starts bazel-bin/server/main (port 0, every deadline an hour), reads its
VmRSS from /proc/PID/status, opens N connections to 127.0.0.1, holds them
all open, reads VmRSS again and reports the growth per connection; then
closes them all and reports how much of the growth the server gave back.
--mode says what each connection does:

  h2c          cleartext: client preface and SETTINGS, reads the server's
               SETTINGS and acknowledges it (the default; issue 5's goal:
               16 KiB each)
  tls-silent   TLS port, TCP connected, nothing sent
  tls-pending  TLS port, a ClientHello sent and the server's flight left
               unanswered: a handshake waiting for the client's Finished
               (issue 15's goal: 16 KiB each)
  tls-idle     a whole TLS 1.3 handshake (ALPN h2), then as h2c (issue 15's
               goal: 8 KiB each)

Python stdlib only; raises RLIMIT_NOFILE to its hard limit (the server
inherits it).

    python3 bench/idle_connections.py --dispatch epoll --connections 10000
    python3 bench/idle_connections.py --dispatch uring --engine mini
    python3 bench/idle_connections.py --mode tls-pending --connections 10000

Run `bazel build //server:main` first. Not a test: numbers go to
docs/ARCHITECTURE.md with the command that produced them.
"""

import argparse
import re
import resource
import selectors
import signal
import socket
import ssl
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
    tls = "off" if args.mode == "h2c" else "on"
    hour = "3600000"
    cmd = [args.server, "--tls", tls, "--port", "0", "--dispatch", args.dispatch,
           "--engine", args.engine, "--idle-timeout", hour, "--handshake-timeout", hour,
           "--preface-timeout", hour, "--min-progress-window", "0",
           "--max-connections", str(args.connections + 100)] + args.server_args
    if args.dispatch == "threaded":
        cmd += ["--max-threads", str(args.connections + 100)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    m = re.match(r"h2lab listening on https?://([^:/]+):(\d+)/", first)
    if not m:
        proc.kill()
        sys.exit(f"server did not announce its URL: {first!r}")
    return proc, int(m.group(2)), " ".join(cmd)


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


class Conn:
    """One connection doing what --mode says, driven by open_connections()."""

    def __init__(self, port, mode, ctx):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))
        self.mode = mode
        self.inbuf = b""
        self.done = False
        self.tls = None      # tls-idle: an SSLObject over memory BIOs
        self.out = b""       # octets for the socket (ciphertext with TLS)
        if mode == "h2c":
            self.out = PREFACE + SETTINGS
        elif mode == "tls-silent":
            self.done = True
        else:
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
            self.handshaken = False
            self.step()
            if mode == "tls-pending":
                self.done = True  # the ClientHello goes out; nothing more

    def step(self):
        """Advances the TLS handshake, then the h2 exchange, over the BIOs."""
        if not self.handshaken:
            try:
                self.tls.do_handshake()
                self.handshaken = True
                self.tls.write(PREFACE + SETTINGS)
            except ssl.SSLWantReadError:
                pass
        if self.handshaken:
            try:
                while True:
                    self.on_plain(self.tls.read(16384))
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        self.out += self.outgoing.read()

    def on_plain(self, data):
        self.inbuf += data
        while len(self.inbuf) >= 9:
            length = int.from_bytes(self.inbuf[:3], "big")
            if len(self.inbuf) < 9 + length:
                break
            ftype, flags = self.inbuf[3], self.inbuf[4]
            self.inbuf = self.inbuf[9 + length:]
            if ftype == 0x4 and not flags & 0x1:
                if self.tls:
                    self.tls.write(SETTINGS_ACK)
                else:
                    self.out += SETTINGS_ACK
                self.done = True

    def on_writable(self):
        n = self.sock.send(self.out)
        self.out = self.out[n:]

    def on_readable(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed a connection")
        if self.tls:
            self.incoming.write(data)
            self.step()
        else:
            self.on_plain(data)


def open_connections(port, count, batch, mode, ctx):
    """Opens `count` connections, `batch` handshakes in flight at a time."""
    sel = selectors.DefaultSelector()
    conns, pending = [], 0
    while len(conns) < count or pending:
        while len(conns) < count and pending < batch:
            c = Conn(port, mode, ctx)
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
    p.add_argument("--mode", default="h2c", choices=["h2c", "tls-silent", "tls-pending", "tls-idle"])
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
    ctx = client_context()
    goal = {"h2c": 16384, "tls-silent": 16384, "tls-pending": 16384, "tls-idle": 8192}[args.mode]
    try:
        # One connection first, so that what every server allocates once
        # (threads' buffers, first-use pages) is in the baseline.
        warm = open_connections(port, 1, 1, args.mode, ctx)
        time.sleep(args.settle)
        before = vm_kib(proc.pid, "VmRSS")
        t0 = time.monotonic()
        conns = open_connections(port, args.connections, args.batch, args.mode, ctx)
        opened = time.monotonic() - t0
        time.sleep(args.settle)
        after = vm_kib(proc.pid, "VmRSS")
        if proc.poll() is not None:
            sys.exit("the server exited during the run")
        growth = (after - before) * 1024 / args.connections
        for c in conns:
            c.sock.close()
        time.sleep(args.settle + 1)
        closed = vm_kib(proc.pid, "VmRSS")
        print(f"server: {cmd}")
        print(f"mode={args.mode} dispatch={args.dispatch} engine={args.engine} "
              f"connections={args.connections} opened_in={opened:.1f}s VmRSS before={before} KiB "
              f"open={after} KiB closed={closed} KiB: {growth:.0f} bytes/connection "
              f"({'within' if growth <= goal else 'ABOVE'} the {goal // 1024} KiB goal); "
              f"after close {closed - before:+d} KiB of the start "
              f"({'within' if closed - before <= 10240 else 'ABOVE'} the 10 MiB goal)")
        for c in warm:
            c.sock.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
