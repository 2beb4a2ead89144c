"""Merge plans: hazard groups -> one Gateway whose servers hold the hosts together. Pure.

Servers connected by hazards (same workload and port) are merged with every other server of
their Gateways into one new Gateway: TLS-terminating servers with the same TLS settings and the
same certificate become ONE server (one filter chain, one route table), which is the fix Istio
recommends; other servers (an HTTP redirect on port 80, say) are carried over without
duplication. VirtualServices that name a merged Gateway are rewritten, and each old Gateway is
deleted, as all its servers moved.

A plan is checked before anyone sees it: after it, `check` must find no hazard left in the
merged group, and every host must keep exactly the routes it had (same VirtualServices,
matches, weights). A group that would fail either check, or whose servers need different
certificates or TLS settings, is explained and left alone: a plan never changes which backend a
host reaches.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ..hosts import bare_host
from ..inventory import RawObjects, build_inventory
from ..model import MANAGED_BY, Finding, Inventory, Placement
from ..objects import resolve_gateway_name

CREDENTIAL_KEYS = ("credentialName", "credentialNames", "serverCertificate", "privateKey", "caCertificates")
ROUTE_KINDS = ("http", "tls", "tcp")


@dataclass
class MergeUnit:
    gateway: Dict[str, Any]
    rewritten: List[Tuple[Dict[str, Any], Dict[str, Any]]]  # (before, after) VirtualServices
    deleted: List[Dict[str, Any]]  # Gateways as read


@dataclass
class MergePlan:
    units: List[MergeUnit] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        apply = [u.gateway for u in self.units] + [after for u in self.units for _, after in u.rewritten]
        delete = [{"apiVersion": g["apiVersion"], "kind": "Gateway", "namespace": g["metadata"]["namespace"],
                   "name": g["metadata"]["name"]} for u in self.units for g in u.deleted]
        pre = [{"kind": o["kind"], "namespace": o["metadata"]["namespace"], "name": o["metadata"]["name"],
                "uid": o["metadata"].get("uid"), "resourceVersion": o["metadata"].get("resourceVersion")}
               for u in self.units for o in [b for b, _ in u.rewritten] + u.deleted]
        return {"apiVersion": "gwdup.kubectl.io/v1alpha1", "kind": "MergePlan", "apply": apply,
                "delete": delete, "preconditions": pre, "notes": list(self.notes)}


class _Union:
    def __init__(self) -> None:
        self.parent: Dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: Any, b: Any) -> None:
        self.parent[self.find(a)] = self.find(b)


def _sref(d: Mapping[str, Any]) -> Tuple[str, int]:
    return d["gateway"], d["server"]


def _gw_key(obj: Mapping[str, Any], default_ns: str) -> str:
    m = obj["metadata"]
    return f"{m.get('namespace') or default_ns}/{m['name']}"


def hazard_units(findings: Sequence[Finding]) -> List[Set[str]]:
    """Sets of Gateway keys to merge together: connected by hazards, or by sharing a Gateway."""
    u = _Union()
    for f in findings:
        d = f.detail
        if "outcome" not in d:
            continue
        gws = [s["gateway"] for s in d["from"] + d["to"]]
        for g in gws:
            u.join(gws[0], g)
    groups: Dict[Any, Set[str]] = {}
    for g in list(u.parent):
        groups.setdefault(u.find(g), set()).add(g)
    return sorted(groups.values(), key=lambda s: sorted(s))


def _tls_settings(tls: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in tls.items() if k not in CREDENTIAL_KEYS}, sort_keys=True)


def _rehome(host: str, old_ns: str) -> str:
    """Keep a host's meaning when its server moves to another namespace."""
    if host.startswith("./"):
        return f"{old_ns}/{host[2:]}"
    if host.startswith("*/"):
        return host[2:] if host != "*/*" else "*"
    return host


def _certificate_identity(placements: Iterable[Placement]) -> Tuple[str, ...]:
    fps = sorted({c.fingerprint for p in placements for c in p.certificates})
    if fps:
        return tuple(fps)
    return tuple(sorted({str(c) for p in placements for c in p.credentials}))


def plan_merge(raw: RawObjects, inventory: Inventory, findings: Sequence[Finding], *, name: Optional[str] = None,
               namespace: Optional[str] = None, prefer_cert: Optional[str] = None) -> MergePlan:
    plan = MergePlan()
    gateways = {_gw_key(g, raw.default_namespace): g for g in raw.gateways}
    placements: Dict[Tuple[str, int], List[Placement]] = {}
    for p in inventory.placements:
        placements.setdefault((p.server.ref.gateway.key, p.server.ref.index), []).append(p)
    used_names: Set[str] = set(gateways)
    for unit_keys in hazard_units(findings):
        unit = _plan_unit(plan, raw, inventory, findings, gateways, placements, unit_keys, name, namespace,
                          prefer_cert, used_names)
        if unit is not None:
            plan.units.append(unit)
    return plan


def _plan_unit(plan: MergePlan, raw: RawObjects, inventory: Inventory, findings: Sequence[Finding],
               gateways: Dict[str, Dict[str, Any]], placements: Dict[Tuple[str, int], List[Placement]],
               keys: Set[str], name: Optional[str], namespace: Optional[str], prefer_cert: Optional[str],
               used_names: Set[str]) -> Optional[MergeUnit]:
    members = [gateways[k] for k in sorted(keys) if k in gateways]
    label = ", ".join(sorted(keys))
    workloads = {tuple(sorted(str(p.listener.workload.key) for p in placements.get((k, i), [])))
                 for k in keys for i in range(len((gateways[k].get("spec") or {}).get("servers") or []))}
    if len(workloads) > 1:
        plan.notes.append(f"not merged: {label}: the Gateways select different gateway workloads")
        return None
    first = members[0]
    target_ns = namespace or next(iter({p.listener.workload.namespace for ps in placements.values() for p in ps
                                        if p.server.ref.gateway.key in keys} - {""}), None) \
        or first["metadata"].get("namespace") or raw.default_namespace
    target_name = name if name and len(plan.units) == 0 else _unique(
        f"gwdup-merged-{first['metadata']['name']}", target_ns, used_names)
    used_names.add(f"{target_ns}/{target_name}")

    servers: List[Dict[str, Any]] = []
    by_key: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    cert_of: Dict[Tuple[Any, ...], Tuple[str, ...]] = {}
    for gw in members:
        gw_ns = gw["metadata"].get("namespace") or raw.default_namespace
        gw_key = f"{gw_ns}/{gw['metadata']['name']}"
        for i, s in enumerate((gw.get("spec") or {}).get("servers") or []):
            port = s.get("port") or {}
            tls = s.get("tls") or {}
            ps = placements.get((gw_key, i), [])
            terminating = bool(ps) and ps[0].server.http_routed
            identity = _certificate_identity(ps) if terminating else ()
            key = (port.get("number"), str(port.get("protocol", "")).upper(), _tls_settings(tls),
                   s.get("bind", ""), json.dumps(tls, sort_keys=True) if not terminating else "")
            hosts = [_rehome(h, gw_ns) for h in s.get("hosts") or []]
            if key in by_key:
                if terminating and cert_of[key] == identity and (by_key[key].get("tls") or {}).get(
                        "credentialName") != tls.get("credentialName"):
                    plan.notes.append(f"{tls.get('credentialName')} holds the same certificate as "
                                      f"{by_key[key]['tls'].get('credentialName')}, which the merged server uses")
                if terminating and cert_of[key] != identity:
                    chosen = _prefer(prefer_cert, by_key[key], s, ps, placements)
                    if chosen is None:
                        plan.notes.append(
                            f"not merged: {label}: servers on port {port.get('number')} present different "
                            "certificates, and merging would change the certificate some hosts get; "
                            "give --prefer-cert SECRET (valid for all their hosts) or use apply-421")
                        return None
                    by_key[key]["tls"] = chosen
                merged = by_key[key]
                merged["hosts"] += [h for h in hosts if h not in merged["hosts"]]
                continue
            server = copy.deepcopy(s)
            server["hosts"] = list(dict.fromkeys(hosts))
            server["port"] = dict(port, name=_port_name(port.get("name") or "port", servers))
            by_key[key] = server
            cert_of[key] = identity
            servers.append(server)
    for s in servers:
        _same_tls_hosts_check(plan, s)

    merged_gw = {"apiVersion": first["apiVersion"], "kind": "Gateway",
                 "metadata": {"name": target_name, "namespace": target_ns, "labels": dict(MANAGED_BY)},
                 "spec": {"selector": copy.deepcopy((first.get("spec") or {}).get("selector") or {}),
                          "servers": servers}}
    merged_ref = f"{target_ns}/{target_name}"
    rewritten = []
    for vs in raw.virtual_services:
        after = rewrite_virtual_service(vs, keys, merged_ref, raw.default_namespace)
        if after is not None:
            rewritten.append((vs, after))
    unit = MergeUnit(merged_gw, rewritten, members)
    problem = check_invariants(raw, inventory, unit, keys, merged_ref)
    if problem:
        plan.notes.append(f"not merged: {label}: {problem}")
        return None
    return unit


def _same_tls_hosts_check(plan: MergePlan, server: Dict[str, Any]) -> None:
    bare = [bare_host(h) for h in server["hosts"]]
    if len(set(bare)) < len(bare):
        plan.notes.append(f"merged server {server['port']['name']} lists a host under two namespaces")


def _prefer(prefer: Optional[str], kept: Dict[str, Any], other: Dict[str, Any], ps: List[Placement],
            placements: Mapping[Any, List[Placement]]) -> Optional[Dict[str, Any]]:
    """The TLS block of --prefer-cert, when its certificate is valid for every host merged."""
    from ..hosts import cert_covers

    if not prefer:
        return None
    holders = [p for group in placements.values() for p in group
               if any(c.name == prefer for c in p.credentials) and p.certificates]
    if not holders:
        return None
    sans = {san for c in holders[0].certificates for san in c.sans}
    hosts = [bare_host(h) for h in list(kept.get("hosts") or []) + list(other.get("hosts") or [])]

    def valid(h: str) -> bool:  # a wildcard host needs that very wildcard; "*" no certificate covers
        return h in sans if h.startswith("*") else any(cert_covers(san, h) for san in sans)
    if not all(valid(h) for h in hosts):
        return None
    tls = dict(next(s.get("tls") or {} for s in (kept, other)))
    for k in CREDENTIAL_KEYS:
        tls.pop(k, None)
    tls["credentialName"] = prefer
    return tls


def _port_name(name: str, servers: List[Dict[str, Any]]) -> str:
    taken = {s["port"].get("name") for s in servers}
    if name not in taken:
        return name
    n = 2
    while f"{name}-{n}" in taken:
        n += 1
    return f"{name}-{n}"


def _unique(name: str, ns: str, used: Set[str]) -> str:
    candidate, n = name, 2
    while f"{ns}/{candidate}" in used:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def rewrite_virtual_service(vs: Dict[str, Any], old: Set[str], new: str, default_ns: str) -> Optional[Dict[str, Any]]:
    """The VirtualService with every reference to an old Gateway pointing at the new one, or None.

    A bare name means the VirtualService's own namespace; `mesh` is kept; duplicates go,
    order otherwise stays. The new reference is written `ns/name`, explicit in any namespace.
    """
    ns = (vs.get("metadata") or {}).get("namespace") or default_ns
    after = copy.deepcopy(vs)
    changed = False

    def fix(refs: List[str]) -> List[str]:
        nonlocal changed
        out = []
        for r in refs:
            if r != "mesh" and resolve_gateway_name(r, ns) in old:
                r = new
                changed = True
            if r not in out:
                out.append(r)
        return out

    spec = after.get("spec") or {}
    if spec.get("gateways"):
        spec["gateways"] = fix(list(spec["gateways"]))
    for kind in ROUTE_KINDS:
        for route in spec.get(kind) or []:
            for match in route.get("match") or []:
                if match.get("gateways"):
                    match["gateways"] = fix(list(match["gateways"]))
    if not changed:
        return None
    for k in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
        after.get("metadata", {}).pop(k, None)
    after.pop("status", None)
    return after


def _names(inv: Inventory, keys: Set[str]) -> Set[str]:
    """Names to compare routes on: the unit's concrete hosts, the concrete names its
    certificates and VirtualServices list, and one stand-in name under every wildcard (a
    wildcard server answers names nobody lists)."""
    names: Set[str] = set()
    for p in inv.placements:
        if p.server.ref.gateway.key not in keys:
            continue
        for h in list(p.server.hosts) + list(p.coverage):
            h = bare_host(h)
            names.add(f"gwdup-sample.{h[2:]}" if h.startswith("*.") else h)
    for vs in inv.virtual_services:
        names.update(h.lower() for h in vs.hosts if not h.startswith("*"))
    return {n for n in names if n != "*"}


def _routes(inv: Inventory, names: Set[str]) -> Dict[Tuple[int, str], Tuple[str, str]]:
    """(server port, name) -> the route configuration answering it on its own connection."""
    from ..analysis.chains import ChainIndex, live_chains
    from ..hosts import best_domain

    by_listener: Dict[Any, List[Placement]] = {}
    for p in inv.placements:
        by_listener.setdefault(p.listener, []).append(p)
    out = {}
    for listener, ps in by_listener.items():
        chains = ChainIndex(live_chains(ps))
        for name in names:
            t = chains.lookup(name)
            if t is None or not t.server.http_routed:
                continue
            hit = best_domain([(v.domain, v.source) for v in t.vhosts], name)
            if hit is None:
                route = ("404", "")
            else:  # routes assumed from server hosts (no VirtualServices read) stay assumed
                origin = hit[1].origin if hit[1].origin.startswith("VirtualService") else "its own routes"
                route = (origin, "scoped" if hit[1].scope else "")
            out[(t.server.ref.port_number, name)] = route
    return out


def check_invariants(raw: RawObjects, inventory: Inventory, unit: MergeUnit, keys: Set[str], merged_ref: str) -> str:
    """'' when the unit is safe: no hazard left among its servers, every host's routes kept."""
    from ..analysis import registry

    after = copy.copy(raw)
    deleted = {_gw_key(g, raw.default_namespace) for g in unit.deleted}
    after.gateways = [g for g in raw.gateways if _gw_key(g, raw.default_namespace) not in deleted] + [unit.gateway]
    replaced = {id(b): a for b, a in unit.rewritten}
    after.virtual_services = [replaced.get(id(v), v) for v in raw.virtual_services]
    after.origin = dict(raw.origin)
    after._servers = None
    new_inv = build_inventory(after)
    for f in registry.run(new_inv).findings:
        gws = {s["gateway"] for s in f.detail.get("from", []) + f.detail.get("to", [])}
        if merged_ref in gws and "outcome" in f.detail:
            return f"a hazard would remain ({f.message})"
        if f.code in ("GWD0103", "GWD0105") and merged_ref in {f.resource.key}:
            return f"the merged Gateway would be rejected ({f.message})"
    names = _names(inventory, keys)
    before = _routes(inventory, names)
    now = _routes(new_inv, names)
    for key, route in sorted(before.items()):
        if key in now and now[key] != route or key not in now and route[0] != "404":
            return (f"{key[1]} on port {key[0]} would be answered by {now.get(key, ('nothing',))[0]} "
                    f"instead of {route[0]}")
    return ""
