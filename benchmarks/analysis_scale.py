"""Analysis growth: inventory + rules on synthetic meshes of 1k, 10k and 50k Gateways.

Each size runs in a fresh process so peak RSS is its own. Shapes:
- spread: 3 hosts per Gateway, one certificate per 5 Gateways (valid for their 15 hosts);
- wildcard: the worst realistic case, one *.example.com certificate shared by every Gateway on
  one workload, which must stay ONE finding rather than N^2 pairs;
- wide: one server listing N hosts (what a merge makes), each routed by a VirtualService of its
  own, beside one other server on the same wildcard certificate: every host is at risk from the
  other server's connections, and each lookup in the wide route table must not scan it.
Prints seconds for the inventory (including certificate parsing) and the analysis, and MB.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def build_raw(n: int, shape: str):
    from certs import make_pem
    from kubectl_gwdup.inventory import RawObjects
    from kubectl_gwdup.model import Input

    raw = RawObjects(source="bench")
    raw.available.update((Input.GATEWAYS, Input.WORKLOADS, Input.CERTIFICATES, Input.SERVICES))
    raw.deployments.append({"metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                            "spec": {"template": {"metadata": {"labels": {"istio": "ingressgateway"}}}}})
    raw.services.append({"metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                         "spec": {"selector": {"istio": "ingressgateway"},
                                  "ports": [{"port": 443, "targetPort": 8443}]}})
    if shape == "wide":
        raw.secrets[("istio-system", "wild")] = make_pem(["*.example.com"], 0)
        raw.available.add(Input.VIRTUAL_SERVICES)
        hosts = [f"app-{i}.example.com" for i in range(n)]
        for name, hs in (("wide", hosts), ("other", ["other.example.com"])):
            raw.gateways.append({
                "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                "metadata": {"name": name, "namespace": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": hs,
                    "tls": {"mode": "SIMPLE", "credentialName": "wild"}}]}})
        for h in hosts + ["other.example.com"]:
            raw.virtual_services.append({
                "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": h.split(".")[0], "namespace": "web"},
                "spec": {"hosts": [h], "gateways": ["wide" if h != "other.example.com" else "other"],
                         "http": [{"route": [{"destination": {"host": h}}]}]}})
        return raw
    if shape == "wildcard":
        raw.secrets[("istio-system", "wild")] = make_pem(["*.example.com"], 0)
    for i in range(n):
        if shape == "wildcard":
            hosts, cred = [f"app-{i}.example.com"], "wild"
        else:
            hosts = [f"h{j}-{i}.team{i % 500}.example.com" for j in range(3)]
            cred = f"cert-{i // 5}"
            if i % 5 == 0:
                sans = [f"h{j}-{k}.team{k % 500}.example.com" for k in range(i, min(i + 5, n)) for j in range(3)]
                raw.secrets[("istio-system", cred)] = make_pem(sans, i)
        raw.gateways.append({
            "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": f"gw-{i}", "namespace": f"ns-{i % 500}",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": hosts,
                "tls": {"mode": "SIMPLE", "credentialName": cred}}]}})
    return raw


def add_routes(raw) -> None:
    """Each Gateway routed by a VirtualService of its own, as a cluster would have them."""
    from kubectl_gwdup.model import Input

    raw.available.add(Input.VIRTUAL_SERVICES)
    for g in raw.gateways:
        m = g["metadata"]
        raw.virtual_services.append({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": f"{m['name']}-routes", "namespace": m["namespace"],
                         "creationTimestamp": "2026-01-02T00:00:00Z"},
            "spec": {"hosts": g["spec"]["servers"][0]["hosts"], "gateways": [m["name"]],
                     "http": [{"route": [{"destination": {"host": f"{m['name']}.svc"}}]}]}})


def measure(n: int, shape: str) -> dict:
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.inventory import build_inventory

    raw = build_raw(n, shape)
    t0 = time.perf_counter()
    inv = build_inventory(raw)
    t1 = time.perf_counter()
    report = registry.run(inv)
    t2 = time.perf_counter()
    hosts = sum(len(s.hosts) for s in inv.servers)
    return {"gateways": n, "shape": shape, "hosts": hosts, "certificates": len(raw.secrets),
            "inventory_s": round(t1 - t0, 3), "analysis_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3), "findings": len(report.findings),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def in_fresh_process(script: str, *args: object) -> dict:
    """Run `script ARGS...` (a size, a shape, ...) in its own interpreter, so that peak RSS is
    that run's own, and read the JSON line it prints."""
    out = subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(measure(int(sys.argv[1]), sys.argv[2])))
        return
    print(f"{'shape':<9} {'gateways':>8} {'hosts':>7} {'certs':>6} {'inventory s':>11} {'analysis s':>10} "
          f"{'total s':>8} {'findings':>8} {'peak MB':>8}")
    for shape, sizes in (("spread", (1000, 10000, 50000)), ("wildcard", (1000, 10000, 50000)),
                         ("wide", (4000, 8000, 20000))):
        for n in sizes:
            r = in_fresh_process(__file__, n, shape)
            print(f"{r['shape']:<9} {r['gateways']:>8} {r['hosts']:>7} {r['certificates']:>6} {r['inventory_s']:>11} "
                  f"{r['analysis_s']:>10} {r['total_s']:>8} {r['findings']:>8} {r['peak_mb']:>8}")


if __name__ == "__main__":
    main()
