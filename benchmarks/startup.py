"""Start-up of the built zipapp (dist/kubectl-gwdup) against `python3 -c pass`, in one run.

Median wall time over fresh processes, after the first extraction; the first run (which
extracts the dependencies into SHIV_ROOT and compiles them) is reported on its own. Also
prints the same figures for `python -m kubectl_gwdup` from the source tree.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "dist", "kubectl-gwdup")
RUNS = int(os.environ.get("RUNS", "21"))


def once(args, env) -> float:
    t = time.perf_counter()
    subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def median(args, env) -> float:
    return statistics.median(once(args, env) for _ in range(RUNS))


def main() -> None:
    if not os.path.exists(APP):
        subprocess.run(["bash", os.path.join(ROOT, "build.sh")], check=True, stdout=subprocess.DEVNULL)
    py = os.environ.get("PYTHON", shutil.which("python3") or sys.executable)
    if "/shims/" in py:  # a pyenv shim is a shell script: measure the interpreter it runs
        py = subprocess.run(["pyenv", "which", "python3"], capture_output=True, text=True).stdout.strip() or py
    root = tempfile.mkdtemp(prefix="shiv-bench-")
    env = {**os.environ, "SHIV_ROOT": root}
    first = once([py, APP, "--version"], env)
    base = median([py, "-c", "pass"], env)
    rows = [("python3 -c pass", base),
            ("zipapp --help", median([py, APP, "--help"], env)),
            ("zipapp check -f examples/", median([py, APP, "check", "-f", "examples/"], env)),
            ("python -m kubectl_gwdup --help", median([sys.executable, "-m", "kubectl_gwdup", "--help"], env)),
            ("python -m kubectl_gwdup check -f examples/",
             median([sys.executable, "-m", "kubectl_gwdup", "check", "-f", "examples/"], env))]
    print(f"interpreter: {py}; zipapp {os.path.getsize(APP) / 1e6:.1f} MB; "
          f"first run (extraction + compile): {first * 1000:.0f} ms")
    print(f"{'command':<44} {'median ms':>9} {'x python':>8}")
    for name, t in rows:
        print(f"{name:<44} {t * 1000:>9.1f} {t / base:>8.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
