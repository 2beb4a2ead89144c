"""check across a fleet: 10 clusters of 1,000 Gateways each (each its own API emulator, in a
process of its own), read with one `check --all-contexts`, against `check --context` of each
cluster alone; in one run, printed:

- the slowest cluster alone, the fleet, and their ratio (target: at most 2x);
- the same with 100 ms added to every API request, as a remote API server answers a LIST page
  (the emulator on loopback answers in about 1 ms, which leaves only the client's own work).

    python benchmarks/fleet.py [--clusters N] [--gateways N]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), HERE]


def serve_cluster(index: int, gateways: int, cert: str, key: str, latency: float, ready) -> None:
    from emulator.server import Emulator
    import serve_watch

    emu = Emulator(cert, key).start()
    serve_watch.populate(emu, gateways)
    if latency:
        emu.inject("GET", ".", 0, times=10 ** 9, delay=latency)
    ready.put((index, emu.url))
    while True:
        time.sleep(3600)


def timed(args, env) -> float:
    best = float("inf")
    for _ in range(2):
        t = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "kubectl_gwdup", "check", "--resolve=false", *args], env=env,
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode in (0, 3), r.stderr[-2000:]
        best = min(best, time.monotonic() - t)
    return best


def run(clusters: int, gateways: int, latency: float) -> None:
    import yaml
    from certfactory import CertFactory

    tmp = tempfile.mkdtemp(prefix="gwdup-bench-fleet-")
    certs = CertFactory(tmp)  # one CA for every emulator's certificate
    leaf = certs.leaf("localhost", "IP:127.0.0.1", tag="apiserver")
    ready: "multiprocessing.Queue" = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=serve_cluster, args=(i, gateways, leaf.cert_path, leaf.key_path, latency,
                                                                  ready), daemon=True)
             for i in range(clusters)]
    for p in procs:
        p.start()
    urls = dict(ready.get(timeout=600) for _ in procs)
    try:
        ca = certs.ca_cert
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "c0", "clusters": [], "users": [], "contexts": []}
        for i, url in sorted(urls.items()):
            doc["clusters"].append({"name": f"c{i}", "cluster": {"server": url, "certificate-authority": ca}})
            doc["users"].append({"name": f"c{i}", "user": {"token": "admin-token"}})
            doc["contexts"].append({"name": f"c{i}", "context": {"cluster": f"c{i}", "user": f"c{i}"}})
        kc = os.path.join(tmp, "config")
        with open(kc, "w") as f:
            yaml.safe_dump(doc, f)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "KUBECONFIG": kc, "PYTHONPATH": ROOT}
        alone = [timed(["--context", f"c{i}"], env) for i in range(clusters)]
        fleet = timed(["--all-contexts"], env)
        print(f"{clusters} clusters x {gateways} Gateways, +{latency * 1000:.0f} ms per request: slowest alone "
              f"{max(alone):.2f}s (fastest {min(alone):.2f}s), fleet {fleet:.2f}s: {fleet / max(alone):.2f}x")
    finally:
        for p in procs:
            p.terminate()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--gateways", type=int, default=1000)
    args = ap.parse_args()
    for latency in (0.0, 0.1):
        run(args.clusters, args.gateways, latency)


if __name__ == "__main__":
    main()
