#!/usr/bin/python3
"""Instructions per request, counted by callgrind: repeatable on a noisy machine.

Runs //server:main under `valgrind --tool=callgrind` twice per engine (N1 and
N2 requests from h2load) and reports (Ir(N2) - Ir(N1)) / (N2 - N1): the cost
of one more request, start-up and shutdown cancelled out. Workloads:

  same      every request `GET /` (what replay caches make cheap)
  distinct  every request a different :path (`/?n=<i>`, routed like /), so
            no request block repeats: HPACK decoding and validation each time
  bytes     every request `GET /bytes/N` (--bytes N, default 1 MiB): the
            output path, and with TLS the record layer (encryption)

  bench/instructions.py --server bazel-bin/server/main --engines full,mini,nghttp2 \\
      --workloads same,distinct --streams 100
  bench/instructions.py --engines full --workloads bytes --tls on --streams 1 \\
      --n1 20 --n2 220 --server-arg=--tls-records --server-arg=openssl

Prints one line per engine x workload x TLS mode, and a CSV with --csv FILE.
"""
import argparse
import csv
import os
import re
import select
import signal
import subprocess
import sys
import tempfile


def callgrind_total(path):
    """The Ir total of a callgrind output file ("summary:" or "totals:")."""
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError("no totals in %s" % path)


def run_once(server, engine, tls, n, streams, workload, tmp, server_args=(), size=1 << 20):
    out = os.path.join(tmp, "callgrind.%s.%d.out" % (engine, n))
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, server,
            "--port", "0", "--dispatch", "blocking", "--engine", engine, "--tls", "on" if tls else "off",
            *server_args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("h2lab listening on "):
            raise RuntimeError("server did not start: %r" % line)
        url = line.split()[-1]
        h2load = ["h2load", "-c", "1", "-m", str(streams), "-n", str(n)]
        if workload == "distinct":
            uris = os.path.join(tmp, "uris.%d" % n)
            with open(uris, "w") as f:
                for i in range(n):
                    f.write("%s?n=%d\n" % (url, i))
            h2load += ["-i", uris]
        elif workload == "bytes":
            h2load.append("%s/bytes/%d" % (url.rstrip("/"), size))
        else:
            h2load.append(url)
        r = subprocess.run(h2load, capture_output=True, text=True, timeout=600)
        m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", r.stdout)
        if r.returncode != 0 or not m or int(m.group(1)) != n:
            raise RuntimeError("h2load did not complete %d requests:\n%s" % (n, r.stdout[-800:]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return callgrind_total(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", default="bazel-bin/server/main")
    p.add_argument("--engines", default="full,mini,nghttp2")
    p.add_argument("--workloads", default="same,distinct")
    p.add_argument("--tls", default="off", help="off, on, or off,on")
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--n1", type=int, default=2000)
    p.add_argument("--n2", type=int, default=22000)
    p.add_argument("--bytes", type=int, default=1 << 20, help="body size of the bytes workload")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="one more //server:main flag (repeat; --server-arg=--flag for flags)")
    p.add_argument("--csv")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tls in [t == "on" for t in args.tls.split(",")]:
            for workload in args.workloads.split(","):
                for engine in args.engines.split(","):
                    if engine == "mini" and workload == "distinct":
                        continue  # mini does not look at paths: the same as `same`
                    run = lambda n: run_once(args.server, engine, tls, n, args.streams, workload,
                                             tmp, args.server_arg, args.bytes)
                    a, b = run(args.n1), run(args.n2)
                    per = (b - a) / (args.n2 - args.n1)
                    row = {"engine": engine, "workload": workload, "tls": "on" if tls else "off",
                           "streams": args.streams, "instructions_per_request": round(per)}
                    rows.append(row)
                    print("%-8s %-9s tls=%-3s 1 client x %d streams: %8.0f instructions/request"
                          % (engine, workload, row["tls"], args.streams, per), flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
