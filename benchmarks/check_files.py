"""`check -f` on manifest files at 1k and 10k Gateways, YAML and JSON, as pip installs it and as
the built zipapp runs on Python 3.9 and 3.13, against the fastest load of the same file.

The files are what `kubectl get gateways,virtualservices,secrets -A -o yaml` (or `-o json`)
would give for the spread mesh of analysis_scale.py (3 hosts per Gateway, a VirtualService each,
one certificate per 5 Gateways). Timed in one run, interleaved, best of 3: the load alone
(PyYAML's C loader, or json.load), the command in-process as the pip install runs it (read,
inventory, analysis, `-o json` to a file), and `dist/kubectl-gwdup check -f FILE -o json` as a
process on each interpreter (built first when missing). Prints seconds, ratios to the load and
growth from 1k to 10k. The dense mesh (write_mesh) holds hazards nearly everywhere, with route
matches that make them per request: the analysis and the output grow with it, the load less.
Targets: at most 2x the load with the output written, growth at most 10.5x from 1k to 10k.
"""
from __future__ import annotations

import base64
import glob
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
ZIPAPP = os.path.join(ROOT, "dist", "kubectl-gwdup")


def write_mesh(n: int, path: str, profile: str = "spread") -> None:
    """The spread mesh; `dense` adds what makes most of it hazardous and per-request: each
    team's wildcard Gateway (`*.teamK.example.com`, its own wildcard certificate) whose routes
    send /api to the team's api Service and the rest to a default one, and every Gateway's
    routes split the same way (/api to its api Service, a header-matched canary, the rest)."""
    import yaml
    from analysis_scale import build_raw
    from certs import make_pem

    raw = build_raw(n, "spread")
    if profile == "dense":
        for k in range(min(n, 500)):
            raw.secrets[("istio-system", f"wild-{k}")] = make_pem([f"*.team{k}.example.com"], n + k)
            raw.gateways.append({
                "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                "metadata": {"name": f"wild-{k}", "namespace": f"ns-{k}", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": [f"*.team{k}.example.com"],
                    "tls": {"mode": "SIMPLE", "credentialName": f"wild-{k}"}}]}})
    docs = [dict(apiVersion="apps/v1", kind="Deployment", **{k: v for k, v in d.items()}) for d in raw.deployments]
    docs += [dict(apiVersion="v1", kind="Service", **s) for s in raw.services]
    for (ns, name), pem in raw.secrets.items():
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": name, "namespace": ns},
                     "data": {"tls.crt": base64.b64encode(pem).decode(), "tls.key": ""}})
    for g in raw.gateways:
        docs.append(g)
        m = g["metadata"]
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": f"{m['name']}-routes", "namespace": m["namespace"]},
                     "spec": {"hosts": g["spec"]["servers"][0]["hosts"], "gateways": [m["name"]],
                              "http": http_routes(m["name"], profile)}})
    with open(path, "w") as f:
        if path.endswith(".json"):  # as `kubectl get -o json` writes it
            json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, f, indent=4)
        else:
            yaml.dump({"apiVersion": "v1", "kind": "List", "items": docs}, f, Dumper=yaml.CSafeDumper)


def http_routes(name: str, profile: str) -> List[dict]:
    if profile != "dense":
        return [{"route": [{"destination": {"host": f"{name}.svc"}}]}]
    return [{"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": f"{name}-api.svc"}}]},
            {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": [{"destination": {"host": f"{name}-canary.svc"}}]},
            {"route": [{"destination": {"host": "default.svc" if name.startswith("wild-") else f"{name}.svc"}}]}]


def load_only(path: str) -> float:
    """The fastest way Python reads the file: PyYAML's C loader, or json.load for JSON, with the
    cyclic GC off as check runs (it only rescans the acyclic trees a loader builds)."""
    import gc
    import json

    import yaml

    gc.disable()
    try:
        t = time.perf_counter()
        with open(path) as f:
            if path.endswith(".json"):
                json.load(f)
            else:
                list(yaml.load_all(f, Loader=yaml.CSafeLoader))
        return time.perf_counter() - t
    finally:
        gc.enable()


def check(path: str, out: str) -> float:
    """The pip install: the command in-process."""
    from kubectl_gwdup.cli.main import main
    from kubectl_gwdup.env import Env

    t = time.perf_counter()
    with open(out, "w") as f:
        status = main(["check", "-f", path, "-o", "json"], Env(stdout=f, stderr=io.StringIO(), stdin=io.StringIO(),
                                                            environ={"HOME": "/nonexistent"}))
    assert status in (0, 3), status
    return time.perf_counter() - t


def zipapp(python: str, path: str, root: str) -> float:
    """The built zipapp, as users run it: a process of its own (start-up included)."""
    t = time.perf_counter()
    r = subprocess.run([python, ZIPAPP, "check", "-f", path, "-o", "json"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env={"PATH": os.environ["PATH"], "HOME": root, "SHIV_ROOT": root})
    assert r.returncode in (0, 3), r.stderr[-500:]
    return time.perf_counter() - t


READ = """
import gc, json, sys, time
import yaml
from kubectl_gwdup.sources.files import load_files
path = sys.argv[1]
gc.disable()
best = [float("inf"), float("inf")]
for _ in range(3):
    t = time.perf_counter()
    with open(path) as f:
        json.load(f) if path.endswith(".json") else list(yaml.load_all(f, Loader=yaml.CSafeLoader))
    best[0] = min(best[0], time.perf_counter() - t)
    t = time.perf_counter()
    load_files([path])
    best[1] = min(best[1], time.perf_counter() - t)
print(json.dumps(best))
"""


def read_step(python: str, path: str, root: str, inside_zipapp: bool) -> List[float]:
    """[fastest load, kubectl-gwdup's reading of -f (load_files)] in one interpreter: the
    zipapp's own modules when `inside_zipapp` (shiv runs the script in its environment)."""
    cmd = [python, ZIPAPP, "-c", READ, path] if inside_zipapp else [python, "-c", READ, path]
    env = {"PATH": os.environ["PATH"], "HOME": root, "SHIV_ROOT": root, "SHIV_INTERPRETER": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout)


def interpreters() -> List[Tuple[str, str]]:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    out = []
    for version in ("3.9", "3.13"):
        found = sorted(glob.glob(os.path.join(root, "versions", f"{version}*", "bin", "python3")))
        if found:
            out.append((f"zipapp {version}", found[-1]))
    return out


def main() -> None:
    if not os.path.exists(ZIPAPP):
        subprocess.run(["bash", os.path.join(ROOT, "build.sh")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="gwdup-bench-")
    pythons = interpreters()
    for python in pythons:  # the first run extracts the archive: not what is measured
        zipapp(python[1], os.path.join(ROOT, "examples"), tmp)
    cases = [("spread", n, fmt) for n in (1000, 10000) for fmt in ("yaml", "json")]
    cases += [("dense", n, "yaml") for n in (1000, 10000)]
    rows = []
    for profile, n, fmt in cases:
        path = os.path.join(tmp, f"mesh-{profile}-{n}.{fmt}")
        write_mesh(n, path, profile)
        times: Dict[str, List[float]] = {"load": [], "pip": [], **{name: [] for name, _ in pythons}}
        for _ in range(3):  # interleaved, best of 3
            times["load"].append(load_only(path))
            times["pip"].append(check(path, os.path.join(tmp, "out.json")))
            for name, python in pythons:
                times[name].append(zipapp(python, path, tmp))
        with open(os.path.join(tmp, "out.json")) as f:
            found = len(json.load(f)["findings"])
        rows.append((profile, n, fmt, os.path.getsize(path) / 1e6, found, {k: min(v) for k, v in times.items()}))
    names = ["pip"] + [name for name, _ in pythons]
    print(f"{'mesh':>6} {'gateways':>8} {'input':>5} {'MB':>5} {'findings':>8} {'load s':>7} "
          + " ".join(f"{k + ' s':>11} {'x load':>6}" for k in names))
    for profile, n, fmt, mb, found, t in rows:
        print(f"{profile:>6} {n:>8} {fmt:>5} {mb:>5.1f} {found:>8} {t['load']:>7.2f} "
              + " ".join(f"{t[k]:>11.2f} {t[k] / t['load']:>6.2f}" for k in names))
    print("load: PyYAML's C loader for YAML, json.load for JSON, on this interpreter")
    for profile, fmt in sorted({(p, f) for p, _, f, _, _, _ in rows}):
        by_n = {n: t for p, n, f, _, _, t in rows if (p, f) == (profile, fmt)}
        print(f"growth 1k to 10k, {profile} {fmt}: " + ", ".join(f"{k} {by_n[10000][k] / by_n[1000][k]:.1f}x" for k in names))
    print()
    print("reading -f alone (load_files: parse, flatten Lists, Secrets to PEM) against the load, each on")
    print("its own interpreter, best of 3:")
    print(f"{'mesh':>6} {'gateways':>8} {'input':>5} " + " ".join(f"{k + ' read s':>16} {'x load':>6}" for k in names))
    for profile, n, fmt in cases:
        path = os.path.join(tmp, f"mesh-{profile}-{n}.{fmt}")
        cells = [read_step(sys.executable, path, tmp, False)]
        cells += [read_step(python, path, tmp, True) for _, python in pythons]
        print(f"{profile:>6} {n:>8} {fmt:>5} " + " ".join(f"{read:>16.2f} {read / load:>6.2f}" for load, read in cells))


if __name__ == "__main__":
    main()
