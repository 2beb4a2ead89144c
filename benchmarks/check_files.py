"""`check -f` on manifest files at 1k and 10k Gateways, against PyYAML's C loader on the same file.

The files are what `kubectl get gateways,virtualservices,secrets -A -o yaml` would give for the
spread mesh of analysis_scale.py (3 hosts per Gateway, a VirtualService each, one certificate per
5 Gateways). Timed in one run, interleaved: the C loader alone (yaml.load_all), and the whole
command in-process (read, inventory, analysis, `-o json` to a file), best of 3 each. Prints
seconds, the ratio to the loader, and how each grows from 1k to 10k.
"""
from __future__ import annotations

import base64
import io
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def write_mesh(n: int, path: str) -> None:
    import yaml
    from analysis_scale import build_raw

    raw = build_raw(n, "spread")
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
                              "http": [{"route": [{"destination": {"host": f"{m['name']}.svc"}}]}]}})
    with open(path, "w") as f:
        yaml.dump({"apiVersion": "v1", "kind": "List", "items": docs}, f, Dumper=yaml.CSafeDumper)


def load_only(path: str) -> float:
    """The C loader alone, with the cyclic GC off as check runs (it only rescans the acyclic
    trees a loader builds): the fastest way Python reads the file."""
    import gc
    import yaml

    gc.disable()
    try:
        t = time.perf_counter()
        with open(path) as f:
            list(yaml.load_all(f, Loader=yaml.CSafeLoader))
        return time.perf_counter() - t
    finally:
        gc.enable()


def check(path: str, out: str) -> float:
    from kubectl_gwdup.cli.main import main
    from kubectl_gwdup.env import Env

    t = time.perf_counter()
    with open(out, "w") as f:
        status = main(["check", "-f", path, "-o", "json"], Env(stdout=f, stderr=io.StringIO(), stdin=io.StringIO(),
                                                            environ={"HOME": "/nonexistent"}))
    assert status in (0, 3), status
    return time.perf_counter() - t


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="gwdup-bench-")
    rows = {}
    for n in (1000, 10000):
        path = os.path.join(tmp, f"mesh-{n}.yaml")
        write_mesh(n, path)
        loads, checks = [], []
        for _ in range(3):
            loads.append(load_only(path))
            checks.append(check(path, os.path.join(tmp, "out.json")))
        rows[n] = (min(loads), min(checks), os.path.getsize(path) / 1e6)
    print(f"{'gateways':>8} {'file MB':>8} {'C load s':>9} {'check -f s':>11} {'x load':>7}")
    for n, (load, chk, mb) in rows.items():
        print(f"{n:>8} {mb:>8.1f} {load:>9.2f} {chk:>11.2f} {chk / load:>7.2f}")
    print(f"growth 1k -> 10k: C load {rows[10000][0] / rows[1000][0]:.1f}x, check -f {rows[10000][1] / rows[1000][1]:.1f}x")


if __name__ == "__main__":
    main()
