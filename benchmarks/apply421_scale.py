"""apply-421 at mesh scale, per method: the meshes of analysis_scale.py, each Gateway routed.

Shapes: spread (3 hosts per Gateway, one certificate per 5 Gateways) at 1k and 10k Gateways,
and wildcard (one *.example.com certificate on every Gateway) at 1k and 5k. Each run is a
fresh process (so peak RSS is its own) doing what `apply-421 -f ... --dry-run=client -o yaml`
does: inventory, analysis, plan, YAML. Prints seconds, peak MB, the YAML's size in all and
per Gateway, the largest EnvoyFilter, and the domains added; then the seconds `check` takes
with those EnvoyFilters installed, and how many findings it calls mitigated. The ratios
between sizes show how cost and output grow (all should be linear).

Then the patched configuration of one workload is checked by the real Envoy
(`envoy --mode validate`): 1,000 Gateways of each shape (several EnvoyFilters where the plan
is split), written as manifests, translated by tests/istiod_translate.py, with each method's
EnvoyFilters applied by istiod's rules (tests/envoyfilter_patch.py).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE, os.path.join(ROOT, "tests")]

from analysis_scale import in_fresh_process  # noqa: E402  (found through sys.path above)

SHAPES = (("spread", (1000, 10000)), ("wildcard", (1000, 5000)))
METHODS = ("vhost", "lua", "http1")


def measure(n: int, shape: str, method: str) -> dict:
    from analysis_scale import add_routes, build_raw
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.errors import PlanError
    from kubectl_gwdup.inventory import build_inventory
    from kubectl_gwdup.model import Input
    from kubectl_gwdup.plans.misdirect421 import Method421, plan_421
    from kubectl_gwdup.render.structured import print_yaml

    raw = build_raw(n, shape)
    add_routes(raw)
    t0 = time.perf_counter()
    inv = build_inventory(raw)
    findings = registry.run(inv).findings
    try:
        plan = plan_421(inv, findings, Method421(method), istio_version=(1, 24))
    except PlanError as exc:
        return {"refused": str(exc)}
    out = _Count()  # what -o yaml writes to stdout, through the same printer
    print_yaml({"apiVersion": "v1", "kind": "List", "items": plan.objects}, out)
    t1 = time.perf_counter()
    # then `check` with these EnvoyFilters installed: every finding judged against them
    raw.envoy_filters.extend(plan.objects)
    raw.available.add(Input.ENVOY_FILTERS)
    after = registry.run(build_inventory(raw)).findings
    t2 = time.perf_counter()
    largest = max((len(json.dumps(o)) for o in plan.objects), default=0)
    domains = sum(len(cp["patch"]["value"].get("domains", ())) for o in plan.objects
                  for cp in o["spec"]["configPatches"])
    return {"gateways": n, "shape": shape, "method": method, "seconds": round(t1 - t0, 2),
            "check_after_s": round(t2 - t1, 2),
            "mitigated": f"{sum(1 for f in after if f.detail.get('mitigation'))}/{len(after)}",
            "objects": len(plan.objects), "yaml_mb": round(out.n / 1e6, 2),
            "bytes_per_gateway": round(out.n / n), "largest_kib": round(largest / 1024, 1),
            "domains": domains, "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


class _Count:
    """A stdout that counts what it is given."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, text: str) -> None:
        self.n += len(text)


def manifests(n: int, shape: str, workdir: str) -> list:
    """The shape as manifests an API server would accept (Secrets with their keys)."""
    from analysis_scale import add_routes, build_raw
    from certs import key_pem

    raw = build_raw(n, shape)
    add_routes(raw)
    docs = [{"apiVersion": "apps/v1", "kind": "Deployment", **d} for d in raw.deployments]
    docs += [{"apiVersion": "v1", "kind": "Service", **s} for s in raw.services]
    docs += raw.gateways + raw.virtual_services
    for (ns, name), pem in raw.secrets.items():
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": name, "namespace": ns},
                     "stringData": {"tls.crt": pem.decode(), "tls.key": key_pem().decode()}})
    return docs


def validate(shape: str, method: str, n: int = 1000) -> str:
    import yaml

    import envoyfilter_patch
    from envoy_process import ENVOY
    from istiod_translate import Translation
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.inventory import build_inventory
    from kubectl_gwdup.model import Input
    from kubectl_gwdup.plans.misdirect421 import Method421, plan_421
    from kubectl_gwdup.sources.files import load_files

    work = tempfile.mkdtemp(prefix="gwdup-validate-")
    docs = manifests(n, shape, work)
    path = os.path.join(work, "manifests.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f)
    raw = load_files([path])
    raw.available.update((Input.CERTIFICATES, Input.VIRTUAL_SERVICES))
    inv = build_inventory(raw)
    plan = plan_421(inv, registry.run(inv).findings, Method421(method), istio_version=(1, 24))
    t = Translation(docs, work, None)
    envoyfilter_patch.apply(t, plan.objects)
    config = os.path.join(work, "envoy.yaml")
    with open(config, "w") as f:
        yaml.safe_dump(t.config, f)
    r = subprocess.run([ENVOY, "--mode", "validate", "-c", config, "-l", "error"], capture_output=True, text=True,
                       timeout=300)
    chains = sum(len(listener["filter_chains"]) for _, _, listener in t.served)
    verdict = "OK" if r.returncode == 0 else f"REJECTED: {(r.stdout + r.stderr)[-300:]}"
    return f"{shape:<9} {n:>5} Gateways {method:<6} {len(plan.objects)} EnvoyFilter(s), {chains} chains: {verdict}"


def main() -> None:
    if len(sys.argv) == 4:
        print(json.dumps(measure(int(sys.argv[1]), sys.argv[2], sys.argv[3])))
        return
    print(f"{'shape':<9} {'gateways':>8} {'method':<6} {'seconds':>7} {'peak MB':>8} {'objects':>7} "
          f"{'YAML MB':>8} {'B/Gateway':>9} {'largest KiB':>11} {'domains':>8} {'check after s':>13} {'mitigated':>10}")
    for shape, sizes in SHAPES:
        for method in METHODS:
            for n in sizes:
                r = in_fresh_process(__file__, n, shape, method)
                if "refused" in r:
                    print(f"{shape:<9} {n:>8} {method:<6} refused: {r['refused'][:90]}")
                    continue
                print(f"{shape:<9} {n:>8} {method:<6} {r['seconds']:>7} {r['peak_mb']:>8} {r['objects']:>7} "
                      f"{r['yaml_mb']:>8} {r['bytes_per_gateway']:>9} {r['largest_kib']:>11} {r['domains']:>8} "
                      f"{r['check_after_s']:>13} {r['mitigated']:>10}")
    print("envoy --mode validate, the patched configuration of one workload:")
    for shape, _ in SHAPES:
        for method in METHODS:
            print("  " + validate(shape, method))


if __name__ == "__main__":
    main()
