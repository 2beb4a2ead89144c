"""Start-up: `--help` and `check -f examples/` against `python -c pass`, same interpreter, one run.

Median wall time of repeated runs in fresh processes; ratios are to the bare interpreter.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(os.environ.get("RUNS", "15"))


def median_run(args) -> float:
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    py = sys.executable
    base = median_run([py, "-c", "pass"])
    cases = [("python -c pass", [py, "-c", "pass"]),
             ("kubectl-gwdup --help", [py, "-m", "kubectl_gwdup", "--help"]),
             ("kubectl-gwdup check -f examples/", [py, "-m", "kubectl_gwdup", "check", "-f", "examples/"])]
    print(f"{'command':<36} {'median ms':>9} {'x python':>8}")
    for name, args in cases:
        t = base if name == "python -c pass" else median_run(args)
        print(f"{name:<36} {t * 1000:>9.1f} {t / base:>8.2f}")


if __name__ == "__main__":
    main()
