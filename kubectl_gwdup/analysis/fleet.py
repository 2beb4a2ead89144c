"""Hazards across clusters: gateways of different clusters behind one address pool like one
gateway. Pure.

An anycast address or a global load balancer in front of several clusters sends a browser's
connection to any of them. Once connected for host A, the browser sends host B on the same
connection when B resolves to that address and the certificate it was shown covers B; the
cluster holding the connection then routes B with A's route table. When that cluster does not
serve B at all on that port (only another cluster does), its own analysis cannot see the
hazard: it appears only when the clusters are read together.

For every TLS-terminating server P1 of cluster X and every concrete host B served by a server
of another cluster Y: a finding when B shares an address with a host of P1, P1's certificate
covers B, and no server of X on that port lists B (if one did, X's own report already has the
hazard, or there is none). The outcome is NotFound, or Misrouted when P1's route table has a
wildcard virtual host that answers B.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Mapping, Sequence, Set, Tuple

from ..catalogue import COALESCED_ACROSS_CLUSTERS
from ..hosts import bare_host, is_wildcard, suffix_match
from ..model import Finding, Inventory, Level, Placement

Key = Tuple[str, int]  # (cluster, placement index)


def _concrete(hosts: Sequence[str]) -> List[str]:
    out = []
    for h in hosts:
        name = bare_host(h).lower().rstrip(".")
        if name and not is_wildcard(name) and name != "*":
            out.append(name)
    return out


def _terminating(p: Placement) -> bool:
    return p.chained and p.server.http_routed and bool(p.coverage) and p.dropped_for is None


def names(clusters: Sequence[Tuple[str, Inventory]]) -> Set[str]:
    """Every concrete host a cross-cluster pairing needs an answer for."""
    out: Set[str] = set()
    for _, inv in clusters:
        for p in inv.placements:
            if _terminating(p):
                out.update(_concrete(p.server.hosts))
    return out


def across(clusters: Sequence[Tuple[str, Inventory]], answers: Mapping[str, Any]) -> List[Finding]:
    """The cross-cluster findings; `answers`: name -> sources.dns.Answer."""
    if len(clusters) < 2:
        return []

    def addrs(name: str) -> Tuple[str, ...]:
        a = answers.get(name)
        return tuple(a.addresses) if a is not None else ()

    # per (address, cluster): the certificates offered there, indexed by the names they cover
    exact: Dict[Tuple[str, str], Dict[str, List[Tuple[Placement, str]]]] = defaultdict(lambda: defaultdict(list))
    wild: Dict[Tuple[str, str], Dict[str, List[Tuple[Placement, str]]]] = defaultdict(lambda: defaultdict(list))
    served: Dict[str, Set[Tuple[int, str]]] = defaultdict(set)  # cluster -> (port, host pattern)
    for cluster, inv in clusters:
        for p in inv.placements:
            for h in p.server.hosts:
                served[cluster].add((p.listener.port, bare_host(h).lower()))
            if not _terminating(p):
                continue
            for h1 in _concrete(p.server.hosts):
                for ip in addrs(h1):
                    for san in p.coverage:
                        san = san.lower()
                        if san.startswith("*."):
                            wild[(ip, cluster)][san[2:]].append((p, h1))
                        else:
                            exact[(ip, cluster)][san].append((p, h1))
    found: Dict[Tuple[str, str, str, str, str], Dict[str, Any]] = {}
    for y_cluster, inv in clusters:
        for p2 in inv.placements:
            if not _terminating(p2):
                continue
            for b in _concrete(p2.server.hosts):
                parent = b.partition(".")[2]
                for ip in addrs(b):
                    for x_cluster, _ in clusters:
                        if x_cluster == y_cluster:
                            continue
                        offers = exact.get((ip, x_cluster), {}).get(b, []) + wild.get((ip, x_cluster), {}).get(parent, [])
                        for p1, h1 in offers:
                            if any(suffix_match(pattern, b) and port == p1.listener.port
                                   for port, pattern in served[x_cluster] if pattern == b or pattern.startswith("*")):
                                continue  # X serves B itself: fine, or in X's own report
                            key = (x_cluster, str(p1.server.ref), y_cluster, str(p2.server.ref), ip)
                            entry = found.setdefault(key, {"p1": p1, "p2": p2, "hosts": [], "via": h1})
                            if b not in entry["hosts"]:
                                entry["hosts"].append(b)
    out = []
    for (x_cluster, _r1, y_cluster, _r2, ip), e in sorted(found.items(), key=lambda kv: kv[0]):
        p1, p2 = e["p1"], e["p2"]
        wildcard = [v.domain for v in p1.vhosts if v.domain.startswith("*") and any(suffix_match(v.domain, b)
                                                                                      for b in e["hosts"])]
        outcome = "Misrouted" if wildcard else "NotFound"
        frm, to = p1.server.ref.to_dict(), p2.server.ref.to_dict()
        frm["cluster"], to["cluster"] = x_cluster, y_cluster
        detail = {"outcome": outcome, "mtls": False, "workload": p1.listener.workload.key,
                  "workloadVia": p1.listener.workload.via.value,
                  "listenerPort": p1.listener.port, "from": [frm], "to": [to], "hosts": sorted(e["hosts"]),
                  "requests": [], "exceptHosts": [], "cluster": x_cluster, "clusters": [x_cluster, y_cluster],
                  "sharedAddresses": [ip], "connectionHost": e["via"],
                  "certificate": {"credentials": sorted(str(c) for c in p1.credentials),
                                  "sha256": sorted({c.fingerprint for c in p1.certificates}),
                                  "dnsNames": list(p1.coverage), "inspected": not p1.coverage_inferred},
                  "passthroughTargets": []}
        if wildcard:
            detail["answeredBy"] = wildcard[0]
        out.append(COALESCED_ACROSS_CLUSTERS.finding(
            p1.server.ref.resource, level=Level.ERROR if wildcard else None, detail=detail,
            hosts=", ".join(sorted(e["hosts"])), to=p2.server.ref.label, to_cluster=y_cluster, address=ip,
            from_=p1.server.ref.label, from_cluster=x_cluster,
            outcome="answered by the wrong backend" if wildcard else "404 from the wrong route table"))
    return out
