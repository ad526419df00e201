#!/usr/bin/python3
"""httpx (Debian's python3-httpx, HTTP/2 through h2) against h2lab's
/bytes/N and /echo.

Usage: httpx_client.py URL...   (http:// is h2c with prior knowledge,
https:// is h2 over TLS taking any certificate)

One httpx.Client(http2=True) per URL: GET /bytes/N for each N of
$H2LAB_BYTES, POST /echo for each size of $H2LAB_ECHO (random octets, fixed
seed), every octet checked here, and the response must say HTTP/2.
Prints "PASS URL what" or "FAIL URL what: why" per check; exits 1 on any FAIL.
"""

import os
import random
import sys
import urllib.parse

import httpx

PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789\n"
BYTES = [int(n) for n in os.environ.get(
    "H2LAB_BYTES", "0 1 36 37 16383 16384 16385 40000 65535 65536 100003 1048589").split()]
ECHO = [int(n) for n in os.environ.get("H2LAB_ECHO", "1 16385 1048576").split()]


def expected_bytes(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]  # octet i is PATTERN[i % 37]


def verdict(response, want):
    got = response.content
    if response.http_version != "HTTP/2":
        return "spoke %s" % response.http_version
    if response.status_code != 200:
        return "status %d" % response.status_code
    if got != want:
        first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                     min(len(got), len(want)))
        return "%d octets (want %d), first difference at octet %d" % (len(got), len(want), first)
    return None


def main():
    failed = False
    rng = random.Random(3)
    for url in sys.argv[1:]:
        # Cleartext: HTTP/2 with prior knowledge only (http1=False), as the
        # server has no HTTP/1.1 upgrade.
        tls = urllib.parse.urlsplit(url).scheme == "https"
        checks = [("GET /bytes/%d" % n, "GET", "bytes/%d" % n, None, expected_bytes(n)) for n in BYTES]
        for n in ECHO:
            body = rng.randbytes(n)
            checks.append(("POST /echo (%d octets)" % n, "POST", "echo", body, body))
        try:
            with httpx.Client(http1=tls, http2=True, verify=False, timeout=60) as client:
                for what, method, path, body, want in checks:
                    why = verdict(client.request(method, url + path, content=body), want)
                    print("%s %s %s%s" % ("FAIL" if why else "PASS", url, what, ": " + why if why else ""),
                          flush=True)
                    failed = failed or why is not None
        except Exception as e:
            print("FAIL %s httpx: %s: %s" % (url, type(e).__name__, e), flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
