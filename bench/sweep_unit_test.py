"""Unit tests of the bench harness's pure parts: parsing, planning, ratios, plots.

They run no server and no h2load; //tests:bench_smoke_test runs the real thing.
"""

import argparse
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernel  # noqa: E402
import loadgen  # noqa: E402
import plots  # noqa: E402
import procs  # noqa: E402
import serverstats  # noqa: E402
import servers  # noqa: E402
import sweep  # noqa: E402
import workloads  # noqa: E402

H2LOAD_OUTPUT = """\
starting benchmark...
spawning thread #0: 1 total client(s). Timing-based test with 1s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #0.
progress: 100% of clients started
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 123605.00 req/s, 4.83MB/s
requests: 247210 total, 247210 started, 247210 done, 247200 succeeded, 10 failed, 3 errored, 1 timeout
status codes: 247200 2xx, 0 3xx, 10 4xx, 0 5xx
traffic: 9.67MB (10135656) total, 3.82MB (4002500) headers (space savings 93.71%), 4.16MB (4366200) data
                     min         max         mean         sd        +/- sd
time for request:       31us      1.89ms        77us        23us    93.45%
time for connect:        0us         0us         0us         0us     0.00%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :  123599.83   123599.83   123599.83        0.00   100.00%
"""


class H2loadTest(unittest.TestCase):
    def test_parse_summary(self):
        r = loadgen.parse(H2LOAD_OUTPUT)
        self.assertEqual(r["requests_per_s"], 123605.0)
        self.assertEqual(r["succeeded"], 247200)
        self.assertEqual((r["failed"], r["errored"], r["timeout"]), (10, 3, 1))
        self.assertEqual(r["status_4xx"], 10)
        self.assertEqual(r["traffic_bytes"], 10135656)
        self.assertEqual(r["min_request_us"], 31.0)
        self.assertEqual(r["max_request_us"], 1890.0)
        self.assertEqual(r["mean_request_us"], 77.0)
        self.assertEqual(r["application_protocol"], "h2")
        self.assertEqual(r["tls_protocol"], "TLSv1.3")
        self.assertEqual(r["cipher"], "TLS_AES_128_GCM_SHA256")

    def test_parse_nothing(self):
        self.assertEqual(loadgen.parse("connect failed\n"), {})

    def test_durations(self):
        self.assertEqual(loadgen.duration_us("12us"), 12.0)
        self.assertEqual(loadgen.duration_us("1.5ms"), 1500.0)
        self.assertEqual(loadgen.duration_us("2.25s"), 2250000.0)
        with self.assertRaises(ValueError):
            loadgen.duration_us("12")

    def test_argv(self):
        argv = loadgen.h2load_argv("h2load", "http://x/", 5, 10, 1, 5, 1)
        self.assertEqual(argv, ["h2load", "-c", "5", "-m", "10", "-t", "1", "-D", "5",
                                "--warm-up-time", "1", "http://x/"])
        argv = loadgen.h2load_argv("h2load", "http://x/", 1, 1, 1, 0.5, 0, "/tmp/l")
        self.assertEqual(argv[-5:], ["-D", "500ms", "--log-file", "/tmp/l", "http://x/"])

    def test_percentiles(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            for elapsed in range(1, 101):   # 1..100 µs, shuffled order is fine
                f.write(f"1700000000000000\t200\t{101 - elapsed}\n")
        try:
            self.assertEqual(loadgen.percentiles(f.name), [50, 99])
        finally:
            os.unlink(f.name)

    def test_run_samples_the_main_phase(self):
        """A fake h2load that prints the phase lines: the window is main-phase,
        and on_phase is called at both edges, after the CPU sample (whose
        instant it can see through time.monotonic)."""
        script = ("echo 'Main benchmark duration is started for thread #0.'; sleep 0.2; "
                  "echo 'Main benchmark duration is over for thread #0.'; "
                  "echo 'finished in 1s, 10.00 req/s, 1B/s'")
        calls = []
        text, window = loadgen.run(procs.Registry(), ["sh", "-c", script, "-t", "1"],
                                   [os.getpid()], timeout=10,
                                   on_phase=lambda edge: calls.append(edge))
        self.assertIn("finished in", text)
        self.assertEqual(window["method"], "main-phase")
        self.assertGreater(window["wall_s"], 0.15)
        self.assertEqual(window["exit_code"], 0)
        self.assertEqual(calls, ["main_start", "main_end"])

    def test_on_phase_follows_the_cpu_sample(self):
        order = []
        real_sample = loadgen._sample

        def sample(pids, client, cpus=()):
            order.append("cpu")
            return real_sample(pids, client, cpus)
        script = ("echo 'Main benchmark duration is started for thread #0.'; "
                  "echo 'Main benchmark duration is over for thread #0.'")
        with mock.patch("loadgen._sample", sample):
            loadgen.run(procs.Registry(), ["sh", "-c", script, "-t", "1"], [os.getpid()],
                        timeout=10, on_phase=order.append)
        # start (before h2load), main_start, main_end, end (after it exits).
        self.assertEqual(order, ["cpu", "cpu", "main_start", "cpu", "main_end", "cpu"])

    def test_run_carries_kernel_snapshots_of_the_window(self):
        script = ("echo 'Main benchmark duration is started for thread #0.'; "
                  "echo 'Main benchmark duration is over for thread #0.'")
        _, window = loadgen.run(procs.Registry(), ["sh", "-c", script, "-t", "1"],
                                [os.getpid()], timeout=10, server_cpus=[0])
        first, last = window["kernel_first"], window["kernel_last"]
        # This process's threads seen at both ends: their counts only grow.
        me = [key for key in last["threads"] if key[0] == os.getpid() and key in first["threads"]]
        self.assertTrue(me)
        for key in me:
            self.assertLessEqual(first["threads"][key][0], last["threads"][key][0])
        self.assertIn(("Tcp", "InSegs"), last["tcp"])
        cells = kernel.columns(first, last, window["wall_s"], 10, kernel.sockstat(), 1)
        self.assertEqual(set(cells), set(kernel.COLUMNS))
        self.assertNotEqual(cells["sockstat_tcp_inuse"], "")

    def test_run_falls_back_to_whole_run(self):
        calls = []
        text, window = loadgen.run(procs.Registry(), ["sh", "-c", "echo hi"],
                                   [os.getpid()], timeout=10, on_phase=calls.append)
        self.assertEqual(window["method"], "whole-run")
        self.assertIsNone(window["client_cpu_s"])
        self.assertEqual(calls, [])


class ProcsTest(unittest.TestCase):
    def test_self(self):
        self.assertIn(os.getpid(), procs.descendants(os.getpid()))
        self.assertGreaterEqual(procs.cpu_seconds([os.getpid()]), 0.0)
        rss, hwm = procs.memory_kb([os.getpid()])
        self.assertGreater(rss, 0)
        self.assertGreaterEqual(hwm, rss)
        self.assertEqual(procs.memory_kb([999999999]), (None, None))

    def test_stop_kills_what_ignores_sigterm(self):
        registry = procs.Registry()
        proc = registry.popen(["sh", "-c", "trap '' TERM; echo ready; sleep 30"],
                              stdout=subprocess.PIPE)
        proc.stdout.readline()   # the trap is set
        code = registry.stop(proc, 0.3)
        proc.stdout.close()
        self.assertEqual(code, -9)
        self.assertEqual(len(registry), 0)


class OptionsTest(unittest.TestCase):
    def test_defaults(self):
        args = sweep.parse_args([])
        self.assertEqual(args.dispatchers, ["blocking", "threaded", "epoll", "uring"])
        self.assertEqual(args.tls, ["on", "off"])
        self.assertEqual(args.clients, [1, 5, 100])
        self.assertEqual(args.streams[0], 1)
        self.assertEqual(args.streams[-1], 120)
        self.assertEqual((args.duration, args.warmup, args.repetitions), (5.0, 1.0, 1))

    def test_smoke_fills_only_what_is_not_given(self):
        args = sweep.parse_args(["--smoke", "--clients", "2"])
        self.assertEqual(args.clients, [2])
        self.assertEqual(args.streams, [1, 10])
        self.assertEqual((args.duration, args.warmup), (1.0, 0.0))

    def test_bad_choice_names_valid_ones(self):
        with self.assertRaises(argparse.ArgumentTypeError) as e:
            sweep.choice_list(servers.DISPATCHERS)("blocking,bogus")
        self.assertIn("valid: blocking, threaded, epoll, uring", str(e.exception))

    def test_lists(self):
        self.assertEqual(sweep.cpu_list("0-2,5"), [0, 1, 2, 5])
        self.assertEqual(sweep.int_list("1,5,5,100"), [1, 5, 100])
        for bad in ("", "x", "0"):
            with self.assertRaises(argparse.ArgumentTypeError):
                sweep.int_list(bad)

    def test_compare_takes_flag_strings_verbatim(self):
        args = sweep.parse_args(["--compare", "--uring-sqpoll", "", "--tls", "off"])
        self.assertEqual(args.compare, ("--uring-sqpoll", ""))
        self.assertEqual(args.tls, ["off"])

    def test_variant_overrides(self):
        v = sweep.parse_variant("--dispatch epoll --threads=2 --foo bar")
        self.assertEqual(v["overrides"], {"dispatch": "epoll", "threads": "2"})
        self.assertEqual(v["extra"], ["--foo", "bar"])
        self.assertEqual(sweep.parse_variant("peer:nginx"), {"peer": "nginx"})
        with self.assertRaises(SystemExit):
            sweep.parse_variant("--dispatch nope")

    def test_compare_pairs_collapse_fixed_dimensions(self):
        args = sweep.parse_args(["--compare", "--dispatch epoll", "--dispatch uring",
                                 "--tls", "off", "--engines", "mini"])
        pairs = sweep.compare_pairs(args, 1)
        self.assertEqual(len(pairs), 1)   # four --dispatchers values, one pair
        a, b = pairs[0]
        self.assertEqual((a.dispatcher, b.dispatcher, a.variant, b.variant),
                         ("epoll", "uring", "A", "B"))


class OneClientAtATimeTest(unittest.TestCase):
    def test_only_blocking_h2lab_serves_one_client_at_a_time(self):
        blocking = servers.ServerSpec(servers.H2LAB, False, "blocking", "full")
        epoll = servers.ServerSpec(servers.H2LAB, False, "epoll", "full")
        peer = servers.ServerSpec("nginx", False)
        self.assertTrue(sweep.serves_one_client_at_a_time(blocking))
        self.assertFalse(sweep.serves_one_client_at_a_time(epoll))
        self.assertFalse(sweep.serves_one_client_at_a_time(peer))


class PinningTest(unittest.TestCase):
    def test_fewer_cpus_than_asked(self):
        args = sweep.parse_args(["--server-cpus", "0", "--client-cpus", "1"])
        with mock.patch("os.sched_getaffinity", return_value={0}), \
                mock.patch("shutil.which", return_value="/usr/bin/taskset"):
            server, client, warnings = sweep.plan_pinning(args)
        self.assertEqual((server, client), ([0], []))
        text = " ".join(warnings)
        self.assertIn("offers 1 CPU", text)
        self.assertIn("h2load runs unpinned", text)


class LauncherTest(unittest.TestCase):
    def test_threads_only_for_loop_dispatchers(self):
        """h2lab refuses --threads with blocking and threaded."""
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "main")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho '  --threads N   y'\necho '  --tls on|off'\n")
            os.chmod(fake, 0o755)
            launcher = servers.Launcher(None, fake, [], d, d, log=lambda text: None)
            for dispatcher, expected in (("blocking", False), ("threaded", False),
                                         ("epoll", True), ("uring", True)):
                argv = launcher.h2lab_argv(
                    servers.ServerSpec("h2lab", False, dispatcher, "full", 2))
                self.assertEqual("--threads" in argv, expected, dispatcher)

    def test_flags_follow_the_binary_help(self):
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "main")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho '  --dispatch NAME   x'\necho '  --threads N   y'\n")
            os.chmod(fake, 0o755)
            launcher = servers.Launcher(None, fake, ["taskset", "-c", "0"], d, d,
                                        log=lambda text: None)
            spec = servers.ServerSpec("h2lab", False, "epoll", "full", 2, ("--x",))
            self.assertEqual(launcher.h2lab_argv(spec), [
                "taskset", "-c", "0", fake, "--host", "127.0.0.1", "--port", "0",
                "--dispatch", "epoll", "--engine", "full", "--threads", "2", "--x"])
            with self.assertRaises(servers.Unavailable):
                launcher.h2lab_argv(servers.ServerSpec("h2lab", True, "epoll", "full"))

    def test_missing_peer_says_how_to_install_it(self):
        with tempfile.TemporaryDirectory() as d, \
                mock.patch("shutil.which", return_value=None):
            launcher = servers.Launcher(None, "", [], d, d, log=lambda text: None)
            with self.assertRaises(servers.Unavailable) as e:
                launcher.start(servers.ServerSpec("nghttpd", False))
        self.assertIn("apt-get install nghttp2-server", str(e.exception))

    def test_peer_configs(self):
        with tempfile.TemporaryDirectory() as d:
            root = workloads.layout_docroot(os.path.join(d, "htdocs"), [])
            argv = servers.configure_nginx("nginx", d, 1234, ("c.pem", "k.pem"), 1, root)
            conf = _read(argv[argv.index("-c") + 1])
            self.assertIn("listen 127.0.0.1:1234 ssl http2;", conf)
            self.assertIn("keepalive_requests 1000000000;", conf)
            self.assertIn('return 200 "Hello World\\n";', conf)
            self.assertIn(f"root {root};", conf)
            argv = servers.configure_h2o("h2o", d, 1234, None, 1, root)
            conf = _read(argv[-1])
            self.assertIn("num-threads: 1", conf)
            self.assertIn(f"file.dir: {root}", conf)
            self.assertIn("mruby.handler", conf)       # /echo
            self.assertIn(f"max-connections: {servers.MAX_CONNECTIONS}", conf)
            self.assertNotIn("ssl:", conf)
            argv = servers.configure_nghttpd("nghttpd", d, 1234, None, 1, root)
            self.assertEqual(argv[-2:], ["--no-tls", "1234"])
            self.assertIn("--echo-upload", argv)
            with open(os.path.join(root, "index.html"), "rb") as f:
                self.assertEqual(f.read(), b"Hello World\n")

    def test_scaling_pins_each_thread_count_to_its_cpus(self):
        with tempfile.TemporaryDirectory() as d:
            launcher = servers.Launcher(None, "main", ["taskset", "-c", "0-3"], d, d,
                                        log=lambda text: None)
            spec = servers.ServerSpec("h2lab", False, "epoll", "full", 2, cpus=(0, 1))
            self.assertEqual(launcher.pin(spec), ["taskset", "-c", "0,1"])
            self.assertEqual(launcher.pin(servers.ServerSpec("h2o", False)),
                             ["taskset", "-c", "0-3"])
            argv = launcher.h2lab_argv(spec, ("--idle-timeout", "1"))
            self.assertEqual(argv[-2:], ["--idle-timeout", "1"])


# /stats bodies as h2lab renders them (server/stats.cc), "threads" emptied.
# IDLE_0 and IDLE_1 are two back-to-back fetches on the idle server: their
# difference is one fetch's own traffic (1 connection, 1 request, 1 response,
# 5 reads, 2 writes, 14 syscalls, 4 waits, 4 events, 1 latency sample).
STATS_IDLE_0 = (
    '{"connection": {"streams": 1, "responses": 0, "resets_sent": 0, "refused": 0, '
    '"open_streams": 0}, "server": {"dispatch": "epoll", "engine": "full", "tls": false, '
    '"write_policy": "coalesce", "uptime_s": 0.502, "connections": {"active": 1, '
    '"accepted": 1, "refused": 0, "dropped": 0}, "process": {"voluntary_context_switches": 10, "involuntary_context_switches": 1}, "totals": {"connections": 1, '
    '"requests": 0, "responses": 0, "bytes_in": 64, "bytes_out": 55, '
    '"backpressure_pauses": 0, "reads": 2, "writes": 0, "partial_writes": 0, '
    '"syscalls": 5, "waits": 2, "events": 2, "buffer_exhaustion": 0, '
    '"syscalls_per_request": 0.00, "requests_per_wait": 0.00, "events_per_wait": 1.00, '
    '"writes_per_response": 0.00, "goaways": {}, "latency": {"count": 0, "mean_ns": 0, '
    '"p50_ns": 0, "p90_ns": 0, "p99_ns": 0, "p999_ns": 0, "max_ns": 0, "buckets": []}}, '
    '"threads": []}}')
STATS_IDLE_1 = (
    '{"connection": {"streams": 1, "responses": 0, "resets_sent": 0, "refused": 0, '
    '"open_streams": 0}, "server": {"dispatch": "epoll", "engine": "full", "tls": false, '
    '"write_policy": "coalesce", "uptime_s": 0.508, "connections": {"active": 1, '
    '"accepted": 2, "refused": 0, "dropped": 0}, "process": {"voluntary_context_switches": 14, "involuntary_context_switches": 1}, "totals": {"connections": 2, '
    '"requests": 1, "responses": 1, "bytes_in": 182, "bytes_out": 1413, '
    '"backpressure_pauses": 0, "reads": 7, "writes": 2, "partial_writes": 0, '
    '"syscalls": 19, "waits": 6, "events": 6, "buffer_exhaustion": 0, '
    '"syscalls_per_request": 19.00, "requests_per_wait": 0.17, "events_per_wait": 1.00, '
    '"writes_per_response": 2.00, "goaways": {}, "latency": {"count": 1, '
    '"mean_ns": 9874, "p50_ns": 10240, "p90_ns": 10240, "p99_ns": 10240, '
    '"p999_ns": 10240, "max_ns": 10240, "buckets": [{"below_ns": 10240, "count": 1}]}}, '
    '"threads": []}}')
# At h2load's "main phase started" and "over": 1001 requests in between, one
# of them the first fetch's, and 1001 latency samples.
STATS_START = (
    '{"connection": {"streams": 1, "responses": 0, "resets_sent": 0, "refused": 0, '
    '"open_streams": 0}, "server": {"dispatch": "epoll", "engine": "full", "tls": false, '
    '"write_policy": "coalesce", "uptime_s": 10.250, "connections": {"active": 2, '
    '"accepted": 4, "refused": 0, "dropped": 0}, "process": {"voluntary_context_switches": 100, "involuntary_context_switches": 5}, "totals": {"connections": 4, '
    '"requests": 503, "responses": 500, "bytes_in": 30000, "bytes_out": 90000, '
    '"backpressure_pauses": 2, "reads": 300, "writes": 260, "partial_writes": 1, '
    '"syscalls": 700, "waits": 120, "events": 130, "buffer_exhaustion": 0, '
    '"syscalls_per_request": 1.39, "requests_per_wait": 4.19, "events_per_wait": 1.08, '
    '"writes_per_response": 0.52, "goaways": {}, "latency": {"count": 500, '
    '"mean_ns": 10650, "p50_ns": 10240, "p90_ns": 12288, "p99_ns": 12288, '
    '"p999_ns": 32768, "max_ns": 32768, "buckets": [{"below_ns": 10240, "count": 400}, '
    '{"below_ns": 12288, "count": 99}, {"below_ns": 32768, "count": 1}]}}, '
    '"threads": []}}')
STATS_END = (
    '{"connection": {"streams": 1, "responses": 0, "resets_sent": 0, "refused": 0, '
    '"open_streams": 0}, "server": {"dispatch": "epoll", "engine": "full", "tls": false, '
    '"write_policy": "coalesce", "uptime_s": 11.253, "connections": {"active": 2, '
    '"accepted": 5, "refused": 0, "dropped": 0}, "process": {"voluntary_context_switches": 400, "involuntary_context_switches": 9}, "totals": {"connections": 5, '
    '"requests": 1504, "responses": 1501, "bytes_in": 90000, "bytes_out": 270000, '
    '"backpressure_pauses": 7, "reads": 405, "writes": 362, "partial_writes": 4, '
    '"syscalls": 1014, "waits": 224, "events": 334, "buffer_exhaustion": 0, '
    '"syscalls_per_request": 0.67, "requests_per_wait": 6.71, "events_per_wait": 1.49, '
    '"writes_per_response": 0.24, "goaways": {"NO_ERROR": 1}, "latency": {"count": 1501, '
    '"mean_ns": 11200, "p50_ns": 10240, "p90_ns": 12288, "p99_ns": 14336, '
    '"p999_ns": 32768, "max_ns": 32768, "buckets": [{"below_ns": 10240, "count": 900}, '
    '{"below_ns": 12288, "count": 500}, {"below_ns": 14336, "count": 99}, '
    '{"below_ns": 32768, "count": 2}]}}, "threads": []}}')


def _samples(*bodies):
    return [serverstats.parse(b) for b in bodies]


class ServerStatsTest(unittest.TestCase):
    def test_parse(self):
        s = serverstats.parse(STATS_IDLE_1)
        self.assertEqual(s["uptime_s"], 0.508)
        self.assertEqual(s["counters"]["syscalls"], 19)
        self.assertEqual(s["counters"]["requests"], 1)
        self.assertEqual(s["buckets"], {10240: 1})
        for bad in ("", "not json", '{"server": {}}', "<html>404</html>"):
            with self.assertRaises(serverstats.StatsError):
                serverstats.parse(bad)

    def test_difference(self):
        idle0, idle1, start, end = _samples(STATS_IDLE_0, STATS_IDLE_1, STATS_START,
                                            STATS_END)
        overhead = serverstats.difference(idle0, idle1)
        self.assertEqual(overhead["counters"], {
            "connections": 1, "requests": 1, "responses": 1, "reads": 5, "writes": 2,
            "partial_writes": 0, "syscalls": 14, "waits": 4, "events": 4,
            "backpressure_pauses": 0})
        window = serverstats.difference(start, end)
        self.assertEqual(window["buckets"], {10240: 500, 12288: 401, 14336: 99, 32768: 1})
        self.assertAlmostEqual(window["uptime_s"], 1.003)
        net = serverstats.net_of(window, overhead)
        self.assertEqual(net["counters"]["requests"], 1000)   # 1001 - the fetch's one
        self.assertEqual(net["counters"]["syscalls"], 300)    # 314 - 14
        self.assertEqual(net["buckets"], window["buckets"])   # latency left alone
        # Never below zero, whatever the idle pair measured.
        self.assertEqual(serverstats.net_of(overhead, window)["counters"]["requests"], 0)

    def test_columns_subtract_the_sampling_fetch(self):
        idle0, idle1, start, end = _samples(STATS_IDLE_0, STATS_IDLE_1, STATS_START,
                                            STATS_END)
        row, notes = serverstats.columns(serverstats.difference(start, end),
                                         serverstats.difference(idle0, idle1))
        self.assertEqual(notes, [])
        self.assertEqual(row, {
            "stats_window_s": "1.003",
            "server_requests": "1000",
            "syscalls_per_request": "0.300",   # (1014-700-14) / (1504-503-1); 0.314 unnetted
            "reads_per_request": "0.100",      # (405-300-5) / 1000
            "writes_per_response": "0.100",    # (362-260-2) / (1501-500-1)
            "requests_per_wait": "10.000",     # 1000 / (224-120-4); 9.625 unnetted
            "events_per_wait": "2.000",        # (334-130-4) / 100
            "partial_writes": "3",
            "backpressure_pauses": "5",
            # 1001 samples; p50 is rank 501: 500 below 10240, then 12288.
            "server_p50_us": "12.288",
            # p99 is rank 991: 901 below 12288, 1000 below 14336.
            "server_p99_us": "14.336",
        })
        self.assertEqual(set(row) | {"stats_window"}, set(serverstats.COLUMNS))

    def test_quantile_matches_the_server_over_a_whole_life(self):
        """Over [0, t] the difference is the sample itself: same as the server's."""
        for body in (STATS_START, STATS_END, STATS_IDLE_1):
            server = json.loads(body)["server"]["totals"]["latency"]
            buckets = serverstats.parse(body)["buckets"]
            for name, q in (("p50_ns", 0.5), ("p90_ns", 0.9), ("p99_ns", 0.99),
                            ("p999_ns", 0.999), ("max_ns", 1.0)):
                self.assertEqual(serverstats.quantile_ns(buckets, q), server[name], name)
        self.assertIsNone(serverstats.quantile_ns({}, 0.5))
        # Nearest rank: 1..100 one per bucket, p50 is the 50th, p99 the 99th.
        buckets = {below: 1 for below in range(1, 101)}
        self.assertEqual(serverstats.quantile_ns(buckets, 0.5), 50)
        self.assertEqual(serverstats.quantile_ns(buckets, 0.99), 99)

    def test_dispatchers_that_do_not_count(self):
        # blocking/threaded: no waits, so no per-wait ratios.
        window = {"uptime_s": 1.0, "buckets": {},
                  "counters": dict.fromkeys(serverstats.COUNTERS, 0)}
        window["counters"].update(requests=101, responses=101, reads=101, writes=101,
                                  syscalls=202)
        overhead = {"counters": {"requests": 1, "responses": 1, "reads": 1, "writes": 1,
                                 "syscalls": 2}}
        row, notes = serverstats.columns(window, overhead)
        self.assertEqual((row["syscalls_per_request"], row["requests_per_wait"],
                          row["events_per_wait"], row["server_p50_us"]),
                         ("2.000", "", "", ""))
        self.assertEqual(notes, [])
        # uring at this revision: requests but no I/O counted at all.
        window["counters"].update(reads=0, writes=0, syscalls=0)
        row, notes = serverstats.columns(window, {"counters": {"requests": 1}})
        self.assertEqual((row["server_requests"], row["syscalls_per_request"],
                          row["reads_per_request"], row["partial_writes"]),
                         ("100", "", "", ""))
        self.assertIn("counted no reads, writes or syscalls", notes[0])

    def test_curl_argv(self):
        self.assertEqual(serverstats.curl_argv("http://127.0.0.1:8080/", 2)[-2:],
                         ["--http2-prior-knowledge", "http://127.0.0.1:8080/stats"])
        self.assertEqual(serverstats.curl_argv("https://127.0.0.1:8443/", 2)[-3:],
                         ["-k", "--http2", "https://127.0.0.1:8443/stats"])

    def test_failed_fetch_says_why(self):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        registry = procs.Registry()
        sampler = serverstats.Sampler(registry, f"http://127.0.0.1:{servers.free_port()}/")
        self.assertFalse(sampler.take("idle"))
        self.assertIn("curl exit code 7", sampler.errors["idle"])   # connection refused
        sampler.arm(["main_start"])
        sampler.close()
        self.assertEqual(len(registry), 0)


class FakeSampler:
    """serverstats.Sampler's interface over prepared samples (no curl)."""

    def __init__(self, samples, errors=None, later=None):
        self.samples = dict(samples)
        self.errors = dict(errors or {})
        self.later = dict(later or {})   # what take(name) will get

    def fired(self, name):
        return name in self.samples or name in self.errors

    def take(self, name):
        if name in self.later:
            self.samples[name] = self.later[name]
        return name in self.samples


class ReadServerStatsTest(unittest.TestCase):
    def setUp(self):
        self.idle0, self.idle1, self.start, self.end = _samples(
            STATS_IDLE_0, STATS_IDLE_1, STATS_START, STATS_END)

    def test_sampler_arms_the_phase_only_where_a_fetch_is_answered_at_once(self):
        """blocking serves one client at a time: a fetch during h2load's run
        would wait for h2load to leave, so nothing is armed for it."""
        with mock.patch("serverstats.Sampler") as sampler_class:
            sampler = sampler_class.return_value
            sampler.take.return_value = True
            for dispatcher, armed in (("blocking", False), ("threaded", True),
                                      ("epoll", True), ("uring", True)):
                sampler.reset_mock()
                running = mock.Mock(url="http://127.0.0.1:1/")
                running.spec = servers.ServerSpec(servers.H2LAB, False, dispatcher, "full")
                self.assertIs(sweep.stats_sampler(mock.Mock(), running), sampler)
                self.assertEqual([c.args[0] for c in sampler.take.call_args_list],
                                 ["idle", "before"])
                self.assertEqual(sampler.arm.called, armed, dispatcher)
            running.spec = servers.ServerSpec("nginx", False)
            self.assertIsNone(sweep.stats_sampler(mock.Mock(), running))

    def test_main_phase(self):
        sampler = FakeSampler({"idle": self.idle0, "before": self.idle1,
                               "main_start": self.start, "main_end": self.end})
        cols, note, switches = sweep.read_server_stats(sampler, {"method": "main-phase"})
        self.assertEqual((cols["stats_window"], cols["syscalls_per_request"], note),
                         ("main-phase", "0.300", ""))
        # The process's context switches: END - START = (300, 4), less the
        # idle pair's (4, 0).
        self.assertEqual(switches, (296, 4))

    def test_whole_run_when_nothing_was_fetched_inside(self):
        """blocking, or no phase lines: before..after, "after" fetched afterwards."""
        sampler = FakeSampler({"idle": self.idle0, "before": self.idle1},
                              later={"after": self.end})
        cols, note, switches = sweep.read_server_stats(sampler, {"method": "whole-run"})
        # END - IDLE_1 = 1503 requests, 995 syscalls, 218 waits; less 1, 14, 4.
        self.assertEqual((cols["stats_window"], cols["server_requests"],
                          cols["syscalls_per_request"], cols["requests_per_wait"], note),
                         ("whole-run", "1502", "0.653", "7.019", ""))
        # Not the CPU window (warm-up included): the kernel's columns keep
        # their /proc thread sums.
        self.assertIsNone(switches)

    def test_a_server_without_process_counters_gives_no_switches(self):
        """An h2lab from before /stats had "process": the columns as ever."""
        def without_process(body):
            return re.sub(r'"process": \{[^}]*\}, ', "", body)
        sampler = FakeSampler({name: serverstats.parse(without_process(body)) for name, body in (
            ("idle", STATS_IDLE_0), ("before", STATS_IDLE_1), ("main_start", STATS_START),
            ("main_end", STATS_END))})
        cols, _, switches = sweep.read_server_stats(sampler, {"method": "main-phase"})
        self.assertEqual((cols["syscalls_per_request"], switches), ("0.300", None))

    def test_failures_leave_the_columns_empty_with_a_note(self):
        sampler = FakeSampler({"idle": self.idle0, "before": self.idle1,
                               "main_start": self.start},
                              errors={"main_end": "curl exit code 28: timed out"})
        cols, note, switches = sweep.read_server_stats(sampler, {"method": "main-phase"})
        self.assertEqual((set(cols.values()), switches), ({""}, None))
        self.assertIn("main_end: curl exit code 28", note)
        sampler = FakeSampler({}, errors={"idle": "curl exit code 7: refused"})
        cols, note, switches = sweep.read_server_stats(sampler, {"method": "main-phase"})
        self.assertEqual((set(cols.values()), switches), ({""}, None))
        self.assertIn("exit code 7", note)
        # Sampled at one end only (h2load killed before its "over" line).
        sampler = FakeSampler({"idle": self.idle0, "before": self.idle1,
                               "main_start": self.start})
        cols, note, switches = sweep.read_server_stats(sampler, {"method": "whole-run"})
        self.assertEqual((set(cols.values()), switches), ({""}, None))
        self.assertIn("one end only", note)

    def test_peers_have_no_stats(self):
        cols, note, switches = sweep.read_server_stats(None, {"method": "main-phase"})
        self.assertEqual((set(cols), set(cols.values()), note, switches),
                         (set(serverstats.COLUMNS), {""}, "", None))
        self.assertTrue(set(serverstats.COLUMNS) <= set(sweep.CSV_COLUMNS))


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _row(label, variant, streams, rep, rps, cpu, tls="off"):
    return {"status": "ok", "succeeded": "100", "label": label, "variant": variant,
            "tls": tls, "clients": "1", "streams": str(streams), "repetition": str(rep),
            "requests_per_s": str(rps), "server_cpu_us_per_request": str(cpu),
            "mean_request_us": "50"}


class CompareAndPlotTest(unittest.TestCase):
    def test_ratios(self):
        rows = [_row("A: x", "A", 10, 1, 100, 2.0), _row("B: y", "B", 10, 1, 110, 1.0),
                _row("A: x", "A", 10, 2, 100, 2.0), _row("B: y", "B", 10, 2, 130, 1.5),
                _row("A: x", "A", 10, 3, 100, 2.0), _row("B: y", "B", 10, 3, 120, 2.0)]
        (entry,) = sweep.compare_table(rows)
        self.assertAlmostEqual(entry["rps_ratio_min"], 1.1)
        self.assertAlmostEqual(entry["rps_ratio_median"], 1.2)
        self.assertAlmostEqual(entry["rps_ratio_max"], 1.3)
        self.assertAlmostEqual(entry["cpu_ratio_median"], 0.75)
        self.assertEqual(entry["pairs"], 3)

    def test_compare_keeps_pairs_of_configurations_apart(self):
        """Two pairs (full and mini engines) over the same case, as run_compare
        records them: all of the first pair's runs, then the second's."""
        rows = [_row("A: full", "A", 10, 1, 100, 2.0), _row("B: full", "B", 10, 1, 200, 2.0),
                _row("A: mini", "A", 10, 1, 100, 2.0), _row("B: mini", "B", 10, 1, 50, 2.0),
                # A failed B: its A has no partner and is left out.
                _row("A: mini", "A", 10, 2, 100, 2.0),
                dict(_row("B: mini", "B", 10, 2, 0, 2.0), status="h2load-failed")]
        full, mini = sweep.compare_table(rows)
        self.assertEqual((full["a_label"], full["b_label"], full["rps_ratio_median"]),
                         ("A: full", "B: full", 2.0))
        self.assertEqual((mini["a_label"], mini["b_label"], mini["rps_ratio_median"],
                          mini["pairs"]), ("A: mini", "B: mini", 0.5, 1))

    def test_compare_reports_server_counters(self):
        rows = []
        for rep, (a_sys, b_sys, a_wait) in enumerate(((0.5, 0.3, 8.0), (0.7, 0.3, 10.0)), 1):
            rows.append(dict(_row("A: x", "A", 10, rep, 100, 2.0),
                             syscalls_per_request=str(a_sys), requests_per_wait=str(a_wait)))
            # B measured no waits (blocking or threaded): its req/wait is empty.
            rows.append(dict(_row("B: y", "B", 10, rep, 110, 1.0),
                             syscalls_per_request=str(b_sys), requests_per_wait=""))
        (entry,) = sweep.compare_table(rows)
        self.assertAlmostEqual(entry["a_syscalls_per_request_median"], 0.6)
        self.assertAlmostEqual(entry["b_syscalls_per_request_median"], 0.3)
        self.assertAlmostEqual(entry["a_requests_per_wait_median"], 9.0)
        self.assertIsNone(entry["b_requests_per_wait_median"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sweep.print_compare([entry])
        line = [l for l in out.getvalue().splitlines() if l.startswith("hello")][0]
        self.assertTrue(line.endswith("0.6       0.3           9          -"), line)
        # An old CSV (no such columns) still compares.
        (entry,) = sweep.compare_table([_row("A: x", "A", 10, 1, 100, 2.0),
                                        _row("B: y", "B", 10, 1, 110, 1.0)])
        self.assertIsNone(entry["a_syscalls_per_request_median"])

    def test_server_counter_figures_skip_peers(self):
        rows = [dict(_row("h2lab epoll/full", "", s, 1, 1000 * s, 2.0),
                     syscalls_per_request=str(1.5 / s), requests_per_wait=str(0.9 * s))
                for s in (1, 10)]
        rows.append(dict(_row("nginx 1.22.1", "", 10, 1, 5000, 3.0),
                         syscalls_per_request="", requests_per_wait=""))
        script, names = plots.gnuplot_script(rows, "CPU (2 CPUs)", "2026-01-01 00:00")
        self.assertEqual(names, ["rps_tls-off_c1", "latency_tls-off_c1", "cpu_tls-off_c1",
                                 "syscalls_tls-off_c1", "wakeups_tls-off_c1"])
        wakeups = script[script.index('set output "cpu_tls-off_c1.png"'):]
        self.assertIn("10 9 9 9", wakeups)        # 0.9 requests per wait x 10 streams
        self.assertIn("1 1.5 1.5 1.5", wakeups)   # 1.5 syscalls per request at 1 stream
        self.assertNotIn("nginx", wakeups)       # peers have no /stats
        self.assertIn('set ylabel "requests per wake-up (epoll_wait, io_uring_enter)" '
                      'noenhanced', wakeups)     # "_" is not a subscript
        self.assertIn("Server syscalls per request", plots.summary_markdown(rows))

    def test_replot_reads_a_csv_without_the_stats_columns(self):
        old_columns = [c for c in sweep.CSV_COLUMNS if c not in serverstats.COLUMNS]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "results.csv")
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, old_columns, extrasaction="ignore")
                writer.writeheader()
                for s in (1, 10):
                    writer.writerow(_row("h2lab epoll/full", "", s, 1, 1000 * s, 2.0))
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        script, names = plots.gnuplot_script(rows, "CPU (2 CPUs)", "2026-01-01 00:00")
        self.assertEqual(names, ["rps_tls-off_c1", "latency_tls-off_c1", "cpu_tls-off_c1"])
        self.assertNotIn("syscalls", plots.summary_markdown(rows))

    def test_disturbed_runs_are_named(self):
        row = _row("x", "", 10, 1, 100, 2.0)
        self.assertEqual(sweep.disturbed(dict(row, other_cpu_percent="5.0")), [])
        self.assertEqual(sweep.disturbed(dict(row, other_cpu_percent="85.0",
                                              steal_percent="0.0")),
                         ["others 85% CPU"])

    def test_gnuplot_script(self):
        rows = [_row("h2lab blocking/mini", "", s, 1, 1000 * s, 2.0) for s in (1, 10)]
        rows.append(dict(_row("nginx 1.22.1", "", 10, 1, 5000, 3.0), status="h2load-failed"))
        script, names = plots.gnuplot_script(rows, "CPU (2 CPUs)", "2026-01-01 00:00")
        self.assertEqual(names, ["rps_tls-off_c1", "latency_tls-off_c1", "cpu_tls-off_c1"])
        self.assertIn('set output "rps_tls-off_c1.svg"', script)
        self.assertIn('set output "rps_tls-off_c1.png"', script)
        self.assertIn("10 10 10 10", script)         # 10k req/s in thousands
        self.assertNotIn("nginx", script)           # failed runs are not plotted

    def test_gnuplot_accepts_the_script(self):
        if subprocess.run(["sh", "-c", "command -v gnuplot"],
                          capture_output=True).returncode != 0:
            self.skipTest("gnuplot not installed")
        rows = [_row("h2lab blocking/mini", "", s, r, 1000 * s + r, 2.0)
                for s in (1, 10) for r in (1, 2)]
        with tempfile.TemporaryDirectory() as d:
            files = plots.render(rows, d, "CPU (2 CPUs)", "2026-01-01 00:00",
                                 log=self.fail)
            self.assertEqual(len(files), 6)
            for path in files:
                self.assertGreater(os.path.getsize(path), 1000, path)



class WorkloadsTest(unittest.TestCase):
    def test_option_names_valid_workloads(self):
        self.assertEqual(sweep.parse_args([]).workloads, ["hello"])
        args = sweep.parse_args(["--workloads", "download,churn,download"])
        self.assertEqual(args.workloads, ["download", "churn"])
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit):
            sweep.parse_args(["--workloads", "hello,video"])
        self.assertIn("invalid choice 'video' (valid: hello, varied, browser, download, "
                      "upload, churn, mixed, open-loop)", err.getvalue())
        smoke = sweep.parse_args(["--smoke", "--workloads", "mixed"])
        self.assertEqual((smoke.idle_connections, smoke.churn_connections), (50, [50]))

    def test_loads(self):
        names = [(l.workload, l.variant) for name in workloads.WORKLOADS
                 for l in workloads.loads(name, 123)]
        self.assertEqual(names, [
            ("hello", ""), ("varied", ""), ("browser", ""), ("download", "16KiB"),
            ("download", "1MiB"), ("download", "64MiB"), ("upload", "1MiB"),
            ("churn", ""), ("mixed", "123 idle"), ("open-loop", "")])
        with self.assertRaises(ValueError):
            workloads.loads("video")

    def test_varied_paths_are_distinct_and_routed_like_root(self):
        paths = workloads.varied_paths()
        self.assertEqual(len(set(paths)), workloads.VARIED_PATHS)
        self.assertTrue(all(workloads.expected_body(p) == workloads.HELLO for p in paths))
        with tempfile.TemporaryDirectory() as d:
            path = workloads.write_uri_file(os.path.join(d, "u"), "http://h:1/", paths[:3])
            self.assertEqual(_read(path), "http://h:1/?v=0\nhttp://h:1/?v=1\nhttp://h:1/?v=2\n")

    def test_browser_page(self):
        sizes = workloads.browser_sizes()
        self.assertEqual(sizes, workloads.browser_sizes())          # deterministic
        self.assertEqual(len(set(sizes)), workloads.BROWSER_RESOURCES)
        self.assertTrue(500_000 < sum(sizes) < 5_000_000, sum(sizes))
        headers = dict(workloads.BROWSER_HEADERS)
        self.assertTrue(900 <= len(headers["cookie"]) <= 1300, len(headers["cookie"]))
        for name in ("user-agent", "accept", "accept-encoding", "accept-language",
                     "sec-fetch-dest", "sec-fetch-mode", "sec-fetch-site", "sec-ch-ua"):
            self.assertIn(name, headers)
        (load,) = workloads.loads("browser")
        extra = workloads.h2load_extra(load, "uris")
        self.assertEqual(extra.count("-H"), len(workloads.BROWSER_HEADERS))
        self.assertEqual(extra[-2:], ["-i", "uris"])

    def test_pattern_is_h2labs(self):
        # proto/routes.h: kPatternAlphabet, repeating at every offset.
        self.assertEqual(workloads.pattern(40), b"abcdefghijklmnopqrstuvwxyz0123456789\nabc")
        self.assertEqual(workloads.expected_body("/bytes/5"), b"abcde")
        self.assertEqual(workloads.expected_body("/echo", b"xy"), b"xy")
        self.assertIsNone(workloads.expected_body("/stats"))

    def test_docroot_holds_the_same_octets(self):
        size = 3 * (1 << 20) + 5       # several write blocks: the phase must carry over
        load = workloads.Load("download", paths=(f"/bytes/{size}",), body_bytes=size)
        with tempfile.TemporaryDirectory() as d:
            root = workloads.layout_docroot(os.path.join(d, "r"), [load] + workloads.loads(
                "browser"))
            with open(os.path.join(root, "bytes", str(size)), "rb") as f:
                self.assertEqual(f.read(), workloads.pattern(size))
            with open(os.path.join(root, "index.html"), "rb") as f:
                self.assertEqual(f.read(), workloads.HELLO)
            self.assertEqual(len(os.listdir(os.path.join(root, "bytes"))),
                             workloads.BROWSER_RESOURCES + 1)
            upload = workloads.write_upload_file(os.path.join(d, "up"), 1000)
            self.assertEqual(_read(upload).encode(), workloads.pattern(1000))

    def test_body_difference(self):
        self.assertEqual(workloads.body_difference(b"abc", b"abc", "/x"), "")
        self.assertIn("first difference at octet 1",
                      workloads.body_difference(b"abc", b"axc", "/x"))
        self.assertIn("2 octets, expected 3", workloads.body_difference(b"abc", b"ab", "/x"))

    def test_sample_path(self):
        (small, _, _), = [workloads.loads("download")]
        self.assertEqual(workloads.sample_path(small), "/bytes/16384")
        self.assertEqual(workloads.sample_path(workloads.loads("hello")[0]), "/")
        browser = workloads.loads("browser")[0]
        self.assertLessEqual(len(workloads.expected_body(workloads.sample_path(browser))),
                             1 << 20)

    def test_h2load_argv_for_churn_and_extras(self):
        argv = loadgen.h2load_argv("h2load", "http://x/", 50, 1, 1, 5, 1,
                                   extra=["-d", "f"], requests=50)
        self.assertEqual(argv, ["h2load", "-c", "50", "-m", "1", "-t", "1", "-n", "50",
                                "-d", "f", "http://x/"])
        load = workloads.Load("open-loop", open_loop=True)
        self.assertEqual(workloads.h2load_extra(load, rps=250), ["--rps", "250"])

    def test_parse_bytes_per_second_and_combine(self):
        r = loadgen.parse(H2LOAD_OUTPUT)
        self.assertAlmostEqual(r["bytes_per_s"], 4.83 * (1 << 20))
        self.assertEqual(r["finished_s"], 3.0)
        both = loadgen.combine([r, dict(r, succeeded=100, finished_s=1.0, bytes_per_s=0.0)])
        self.assertEqual(both["succeeded"], 247300)
        self.assertAlmostEqual(both["requests_per_s"], 247300 / 4.0)
        self.assertAlmostEqual(both["bytes_per_s"], 4.83 * (1 << 20) * 3 / 4)

    def test_workload_columns(self):
        download = workloads.loads("download")[1]
        cells = sweep.workload_columns(download, {"bytes_per_s": 2e9, "finished_s": 2.0,
                                                  "succeeded": 3800}, 2.0, 5, None, None, None)
        self.assertEqual(cells["server_cpu_s_per_gb"], "0.5000")   # 2 s for 4 GB
        self.assertEqual(cells["connections_per_s"], "")
        churn = workloads.loads("churn")[0]
        cells = sweep.workload_columns(churn, {"finished_s": 0.5, "succeeded": 1000},
                                       0.1, 1000, None, None, None)
        self.assertEqual(cells["connections_per_s"], "2000.0")
        cells = sweep.workload_columns(HELLO, {}, 0.1, 4, 250, 50, 9999)
        self.assertEqual((cells["offered_rps"], cells["load_percent"],
                          cells["idle_connections"]), (1000, 50, 9999))
        for column in ("workload", "workload_variant", "bytes_per_s", "server_cpu_s_per_gb",
                       "connections_per_s", "p999_request_us", "offered_rps",
                       "idle_connections"):
            self.assertIn(column, sweep.CSV_COLUMNS)

    def test_mixed_server_flags(self):
        args = sweep.parse_args(["--clients", "1,100"])
        self.assertEqual(sweep.h2lab_load_args(args, HELLO), ())
        flags = sweep.h2lab_load_args(args, workloads.loads("mixed", 10000)[0])
        self.assertEqual(flags[flags.index("--max-connections") + 1], "11100")
        self.assertIn("--idle-timeout", flags)

    def test_scaling_plan(self):
        args = sweep.parse_args(["--scaling"])
        self.assertEqual(sweep.thread_plan(args, list(range(16))),
                         [(1, (0,)), (2, (0, 1)), (4, (0, 1, 2, 3)),
                          (8, tuple(range(8)))])
        self.assertEqual([t for t, _ in sweep.thread_plan(args, [0, 1, 2])], [1, 2, 3])
        self.assertEqual(sweep.thread_plan(args, [5]), [(1, (5,))])
        self.assertEqual(sweep.thread_plan(sweep.parse_args([]), [0, 1]), [(2, ())])
        specs = sweep.sweep_specs(sweep.parse_args(
            ["--scaling", "--dispatchers", "epoll", "--engines", "full", "--tls", "off",
             "--peers", "h2o"]), 1, [0, 1])
        self.assertEqual([(s.server, s.threads, s.cpus) for s in specs],
                         [("h2lab", 1, (0,)), ("h2o", 1, (0,)),
                          ("h2lab", 2, (0, 1)), ("h2o", 2, (0, 1))])
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit):
            sweep.parse_args(["--scaling", "--server-threads", "2"])

    def test_planned_runs(self):
        args = sweep.parse_args(["--workloads", "hello,upload,churn,open-loop", "--peers",
                                 "nginx", "--dispatchers", "epoll", "--engines", "full",
                                 "--tls", "off", "--clients", "1,5", "--streams", "1"])
        specs = sweep.sweep_specs(args, 1)
        # hello 2 servers x 2 cases, upload without nginx, churn 1 case, open-loop 4 runs.
        self.assertEqual(sweep.planned_runs(args, specs, []), 4 + 2 + 2 + 2 * 2 * 4)


class WorkloadPlotTest(unittest.TestCase):
    def test_figures_per_workload(self):
        rows = [dict(_row("h2lab epoll/full", "", s, 1, 1000 * s, 2.0), workload="download",
                     workload_variant="1MiB", bytes_per_s=str(1e9 * s),
                     server_cpu_s_per_gb="0.5") for s in (1, 10)]
        rows += [dict(_row("h2o 2.2.5", "", 1, 1, 500, 3.0), workload="churn", clients="200",
                      connections_per_s="2000", tcp_listen_overflows="12")]
        rows += [dict(_row("h2o 2.2.5", "", 10, 1, 500, 3.0), workload="open-loop",
                      workload_variant=f"{p}%", load_percent=str(p), p50_request_us="50",
                      p99_request_us="90", p999_request_us="120") for p in (25, 50)]
        rows += [dict(_row("h2o 2.2.5", "", 10, 1, 2000, 3.0), workload="open-loop",
                      workload_variant="capacity")]
        _, names = plots.gnuplot_script(rows, "CPU", "2026-01-01 00:00")
        self.assertIn("download-1MiB_gbps_tls-off_c1", names)
        self.assertIn("download-1MiB_cpugb_tls-off_c1", names)
        self.assertIn("churn_conns_tls-off", names)
        self.assertIn("churn_listenoverflows_tls-off", names)
        self.assertIn("open-loop_p99_tls-off_c1_m10", names)
        self.assertIn("open-loop_capacity_rps_tls-off_c1", names)
        summary = plots.summary_markdown(rows)
        for section in ("## download 1MiB", "## churn", "## open-loop"):
            self.assertIn(section, summary)

    def test_spread_and_threads(self):
        rows = [dict(_row("h2lab epoll/full", "", 10, r, 1000 * r, 2.0), server_threads=t)
                for r in (1, 2, 3) for t in ("1", "2")]
        summary = plots.summary_markdown(rows)
        self.assertIn("| 10 | 2.0k (1.0k–3.0k) | 2.0k (1.0k–3.0k) |", summary)
        self.assertIn("h2lab epoll/full (2T)", summary)
        _, names = plots.gnuplot_script(rows, "CPU", "2026-01-01 00:00")
        self.assertIn("scaling_rps_tls-off_c1_m10", names)


HELLO = workloads.Load("hello")



SNMP = """Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts
Tcp: 1 200 120000 -1 10 3 1000 900 2 0 5
"""
NETSTAT = """TcpExt: SyncookiesSent DelayedACKs ListenOverflows ListenDrops TCPAutoCorking TCPOFOQueue
TcpExt: 0 40 0 0 7 1
IpExt: InNoRoutes
IpExt: 0
"""
STAT = """cpu  1 2 3 4 5 6 7 8 0 0
cpu0 10 0 10 100 0 3 30 0 0 0
cpu1 10 0 10 100 0 4 40 0 0 0
intr 12345
"""


class KernelCountersTest(unittest.TestCase):
    """bench/kernel.py: /proc's formats read, deltas and the moved counters."""

    def test_parsers(self):
        tcp = kernel.parse_snmp(SNMP + NETSTAT)
        self.assertEqual(tcp[("Tcp", "InSegs")], 1000)
        self.assertEqual(tcp[("Tcp", "OutRsts")], 5)
        self.assertEqual(tcp[("TcpExt", "DelayedACKs")], 40)
        self.assertEqual(tcp[("Ip", "DefaultTTL")], 64)
        self.assertEqual(kernel.parse_cpu_irq(STAT, {1}), (4, 40))
        self.assertEqual(kernel.parse_cpu_irq(STAT, {0, 1}), (7, 70))
        self.assertEqual(kernel.parse_sockstat(
            "sockets: used 13\nTCP: inuse 4 orphan 1 tw 20 alloc 6 mem 3\nUDP: inuse 0 mem 0\n"),
            {"inuse": 4, "orphan": 1, "tw": 20, "alloc": 6, "mem": 3})
        self.assertEqual(kernel.parse_task_status(
            "Name:\tx\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t3\n"), (17, 3))
        self.assertEqual(kernel.parse_migrations("se.nr_migrations   :   9\nnr_switches : 1\n"), 9)
        self.assertIsNone(kernel.parse_migrations("nr_switches : 1\n"))

    def test_snapshot_of_a_fake_proc(self):
        with tempfile.TemporaryDirectory() as root:
            def write(path, text):
                os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
                with open(os.path.join(root, path), "w") as f:
                    f.write(text)
            write("42/stat", "42 (a (b) c) S 1 " + " ".join(["0"] * 9) + " 150 50 0 0\n")
            for tid, (v, i) in (("42", (5, 1)), ("43", (7, 2))):
                write(f"42/task/{tid}/status",
                      f"voluntary_ctxt_switches: {v}\nnonvoluntary_ctxt_switches: {i}\n")
                write(f"42/task/{tid}/sched", "se.nr_migrations : 2\n")
            write("stat", STAT)
            write("net/snmp", SNMP)
            write("net/netstat", NETSTAT)
            snap = kernel.snapshot([42], [1], proc_root=root)
        self.assertEqual((snap["user"], snap["system"]), (150, 50))
        self.assertEqual(snap["threads"], {(42, "42"): (5, 1, 2), (42, "43"): (7, 2, 2)})
        self.assertEqual((snap["irq"], snap["softirq"]), (4, 40))

    def test_columns_are_deltas_per_request_and_name_what_else_moved(self):
        ticks = procs.CLOCK_TICKS_PER_SECOND
        # Thread 1 lives through the run, 2 ends during it (its counts are
        # lost), 3 begins during it (all its counts are the run's).
        first = {"user": 0, "system": 0, "irq": 0, "softirq": 0,
                 "threads": {(7, "1"): (100, 10, None), (7, "2"): (50, 5, None)},
                 "tcp": kernel.parse_snmp(SNMP + NETSTAT)}
        moved_tcp = dict(first["tcp"])
        moved_tcp[("Tcp", "InSegs")] += 500
        moved_tcp[("Tcp", "CurrEstab")] += 9          # a gauge: never listed
        moved_tcp[("TcpExt", "TCPOFOQueue")] += 2     # not a fixed column: listed
        last = {"user": ticks // 2, "system": ticks, "irq": 0, "softirq": ticks // 4,
                "threads": {(7, "1"): (250, 10, 8), (7, "3"): (50, 0, 2)}, "tcp": moved_tcp}
        cells = kernel.columns(first, last, 1.0, 100, {"inuse": 4, "tw": 2, "mem": 9}, 1)
        self.assertEqual(cells["server_user_cpu_percent"], "50.0")
        self.assertEqual(cells["server_sys_cpu_percent"], "100.0")
        self.assertEqual(cells["voluntary_cs_per_request"], "2.0000")   # (150 + 50) / 100
        self.assertEqual(cells["involuntary_cs_per_request"], "0.0000")
        self.assertEqual(cells["migrations_per_request"], "")  # unknown at the start
        self.assertEqual(cells["cs_source"], "threads, 1 ended")
        self.assertEqual(cells["server_cpus_softirq_percent"], "25.0")
        self.assertEqual(cells["tcp_in_segs"], 500)
        self.assertEqual(cells["tcp_out_segs"], 0)
        self.assertEqual(cells["tcp_prune_called"], "")  # absent from this /proc
        self.assertEqual(cells["tcp_counters_moved"], "TCPOFOQueue=+2")
        self.assertEqual((cells["sockstat_tcp_inuse"], cells["sockstat_tcp_orphan"],
                          cells["sockstat_tcp_mem_pages"]), (4, "", 9))
        # The server's own count of its switches (h2lab's /stats) wins.
        cells = kernel.columns(first, last, 1.0, 100, {}, 1, switches=(350, 20))
        self.assertEqual((cells["voluntary_cs_per_request"], cells["involuntary_cs_per_request"],
                          cells["cs_source"]), ("3.5000", "0.2000", "getrusage"))
        # No thread ended, none began: the differences, from "threads".
        cells = kernel.columns(dict(first, threads={(7, "1"): (100, 10, 4)}),
                               dict(last, threads={(7, "1"): (180, 12, 9)}), 1.0, 100, {}, 1)
        self.assertEqual((cells["voluntary_cs_per_request"], cells["involuntary_cs_per_request"],
                          cells["migrations_per_request"], cells["cs_source"]),
                         ("0.8000", "0.0200", "0.0500", "threads"))


def _kernel_row(label, variant, rep, streams=10, **cells):
    """A run's row with every kernel column as a real run writes it: counters
    that did not move are 0, migrations are empty (no CONFIG_SCHED_DEBUG)."""
    row = dict(_row(label, variant, streams, rep, 100000, 2.0),
               **dict.fromkeys(kernel.NUMBER_COLUMNS, "0"))
    row.update(migrations_per_request="", tcp_counters_moved="", cs_source="getrusage")
    row.update(cells)
    return row


# A compare of epoll (A) and uring (B), three repetitions at 1 x 10, with the
# kernel's cells of each run; the medians are the middle values.
KERNEL_A = [
    dict(server_user_cpu_percent="11.8", server_sys_cpu_percent="86.1",
         voluntary_cs_per_request="0.1010", involuntary_cs_per_request="0.0004",
         server_cpus_softirq_percent="31.2", tcp_in_segs="412345", tcp_out_segs="412340",
         tcp_delayed_acks="12", sockstat_tcp_inuse="14", sockstat_tcp_mem_pages="2",
         tcp_counters_moved="TCPHPAcks=+20512;TCPPureAcks=+310"),
    dict(server_user_cpu_percent="12.4", server_sys_cpu_percent="87.9",
         voluntary_cs_per_request="0.0990", involuntary_cs_per_request="0.0002",
         server_cpus_softirq_percent="30.4", tcp_in_segs="409876", tcp_out_segs="409870",
         tcp_delayed_acks="0", sockstat_tcp_inuse="14", sockstat_tcp_mem_pages="3",
         tcp_counters_moved="TCPHPAcks=+20111"),
    dict(server_user_cpu_percent="12.0", server_sys_cpu_percent="88.3",
         voluntary_cs_per_request="0.1002", involuntary_cs_per_request="0.0003",
         server_cpus_softirq_percent="30.9", tcp_in_segs="415000", tcp_out_segs="414990",
         tcp_delayed_acks="3", sockstat_tcp_inuse="14", sockstat_tcp_mem_pages="2",
         tcp_counters_moved="TCPHPAcks=+20300;TCPOrigDataSent=+205000"),
]
KERNEL_B = [
    dict(server_user_cpu_percent="14.0", server_sys_cpu_percent="70.2",
         voluntary_cs_per_request="0.0501", involuntary_cs_per_request="0.0006",
         server_cpus_softirq_percent="28.0", tcp_in_segs="500000", tcp_out_segs="499990",
         tcp_out_rsts="2", sockstat_tcp_inuse="14", sockstat_tcp_mem_pages="3",
         tcp_counters_moved="TCPHPAcks=+25000"),
    # /proc/PID/task/*/status unreadable in this run: that cell is empty.
    dict(server_user_cpu_percent="15.0", server_sys_cpu_percent="71.0",
         voluntary_cs_per_request="0.0499", involuntary_cs_per_request="",
         server_cpus_softirq_percent="27.5", tcp_in_segs="498000", tcp_out_segs="497990",
         tcp_out_rsts="4", sockstat_tcp_inuse="14", sockstat_tcp_mem_pages="3"),
    dict(server_user_cpu_percent="14.5", server_sys_cpu_percent="69.8",
         voluntary_cs_per_request="0.0500", involuntary_cs_per_request="0.0004",
         server_cpus_softirq_percent="27.9", tcp_in_segs="502000", tcp_out_segs="501990",
         tcp_out_rsts="3", sockstat_tcp_inuse="14", sockstat_tcp_mem_pages="3",
         tcp_counters_moved="TCPHPAcks=+24000;TCPOFOQueue=+2"),
]


def _kernel_compare_rows():
    rows = []
    for rep, (a, b) in enumerate(zip(KERNEL_A, KERNEL_B), 1):
        rows.append(_kernel_row("A: h2lab epoll/full", "A", rep, **a))
        rows.append(_kernel_row("B: h2lab uring/full", "B", rep, **b))
    return rows


class KernelCompareTest(unittest.TestCase):
    """--compare carries what the kernel did: medians per side, B/A, the
    other counters that moved, in the table, on the terminal and in
    compare.csv."""

    def test_compare_table_has_every_kernel_column(self):
        (entry,) = sweep.compare_table(_kernel_compare_rows())
        for column in kernel.NUMBER_COLUMNS:
            for key in (f"a_{column}_median", f"b_{column}_median", f"{column}_ratio"):
                self.assertIn(key, entry)
        expected = {   # column: (A median, B median, B/A of the medians)
            "server_user_cpu_percent": (12.0, 14.5, 14.5 / 12.0),
            "server_sys_cpu_percent": (87.9, 70.2, 70.2 / 87.9),
            "voluntary_cs_per_request": (0.1002, 0.05, 0.05 / 0.1002),
            # B's run without the cell is left out: the median of two.
            "involuntary_cs_per_request": (0.0003, 0.0005, 0.0005 / 0.0003),
            "server_cpus_softirq_percent": (30.9, 27.9, 27.9 / 30.9),
            "tcp_in_segs": (412345, 500000, 500000 / 412345),
            "tcp_delayed_acks": (3, 0, 0.0),
            "sockstat_tcp_mem_pages": (2, 3, 1.5),
        }
        for column, (a, b, ratio) in expected.items():
            self.assertAlmostEqual(entry[f"a_{column}_median"], a, msg=column)
            self.assertAlmostEqual(entry[f"b_{column}_median"], b, msg=column)
            self.assertAlmostEqual(entry[f"{column}_ratio"], ratio, msg=column)
        # No ratio where A's median is 0 (resets: 0 against 3) or 0/0.
        self.assertEqual((entry["a_tcp_out_rsts_median"], entry["b_tcp_out_rsts_median"],
                          entry["tcp_out_rsts_ratio"]), (0, 3, None))
        self.assertEqual((entry["a_tcp_retrans_segs_median"], entry["tcp_retrans_segs_ratio"]),
                         (0, None))
        # Empty in every run (no CONFIG_SCHED_DEBUG): not counted.
        self.assertEqual((entry["a_migrations_per_request_median"],
                          entry["b_migrations_per_request_median"],
                          entry["migrations_per_request_ratio"]), (None, None, None))
        # The names of the other counters that moved, over every run of a side.
        self.assertEqual(entry["a_tcp_counters_moved"],
                         ["TCPHPAcks", "TCPOrigDataSent", "TCPPureAcks"])
        self.assertEqual(entry["b_tcp_counters_moved"], ["TCPHPAcks", "TCPOFOQueue"])

    def test_compare_csv_carries_every_kernel_column(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "compare.csv")
            sweep.write_compare_csv(sweep.compare_table(_kernel_compare_rows()), path)
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                (row,) = list(reader)
                header = reader.fieldnames
        for column in kernel.NUMBER_COLUMNS:
            for key in (f"a_{column}_median", f"b_{column}_median", f"{column}_ratio"):
                self.assertIn(key, header)
        self.assertIn("a_tcp_counters_moved", header)
        self.assertIn("b_tcp_counters_moved", header)
        self.assertEqual((row["a_server_user_cpu_percent_median"],
                          row["b_server_user_cpu_percent_median"],
                          row["server_user_cpu_percent_ratio"]),
                         ("12.0000", "14.5000", "1.2083"))
        self.assertEqual((row["a_voluntary_cs_per_request_median"],
                          row["b_voluntary_cs_per_request_median"],
                          row["voluntary_cs_per_request_ratio"]),
                         ("0.1002", "0.0500", "0.4990"))
        self.assertEqual((row["a_involuntary_cs_per_request_median"],
                          row["involuntary_cs_per_request_ratio"]), ("0.0003", "1.6667"))
        self.assertEqual((row["a_tcp_in_segs_median"], row["b_tcp_in_segs_median"],
                          row["tcp_in_segs_ratio"]), ("412345.0000", "500000.0000", "1.2126"))
        self.assertEqual((row["tcp_delayed_acks_ratio"], row["tcp_out_rsts_ratio"]),
                         ("0.0000", ""))
        self.assertEqual((row["a_migrations_per_request_median"],
                          row["migrations_per_request_ratio"]), ("", ""))
        self.assertEqual((row["a_tcp_counters_moved"], row["b_tcp_counters_moved"]),
                         ("TCPHPAcks;TCPOrigDataSent;TCPPureAcks", "TCPHPAcks;TCPOFOQueue"))

    def test_print_compare_shows_what_the_kernel_did(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sweep.print_compare(sweep.compare_table(_kernel_compare_rows()))
        lines = out.getvalue().splitlines()
        start = next(i for i, l in enumerate(lines) if l.startswith("what the kernel did"))
        # Columns that moved, four to a table: a heading of names, one of
        # A B B/A under each, a line per case.
        tables = [["server_user_cpu_percent", "server_sys_cpu_percent",
                   "voluntary_cs_per_request", "involuntary_cs_per_request"],
                  ["server_cpus_softirq_percent", "tcp_in_segs", "tcp_out_segs",
                   "tcp_out_rsts"],
                  ["tcp_delayed_acks", "sockstat_tcp_inuse", "sockstat_tcp_mem_pages"]]
        cells = [["12", "14.5", "1.21", "87.9", "70.2", "0.80", "0.1", "0.05", "0.50",
                  "0.0003", "0.0005", "1.67"],
                 ["30.9", "27.9", "0.90", "412345", "500000", "1.21", "412340", "499990",
                  "1.21", "0", "3", "-"],
                 ["3", "0", "0.00", "14", "14", "1.00", "2", "3", "1.50"]]
        for n, (names, values) in enumerate(zip(tables, cells)):
            heading, columns, case = lines[start + 1 + 3 * n:start + 4 + 3 * n]
            self.assertEqual(heading.split(), names)
            self.assertEqual(columns.split(), ["workload", "tls", "clients", "streams"]
                             + ["A", "B", "B/A"] * len(names))
            self.assertEqual(case.split(), ["hello", "off", "1", "10"] + values)
        rest = " ".join(lines[start + 10:])
        self.assertIn("0 in every run: server_cpus_irq_percent, tcp_retrans_segs,", rest)
        self.assertIn("not counted in any run: migrations_per_request", rest)
        self.assertIn("hello     off       1      10  A: TCPHPAcks TCPOrigDataSent TCPPureAcks",
                      lines)
        self.assertIn("hello     off       1      10  B: TCPHPAcks TCPOFOQueue", lines)
        # No line of the block is wider than the ratios' table above it.
        ratios = next(l for l in lines if l.startswith("workload  tls clients streams pairs"))
        self.assertLessEqual(max(len(l) for l in lines[start:]), len(ratios))

    def test_compare_without_kernel_cells(self):
        """A CSV from before the columns: every cell '-' or empty, nothing fails."""
        (entry,) = sweep.compare_table([_row("A: x", "A", 10, 1, 100, 2.0),
                                        _row("B: y", "B", 10, 1, 110, 1.0)])
        self.assertEqual({entry[f"{side}_{c}_median"] for c in kernel.NUMBER_COLUMNS
                          for side in "ab"}, {None})
        self.assertEqual((entry["a_tcp_counters_moved"], entry["b_tcp_counters_moved"]),
                         ([], []))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sweep.print_compare([entry])
        self.assertIn("not counted in any run: server_user_cpu_percent,", out.getvalue())
        self.assertNotIn("other TCP counters that moved", out.getvalue())


class KernelFiguresTest(unittest.TestCase):
    """The kernel's columns drawn like the others: a figure per column, every
    server's line, in every workload's family but capacity and scaling."""

    KERNEL_FIGURES = ["usercpu", "syscpu", "voluntarycs", "involuntarycs", "softirq"]

    def rows(self, **extra):
        rows = [_kernel_row("h2lab epoll/full", "", 1, streams=s, server_user_cpu_percent="12.0",
                            server_sys_cpu_percent="88.0",
                            voluntary_cs_per_request=str(0.5 / s),
                            involuntary_cs_per_request="0.0003",
                            server_cpus_softirq_percent="30.9", **extra) for s in (1, 10)]
        rows.append(_kernel_row("nginx 1.22.1", "", 1, server_user_cpu_percent="40.0",
                                server_sys_cpu_percent="60.0",
                                voluntary_cs_per_request="0.12",
                                involuntary_cs_per_request="0.0010",
                                server_cpus_softirq_percent="25.0", **extra))
        return rows

    def test_figures_and_script(self):
        script, names = plots.gnuplot_script(self.rows(), "CPU (2 CPUs)", "2026-01-01 00:00")
        self.assertEqual(names, ["rps_tls-off_c1", "latency_tls-off_c1", "cpu_tls-off_c1"]
                         + [f"{stem}_tls-off_c1" for stem in self.KERNEL_FIGURES])
        columns = {stem: column for stem, column, _, _, _ in plots.KERNEL_METRICS}
        self.assertEqual(columns, {
            "usercpu": "server_user_cpu_percent", "syscpu": "server_sys_cpu_percent",
            "voluntarycs": "voluntary_cs_per_request",
            "involuntarycs": "involuntary_cs_per_request",
            "softirq": "server_cpus_softirq_percent"})
        voluntary = script[script.index('set output "syscpu_tls-off_c1.png"'):
                           script.index('set output "involuntarycs_tls-off_c1.svg"')]
        self.assertIn("1 0.5 0.5 0.5", voluntary)       # h2lab at 1 stream
        self.assertIn("10 0.05 0.05 0.05", voluntary)   # and at 10
        self.assertIn("10 0.12 0.12 0.12", voluntary)   # peers have these columns
        self.assertIn('title "nginx 1.22.1"', voluntary)
        self.assertIn('set ylabel "server voluntary context switches per request (blocked)" '
                      'noenhanced', voluntary)
        summary = plots.summary_markdown(self.rows())
        self.assertIn("Server voluntary context switches per request - TLS off, 1 client "
                      "(median):", summary)
        self.assertIn("| 10 | 0.05 | 0.12 |", summary)
        self.assertIn("Softirq time of the server's CPUs - TLS off, 1 client", summary)

    def test_every_workload_but_capacity_and_scaling(self):
        rows = [dict(r, workload="churn", clients="50") for r in self.rows()]
        rows += [dict(r, workload="open-loop", workload_variant="25%", load_percent="25")
                 for r in self.rows()]
        rows += [dict(r, workload="open-loop", workload_variant="capacity")
                 for r in self.rows()]
        rows += [dict(r, workload="download", workload_variant="1MiB") for r in self.rows()]
        _, names = plots.gnuplot_script(rows, "CPU", "2026-01-01 00:00")
        for stem in self.KERNEL_FIGURES:
            self.assertIn(f"churn_{stem}_tls-off", names)
            self.assertIn(f"open-loop_{stem}_tls-off_c1_m10", names)
            self.assertIn(f"download-1MiB_{stem}_tls-off_c1", names)
            self.assertNotIn(f"open-loop_capacity_{stem}_tls-off_c1", names)
        self.assertIn("open-loop_capacity_rps_tls-off_c1", names)
        # --scaling: its family against threads keeps requests/s and CPU only.
        rows = [dict(r, server_threads=t) for r in self.rows() for t in ("1", "2")]
        _, names = plots.gnuplot_script(rows, "CPU", "2026-01-01 00:00")
        self.assertIn("scaling_rps_tls-off_c1_m10", names)
        self.assertIn("usercpu_tls-off_c1", names)
        self.assertEqual([n for n in names if n.startswith("scaling_")],
                         ["scaling_rps_tls-off_c1_m1", "scaling_rps_tls-off_c1_m10",
                          "scaling_cpu_tls-off_c1_m1", "scaling_cpu_tls-off_c1_m10"])

    def test_gnuplot_accepts_the_kernel_figures(self):
        if shutil.which("gnuplot") is None:
            self.skipTest("gnuplot not installed")
        with tempfile.TemporaryDirectory() as d:
            files = plots.render(self.rows(), d, "CPU (2 CPUs)", "2026-01-01 00:00",
                                 log=self.fail)
            self.assertEqual(len(files), 2 * (3 + len(self.KERNEL_FIGURES)))
            for path in files:
                self.assertGreater(os.path.getsize(path), 1000, path)


def _load_row(workload, workload_variant, label, variant, rep, clients=1, streams=1,
              **cells):
    """A compare run's row of a load, as run_compare records it."""
    row = dict(_row(label, variant, streams, rep, 100, 2.0), workload=workload,
               workload_variant=workload_variant, clients=str(clients))
    row.update(cells)
    return row


class FakeCompareContext:
    """What run_compare and compare_load use of a Context: the options, notes
    and the recorded rows (measure, start_or_skip and stop_server are
    patched, so nothing is started)."""

    def __init__(self, args):
        self.args = args
        self.notes = []
        self.rows = []

    def note(self, text):
        self.notes.append(text)

    def record(self, row):
        self.rows.append(row)


class CompareWorkloadsTest(unittest.TestCase):
    """--compare over the closed-loop workloads and churn: options, the plan,
    the A B A B order per load, case and repetition, and the ratios per kind
    of workload."""

    def parse_error(self, argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit):
            sweep.parse_args(argv)
        return err.getvalue()

    def test_compare_takes_closed_loop_workloads_and_churn(self):
        for names in ("upload", "churn", "download", "hello,varied,browser,download,upload,churn"):
            args = sweep.parse_args(["--compare", "", "--uring-sqpoll", "--workloads", names])
            self.assertEqual(args.workloads, names.split(","))
            self.assertEqual(args.compare, ("", "--uring-sqpoll"))

    def test_compare_refuses_open_loop_mixed_and_scaling_saying_why(self):
        compare = ["--compare", "", "--uring-sqpoll"]
        text = self.parse_error(compare + ["--workloads", "hello,open-loop"])
        self.assertIn("--compare takes the closed-loop workloads and churn, not open-loop: "
                      "its fixed-rate levels come from a capacity run of its own server",
                      text)
        text = self.parse_error(compare + ["--workloads", "mixed"])
        self.assertIn("not mixed: it opens its idle connections once per server and holds "
                      "them across its runs", text)
        text = self.parse_error(compare + ["--scaling"])
        self.assertIn("--compare measures at one thread count: --scaling does not combine",
                      text)
        # Without --compare, both workloads are a sweep's as before.
        self.assertEqual(sweep.parse_args(["--workloads", "open-loop,mixed"]).workloads,
                         ["open-loop", "mixed"])

    def test_churn_connections_take_a_list_and_make_one_case_each(self):
        self.assertEqual(sweep.parse_args([]).churn_connections, [2000])
        self.assertEqual(sweep.parse_args(["--smoke"]).churn_connections, [50])
        args = sweep.parse_args(["--churn-connections", "250,500,1000,2000",
                                 "--clients", "1,5", "--streams", "1,10"])
        self.assertEqual(args.churn_connections, [250, 500, 1000, 2000])
        (churn,) = workloads.loads("churn")
        # In the order given: the x axis of churn's figures.
        self.assertEqual(sweep.load_cases(args, churn),
                         [(250, 1), (500, 1), (1000, 1), (2000, 1)])
        self.assertEqual(sweep.load_cases(args, HELLO), [(1, 1), (1, 10), (5, 1), (5, 10)])
        self.assertEqual(sweep.load_cases(sweep.parse_args(["--churn-connections", "900,300"]),
                                          churn), [(900, 1), (300, 1)])
        self.assertIn("argument --churn-connections: '0': give integers >= 1",
                      self.parse_error(["--churn-connections", "0"]))

    def pairs(self):
        """Two pairs, the second with nginx as A: it sits out upload."""
        h2lab = servers.ServerSpec(servers.H2LAB, False, "epoll", "full", variant="A")
        other = servers.ServerSpec(servers.H2LAB, False, "uring", "full", variant="B")
        nginx = servers.ServerSpec("nginx", False, threads=1, variant="A")
        return [(h2lab, other), (nginx, other)]

    def test_planned_runs_of_a_compare_count_every_load_and_case(self):
        args = sweep.parse_args(["--compare", "", "--x", "--workloads", "download,churn,upload",
                                 "--clients", "1,5", "--streams", "1,10",
                                 "--churn-connections", "100,200,300", "--repetitions", "2"])
        # A and B per repetition: 2 runs x 2 repetitions = 4 per case and pair.
        # download: 3 sizes x 4 cases x 2 pairs; churn: 3 connection counts x
        # 2 pairs; upload: 4 cases, nginx's pair sitting out.
        self.assertEqual(sweep.planned_runs(args, [], self.pairs()),
                         4 * (3 * 4 * 2 + 3 * 2 + 4 * 1))

    def run_compare(self, argv, sits_out=lambda spec, load: False):
        """run_compare with measure, start_or_skip and stop_server faked:
        returns (measured, starts, ctx); measured is (label, load, clients,
        streams, repetition) per run in order, starts start_or_skip's
        (label, load, runs left). sits_out(spec, load): start_or_skip
        finds that spec cannot serve load."""
        ctx = FakeCompareContext(sweep.parse_args(argv))
        measured, starts, stopped = [], [], []

        def start_or_skip(ctx_, spec, progress, runs, load):
            starts.append((spec.label, load, runs))
            if sits_out(spec, load):
                return None
            running = mock.Mock()
            running.spec = spec
            return running

        def measure(ctx_, running, clients, streams, rep, load):
            measured.append((running.spec.label, load, clients, streams, rep))
            return {"label": running.spec.label}

        with mock.patch.object(sweep, "start_or_skip", start_or_skip), \
                mock.patch.object(sweep, "measure", measure), \
                mock.patch.object(sweep, "stop_server",
                                  lambda ctx_, running: stopped.append(running)):
            sweep.run_compare(ctx, self.pairs(), mock.Mock())
        self.assertEqual(len(stopped), len(measured))   # every started server stopped
        self.assertEqual([r["label"] for r in ctx.rows], [m[0] for m in measured])
        return measured, starts, ctx

    def test_run_compare_alternates_a_and_b_per_load_case_and_repetition(self):
        measured, starts, ctx = self.run_compare(
            ["--compare", "", "--x", "--workloads", "hello,churn,upload", "--clients", "1",
             "--streams", "1", "--churn-connections", "100,200", "--repetitions", "2"])
        (hello,), (churn,), (upload,) = map(workloads.loads, ("hello", "churn", "upload"))
        (epoll, uring), (nginx, _) = [(a.label, b.label) for a, b in self.pairs()]

        def alternating(a, load, clients):
            """A B A B: the two repetitions of one case."""
            return [(a, load, clients, 1, 1), (uring, load, clients, 1, 1),
                    (a, load, clients, 1, 2), (uring, load, clients, 1, 2)]
        self.assertEqual(measured,
                         alternating(epoll, hello, 1) + alternating(nginx, hello, 1)
                         + alternating(epoll, churn, 100) + alternating(epoll, churn, 200)
                         + alternating(nginx, churn, 100) + alternating(nginx, churn, 200)
                         + alternating(epoll, upload, 1))
        # Each start is for its own load (the content check), with the runs
        # left of its pair and load: what it takes off the plan should it fail.
        self.assertEqual([runs for _, load, runs in starts if load == churn],
                         [8, 7, 6, 5, 4, 3, 2, 1] * 2)
        self.assertEqual(ctx.notes, [
            "skip A: nginx vs B: h2lab uring/full for upload 1MiB: nginx cannot echo a "
            "request body (no echo module in Debian's nginx)"])

    def test_blocking_is_compared_at_one_client_only(self):
        """A pair with h2lab's blocking side runs only the one-client cases
        (and churn not at all: a burst is many clients), saying so; the plan
        counts what runs."""
        argv = ["--compare", "--dispatch blocking", "--dispatch epoll", "--workloads",
                "hello,churn", "--clients", "1,10", "--streams", "1,10",
                "--churn-connections", "100", "--repetitions", "2", "--tls", "off",
                "--engines", "full"]
        args = sweep.parse_args(argv)
        pairs = sweep.compare_pairs(args, 1)
        self.assertEqual([(a.dispatcher, b.dispatcher) for a, b in pairs],
                         [("blocking", "epoll")])
        (hello,), (churn,) = map(workloads.loads, ("hello", "churn"))
        self.assertEqual(sweep.compare_cases(args, pairs[0], hello), [(1, 1), (1, 10)])
        self.assertEqual(sweep.compare_cases(args, pairs[0], churn), [])
        self.assertEqual(sweep.planned_runs(args, [], pairs), 2 * 2 * 2)
        ctx = FakeCompareContext(args)
        measured = []

        def start_or_skip(ctx_, spec, progress, runs, load):
            running = mock.Mock()
            running.spec = spec
            return running

        def measure(ctx_, running, clients, streams, rep, load):
            measured.append((running.spec.dispatcher, load.workload, clients, streams, rep))
            return {"label": running.spec.label}

        with mock.patch.object(sweep, "start_or_skip", start_or_skip), \
                mock.patch.object(sweep, "measure", measure), \
                mock.patch.object(sweep, "stop_server", lambda ctx_, running: None):
            sweep.run_compare(ctx, pairs, mock.Mock())
        self.assertEqual({clients for _, _, clients, _, _ in measured}, {1})
        self.assertEqual(len(measured), 8)
        self.assertEqual(len(ctx.notes), 2)
        self.assertIn("for hello with more than 1 client: a side serves one client at a "
                      "time", ctx.notes[0])
        self.assertIn("for churn with more than 1 client", ctx.notes[1])

    def test_run_compare_goes_on_after_a_side_that_cannot_serve_a_load(self):
        """B (both pairs') fails churn's start: each pair's churn ends there
        (its A run has no partner), the next pair and load still run."""
        measured, starts, _ = self.run_compare(
            ["--compare", "", "--x", "--workloads", "churn,hello", "--clients", "1",
             "--streams", "1", "--churn-connections", "100,200"],
            sits_out=lambda spec, load: spec.variant == "B" and load.workload == "churn")
        loads = [(label, load.workload, clients) for label, load, clients, _, _ in measured]
        self.assertEqual(loads, [("A: h2lab epoll/full", "churn", 100),
                                 ("A: nginx", "churn", 100),
                                 ("A: h2lab epoll/full", "hello", 1),
                                 ("B: h2lab uring/full", "hello", 1),
                                 ("A: nginx", "hello", 1),
                                 ("B: h2lab uring/full", "hello", 1)])
        # The failed B start took the 3 runs left of its pair's churn off.
        self.assertEqual(starts[:2], [("A: h2lab epoll/full", workloads.loads("churn")[0], 4),
                                      ("B: h2lab uring/full", workloads.loads("churn")[0], 3)])

    def test_upload_body_is_written_where_compare_measures(self):
        """measure (a sweep's and a compare's) gets upload's URL and body file
        from request_args, which writes the file once per work directory."""
        (upload,) = workloads.loads("upload")
        with tempfile.TemporaryDirectory() as d:
            ctx = mock.Mock(work_dir=d)
            running = mock.Mock(url="http://127.0.0.1:1234/")
            url, extra = sweep.request_args(ctx, running, upload, None)
            self.assertEqual(url, "http://127.0.0.1:1234/echo")
            body = extra[extra.index("-d") + 1]
            self.assertEqual(os.path.dirname(body), d)
            self.assertEqual(os.path.getsize(body), workloads.UPLOAD_BYTES)

    def test_compare_table_keeps_two_loads_apart_with_transfer_ratios(self):
        """download 1MiB and 64MiB at the same case: two entries, each of GB/s
        and CPU per GB."""
        rows = []
        for variant, a_gbps, b_gbps, a_cpugb, b_cpugb in (("1MiB", 2e9, 3e9, 0.5, 0.4),
                                                          ("64MiB", 4e9, 2e9, 0.25, 0.5)):
            for rep, b_scale in ((1, 1.0), (2, 1.1), (3, 0.9)):
                rows.append(_load_row("download", variant, "A: x", "A", rep,
                                      bytes_per_s=str(a_gbps),
                                      server_cpu_s_per_gb=str(a_cpugb)))
                rows.append(_load_row("download", variant, "B: y", "B", rep,
                                      bytes_per_s=str(b_gbps * b_scale),
                                      server_cpu_s_per_gb=str(b_cpugb)))
        small, big = sweep.compare_table(rows)
        self.assertEqual([(e["workload"], e["workload_variant"], e["pairs"])
                          for e in (small, big)],
                         [("download", "1MiB", 3), ("download", "64MiB", 3)])
        self.assertAlmostEqual(small["gbps_ratio_min"], 1.35)
        self.assertAlmostEqual(small["gbps_ratio_median"], 1.5)
        self.assertAlmostEqual(small["gbps_ratio_max"], 1.65)
        self.assertAlmostEqual(small["cpugb_ratio_median"], 0.8)
        self.assertAlmostEqual(small["a_gbps_median"], 2e9)
        self.assertAlmostEqual(small["b_gbps_median"], 3e9)
        self.assertAlmostEqual(big["gbps_ratio_median"], 0.5)
        self.assertAlmostEqual(big["cpugb_ratio_median"], 2.0)
        # Every entry has every kind's cells; another kind's are empty.
        self.assertEqual((small["rps_ratio_median"], small["conns_ratio_median"]), (None, None))
        # A B pair whose loads differ is no pair of runs.
        (entry,) = sweep.compare_table([rows[0], dict(rows[1], workload_variant="64MiB")]
                                       + rows[2:6])
        self.assertEqual(entry["pairs"], 2)

    def test_compare_table_churn_ratios_are_per_connection(self):
        rows = []
        for rep, (a_conns, b_conns, a_cpu, b_cpu) in enumerate(
                ((1000, 1200, 50.0, 40.0), (1000, 1300, 50.0, 45.0), (1000, 1100, 50.0, 35.0)), 1):
            rows.append(_load_row("churn", "", "A: x", "A", rep, clients=500,
                                  connections_per_s=str(a_conns),
                                  server_cpu_us_per_request=str(a_cpu)))
            rows.append(_load_row("churn", "", "B: y", "B", rep, clients=500,
                                  connections_per_s=str(b_conns),
                                  server_cpu_us_per_request=str(b_cpu)))
        (entry,) = sweep.compare_table(rows)
        self.assertEqual((entry["workload"], entry["clients"], entry["streams"]),
                         ("churn", 500, 1))
        self.assertEqual((entry["conns_ratio_min"], entry["conns_ratio_median"],
                          entry["conns_ratio_max"]), (1.1, 1.2, 1.3))
        self.assertEqual((entry["cpu_ratio_min"], entry["cpu_ratio_median"],
                          entry["cpu_ratio_max"]), (0.7, 0.8, 0.9))
        self.assertEqual((entry["a_conns_median"], entry["b_conns_median"]), (1000, 1200))
        self.assertEqual((entry["rps_ratio_median"], entry["gbps_ratio_median"]), (None, None))

    def mixed_table(self):
        """One pair over hello, churn at 500 connections and download 1MiB
        (tcp_in_segs: a kernel column that moved, so the kernel block has a
        table)."""
        rows = [_load_row("hello", "", "A: x", "A", 1, requests_per_s="100"),
                _load_row("hello", "", "B: y", "B", 1, requests_per_s="150"),
                _load_row("churn", "", "A: x", "A", 1, clients=500, connections_per_s="1000",
                          server_cpu_us_per_request="50"),
                _load_row("churn", "", "B: y", "B", 1, clients=500, connections_per_s="1250",
                          server_cpu_us_per_request="40"),
                _load_row("download", "1MiB", "A: x", "A", 1, bytes_per_s="2e9",
                          server_cpu_s_per_gb="0.5"),
                _load_row("download", "1MiB", "B: y", "B", 1, bytes_per_s="2.5e9",
                          server_cpu_s_per_gb="0.6")]
        return sweep.compare_table([dict(r, tcp_in_segs="100") for r in rows])

    def test_compare_csv_carries_each_loads_ratios(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "compare.csv")
            sweep.write_compare_csv(self.mixed_table(), path)
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                hello, churn, download = list(reader)
                header = reader.fieldnames
        # The load first, then the case and every kind's ratios.
        self.assertEqual(header[:8], ["workload", "workload_variant", "tls", "clients",
                                      "streams", "pairs", "a_label", "b_label"])
        self.assertEqual([k for k in header[8:33] if k.endswith("_ratio_median")],
                         ["rps_ratio_median", "cpu_ratio_median", "conns_ratio_median",
                          "gbps_ratio_median", "cpugb_ratio_median"])
        self.assertEqual(header[-4:], ["a_tcp_counters_moved", "a_cs_source",
                                       "b_tcp_counters_moved", "b_cs_source"])
        self.assertEqual((hello["workload"], hello["rps_ratio_median"],
                          hello["conns_ratio_median"], hello["gbps_ratio_median"]),
                         ("hello", "1.5000", "", ""))
        self.assertEqual((churn["workload"], churn["clients"], churn["conns_ratio_median"],
                          churn["cpu_ratio_median"], churn["rps_ratio_median"]),
                         ("churn", "500", "1.2500", "0.8000", ""))
        self.assertEqual((download["workload"], download["workload_variant"],
                          download["gbps_ratio_median"], download["cpugb_ratio_median"],
                          download["a_gbps_median"]),
                         ("download", "1MiB", "1.2500", "1.2000", "2000000000.0000"))

    def test_print_compare_shows_each_loads_ratios_by_row(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sweep.print_compare(self.mixed_table())
        lines = out.getvalue().splitlines()

        def row_after(throughput):
            """The ratios' heading of a kind of workload, and the row below it,
            split; every heading starts with the load and the case."""
            i = next(i for i, l in enumerate(lines) if f" {throughput} B/A " in l)
            self.assertTrue(lines[i].startswith("workload       tls clients streams pairs"))
            return lines[i].split(), lines[i + 1].split()
        heading, row = row_after("req/s")
        self.assertEqual(heading[5:11], ["req/s", "B/A", "CPU/req", "B/A", "A", "req/s"])
        self.assertEqual(row[:8], ["hello", "off", "1", "1", "1", "1.500/1.500/1.500",
                                   "1.000/1.000/1.000", "100"])
        heading, row = row_after("conn/s")
        self.assertEqual(heading[5:11], ["conn/s", "B/A", "CPU/conn", "B/A", "A", "conn/s"])
        self.assertEqual(row[:9], ["churn", "off", "500", "1", "1", "1.250/1.250/1.250",
                                   "0.800/0.800/0.800", "1000", "1250"])
        heading, row = row_after("GB/s")
        self.assertEqual(heading[5:11], ["GB/s", "B/A", "CPU/GB", "B/A", "A", "GB/s"])
        # The medians in GB/s; the load with its variant.
        self.assertEqual(row[:10], ["download", "1MiB", "off", "1", "1", "1",
                                    "1.250/1.250/1.250", "1.200/1.200/1.200", "2", "2.5"])
        self.assertIn("churn: clients = connections per burst, one request each", lines)
        # The kernel block names the load on each case's line too.
        kernel_block = lines[next(i for i, l in enumerate(lines)
                                  if l.startswith("what the kernel did")):]
        cases = [l.split()[:5] for l in kernel_block
                 if l.startswith(("workload", "hello", "churn", "download"))]
        self.assertEqual(cases, [["workload", "tls", "clients", "streams", "A"],
                                 ["hello", "off", "1", "1", "100"],
                                 ["churn", "off", "500", "1", "100"],
                                 ["download", "1MiB", "off", "1", "1"]])


if __name__ == "__main__":
    unittest.main()
