"""Merge plans for Gateway API listeners: one wildcard listener for a hazard group. Pure.

A Gateway API listener has one hostname, so the one-server fix of an Istio merge becomes one
listener whose hostname is the wildcard every host of the group sits under (`*.example.com`
for a.example.com and b.example.com), presenting their common certificate, with the
HTTPRoutes of the old listeners attached to it. It is possible when:
- the group's listeners belong to one Gateway (listeners of several Gateways on one manual
  deployment, or of ListenerSets, cannot be one listener: apply-421 answers them), share port,
  protocol HTTPS, TLS settings and allowedRoutes, and their hostnames sit one label under one
  parent (or are that wildcard);
- no other listener of the Gateway on that port serves a name under the wildcard that the
  certificate is valid for (it would keep its own chain next to the new one: the hazard
  again), nor a wildcard or every name;
- every name keeps its answer, in every state between two writes (simulated below).

Writes, in the phases of kubectl_gwdup/plans/merge_steps.py:
1. bind: the Gateway gets the wildcard listener (its routes are not attached yet, and the old
   listeners keep their names: an exact SNI match wins over a wildcard); then each HTTPRoute
   attached to an old listener by sectionName is attached to the wildcard listener too, its
   hostnames spelled out when it had none (the old listener's hostname limited it; the
   wildcard's would not). While the old listeners exist, istiod leaves their names to them
   (hostnameAllowedByIsolation), so these writes change no answer.
2. merge: the Gateway loses the old listeners; their names move to the wildcard listener, whose
   routes already hold them.
3. unbind: the HTTPRoutes drop their references to the old listeners.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ..analysis import registry
from ..gatewayapi import GatewayApiObjects
from ..hosts import istio_matches, parent
from ..inventory import RawObjects, build_inventory
from ..model import GATEWAY_API_GROUP, Finding, Inventory, ListenerOrigin, Placement, ServerRef
from .merge_steps import Answer, MergeUnit, Step, answers, describe

MAX_NAME = 253  # a listener name is a DNS subdomain (SectionName)


class ListenerMerges:
    """Plans listener merges for the hazard groups of one inventory; what every group looks up
    (Gateways by name, HTTPRoutes by parent Gateway, placements by Gateway) is indexed once, so
    a mesh of thousands of groups costs what its groups cost."""

    def __init__(self, raw: RawObjects, inventory: Inventory) -> None:
        self.raw, self.inventory = raw, inventory
        ns0 = raw.default_namespace
        self.gateways = {_key(g, ns0): g for g in raw.gateway_api.gateways}
        self.routes: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        for r in list(raw.gateway_api.http_routes) + list(raw.gateway_api.grpc_routes):  # rebound alike
            route_ns = _key(r, ns0)[0]
            parents = {(str(p.get("namespace") or route_ns), str(p.get("name")))
                       for p in (r.get("spec") or {}).get("parentRefs") or [] if _is_parent(p, "", "", route_ns, True)}
            for key in parents:
                self.routes.setdefault(key, []).append(r)
        self.placements: Dict[Tuple[str, str], List[Placement]] = {}
        for p in inventory.placements:
            o = p.server.ref.origin
            if o is not None:
                self.placements.setdefault((o.namespace, o.name), []).append(p)

    def plan(self, findings: Sequence[Finding], notes: List[str]) -> Optional[MergeUnit]:
        return plan_listener_merge(self, findings, notes)


def plan_listener_merge(index: ListenerMerges, findings: Sequence[Finding], notes: List[str]) -> Optional[MergeUnit]:
    """The unit for one hazard group of Gateway API listeners, or None with a note saying why
    not and what to do instead."""
    raw = index.raw
    origins: Set[ListenerOrigin] = set()
    istio = False
    for f in findings:
        for ref in f.detail["from"] + f.detail["to"]:
            o = ServerRef.from_dict(ref).origin
            if o is None:
                istio = True
            else:
                origins.add(o)
    label = ", ".join(sorted(str(o) for o in origins))
    if istio:
        return _refuse(notes, label, "Istio Gateway servers and Gateway API listeners share these connections; "
                                     "one object cannot hold both: apply-421 answers them")
    if any(o.kind != "Gateway" for o in origins):
        return _refuse(notes, label, "ListenerSet listeners: apply-421 answers them, or give them certificates of "
                                     "their own")
    owners = {(o.namespace, o.name) for o in origins}
    if len(owners) > 1:
        return _refuse(notes, label, "listeners of several Gateways share these pods; one listener cannot serve "
                                     "them: apply-421 answers them, or give each Gateway a certificate of its own")
    (ns, name), = owners
    gw = index.gateways.get((ns, name))
    if gw is None:
        return _refuse(notes, label, f"Gateway {ns}/{name} not read")
    spec = gw.get("spec") or {}
    listeners = [dict(x) for x in spec.get("listeners") or []]
    chosen = {o.listener for o in origins}
    unit = [x for x in listeners if x.get("name") in chosen]
    why = _mergeable(unit)
    if why:
        return _refuse(notes, label, why)
    wildcard = _wildcard([str(x["hostname"]) for x in unit])
    if wildcard is None:
        return _refuse(notes, label, f"hostnames {', '.join(sorted(str(x['hostname']) for x in unit))} do not sit "
                                     "under one wildcard: apply-421 answers them, or give each a certificate of its own")
    port = unit[0].get("port")
    cert = next((p for p in index.placements.get((ns, name), ()) if p.server.ref.origin in origins), None)
    if cert is not None and not cert.coverage_inferred and not cert.lists(wildcard):
        # a browser refuses the wildcard listener's certificate for every name it does not list,
        # and check reports the listener (GWD0106): a merge must not trade one hazard for another
        names = ", ".join(sorted(cert.coverage)) or "no DNS name"
        return _refuse(notes, label, f"the merged listener would serve {wildcard}, which their certificate "
                                     f"({names}) does not cover: reissue it with {wildcard} to merge, or "
                                     "apply-421 answers them")
    for other in listeners:
        if other in unit or other.get("port") != port:
            continue
        host = other.get("hostname") or "*"
        # its own chain next to the wildcard one: harmless unless the merged certificate is valid there
        reachable = host.startswith("*") or cert is None or cert.covers(host)
        if istio_matches(host, wildcard) and other.get("protocol") in ("HTTPS", "TLS") and reachable:
            return _refuse(notes, label, f"listener {ns}/{name}/{other.get('name')} ({host}) also serves names under "
                                         f"{wildcard}: apply-421 answers them")
    routes = index.routes.get((ns, name), [])
    steps = _steps(gw, listeners, unit, wildcard, routes, raw.default_namespace)
    merged = MergeUnit(target=gw, steps=steps, deleted=[])
    problem = _simulate(raw, index.placements.get((ns, name), []), gw, routes, steps, (ns, name))
    if problem:
        return _refuse(notes, label, f"{problem}: apply-421 answers them")
    return merged


def _refuse(notes: List[str], label: str, why: str) -> None:
    notes.append(f"not merged: {label}: {why}")
    return None


def _key(obj: Mapping[str, Any], default_ns: str) -> Tuple[str, str]:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or default_ns), str(m.get("name"))


def _mergeable(unit: List[Dict[str, Any]]) -> str:
    """Why these listeners cannot be one ('' when they can)."""
    if any(x.get("protocol") != "HTTPS" for x in unit):
        return "not all are HTTPS listeners"
    if any(not x.get("hostname") for x in unit):
        return "a listener without hostname serves every name already: apply-421 answers it"
    for field_name, what in (("port", "ports"), ("tls", "TLS settings or certificates"),
                             ("allowedRoutes", "allowedRoutes")):
        if len({json.dumps(x.get(field_name), sort_keys=True) for x in unit}) > 1:
            return f"different {what}: one listener cannot keep them all (apply-421 answers them)"
    return ""


def _wildcard(hostnames: Sequence[str]) -> Optional[str]:
    """`*.<parent>` when every hostname is one label under that parent, or is that wildcard."""
    parents = {h[2:] if h.startswith("*.") else parent(h) for h in hostnames}
    if len(parents) != 1 or any(h.startswith("*") and not h.startswith("*.") for h in hostnames):
        return None
    (base,) = parents
    if not base or any(h.count("*") > 1 for h in hostnames):
        return None
    return f"*.{base}"


def _is_parent(ref: Mapping[str, Any], ns: str, name: str, route_ns: str, any_gateway: bool = False) -> bool:
    """The parentRef names the Gateway ns/name (any Gateway with `any_gateway`)."""
    gateway = (ref.get("group") or GATEWAY_API_GROUP) == GATEWAY_API_GROUP and (ref.get("kind") or "Gateway") == "Gateway"
    return gateway and (any_gateway or (ref.get("name") == name and (ref.get("namespace") or route_ns) == ns))


def _listener_name(wildcard: str, taken: Set[str]) -> str:
    base = ("wildcard-" + wildcard[2:].replace(".", "-"))[:MAX_NAME - 4]
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _steps(gw: Dict[str, Any], listeners: List[Dict[str, Any]], unit: List[Dict[str, Any]], wildcard: str,
           routes: Sequence[Dict[str, Any]], default_ns: str) -> List[Step]:
    ns, name = _key(gw, default_ns)
    old = {str(x["name"]) for x in unit if x.get("hostname") != wildcard}
    kept = next((x for x in unit if x.get("hostname") == wildcard), None)
    steps: List[Step] = []
    if kept is None:
        new = dict(copy.deepcopy(unit[0]), name=_listener_name(wildcard, {str(x.get("name")) for x in listeners}),
                   hostname=wildcard)
        steps.append(Step("bind", "update", gw, dict(gw.get("spec") or {}, listeners=listeners + [new])))
        target = str(new["name"])
    else:
        target = str(kept["name"])
    hostname_of = {str(x["name"]): str(x["hostname"]) for x in unit}
    unbinds = []
    for r in routes:
        spec = r.get("spec") or {}
        route_ns = _key(r, default_ns)[0]
        refs = [dict(p) for p in spec.get("parentRefs") or []]
        by_section = [p for p in refs if _is_parent(p, ns, name, route_ns) and p.get("sectionName") in old]
        if not by_section:
            continue
        bound = dict(spec)
        if not any(_is_parent(p, ns, name, route_ns) and p.get("sectionName") == target for p in refs):
            bound["parentRefs"] = refs + [dict(by_section[0], sectionName=target)]
        if not spec.get("hostnames"):
            bound["hostnames"] = sorted({hostname_of[str(p["sectionName"])] for p in by_section})
        steps.append(Step("bind", "update", r, bound))
        unbinds.append(Step("unbind", "update", r, dict(bound, parentRefs=[
            p for p in bound["parentRefs"] if not (_is_parent(p, ns, name, route_ns) and p.get("sectionName") in old)])))
    final = [x for x in listeners if str(x.get("name")) not in old]
    if kept is None:
        final.append(steps[0].spec["listeners"][-1])  # type: ignore[index]
    steps.append(Step("merge", "update", gw, dict(gw.get("spec") or {}, listeners=final)))
    return steps + unbinds


EVERY_WRITE = 12  # groups with at most this many writes are simulated write by write


def _simulate(raw: RawObjects, placements: Sequence[Placement], gw: Dict[str, Any], routes: Sequence[Dict[str, Any]],
              steps: Sequence[Step], owner: Tuple[str, str]) -> str:
    """'' when every state the writes pass through leaves every name of the Gateway answered as
    before (a name nobody served may meet the wildcard listener's 404), and the last leaves no
    hazard on its listeners.

    States: after every write for small groups; for larger ones, after the Gateway's two writes
    and at the end of each phase. That is enough because each HTTPRoute write changes that
    route's own VirtualServices only, and during the bind phase those gain the wildcard
    listener (which isolation keeps off every old listener's name while the old listeners
    exist) and hostnames the route already served; during unbind, references to listeners
    that no longer exist: no write of one route can make up for another's."""
    names: Set[str] = set()
    for p in placements:
        for h in list(p.server.hosts) + list(p.coverage):
            h = h.split("/", 1)[-1]
            names.add(f"gwdup-sample.{h[2:]}" if h.startswith("*.") else h)
    names.discard("*")
    objects: Dict[int, Dict[str, Any]] = {id(o): o for o in [gw, *routes]}
    # istiod's own deployment serves this Gateway alone; pods named by spec.addresses may serve
    # any other Gateway too, so then everything is simulated
    shared = bool((gw.get("spec") or {}).get("addresses"))
    api = raw.gateway_api
    gateways = api.gateways if shared else [gw]
    others = [r for r in list(api.http_routes) + list(api.grpc_routes) if id(r) not in objects] if shared else []

    def state() -> Inventory:
        current = [objects[id(r)] for r in routes] + others
        scoped = copy.copy(raw)
        scoped.gateway_api = GatewayApiObjects(
            gateways=[objects.get(id(g), g) for g in gateways], listener_sets=list(api.listener_sets) if shared else [],
            http_routes=[r for r in current if r.get("kind") != "GRPCRoute"],
            grpc_routes=[r for r in current if r.get("kind") == "GRPCRoute"], tls_routes=list(api.tls_routes),
            reference_grants=list(api.reference_grants), gateway_classes=list(api.gateway_classes), routes_read=True)
        if not shared:
            scoped.gateways, scoped.virtual_services = [], []
        scoped.notes, scoped._servers = [], None
        return build_inventory(scoped)

    before: Dict[Tuple[str, str], Answer] = answers(state(), names)
    for i, s in enumerate(steps, 1):
        objects[id(s.before)] = dict(objects[id(s.before)], spec=s.spec)
        last_of_phase = i == len(steps) or steps[i].phase != s.phase
        if not (len(steps) <= EVERY_WRITE or s.before is gw or last_of_phase):
            continue
        inv = state()
        now = answers(inv, names)
        for key in sorted(set(before) | set(now)):
            was, is_ = before.get(key, ("no chain",)), now.get(key, ("no chain",))
            if was != is_ and not (was == ("no chain",) and is_[0] == "404"):
                return (f"after write {i} ({s.phase} {s.key[0]} {s.key[1]}/{s.key[2]}), {key[1]} on {key[0]} would "
                        f"be answered by {describe(is_)} instead of {describe(was)}")
    for f in registry.run(inv).findings:
        refs = [ServerRef.from_dict(r).origin for r in f.detail.get("from", []) + f.detail.get("to", [])]
        if "outcome" in f.detail and any(o is not None and (o.namespace, o.name) == owner for o in refs):
            return f"a hazard would remain ({f.message})"
    return ""
