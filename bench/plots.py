"""Figures and a summary from a run's CSV rows.

Per workload (the CSV's workload column; rows without one are hello) and
workload variant, one figure per (TLS, clients) and metric, x = streams per
client, one line per configuration (h2lab dispatcher/engine, or peer), the
peers on the same axes: the seed's figures, plus mean request time, server
CPU per request, and from h2lab's own /stats syscalls per request and
requests per wake-up (h2lab lines only). download and upload add GB/s and
server CPU seconds per GB; churn draws connections/s, CPU per connection and
accept queue overflows against connections per burst; open-loop draws
p50/p99/p99.9 against the load level. Each of these families adds what the
kernel did (bench/kernel.py), against the same x and with every server's line: the
server's user and system CPU %, its voluntary and involuntary context
switches per request (churn: per connection) and the softirq % of its CPUs
(open-loop's capacity runs do not). With several thread counts (--scaling)
requests/s and CPU per request are drawn against server threads as well,
and every line name carries its thread count. hello's figures keep their
old names (rps_tls-on_c1); the others are prefixed with the workload and
variant (download-1MiB_gbps_tls-on_c1). gnuplot renders each figure to SVG
and PNG from one generated script, plots.gp, kept beside the CSV so that a
figure can be restyled and re-rendered by hand (`gnuplot plots.gp`).
With several repetitions a point is the median and the error bar spans
min..max, so noise is visible instead of averaged away.
"""

import dataclasses
import os
import re
import statistics
import subprocess

METRICS = (
    # (file stem, CSV column, axis label, scale, figure title)
    ("rps", "requests_per_s", "requests/s (thousands)", 1e-3, "Requests/s"),
    ("latency", "mean_request_us", "mean request time (µs)", 1.0,
     "Mean request time"),
    ("cpu", "server_cpu_us_per_request", "server CPU time per request (µs)", 1.0,
     "Server CPU per request"),
    # From h2lab's /stats: peers' cells are empty, so they have no line here,
    # and a CSV from before these columns existed simply has no such figure.
    ("syscalls", "syscalls_per_request", "server system calls per request", 1.0,
     "Server syscalls per request"),
    ("wakeups", "requests_per_wait", "requests per wake-up (epoll_wait, io_uring_enter)",
     1.0, "Server requests per wake-up"),
)


# Extra metrics per workload, beside METRICS (drawn for every closed-loop one).
TRANSFER_METRICS = (
    ("gbps", "bytes_per_s", "received GB/s (h2load, frames included)", 1e-9, "Throughput"),
    ("cpugb", "server_cpu_s_per_gb", "server CPU seconds per GB", 1.0,
     "Server CPU per GB"),
)
CHURN_METRICS = (
    ("conns", "connections_per_s", "connections/s (one request each)", 1.0,
     "Connections/s"),
    ("cpu", "server_cpu_us_per_request", "server CPU time per connection (µs)", 1.0,
     "Server CPU per connection"),
    # Connections the accept queue had no room for (machine-wide, per run):
    # with a small --backlog they wait for a SYN retransmission.
    ("listenoverflows", "tcp_listen_overflows",
     "accept queue overflows in the run (ListenOverflows)", 1.0, "Accept queue overflows"),
)
OPEN_LOOP_METRICS = (
    ("p50", "p50_request_us", "p50 request time (µs)", 1.0, "p50 request time"),
    ("p99", "p99_request_us", "p99 request time (µs)", 1.0, "p99 request time"),
    ("p999", "p999_request_us", "p99.9 request time (µs)", 1.0, "p99.9 request time"),
)
SCALING_METRICS = METRICS[:1] + METRICS[2:3]
# What the kernel did (bench/kernel.py, docs/KERNEL.md), added to each
# workload's figures (not to open-loop's capacity runs nor to the scaling
# ones): every server has these cells, peers included, and a CSV from before
# the columns existed simply has no such figures. One column per figure, as
# above, so that a line is one configuration in every figure (user and
# system in one figure would double the lines; their sum is
# server_cpu_percent).
KERNEL_METRICS = (
    ("usercpu", "server_user_cpu_percent", "server user CPU time (% of one CPU)", 1.0,
     "Server user CPU time"),
    ("syscpu", "server_sys_cpu_percent", "server system CPU time (% of one CPU)", 1.0,
     "Server system CPU time"),
    ("voluntarycs", "voluntary_cs_per_request",
     "server voluntary context switches per request (blocked)", 1.0,
     "Server voluntary context switches per request"),
    ("involuntarycs", "involuntary_cs_per_request",
     "server involuntary context switches per request (preempted)", 1.0,
     "Server involuntary context switches per request"),
    ("softirq", "server_cpus_softirq_percent", "softirq time of the server's CPUs (% of them)",
     1.0, "Softirq time of the server's CPUs"),
)


@dataclasses.dataclass(frozen=True)
class View:
    """One family of figures: which rows, which metrics, what x and what key."""
    prefix: str                 # file-name prefix ("" for hello)
    heading: str                # figure-title subject, e.g. "download 1MiB"
    rows: list
    metrics: tuple
    x: str                      # CSV column on the x axis
    xlabel: str
    key: tuple                  # CSV columns that split figures


def workload_of(row):
    """A row's workload: hello for CSVs from before the column existed."""
    return row.get("workload") or "hello"


def views(rows):
    """The figure families of rows, in workload order."""
    threads = {r.get("server_threads") for r in rows if usable(r)}
    by_load = {}
    for r in rows:
        by_load.setdefault((workload_of(r), _variant(r)), []).append(r)
    out = []
    for (workload, variant), load_rows in by_load.items():
        prefix = "" if workload == "hello" else _slug(f"{workload} {variant}".strip()) + "_"
        heading = f"{workload} {variant}".strip()
        streams_x = ("streams", "streams per client (h2load -m)")
        if workload == "churn":
            out.append(View(prefix, heading, load_rows, CHURN_METRICS + KERNEL_METRICS,
                            "clients", "connections per burst (h2load -c N -n N)", ("tls",)))
        elif workload == "open-loop":
            fixed = [r for r in load_rows if r.get("load_percent")]
            closed = [r for r in load_rows if not r.get("load_percent")]
            out.append(View(prefix, heading, fixed, OPEN_LOOP_METRICS + KERNEL_METRICS,
                            "load_percent", "offered load (% of the closed-loop capacity)",
                            ("tls", "clients", "streams")))
            out.append(View(prefix + "capacity_", heading + " capacity", closed,
                            METRICS[:3], *streams_x, ("tls", "clients")))
        else:
            metrics = METRICS + (TRANSFER_METRICS if workload in ("download", "upload")
                                 else ()) + KERNEL_METRICS
            out.append(View(prefix, heading, load_rows, metrics, *streams_x,
                            ("tls", "clients")))
        if len(threads) > 1 and workload != "open-loop":
            closed = [r for r in load_rows if not r.get("load_percent")]
            out.append(View(prefix + "scaling_", heading + " scaling", closed,
                            SCALING_METRICS, "server_threads",
                            "server threads / workers", ("tls", "clients", "streams")))
    return out


def _variant(row):
    """The variant a figure family is keyed on (open-loop's levels share one)."""
    if workload_of(row) == "open-loop":
        return ""
    return row.get("workload_variant") or ""


def _slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def usable(row):
    """Whether a row measured something: finished and with successful requests."""
    return row.get("status") == "ok" and _int(row.get("succeeded")) > 0


def group(rows, column, x="streams", key=("tls", "clients")):
    """{key values: {label: {x: [values]}}} over usable rows.

    Dicts keep insertion order, so lines appear in the order they were run.
    With several thread counts among the rows (--scaling), a line's name
    carries its count unless x is the thread count itself.
    """
    threads = {r.get("server_threads") for r in rows if usable(r)}
    figures = {}
    for row in rows:
        if not usable(row) or row.get(column) in (None, "") or row.get(x) in (None, ""):
            continue
        label = row["label"]
        if len(threads) > 1 and x != "server_threads":
            label += f" ({row['server_threads']}T)"
        k = tuple(_number(row[c]) for c in key)
        series = figures.setdefault(k, {}).setdefault(label, {})
        series.setdefault(_number(row[x]), []).append(float(row[column]))
    return figures


def _number(text):
    """A key or x cell: an int where it is one ("on" stays text)."""
    try:
        return int(text)
    except (TypeError, ValueError):
        return text


def figure_name(stem, tls, clients, prefix=""):
    """File name (without extension) of one figure."""
    return f"{prefix}{stem}_tls-{tls}_c{clients}"


def _key_text(view, k):
    """The figure-splitting values in a file name and a title."""
    values = dict(zip(view.key, k))
    name_parts = [f"tls-{values['tls']}"]
    title_parts = [f"TLS {values['tls']}"]
    if "clients" in values:
        c = values["clients"]
        name_parts.append(f"c{c}")
        title_parts.append(f"{c} client{'s' if c != 1 else ''}")
    if "streams" in values:
        name_parts.append(f"m{values['streams']}")
        title_parts.append(f"{values['streams']} streams")
    return "_".join(name_parts), ", ".join(title_parts)


def figures(rows):
    """(name, heading subject, view, metric, series) for every figure, in order."""
    out = []
    for view in views(rows):
        for stem, column, ylabel, scale, title in view.metrics:
            for k, series in sorted(group(view.rows, column, view.x, view.key).items()):
                name_text, title_text = _key_text(view, k)
                name = f"{view.prefix}{stem}_{name_text}"
                subject = f"{view.heading}: " if view.heading != "hello" else ""
                out.append((name, f"{subject}{title} - {title_text}", view,
                            (stem, column, ylabel, scale, title), series))
    return out


def gnuplot_script(rows, machine, date, png_terminal="pngcairo"):
    """The gnuplot script for every figure, and the figure names it writes."""
    parts = ["# Generated by bench/sweep.py; re-render with: gnuplot plots.gp",
             "set encoding utf8"]
    names = []
    for name, heading, view, (_, _, ylabel, scale, _), series in figures(rows):
        names.append(name)
        parts.append(_figure(name, f"{heading}\\n{machine}, {date}", ylabel, scale, series,
                             png_terminal, view.xlabel))
    return "\n".join(parts) + "\n", names


def _figure(name, heading, ylabel, scale, series, png_terminal,
            xlabel="streams per client (h2load -m)"):
    """One figure: data blocks, axes, then the same plot to SVG and PNG."""
    spread = any(len(v) > 1 for points in series.values() for v in points.values())
    lines, plots = [], []
    for i, (label, points) in enumerate(series.items()):
        block = f"${name.replace('-', '_')}_{i}"
        lines.append(f"{block} << EOD")
        for streams in sorted(points):
            values = [v * scale for v in points[streams]]
            lines.append(f"{streams} {statistics.median(values):.6g} "
                         f"{min(values):.6g} {max(values):.6g}")
        lines.append("EOD")
        dash = 1 if label.split(": ")[-1].startswith("h2lab") else 2
        style = "yerrorlines" if spread else "linespoints"
        using = "1:2:3:4" if spread else "1:2"
        plots.append(f'{block} using {using} with {style} lw 2 pt 7 ps 0.8 dt {dash} '
                     f'title "{_quote(label)}"')
    lines += [
        "reset",
        f'set title "{_quote(heading)}" noenhanced',
        f'set xlabel "{xlabel}" noenhanced',
        f'set ylabel "{ylabel}" noenhanced',   # epoll_wait: no subscript
        "set grid",
        # Beside the axes: a key inside would hide the points it names.
        "set key outside right top vertical Left reverse width 1 noenhanced box",
        "set xrange [0:*]",
        "set yrange [0:*]",
        "set offsets 0, 2, graph 0.05, 0",
        'set terminal svg size 960,600 dynamic font "sans,13" background rgb "white"',
        f'set output "{name}.svg"',
        "plot " + ", \\\n     ".join(plots),
        f'set terminal {png_terminal} size 1280,800 font "sans,14" background rgb "white"',
        f'set output "{name}.png"',
        "replot",
        "set output",
    ]
    return "\n".join(lines)


def _quote(text):
    """Text safe inside a gnuplot double-quoted string (\\n kept as newline)."""
    return text.replace('"', "'")


def png_terminal():
    """'pngcairo' when gnuplot has it (antialiased), else 'png', else None."""
    try:
        done = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = {line.split()[0] for line in (done.stdout + done.stderr).splitlines()
             if line.strip()}
    for name in ("pngcairo", "png"):
        if name in names:
            return name
    return None


def render(rows, out_dir, machine, date, log=print):
    """Write plots.gp into out_dir and run gnuplot; return the figure files.

    A missing gnuplot is a note, not an error: the CSV is the result, the
    figures are a view of it.
    """
    terminal = png_terminal()
    if terminal is None:
        log("note: gnuplot with a png terminal not found; no figures "
            "(apt-get install gnuplot-nox)")
        return []
    script, names = gnuplot_script(rows, machine, date, terminal)
    if not names:
        log("note: no successful runs, so no figures")
        return []
    with open(os.path.join(out_dir, "plots.gp"), "w", encoding="utf-8") as f:
        f.write(script)
    done = subprocess.run(["gnuplot", "plots.gp"], cwd=out_dir, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        log(f"warning: gnuplot failed: {done.stderr.strip()[-500:]}")
    return [os.path.join(out_dir, f"{n}.{ext}") for n in names for ext in ("svg", "png")]


def summary_markdown(rows):
    """Markdown tables, a section per workload: one per figure, a cell the
    median and, over several repetitions, its min–max spread."""
    out, section = [], None
    for name, heading, view, (stem, _, _, scale, title), series in figures(rows):
        if view.heading != section:
            section = view.heading
            out.append(f"\n## {section}\n")
        fmt = _thousands if stem == "rps" else _significant
        labels = list(series)
        xs = sorted({x for points in series.values() for x in points})
        out.append(f"\n{heading} (median{', min–max' if _repeated(series) else ''}):\n")
        out.append(f"| {view.x} | " + " | ".join(labels) + " |")
        out.append("|---:|" + "---:|" * len(labels))
        for x in xs:
            cells = [_cell(series[l][x], fmt) if x in series[l] else "-" for l in labels]
            out.append(f"| {x} | " + " | ".join(cells) + " |")
    return "\n".join(out).lstrip("\n") + "\n"


def _repeated(series):
    return any(len(v) > 1 for points in series.values() for v in points.values())


def _cell(values, fmt):
    """The median, and min–max when there are several values."""
    text = fmt(statistics.median(values))
    if len(values) > 1:
        text += f" ({fmt(min(values))}–{fmt(max(values))})"
    return text


def _thousands(value):
    return f"{value / 1000:.1f}k"


def _significant(value):
    """Three significant digits: CPU per request is often well under 1 µs."""
    return f"{value:.3g}"


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0
