"""Unit tests of the bench harness's pure parts: parsing, planning, ratios, plots.

They run no server and no h2load; //tests:bench_smoke_test runs the real thing.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loadgen  # noqa: E402
import plots  # noqa: E402
import procs  # noqa: E402
import servers  # noqa: E402
import sweep  # noqa: E402

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
        """A fake h2load that prints the phase lines: the window is main-phase."""
        script = ("echo 'Main benchmark duration is started for thread #0.'; sleep 0.2; "
                  "echo 'Main benchmark duration is over for thread #0.'; "
                  "echo 'finished in 1s, 10.00 req/s, 1B/s'")
        text, window = loadgen.run(procs.Registry(), ["sh", "-c", script, "-t", "1"],
                                   [os.getpid()], timeout=10)
        self.assertIn("finished in", text)
        self.assertEqual(window["method"], "main-phase")
        self.assertGreater(window["wall_s"], 0.15)
        self.assertEqual(window["exit_code"], 0)

    def test_run_falls_back_to_whole_run(self):
        text, window = loadgen.run(procs.Registry(), ["sh", "-c", "echo hi"],
                                   [os.getpid()], timeout=10)
        self.assertEqual(window["method"], "whole-run")
        self.assertIsNone(window["client_cpu_s"])


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
            argv = servers.configure_nginx("nginx", d, 1234, ("c.pem", "k.pem"), 1)
            conf = _read(argv[argv.index("-c") + 1])
            self.assertIn("listen 127.0.0.1:1234 ssl http2;", conf)
            self.assertIn("keepalive_requests 1000000000;", conf)
            self.assertIn('return 200 "Hello World\\n";', conf)
            argv = servers.configure_h2o("h2o", d, 1234, None, 1)
            conf = _read(argv[-1])
            self.assertIn("num-threads: 1", conf)
            self.assertNotIn("ssl:", conf)
            argv = servers.configure_nghttpd("nghttpd", d, 1234, None, 1)
            self.assertEqual(argv[-2:], ["--no-tls", "1234"])
            with open(os.path.join(d, "htdocs", "index.html"), "rb") as f:
                self.assertEqual(f.read(), b"Hello World\n")


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


if __name__ == "__main__":
    unittest.main()
