"""merge --plan at mesh scale: planning (with its simulation) on the meshes of analysis_scale.py,
each Gateway routed by a VirtualService of its own.

Shapes: spread (one certificate per 5 Gateways: many small groups) at 1k and 10k Gateways, and
wildcard (one *.example.com certificate on every Gateway: one group holding them all) at 1k and
5k. Each size runs in a fresh process so peak RSS is its own. Prints seconds, steps, the plan
document's size and peak MB; the ratios between sizes show how cost grows.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from analysis_scale import in_fresh_process  # noqa: E402  (found through sys.path above)


def measure(n: int, shape: str) -> dict:
    from analysis_scale import add_routes, build_raw
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.inventory import build_inventory
    from kubectl_gwdup.plans.merge import plan_merge

    raw = build_raw(n, shape)
    add_routes(raw)
    inv = build_inventory(raw)
    findings = registry.run(inv).findings
    t0 = time.perf_counter()
    plan = plan_merge(raw, inv, findings)
    doc = plan.to_dict()
    t1 = time.perf_counter()
    return {"gateways": n, "shape": shape, "groups": len(plan.units), "steps": len(doc["steps"]),
            "declined": sum(x.startswith("not merged") for x in doc["notes"]),
            "plan_s": round(t1 - t0, 2), "doc_mb": round(len(json.dumps(doc)) / 1e6, 2),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(measure(int(sys.argv[1]), sys.argv[2])))
        return
    print(f"{'shape':<9} {'gateways':>8} {'groups':>6} {'steps':>6} {'declined':>8} {'plan s':>7} "
          f"{'doc MB':>7} {'peak MB':>8}")
    for shape, sizes in (("spread", (1000, 10000)), ("wildcard", (1000, 5000))):
        for n in sizes:
            r = in_fresh_process(__file__, n, shape)
            print(f"{r['shape']:<9} {r['gateways']:>8} {r['groups']:>6} {r['steps']:>6} {r['declined']:>8} "
                  f"{r['plan_s']:>7} {r['doc_mb']:>7} {r['peak_mb']:>8}")


if __name__ == "__main__":
    main()
