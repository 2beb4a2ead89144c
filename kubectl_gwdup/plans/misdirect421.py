"""421 plans: findings -> Istio EnvoyFilters that keep coalesced requests out of the wrong
route table. Pure.

A browser that gets 421 Misdirected Request retries on a new connection, opened with the
right SNI, so it reaches the right filter chain and route table. Three methods:

- vhost (default, no code): one 421 virtual host in each affected route table, whose domains
  are the certificate's SAN patterns plus the few names the table's own wildcards would
  swallow (`vhost421`). Route tables are matched by name,
  `https.<server port>.<port name>.<gateway>.<namespace>`, which keeps the Gateway *server*
  port.
- lua: one filter per listener comparing the chain of the SNI with the chain of the Host
  (`lua421`).
- http1: the affected chains offer only HTTP/1.1, so browsers never pool them (`http1`), for
  clients that do not retry on 421. A source chain that terminates TLS and proxies TCP (no
  route table, no HTTP filters) gets this patch whatever the method.

Output is linear in servers and hosts whatever the certificate sharing, and the patches are
split so that each EnvoyFilter stays under `MAX_OBJECT_BYTES` (the API server stores up to
about 1.5 MiB; istiod pushes every EnvoyFilter to every proxy it selects).

Objects are scoped to the gateway workload (workloadSelector, its namespace), carry the label
app.kubernetes.io/managed-by=kubectl-gwdup and deterministic names, so applying twice changes
nothing, a shorter plan prunes the surplus, and --delete removes exactly these.
"""
from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ..analysis.chains import ChainIndex, live_chains
from ..errors import PlanError
from ..model import MANAGED_BY, Finding, Inventory, Listener, Placement, ServerRef
from . import http1, lua421
from .vhost421 import ListenerPatterns, table_entries

API_VERSION = "networking.istio.io/v1alpha3"
HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"
MIN_ISTIO = (1, 12)
MAX_OBJECT_BYTES = 512 * 1024
METHOD_ANNOTATION = "gwdup.kubectl.io/method"
MISDIRECTED_VHOST = "gwdup-misdirected"
OWN_VHOST = "gwdup-own-404"


class Method421(enum.Enum):
    VHOST = "vhost"
    LUA = "lua"
    HTTP1 = "http1"


@dataclass
class Plan421:
    objects: List[Dict[str, Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    costs: List[str] = field(default_factory=list)  # what each listener's patches add, for the report
    listeners: List[Listener] = field(default_factory=list)  # those the plan decided on (for pruning)

    def sizes(self) -> List[int]:
        """Each object's size as JSON, as the API server receives it."""
        return [len(json.dumps(o)) for o in self.objects]


def affected(findings: Sequence[Finding]) -> Dict[Tuple[str, int], Set[ServerRef]]:
    """(workload, listener port) -> the servers whose connections carry coalesced hazards."""
    out: Dict[Tuple[str, int], Set[ServerRef]] = {}
    for f in findings:
        d = f.detail
        if "outcome" not in d:
            continue
        out.setdefault((d["workload"], d["listenerPort"]), set()).update(
            ServerRef.from_dict(src) for src in d["from"])
    return out


def object_stem(listener: Listener) -> str:
    w = listener.workload
    return re.sub(r"[^a-z0-9-]+", "-", f"gwdup-421-{w.name}-{listener.port}".lower()).strip("-")[:240]


def _objects(listener: Listener, root_namespace: str, patches: List[Dict[str, Any]],
             method: Method421) -> List[Dict[str, Any]]:
    """The listener's patches in as few EnvoyFilters as the size limit allows: `<stem>`,
    `<stem>-2`, ... (a patch never spans two objects)."""
    w = listener.workload
    namespace = w.namespace or root_namespace  # selector-only workloads: the root namespace reaches all
    stem = object_stem(listener)
    budget = MAX_OBJECT_BYTES - 4096  # metadata and selector
    chunks: List[List[Dict[str, Any]]] = [[]]
    used = 0
    for patch in patches:
        size = len(json.dumps(patch))  # as kubectl's JSON spaces it, the larger measure
        if chunks[-1] and used + size > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(patch)
        used += size
    out = []
    for i, chunk in enumerate(chunks, 1):
        out.append({"apiVersion": API_VERSION, "kind": "EnvoyFilter",
                    "metadata": {"name": stem if i == 1 else f"{stem}-{i}", "namespace": namespace,
                                 "labels": dict(MANAGED_BY), "annotations": {METHOD_ANNOTATION: method.value}},
                    "spec": {"workloadSelector": {"labels": dict(w.labels)}, "configPatches": chunk}})
    return out


def plan_421(inventory: Inventory, findings: Sequence[Finding], method: Method421,
             root_namespace: str = "istio-system", istio_version: Optional[Tuple[int, int]] = None) -> Plan421:
    plan = Plan421()
    wanted = affected(findings)
    by_listener: Dict[Listener, List[Placement]] = {}
    for p in inventory.placements:
        by_listener.setdefault(p.listener, []).append(p)
    planned = sorted(listener for listener in by_listener if wanted.get((listener.workload.key, listener.port)))
    landed = _Landed(root_namespace)
    objects: Dict[Listener, List[Dict[str, Any]]] = {}
    # the workloads whose filters land on others' pods first (fewest labels), so that the others
    # leave out what has landed on them already
    for listener in sorted(planned, key=lambda x: (len(x.workload.labels), x)):
        plan.listeners.append(listener)
        live = live_chains(by_listener[listener])
        from_ = [p for p in live if p.server.ref in wanted[(listener.workload.key, listener.port)]]
        # a chain terminated here but proxied as TCP has no route table and no HTTP filters for
        # a 421 to live in: only HTTP/1.1 (ALPN) keeps browsers from pooling on it
        tcp = [p for p in from_ if not p.server.http_routed]
        from_ = [p for p in from_ if p.server.http_routed]
        if method is Method421.VHOST:
            patches = _vhost_patches(plan, listener, live, from_) if from_ else []
        elif method is Method421.LUA:
            patches = _lua_patches(plan, listener, live, istio_version) if from_ else []
        else:
            patches = _http1_patches(plan, listener, from_)
        if tcp:
            if method is not Method421.HTTP1:
                plan.notes.append(f"{', '.join(sorted(str(p.server.ref) for p in tcp))}: TLS terminated, then TCP: "
                                  "no HTTP layer to answer 421, so the chain offers HTTP/1.1 only")
            patches += _http1_patches(plan, listener, tcp)
        patches = landed.leave_out(plan, listener, patches)
        landed.add(listener, patches)
        if patches:
            objects[listener] = _objects(listener, root_namespace, patches, method)
    plan.listeners.sort()
    for listener in sorted(objects):
        plan.objects += objects[listener]
    return plan


class _Landed:
    """What the filters planned so far patch, and on whose pods.

    A pod takes every EnvoyFilter of its namespace and of the root namespace whose
    workloadSelector its labels satisfy (istio pilot/pkg/model/push_context.go EnvoyFilters), so
    a filter made for workload A lands on workload B's pods too when A's labels are a subset of
    B's: the same labels (a Pod listed without its owner, two Deployments of one template), or
    fewer. A second patch of the same target on one pod is never harmless: two VIRTUAL_HOST ADDs
    of one domain make Envoy refuse the whole route table (a NACK: the gateway's routes stop
    updating); a second FILTER_CHAIN MERGE of one transport socket appends its lists; a second
    Lua filter runs twice. So B leaves out what A's filter already patches on its pods, and a
    twin of A (the same labels) adds no filter at all."""

    def __init__(self, root_namespace: str) -> None:
        self.root = root_namespace
        # (filter namespace, one label of the selector, or None for an empty selector) -> the
        # listeners planned so far and what their filters patch: a pod's candidates are found
        # under its own labels, so a mesh of thousands of workloads is not compared pairwise
        self.index: Dict[Tuple[str, Optional[Tuple[str, str]]], List[Tuple[Listener, Set[Tuple[Any, ...]]]]] = {}

    def _landed_on(self, on: Listener) -> List[Tuple[Listener, Set[Tuple[Any, ...]]]]:
        labels = set(on.workload.labels)
        out = []
        for ns in {on.workload.namespace, self.root}:
            for key in [None] + sorted(labels):
                for done, targets in self.index.get((ns, key), ()):
                    if set(done.workload.labels) <= labels:
                        out.append((done, targets))
        return sorted(out, key=lambda x: x[0])

    def leave_out(self, plan: Plan421, listener: Listener, patches: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        covered: Dict[Tuple[Any, ...], Listener] = {}
        for d, targets in self._landed_on(listener):
            for t in targets:
                covered.setdefault(t, d)
        kept = [cp for cp in patches if _target(cp) not in covered]
        by = sorted({str(covered[_target(cp)]) for cp in patches if _target(cp) in covered})
        if by:
            plan.notes.append(f"{listener}: {len(patches) - len(kept)} of its patches are made on its pods by the "
                              f"filter of {', '.join(by)}, whose workload selector their labels satisfy: not made "
                              "twice")
        return kept

    def add(self, listener: Listener, patches: List[Dict[str, Any]]) -> None:
        labels = sorted(listener.workload.labels)
        key = (listener.workload.namespace or self.root, labels[0] if labels else None)
        self.index.setdefault(key, []).append((listener, {_target(cp) for cp in patches}))


def _target(patch: Dict[str, Any]) -> Tuple[Any, ...]:
    """What a patch changes in a proxy's configuration: a route table (by name), a filter chain
    (listener port and SNI), or a listener's HTTP filters (its port)."""
    match = patch["match"]
    if "routeConfiguration" in match:
        return ("route", match["routeConfiguration"].get("name"))
    listener = match.get("listener") or {}
    return (patch["applyTo"], listener.get("portNumber"), (listener.get("filterChain") or {}).get("sni"))


def _vhost_patches(plan: Plan421, listener: Listener, live: List[Placement],
                   from_: List[Placement]) -> List[Dict[str, Any]]:
    chains = ChainIndex(live)
    patterns = ListenerPatterns(live)
    patches = []
    domains = 0
    for p in from_:
        entries = table_entries(p, chains, patterns)
        for pattern, why in entries.left_out:
            plan.notes.append(f"{pattern} left out of {p.server.route_name}: {why} (--mitigation lua answers it)")
        # by name alone: istiod parses the port out of a gateway route name only when the name has
        # exactly four dots (rc_patch.go routeConfigurationMatch, ParseGatewayRDSRouteName), which
        # a Gateway named with dots breaks; the name itself always matches exactly
        match = {"context": "GATEWAY", "routeConfiguration": {"name": p.server.route_name}}
        if entries.no_route:
            # before the 421 host: istiod keeps patch order, and a reader sees the exceptions first
            patches.append({"applyTo": "VIRTUAL_HOST", "match": match, "patch": {"operation": "ADD", "value": {
                "name": OWN_VHOST, "domains": entries.no_route, "routes": []}}})
        if entries.misdirected:
            patches.append({"applyTo": "VIRTUAL_HOST", "match": match, "patch": {"operation": "ADD", "value": {
                "name": MISDIRECTED_VHOST, "domains": entries.misdirected,
                "routes": [{"name": "gwdup-421", "match": {"prefix": "/"},
                            "directResponse": {"status": 421, "body": {"inlineString": "Misdirected Request\n"}}}]}}})
        domains += len(entries.misdirected) + len(entries.no_route)
    tables = len({cp["match"]["routeConfiguration"]["name"] for cp in patches})
    if patches:
        plan.costs.append(f"{listener}: {domains} domains in {tables} route table(s), no code; "
                          "Envoy matches a domain by hash lookups, so requests cost what they did")
    return patches


def _lua_patches(plan: Plan421, listener: Listener, live: List[Placement],
                 istio_version: Optional[Tuple[int, int]]) -> List[Dict[str, Any]]:
    code, dropped = lua421.lua_code(live)
    if len(code.encode()) > MAX_OBJECT_BYTES - 4096:
        # one filter must hold the whole chain table of its listener, so it cannot be split
        raise PlanError(f"the Lua filter for {listener} would be {len(code.encode()) / 1024:.0f} KiB, over the "
                        f"{MAX_OBJECT_BYTES // 1024} KiB an EnvoyFilter should stay under (istiod pushes it to "
                        "every proxy it selects): use --mitigation vhost, which is split across objects")
    for raw in dropped:
        plan.notes.append(f"{raw!r} is not a host name: left out of the Lua filter (its pairs stay unanswered)")
    plan.costs.append(f"{listener}: a Lua filter of {len(code.encode())} bytes, which istiod copies into each of "
                      f"its {len(live)} filter chain(s); it runs on every request")
    return [{
        "applyTo": "HTTP_FILTER",
        "match": {"context": "GATEWAY", "listener": {
            "portNumber": listener.port,  # the port Envoy binds (targetPort), not the Service port
            "filterChain": {"filter": {"name": HCM, "subFilter": {"name": ROUTER}}}}},
        "patch": {"operation": "INSERT_BEFORE", "value": {
            "name": "gwdup.misdirected", "typedConfig": lua421.typed_config(code, istio_version)}}}]


def _http1_patches(plan: Plan421, listener: Listener, from_: List[Placement]) -> List[Dict[str, Any]]:
    patches = []
    hosts: List[str] = []
    for p in from_:
        patch, why = http1.chain_patch(p)
        if patch is None:
            plan.notes.append(f"{p.server.ref} keeps HTTP/2: {why} (use --mitigation vhost for it)")
            continue
        patches.append(patch)
        hosts += [h for h in p.server.hosts]
    if patches:
        shown = ", ".join(sorted(set(hosts))[:4]) + (" ..." if len(set(hosts)) > 4 else "")
        plan.costs.append(f"{listener}: {len(patches)} filter chain(s) offer only HTTP/1.1 (ALPN), so browsers "
                          f"never pool them; these hosts lose HTTP/2: {shown}")
    return patches


