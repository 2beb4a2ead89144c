"""impact on big access logs: lines per second and peak memory, 100 MB against 1 GB.

The whole command (`impact -f LOG --manifests examples/ -o json`) runs in a fresh process on a
log in Istio's default text format written for the shipped examples' ingress gateway: one
request in ten rode another host's connection (a.example.com's connection carrying
b.example.com), the rest are each host's own. Memory must not grow with the log: the lines
are streamed and only the rows (one per connection host and request host) are kept. Peak MB is
the children's maximum so far (getrusage), so a later, bigger log can only raise it.

The floor is what Python needs to read the same file line by line and do nothing with it, in a
fresh process too; `x floor` is impact's time over it, measured in the same run (the target:
at most 5x on one core). Each log is read with --jobs 1 (one core) and with one worker per core
(at most 8); the two reports must be the same size.

Then what the floor allows: the cost, per line and against the same floor, of the cheapest
things a reader written in Python can do to a line at all (split it at spaces once, reverse it,
have the regex engine walk it once). Where one of these alone costs more than 5x the floor, no
exact pure-Python reader meets that target on this machine.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def line(i: int) -> str:
    sni, authority, code, flags, details = (("a.example.com", "b.example.com", 404, "NR", "route_not_found")
                                            if i % 10 == 0 else
                                            ("a.example.com", "a.example.com", 200, "-", "via_upstream"))
    return (f'[2026-11-30T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z] "GET /orders/{i}?session=s{i % 997} HTTP/2" '
            f'{code} {flags} {details} - "-" 0 1532 3 2 "203.0.113.{i % 250}" "{AGENT}" '
            f'"7f1c2a9e-{i:08d}" "{authority}" "10.244.1.17:8080" outbound|8080||shop.shop.svc.cluster.local '
            f'10.244.0.7:51234 10.244.0.7:8443 203.0.113.{i % 250}:{40000 + i % 20000} {sni} -\n')


def write_log(path: str, size: int) -> int:
    """A log of about `size` bytes; returns its lines."""
    block = "".join(line(i) for i in range(10000))
    n = 0
    with open(path, "w") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)
            n += 10000
    return n


def run(path: str, jobs: int) -> tuple:
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([sys.executable, "-m", "kubectl_gwdup", "impact", "--log-file", path, "--manifests",
                        os.path.join(ROOT, "examples"), "--workload", "istio-system/istio-ingressgateway", "-o", "json",
                        "--jobs", str(jobs)],
                       capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if r.returncode not in (0, 3):
        raise SystemExit(r.stderr)
    return seconds, max(peak, before) / 1024, len(r.stdout)


def floor(path: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys\nwith open(sys.argv[1], 'rb') as f:\n    for _ in f: pass",
                    path], check=True)
    return time.perf_counter() - start


PRIMITIVES = r"""
import re, sys, time
with open(sys.argv[1], "rb") as f:
    lines = [line for _, line in zip(range(200000), f)]


def floor():
    with open(sys.argv[1], "rb") as f:
        for _, line in zip(range(len(lines)), f):
            pass


walk = re.compile(rb"[^\n]*").match
work = [("read lines (the floor)", floor),
        ("split at spaces", lambda: [x.split(b" ") for x in lines]),
        ("reverse", lambda: [x[::-1] for x in lines]),
        ("one regex walk", lambda: [walk(x) for x in lines])]
for name, fn in work:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    print(name, best / len(lines) * 1e9)
"""


def primitives(path: str) -> None:
    out = subprocess.run([sys.executable, "-c", PRIMITIVES, path], capture_output=True, text=True, check=True).stdout
    costs = [(name, float(ns)) for name, ns in (row.rsplit(" ", 1) for row in out.splitlines())]
    base = costs[0][1]
    print(f"\n{'per line, in Python':<24} {'ns':>7} {'x floor':>8}")
    for name, ns in costs:
        print(f"{name:<24} {ns:>7.0f} {ns / base:>8.1f}")


def main() -> None:
    sizes = [int(s) for s in sys.argv[1:]] or [100, 1000]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    print(f"{'log MB':>7} {'lines':>10} {'jobs':>5} {'seconds':>8} {'lines/s':>9} {'floor s':>8} {'x floor':>8} "
          f"{'peak MB':>8} {'report bytes':>12}")
    with tempfile.TemporaryDirectory(prefix="gwdup-impact-") as tmp:
        for mb in sizes:
            path = os.path.join(tmp, f"{mb}.log")
            lines = write_log(path, mb * 1024 * 1024)
            base = floor(path)
            reports = set()
            for jobs in sorted({1, min(cores, 8)}):
                seconds, peak, out = run(path, jobs)
                reports.add(out)
                print(f"{os.path.getsize(path) / 2**20:>7.0f} {lines:>10} {jobs:>5} {seconds:>8.1f} "
                      f"{lines / seconds:>9.0f} {base:>8.2f} {seconds / base:>8.1f} {peak:>8.0f} {out:>12}")
            if len(reports) != 1:
                raise SystemExit("the reports differ with the number of jobs")
            if mb == sizes[-1]:
                primitives(path)
            os.remove(path)


if __name__ == "__main__":
    main()
