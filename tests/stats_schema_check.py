#!/usr/bin/python3
"""Checks a /stats answer (stdin) against the field table of docs/STATS.md.

usage: stats_schema_check.py docs/STATS.md < stats.json

Fails (exit 1, naming the fields) when the answer is not JSON, has a field
the table does not document, or lacks a documented one. The table documents
`server.threads[]` as "the same fields as totals": each thread's fields are
checked against `server.totals.*`; `goaways` children are error code names.
"""
import json
import re
import sys

ERROR_CODES = {
    "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
    "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
    "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED", "OTHER",
}


def documented_fields(markdown):
    """The backticked names in the first column of the field table."""
    return set(re.findall(r"^\| `([a-z0-9_.\[\]]+)` \|", markdown, re.MULTILINE))


def paths(value, prefix=""):
    """Every field path of a JSON value: objects by key, arrays as []."""
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from paths(child, path)
    elif isinstance(value, list):
        for child in value:
            yield from paths(child, prefix + "[]")


def normalise(path):
    """threads[] fields are totals fields; goaways are keyed by code name."""
    path = re.sub(r"^server\.threads\[\]\.(?!name$)", "server.totals.", path)
    match = re.match(r"^(server\.totals\.goaways)\.(\w+)$", path)
    if match:
        return match.group(1) if match.group(2) in ERROR_CODES else path
    return path


def main():
    with open(sys.argv[1], encoding="utf-8") as doc:
        documented = documented_fields(doc.read())
    try:
        answer = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(f"not JSON: {e}")
        return 1
    sent = {normalise(p) for p in paths(answer)}
    undocumented = sorted(sent - documented)
    missing = sorted(documented - sent)
    # Arrays and objects that may be empty in a given answer.
    missing = [m for m in missing
               if not m.startswith("server.totals.latency.buckets[]")]
    if undocumented:
        print("sent but not documented in docs/STATS.md:", ", ".join(undocumented))
    if missing:
        print("documented but not sent:", ", ".join(missing))
    if not documented:
        print("no field table found in", sys.argv[1])
        return 1
    return 1 if undocumented or missing else 0


if __name__ == "__main__":
    sys.exit(main())
