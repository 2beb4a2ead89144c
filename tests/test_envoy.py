"""The diagnosis, proved on the real Envoy: for every ordered pair of hosts on a shared
listener, a browser-like HTTP/2 client observes exactly what `check` predicts.

Each inventory (the scenario corpus, then small random ones) is translated as istiod would
translate it (tests/envoy_harness.py) and served by the real Envoy on loopback. Observed
classes: NotFound, Misrouted, Ok, Misdirected (421), NoCoalesce (the certificate on the open
connection does not cover the host, so no browser reuses it).
"""
from __future__ import annotations

import os
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings

from envoy_harness import serve
from analysis.test_properties import CERT_POOL, inventory_st, make_raw
from kubectl_gwdup import netprobe
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.analysis.chains import ChainIndex
from kubectl_gwdup.hosts import bare_host, cert_covers
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.model import Inventory, Listener, Placement, Report
from kubectl_gwdup.sources.files import load_files

CORPUS = ["seed", "two_secrets_one_cert", "one_gateway_two_servers", "wildcard_cert_direction",
          "wildcard_host_misrouted", "merged", "same_name_two_namespaces", "other_workload_or_port",
          "catch_all_host", "dropped_server", "multi_label_wildcard", "case_insensitive_sni",
          "passthrough_swallowed", "mutual", "no_secrets", "same_vs_both_gateways", "selector_variants"]
OBSERVED = {netprobe.ProbeResult.CONFIRMED_404: "NotFound", netprobe.ProbeResult.CONFIRMED_MISROUTE: "Misrouted",
            netprobe.ProbeResult.OK: "Ok", netprobe.ProbeResult.MITIGATED_421: "Misdirected",
            netprobe.ProbeResult.NOT_COALESCED: "NoCoalesce"}
SAMPLE = "zz"  # a label no scenario uses, to stand for "any name" under a wildcard


def names_on(live: List[Placement]) -> List[str]:
    """Concrete names to request: exact hosts, and one sample name under every wildcard."""
    names = set()
    for p in live:
        for h in [bare_host(x) for x in p.server.hosts] + list(p.coverage):
            if h == "*":
                names.add(f"{SAMPLE}.catch-all.example")
            elif h.startswith("*."):
                names.add(f"{SAMPLE}.{h[2:]}")
            else:
                names.add(h)
    return sorted(names)


def predicted(report: Report, listener: Listener, chains: ChainIndex, f: Placement, name: str) -> str:
    if not any(cert_covers(s, name) for s in f.coverage):
        return "NoCoalesce"
    t = chains.lookup(name)
    if t is f:
        return "Ok"
    sref = str(f.server.ref)
    by_pattern = None
    for finding in report.findings:
        d = finding.detail
        if "outcome" not in d or (d["workload"], d["listenerPort"]) != (listener.workload.key, listener.port):
            continue
        if sref not in {f"{s['gateway']}[{s['server']}]" for s in d["from"]}:
            continue
        if name in d["hosts"]:
            return d["outcome"]
        if name not in chains.exact and name not in d["exceptHosts"] and any(
                h.startswith("*.") and cert_covers(h, name) for h in d["hosts"]):
            by_pattern = d["outcome"]
    return by_pattern or "Ok"


def differential(inv: Inventory, certs) -> List[Tuple[str, str, str, str, str]]:
    """(listener, from host, to host, predicted, observed) for every pair; mismatches only."""
    report = registry.run(inv)
    gateway = serve(inv, certs)
    ctx = netprobe.client_context(certs.ca_cert)
    wrong = []
    try:
        for listener, port in gateway.ports.items():
            live = [p for p in inv.placements if p.listener == listener and p.server.sni_chain and p.dropped_for is None and p.chained]
            chains = ChainIndex(live)
            names = names_on(live)
            for c in names:
                f = chains.lookup(c)
                # a browser opens connections only to an HTTPS server whose certificate it accepts
                if f is None or not f.server.http_routed or not any(cert_covers(s, c) for s in f.coverage):
                    continue
                for r in names:
                    t = chains.lookup(r)
                    if r == c or t is None:
                        continue
                    if t.server.http_routed and t.coverage and not any(cert_covers(s, r) for s in t.coverage):
                        continue  # r shows a certificate error on its own connection (GWD0106)
                    want = predicted(report, listener, chains, f, r)
                    got = netprobe.probe_pair("127.0.0.1", port, c, r, ctx, timeout=5)
                    seen = OBSERVED.get(got.result, f"{got.result.value}: {got.detail}")
                    if seen != want:
                        wrong.append((str(listener), c, r, want, seen))
    finally:
        gateway.stop()
    return wrong


def test_envoy_rejects_what_listener_conflict_predicts(scenario_files, certs) -> None:
    inv = build_inventory(load_files(scenario_files("listener_conflict")))
    assert [f.code for f in registry.run(inv).findings] == ["GWD0105"]
    with pytest.raises(RuntimeError, match="overlapping matching rules|same matching rules"):
        serve(inv, certs).stop()


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_on_real_envoy(name, scenario_files, certs) -> None:
    inv = build_inventory(load_files(scenario_files(name)))
    assert differential(inv, certs) == []


@pytest.fixture(scope="module")
def pool(certs) -> List[bytes]:
    return [certs.leaf(*sans, tag="pool").cert_pem for sans in CERT_POOL]


@settings(max_examples=int(os.environ.get("GWDUP_ENVOY_EXAMPLES", "25")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(inventory_st)
def test_random_inventories_on_real_envoy(pool, certs, spec) -> None:
    inv = build_inventory(make_raw(spec, pool))
    if any(f.code == "GWD0105" for f in registry.run(inv).findings):
        with pytest.raises(RuntimeError, match="overlapping matching rules|same matching rules"):
            serve(inv, certs).stop()
        return
    assert differential(inv, certs) == []
