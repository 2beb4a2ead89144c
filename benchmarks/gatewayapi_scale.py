"""Gateway API at mesh scale: check (translation, inventory, analysis, GEP-3567 conditions,
JSON output), apply-421's plan and merge's plan, each size in a fresh process.

Shapes:
- managed: N Gateways, each deployed by istiod, with two HTTPS listeners on one certificate of
  its own and an HTTPRoute per listener: N hazards, one per Gateway;
- shared: N Gateways on one manual deployment (spec.addresses names the ingress Service), one
  listener each, all presenting one *.example.com certificate: one hazard group of N listeners;
- one-gateway: one Gateway with N listeners under *.example.com on one wildcard certificate, an
  HTTPRoute per listener by sectionName: the merge case, and the largest Gateway.
Prints seconds per command, peak MB and output bytes per listener; grows linearly when the
per-listener figures stay flat from 1k to 10k.
"""
from __future__ import annotations

import io
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

GW = "gateway.networking.k8s.io/v1"


def _listener(name: str, host: str, secret: str) -> dict:
    return {"name": name, "hostname": host, "port": 443, "protocol": "HTTPS",
            "tls": {"mode": "Terminate", "certificateRefs": [{"name": secret}]}}


def _route(name: str, ns: str, gw: str, gw_ns: str, section: str, host: str) -> dict:
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": gw, "namespace": gw_ns, "sectionName": section}], "hostnames": [host],
                     "rules": [{"backendRefs": [{"name": name, "port": 80}]}]}}


def build_raw(n: int, shape: str):
    from certs import make_pem
    from kubectl_gwdup.inventory import RawObjects
    from kubectl_gwdup.model import Input

    raw = RawObjects(source="bench", secrets_complete=True)
    raw.available.update((Input.GATEWAYS, Input.WORKLOADS, Input.CERTIFICATES, Input.SERVICES,
                          Input.VIRTUAL_SERVICES, Input.ENVOY_FILTERS))
    raw.gateway_api.routes_read = True
    raw.deployments.append({"metadata": {"name": "ingress", "namespace": "istio-system"},
                            "spec": {"template": {"metadata": {"labels": {"istio": "ingress"}}}}})
    raw.services.append({"metadata": {"name": "ingress", "namespace": "istio-system"},
                         "spec": {"selector": {"istio": "ingress"}, "ports": [{"port": 443, "targetPort": 8443}]}})
    api = raw.gateway_api
    if shape == "managed":
        for i in range(n):
            ns = f"team-{i % 500}"
            # the wildcard too: a merged *.example.com listener must present a certificate valid for it
            raw.secrets[(ns, f"cert-{i}")] = make_pem([f"a-{i}.example.com", f"b-{i}.example.com", "*.example.com"], i)
            api.gateways.append({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": f"gw-{i}", "namespace": ns},
                                 "spec": {"gatewayClassName": "istio", "listeners": [
                                     _listener("a", f"a-{i}.example.com", f"cert-{i}"),
                                     _listener("b", f"b-{i}.example.com", f"cert-{i}")]}})
            for x in "ab":
                api.http_routes.append(_route(f"{x}-{i}", ns, f"gw-{i}", ns, x, f"{x}-{i}.example.com"))
    elif shape == "shared":
        raw.secrets[("istio-system", "wild")] = make_pem(["*.example.com"], 0)
        for i in range(n):
            api.gateways.append({"apiVersion": GW, "kind": "Gateway",
                                 "metadata": {"name": f"gw-{i}", "namespace": "istio-system"},
                                 "spec": {"gatewayClassName": "istio",
                                          "addresses": [{"type": "Hostname", "value": "ingress"}],
                                          "listeners": [dict(_listener("https", f"app-{i}.example.com", "wild"),
                                                             allowedRoutes={"namespaces": {"from": "All"}})]}})
            api.http_routes.append(_route(f"app-{i}", f"team-{i % 500}", f"gw-{i}", "istio-system", "https",
                                          f"app-{i}.example.com"))
    else:
        raw.secrets[("web", "wild")] = make_pem(["*.example.com"], 0)
        api.gateways.append({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "web", "namespace": "web"},
                             "spec": {"gatewayClassName": "istio", "listeners": [
                                 _listener(f"l{i}", f"app-{i}.example.com", "wild") for i in range(n)]}})
        for i in range(n):
            api.http_routes.append(_route(f"app-{i}", "web", "web", "web", f"l{i}", f"app-{i}.example.com"))
    return raw


def measure(n: int, shape: str, command: str) -> dict:
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.analysis.overlap import listener_conditions
    from kubectl_gwdup.inventory import build_inventory
    from kubectl_gwdup.model import Report
    from kubectl_gwdup.render import structured

    raw = build_raw(n, shape)
    listeners = sum(len(g["spec"]["listeners"]) for g in raw.gateway_api.gateways)
    t0 = time.perf_counter()
    inv = build_inventory(raw)
    report = registry.run(inv)
    out = io.StringIO()
    findings = len(report.findings)
    if command == "check":
        report = Report(report.findings, report.skipped, report.notes, listener_conditions(inv, report.findings))
        structured.print_json(report.to_dict(), out)
    elif command == "apply-421":
        from kubectl_gwdup.plans.misdirect421 import Method421, plan_421

        plan = plan_421(inv, report.findings, Method421.VHOST)
        structured.print_json({"items": plan.objects}, out)
    else:
        from kubectl_gwdup.plans.merge import plan_merge

        plan = plan_merge(raw, inv, report.findings)
        structured.print_json(plan.to_dict(), out)
        findings = len(plan.steps)
    seconds = time.perf_counter() - t0
    size = len(out.getvalue())
    return {"shape": shape, "listeners": listeners, "command": command, "seconds": round(seconds, 2),
            "findings": findings, "bytes_per_listener": round(size / listeners),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    from analysis_scale import in_fresh_process

    if len(sys.argv) == 4:
        print(json.dumps(measure(int(sys.argv[1]), sys.argv[2], sys.argv[3])))
        return
    print(f"{'shape':<12} {'listeners':>9} {'command':<10} {'seconds':>8} {'findings/steps':>14} "
          f"{'bytes/listener':>14} {'peak MB':>8}")
    for shape, sizes in (("managed", (500, 5000)), ("shared", (1000, 5000, 10000)), ("one-gateway", (1000, 5000))):
        for command in ("check", "apply-421", "merge"):
            for n in sizes:
                r = in_fresh_process(__file__, n, shape, command)
                print(f"{r['shape']:<12} {r['listeners']:>9} {r['command']:<10} {r['seconds']:>8} {r['findings']:>14} "
                      f"{r['bytes_per_listener']:>14} {r['peak_mb']:>8}")


if __name__ == "__main__":
    main()
