"""Property tests: host-pattern helpers against brute force, and the grouped analysis against
a pair-by-pair reference model on random inventories (real certificates from a fixed pool)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kubectl_gwdup.analysis import registry
from kubectl_gwdup.hosts import (bare_host, best_domain, cert_covers, cert_sni_intersection,
                                 istio_matches, suffix_match)
from kubectl_gwdup.inventory import RawObjects, build_inventory
from kubectl_gwdup.model import CertStatus, Input, Placement

LABELS = ["a", "b", "c", "x"]
BASE = "ex.com"
UNIVERSE = frozenset({f"{l}.{BASE}" for l in LABELS} | {f"{l}.{m}.{BASE}" for l in LABELS for m in LABELS}
                     | {BASE, f"a.b.c.{BASE}"})
NAMES = sorted(UNIVERSE)
PATTERNS = sorted({*UNIVERSE, f"*.{BASE}", "*.b.ex.com", "*.a.ex.com", "*.c.b.ex.com", "*.com", "*"})
SANS = [p for p in PATTERNS if p not in ("*", "*.com")]
PROFILE = settings(max_examples=200, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@PROFILE
@given(st.sampled_from(SANS), st.sampled_from(PATTERNS))
def test_cert_sni_intersection_matches_brute_force(san: str, sni: str) -> None:
    got = cert_sni_intersection(san, sni)
    expected = {n for n in UNIVERSE | {"y." + n for n in UNIVERSE} if cert_covers(san, n) and suffix_match(sni, n)}
    if got is None:
        assert not expected
    else:
        found = {n for n in UNIVERSE | {"y." + n for n in UNIVERSE} if cert_covers(got, n)}
        assert found == expected


@PROFILE
@given(st.sampled_from(PATTERNS), st.sampled_from(PATTERNS))
def test_istio_matches_is_shared_name(a: str, b: str) -> None:
    names = set(UNIVERSE) | {"y." + n for n in UNIVERSE} | {"q.y." + n for n in UNIVERSE}
    shared = any(suffix_match(a, n) and suffix_match(b, n) for n in names)
    assert istio_matches(a, b) == shared
    assert istio_matches(a, b) == istio_matches(b, a)


@PROFILE
@given(st.sampled_from(SANS), st.sampled_from(NAMES))
def test_certificate_wildcard_covers_exactly_one_label(san: str, name: str) -> None:
    if san.startswith("*."):
        expected = name.endswith(san[1:]) and name.count(".") == san.count(".")
    else:
        expected = san == name
    assert cert_covers(san, name) == expected
    assert cert_covers(san.upper(), name) == expected  # case-insensitive


@PROFILE
@given(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=6, unique=True), st.sampled_from(NAMES))
def test_best_domain_is_envoys_order(domains: List[str], host: str) -> None:
    got = best_domain([(d, d) for d in domains], host)
    matching = [d for d in domains if suffix_match(d, host)]
    if not matching:
        assert got is None
        return
    exact = [d for d in matching if d == host]
    expected = exact[0] if exact else max((d for d in matching if d != "*"), key=len, default="*")
    assert got is not None and got[0] == expected


# --- random inventories against a pair-by-pair reference ------------------------------------

HOSTS = ["a.ex.com", "b.ex.com", "c.ex.com", "a.b.ex.com", "*.ex.com", "*.b.ex.com", "*",
         "A.ex.com", "team/b.ex.com", "*/c.ex.com", "./a.ex.com", "x.c.ex.com", "ns0/*.ex.com"]
CERT_POOL = [("a.ex.com", "b.ex.com"), ("*.ex.com",), ("a.ex.com",), ("b.ex.com",),
             ("*.b.ex.com",), ("*.ex.com", "a.b.ex.com"), ("c.ex.com", "a.b.ex.com"),
             ("a.ex.com", "b.ex.com", "c.ex.com", "*.c.ex.com")]
WORKLOADS = [("istio-system", "gw0"), ("istio-system", "gw1"), ("edge", "gw2")]


@pytest.fixture(scope="module")
def pool_pems(certs) -> List[bytes]:
    return [certs.leaf(*sans, tag="pool").cert_pem for sans in CERT_POOL]


server_st = st.fixed_dictionaries({
    "gateway": st.integers(0, 3),
    "port": st.sampled_from([443, 443, 443, 9443]),
    "kind": st.sampled_from(["SIMPLE", "SIMPLE", "SIMPLE", "MUTUAL", "PASSTHROUGH"]),
    "hosts": st.lists(st.sampled_from(HOSTS), min_size=1, max_size=3, unique=True),
    "credential": st.integers(0, 2),
})
inventory_st = st.fixed_dictionaries({
    "servers": st.lists(server_st, min_size=2, max_size=6),
    "selectors": st.lists(st.integers(0, 2), min_size=4, max_size=4),
    "secrets": st.lists(st.one_of(st.none(), st.integers(0, len(CERT_POOL) - 1)), min_size=5, max_size=5),
    "vs": st.one_of(st.none(), st.lists(st.tuples(
        st.lists(st.sampled_from(["a.ex.com", "b.ex.com", "*.ex.com", "*.b.ex.com", "c.ex.com", "*"]),
                 min_size=1, max_size=2, unique=True),
        st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True)), max_size=4)),
    "ages": st.permutations(range(4)),
})


def make_raw(spec, pems: List[bytes]) -> RawObjects:
    raw = RawObjects(source="test")
    raw.available.update((Input.GATEWAYS, Input.WORKLOADS, Input.CERTIFICATES))
    for ns, name in WORKLOADS:
        raw.deployments.append({"metadata": {"name": name, "namespace": ns},
                                "spec": {"template": {"metadata": {"labels": {"istio": name}}}}})
    gateways: Dict[int, dict] = {}
    for i, s in enumerate(spec["servers"]):
        g = s["gateway"]
        gw = gateways.setdefault(g, {
            "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": f"g{g}", "namespace": f"ns{g % 2}",
                         "creationTimestamp": f"2024-01-0{spec['ages'][g] + 1}T00:00:00Z"},
            "spec": {"selector": {"istio": WORKLOADS[spec["selectors"][g]][1]}, "servers": []}})
        passthrough = s["kind"] == "PASSTHROUGH"
        tls = {"mode": s["kind"]}
        if not passthrough:
            tls["credentialName"] = f"c{s['credential']}"
        gw["spec"]["servers"].append({
            "port": {"number": s["port"], "name": f"p{i}", "protocol": "TLS" if passthrough else "HTTPS"},
            "hosts": s["hosts"], "tls": tls})
    raw.gateways = list(gateways.values())
    for ns in {w[0] for w in WORKLOADS}:
        for c, idx in enumerate(spec["secrets"]):
            if idx is not None:
                raw.secrets[(ns, f"c{c}")] = pems[idx]
    if spec["vs"] is not None:
        raw.available.add(Input.VIRTUAL_SERVICES)
        for j, (hosts, gws) in enumerate(spec["vs"]):
            raw.virtual_services.append({
                "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": f"vs{j}", "namespace": "ns0",
                             "creationTimestamp": f"2024-02-0{j + 1}T00:00:00Z"},
                "spec": {"hosts": hosts, "gateways": [f"ns{g % 2}/g{g}" for g in gws],
                         "http": [{"route": [{"destination": {"host": f"svc{j}"}}]}]}})
    return raw


def ref_chain(live: List[Placement], name: str) -> Optional[Placement]:
    """Envoy's choice, written out plainly: exact, longest *.suffix, then no server names."""
    hosts = [(p, [bare_host(h) for h in p.sni_hosts]) for p in live]
    for p, hs in hosts:
        if "*" not in hs and name in hs:
            return p
    best, best_len = None, -1
    for p, hs in hosts:
        if "*" in hs:
            continue
        for h in hs:
            if h.startswith("*.") and name.endswith(h[1:]) and len(h) > best_len:
                best, best_len = p, len(h)
    if best is not None:
        return best
    return next((p for p, hs in hosts if "*" in hs), None)


def ref_route(p: Placement, name: str):
    hit = best_domain([(v.domain, v.source) for v in p.vhosts], name)
    return hit[1] if hit and hit[1].routes else None  # a virtual host without routes: 404


def reference(inventory) -> Dict[Tuple, str]:
    by_listener: Dict = {}
    for p in inventory.placements:
        by_listener.setdefault(p.listener, []).append(p)
    out = {}
    for listener, ps in by_listener.items():
        live = [p for p in ps if p.server.sni_chain and p.dropped_for is None and p.chained]
        keys = [k for p in live for k in ({"*"} if "*" in {bare_host(h) for h in p.sni_hosts}
                                          else {h.split("/")[-1] for h in p.sni_hosts})]
        if len({k.lower() for k in keys}) != len(keys):
            continue  # Envoy rejects the listener: nothing is served from this configuration
        for f in live:
            if not (f.server.http_routed and f.coverage):
                continue
            # a browser holds a connection to f only for a name f's SNI gets and its cert covers
            if not any(ref_chain(live, n) is f and any(cert_covers(s, n) for s in f.coverage) for n in NAMES):
                continue
            for n in NAMES:
                if not any(cert_covers(s, n) for s in f.coverage):
                    continue
                t = ref_chain(live, n)
                if t is None or t is f:
                    continue
                if t.server.http_routed and t.cert_status in (CertStatus.MISSING, CertStatus.INVALID):
                    continue  # n fails on its own connection: not a coalescing outage
                if t.server.http_routed and t.cert_status is CertStatus.LOADED and \
                        not any(cert_covers(s, n) for s in t.coverage):
                    continue  # n's own connection shows a certificate error (GWD0106)
                mine, theirs = ref_route(f, n), ref_route(t, n)
                if theirs is not None and mine != theirs:  # alike, or nothing of n's own answers: no hazard
                    out[(listener.workload.key, listener.port, str(f.server.ref), n)] = \
                        "NotFound" if mine is None else "Misrouted"
    return out


def expand(inventory, report) -> Dict[Tuple, str]:
    live_by_key: Dict = {}
    for p in inventory.placements:
        if p.server.sni_chain and p.dropped_for is None and p.chained:
            live_by_key.setdefault((p.listener.workload.key, p.listener.port), []).append(p)
    # names some chain lists exactly (a chain with "*" has no server names at all)
    exact_names = {k: {bare_host(h) for p in ps for h in p.sni_hosts if not bare_host(h).startswith("*")
                       and "*" not in {bare_host(x) for x in p.sni_hosts}}
                   for k, ps in live_by_key.items()}
    concrete, patterns = {}, {}
    for f in report.findings:
        if "outcome" not in f.detail:
            continue
        before = len(concrete) + len(patterns)
        key = (f.detail["workload"], f.detail["listenerPort"])
        live = live_by_key[key]
        targets = {f"{t['gateway']}[{t['server']}]" for t in f.detail["to"]}
        for src in f.detail["from"]:
            sref = f"{src['gateway']}[{src['server']}]"
            for h in f.detail["hosts"]:
                names = [h] if not h.startswith("*") else [
                    n for n in NAMES if cert_covers(h, n) and n not in exact_names[key]
                    and n not in f.detail["exceptHosts"]]
                for n in names:
                    if n not in UNIVERSE:
                        continue
                    t = ref_chain(live, n)
                    if t is None or str(t.server.ref) == sref:
                        continue  # a host of the source's own chain is not at risk from it
                    assert str(t.server.ref) in targets
                    (patterns if h.startswith("*") else concrete)[(key[0], key[1], sref, n)] = f.detail["outcome"]
        assert len(concrete) + len(patterns) > before, f"finding with no pair at risk: {f.message}"
    return {**patterns, **concrete}


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(inventory_st)
def test_grouped_analysis_equals_pairwise_reference(pool_pems, spec) -> None:
    inventory = build_inventory(make_raw(spec, pool_pems))
    report = registry.run(inventory)  # never raises on any generated inventory
    assert expand(inventory, report) == reference(inventory)


HOST_POOL = ["*", "*.a.com", "*.b.a.com", "x.a.com", "y.b.a.com", "a.com", "*.com", "z.c.com", "*.c.com",
             "q.x.a.com", "X.a.com"]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(HOST_POOL), max_size=6), st.lists(st.sampled_from(HOST_POOL), max_size=4))
def test_indexed_intersection_equals_istiods_pairwise_one(server_hosts, vs_hosts) -> None:
    """HostSet (what the inventory uses on big merged servers) against Names.Intersection as
    istiod writes it: every pair compared."""
    from kubectl_gwdup.hosts import HostSet, istio_intersection

    assert set(HostSet(server_hosts).intersect(vs_hosts)) == set(istio_intersection(server_hosts, vs_hosts))


DOMAIN_POOL = ["*", "*.a.com", "*.b.a.com", "x.a.com", "a.com", "*.com", "x.*", "x.a.*", "*-x.a.com", "b-x.a.com"]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(DOMAIN_POOL), max_size=6, unique=True),
       st.sampled_from(["x.a.com", "y.a.com", "b-x.a.com", "q.b.a.com", "a.com", "x.a.org", "zz"]))
def test_domain_index_equals_best_domain(domains, host) -> None:
    from kubectl_gwdup.hosts import DomainIndex

    table = [(d, i) for i, d in enumerate(domains)]
    assert DomainIndex(table).lookup(host) == best_domain(table, host)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(inventory_st)
def test_vhost_421_entries_answer_exactly_the_foreign_names(pool_pems, spec) -> None:
    """Each affected route table, with the planned virtual hosts, resolved by Envoy's order
    written out plainly (best_domain) for every name its certificate lets a browser send: 421
    for a name another chain serves, what it answered before for the chain's own names, and
    for a name no chain serves its 404, or 421 under a SAN wildcard the plan used. The entries
    stay within the table's SANs, its own names and the names under its own wildcards."""
    from kubectl_gwdup.analysis.chains import ChainIndex, live_chains
    from kubectl_gwdup.plans.vhost421 import ListenerPatterns, table_entries

    inventory = build_inventory(make_raw(spec, pool_pems))
    by_listener: Dict = {}
    for p in inventory.placements:
        by_listener.setdefault(p.listener, []).append(p)
    names = NAMES + ["y." + n for n in NAMES]
    for placements in by_listener.values():
        live = live_chains(placements)
        chains, patterns = ChainIndex(live), ListenerPatterns(live)
        for p in live:
            if not p.server.http_routed or not p.coverage:
                continue
            e = table_entries(p, chains, patterns)
            own = [(v.domain, "own") for v in p.vhosts]
            table = own + [(d, "421") for d in e.misdirected] + [(d, "404") for d in e.no_route]
            assert len({d for d, _ in table}) == len(table), "a domain twice: Envoy rejects the table"
            left = {g for g, _ in e.left_out}
            for n in names:
                if not p.covers(n) or any(suffix_match(g, n) for g in left):
                    continue
                t = ref_chain(live, n)
                before = best_domain(own, n)
                got = best_domain(table, n)
                if t is not None and t is not p:
                    assert got is not None and got[1] == "421", (p.server.ref, n, got)
                elif t is p:
                    assert got == before or (before is None and got[1] == "404"), (p.server.ref, n, got)
                else:
                    used = any(d.startswith("*.") and cert_covers(d, n) for d in e.misdirected)
                    assert got == before or (before is None and got[1] == "404") or (used and got[1] == "421")
            wild = [o for o in p.sni_hosts if bare_host(o) == "*" or bare_host(o).startswith("*.")]
            wild += [v.domain for v in p.vhosts if v.domain == "*" or v.domain.startswith("*.")]
            under = {f for w in wild for f in patterns.below(bare_host(w))}
            assert len(e.misdirected) + len(e.no_route) <= len(p.coverage) + len(p.sni_hosts) + len(under)
