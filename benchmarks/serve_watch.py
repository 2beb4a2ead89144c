"""`serve` at mesh scale: 10,000 Gateways (5 per certificate, so 2,000 hazard groups) in 500
namespaces, served by the API emulator; `serve --read-secrets` runs as its own process.

Printed, in one run:
- start: from the process start to /readyz (every LIST, then the first analysis), its RSS;
- 1,000 changes in 10 bursts of 100: the same 100 Gateways moved onto a host and certificate
  of their own, then back, and so on; the RSS and CPU time of serve after each burst has been
  analysed, and the growth of RSS per change over the second half (memory must stay flat; the
  first bursts are the first time those objects arrive by watch, and the allocator's high-water
  mark settles);
- time from one change to /metrics showing it, over 20 single changes (median, worst).

    python benchmarks/serve_watch.py [--gateways N]
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), HERE]

import cluster_requests  # noqa: E402
from certs import make_pem  # noqa: E402
from certfactory import CertFactory  # noqa: E402
from emulator.server import Emulator  # noqa: E402
from kube import write_kubeconfig  # noqa: E402

NAMESPACES, PER_CERT = 500, 5


def populate(emu: Emulator, gateways: int) -> None:
    cluster_requests.namespaces_and_workload(emu, NAMESPACES)
    for s in range(gateways // PER_CERT):
        sans = [host(i) for i in range(s * PER_CERT, s * PER_CERT + PER_CERT)]
        secret(emu, f"cert-{s}", sans, s)
    for i in range(gateways):
        secret(emu, f"own-{i}", [solo(i)], 100000 + i)  # a host and certificate of its own, for the changes
        emu.put_object(gateway(i, f"cert-{i // PER_CERT}"))
        emu.put_object({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                        "metadata": {"name": f"vs-{i}", "namespace": f"ns-{i % NAMESPACES}"},
                        "spec": {"hosts": [host(i), solo(i)], "gateways": [f"gw-{i}"],
                                 "http": [{"route": [{"destination": {"host": f"svc-{i}"}}]}]}})


def host(i: int) -> str:
    return f"h{i}.team{i % NAMESPACES}.example.com"


def solo(i: int) -> str:
    return f"solo{i}.example.org"


def secret(emu: Emulator, name: str, sans, serial: int) -> None:
    emu.put_object({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": name, "namespace": "istio-system"},
                    "data": {"tls.crt": base64.b64encode(make_pem(sans, serial)).decode(), "tls.key": ""}})


def gateway(i: int, cred: str, alone: bool = False) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": f"gw-{i}", "namespace": f"ns-{i % NAMESPACES}"},
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": [solo(i) if alone else host(i)], "tls": {"mode": "SIMPLE", "credentialName": cred}}]}}


def change(emu: Emulator, i: int, own: bool) -> None:
    """gw-i onto a host and certificate of its own (out of every hazard) or back into its group."""
    kind = emu.kinds[("networking.istio.io", "gateways")]
    emu._update(kind, f"ns-{i % NAMESPACES}", f"gw-{i}",
                gateway(i, f"own-{i}" if own else f"cert-{i // PER_CERT}", alone=own), dry_run=False, manager="benchmark")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
        return r.read().decode()


def value(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{name}(?:{{{labels}[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def proc_stats(pid: int):
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateways", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=1000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gwdup-bench-serve-")
    certs = CertFactory(tmp)
    leaf = certs.leaf("localhost", "IP:127.0.0.1", tag="apiserver")
    emu = Emulator(leaf.cert_path, leaf.key_path).start()
    emu.bookmark_interval = 60.0
    t = time.monotonic()
    populate(emu, args.gateways)
    print(f"emulator: {args.gateways} Gateways, {args.gateways // PER_CERT + args.gateways} Secrets "
          f"({time.monotonic() - t:.1f}s to populate)")
    kc = write_kubeconfig(os.path.join(tmp, "config"), emu.url, certs.ca_cert, "admin-token")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "KUBECONFIG": kc, "PYTHONPATH": ROOT}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kubectl_gwdup", "serve", "--read-secrets", "--listen",
                             "127.0.0.1:0", "--debounce", "100ms"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)\s*$", proc.stderr.readline()).group(1))
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=60) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() - start < 600
            time.sleep(0.2)
        rss, cpu = proc_stats(proc.pid)
        text = scrape(port)
        series = sum(1 for line in text.splitlines() if line.startswith("gwdup_hazards{"))
        print(f"start: ready in {time.monotonic() - start:.1f}s, RSS {rss:.0f} MB, CPU {cpu:.1f}s; {series} hazard "
              f"series, first analysis {value(text, 'gwdup_analysis_duration_seconds_sum'):.2f}s")

        def settled(after: float) -> None:
            while value(scrape(port), "gwdup_last_successful_sync_timestamp_seconds") < after:
                time.sleep(0.1)

        burst = max(1, args.changes // 10)
        rows = []
        for b in range(10):
            t0 = time.time()
            for k in range(burst):
                i = k * PER_CERT % args.gateways
                change(emu, i, own=b % 2 == 0)
            settled(time.time())
            rss, cpu = proc_stats(proc.pid)
            rows.append((b + 1, (b + 1) * burst, rss, cpu, time.time() - t0))
            print(f"burst {b + 1:2d}: {(b + 1) * burst:5d} changes, RSS {rss:6.0f} MB, CPU {cpu:6.1f}s, "
                  f"burst analysed {time.time() - t0:5.1f}s after its first write")
        half = rows[len(rows) // 2 - 1]
        growth = (rows[-1][2] - half[2]) / max(1, rows[-1][1] - half[1]) * 1024
        print(f"memory: {rows[0][2]:.0f} MB after the first burst, {max(r[2] for r in rows):.0f} MB at most; "
              f"over the last {rows[-1][1] - half[1]} changes {growth:+.1f} KB per change; "
              f"CPU {(rows[-1][3] - rows[0][3]) / (len(rows) - 1):.1f}s per burst")
        lat = []
        for n in range(20):
            i = (7 + n * PER_CERT) % args.gateways
            gw = f"ns-{i % NAMESPACES}/gw-{i}"
            before = f'gateway="{gw}"' in scrape(port)
            t0 = time.monotonic()
            change(emu, i, own=before)
            while (f'gateway="{gw}"' in scrape(port)) == before:
                assert time.monotonic() - t0 < 120
                time.sleep(0.05)  # a scrape renders every series: scraping without pause slows the analysis
            lat.append(time.monotonic() - t0)
        text = scrape(port)
        mean = value(text, "gwdup_analysis_duration_seconds_sum") / max(1, value(text, "gwdup_analysis_duration_seconds_count"))
        print(f"change to /metrics: median {statistics.median(lat):.2f}s, worst {max(lat):.2f}s "
              f"(analysis {mean:.2f}s on average)")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        emu.stop()


if __name__ == "__main__":
    main()
