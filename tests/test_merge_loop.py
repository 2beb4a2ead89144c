"""merge, closed loop, on the real Envoy through the translation that shares no code with ours.

Random meshes drawn as users write them (tests/test_differential.py's draws: shared and missing
certificates, `*` servers, PASSTHROUGH servers and TLS routes, Pods with and without owners, a
twin Deployment, named target ports, route matches on paths and headers) are planned by `merge` as `merge --plan -f` plans them. The
plan's writes are then made on the manifests one by one, and after every write the manifests are
translated by tests/istiod_translate.py and served by the real Envoy:
- Envoy accepts every state (a refused listener is an outage);
- every name keeps its direct answers (its own connection; each path and header the drawn
  matches tell apart: status, body and backend) in every state;
- once all writes are made, `check` reports no hazard among the merged servers and no finding
  of any kind that was not there before.
GWDUP_LOOP_EXAMPLES draws more (CI: a fixed seed, 300 meshes, of which about one in ten merges).
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Dict, List, Optional, Tuple

from hypothesis import HealthCheck, given, settings, strategies as st

from istiod_translate import Connection, new_workdir
from test_differential import (BACKEND_DRAWS, HOSTS, ROUTING_DRAWS, Probe, inventories, loaded, manifests, names_of,
                               probes, served)
from test_merge import apply_steps

from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.plans.merge import plan_merge

Answers = Dict[Tuple[int, str, Probe], Tuple[int, str, str]]

# test_differential's draws, weighted towards what merge acts on: Gateways of one proxy, each
# with a host of its own, sharing a certificate that covers several of them (most of its draws
# hold no hazard at all); the rest (PASSTHROUGH, TLS routes, missing Secrets, a second proxy,
# `*`, a second host that another Gateway has too) stays in, less often
OWN = ["a.ex.com", "b.ex.com", "c.ex.com", "x.b.ex.com", "*.ex.com"]
mergeable = st.tuples(inventories, st.permutations(range(5))).flatmap(lambda drawn: st.fixed_dictionaries({
    **{k: st.just(v) for k, v in drawn[0].items() if k not in ("gateways", "secrets", "missing")},
    "gateways": st.lists(st.fixed_dictionaries({
        "ns": st.sampled_from(["ns0", "ns1"]), "proxy": st.sampled_from([0, 0, 0, 0, 1]),
        "mode": st.sampled_from(["SIMPLE"] * 9 + ["PASSTHROUGH"]),
        "extra": st.sampled_from([None, None, None] + HOSTS),
        "credential": st.sampled_from([0, 0, 0, 0, 1, 2]),
        "routes": st.sampled_from(["http"] * 6 + ["tls", "none"]),
        "routing": st.sampled_from(ROUTING_DRAWS), "backend": st.sampled_from(BACKEND_DRAWS)}), min_size=2, max_size=5).map(
            lambda gws: [dict({k: v for k, v in g.items() if k != "extra"},
                              hosts=[OWN[drawn[1][i]]] + ([g["extra"]] if g["extra"] not in (None, OWN[drawn[1][i]]) else []))
                         for i, g in enumerate(gws)]),
    "secrets": st.tuples(st.sampled_from([0, 0, 1, 2, 5]), st.integers(0, 6), st.integers(0, 6)).map(list),
    "missing": st.tuples(st.just(False), st.booleans(), st.booleans()).map(list),
}))


def load(docs: List[dict]):
    return loaded(docs, new_workdir())


def direct(docs: List[dict], certs, names: List[str], requests: List[Probe]) -> Optional[Answers]:
    """Each name's answer to each request on a connection of its own, per bound port (status,
    body, backend); None if Envoy refuses."""
    serving = served(docs, certs)
    if serving is None:
        return None
    t, envoy = serving
    out: Answers = {}
    with envoy:
        for (proxy, bound), port in t.ports.items():
            for name in names:
                c = Connection(port, name, certs.ca_cert)
                if c.error:
                    continue
                for path, headers in requests:
                    status, body, _chain = c.request(name, path, extra=headers)
                    out[(bound, name, (path, headers))] = (status, body, c.backend)
                c.close()
    return out


def findings(docs: List[dict]):
    return registry.run(build_inventory(load(docs))).findings


def test_every_write_of_a_merge_serves_every_name_as_before_and_ends_clean(certs) -> None:
    seen: Counter = Counter()

    @settings(max_examples=int(os.environ.get("GWDUP_LOOP_EXAMPLES", "300")), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mergeable)
    def loop(spec) -> None:
        docs = manifests(spec, certs)
        raw = load(docs)
        inventory = build_inventory(raw)
        before = registry.run(inventory).findings
        doc = plan_merge(raw, inventory, before).to_dict()
        if not doc["steps"]:
            seen["nothing to merge"] += 1
            return
        names = names_of(docs)
        requests = probes(docs)  # the paths (and headers) the drawn route matches tell apart
        start = direct(docs, certs, names, requests)
        if start is None:  # Envoy refuses the mesh as drawn: a merge cannot be judged against it
            seen["refused before"] += 1
            return
        seen["planned"] += 1
        for k in range(1, len(doc["steps"]) + 1):
            state = apply_steps(docs, doc["steps"][:k])
            now = direct(state, certs, names, requests)
            assert now is not None, f"Envoy refuses the state after write {k}: {doc['steps'][k - 1]}"
            for key, answer in start.items():
                assert now.get(key) == answer, (k, key, doc["steps"][k - 1]["name"])
            seen["states"] += 1
        after = findings(apply_steps(docs, doc["steps"]))
        merged = {f"{s['namespace']}/{s['name']}" for s in doc["steps"] if s["phase"] == "merge"}
        for f in after:
            if "outcome" in f.detail:
                assert not merged & {s["gateway"] for s in f.detail["from"] + f.detail["to"]}, f.message
        assert {(f.code, f.resource) for f in after} <= {(f.code, f.resource) for f in before}

    loop()
    print(dict(seen))
    # the draws must hold merges for this to prove anything
    assert seen["planned"] >= 25, dict(seen)
