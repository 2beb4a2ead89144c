"""421 plans: findings -> Istio EnvoyFilters that answer 421 Misdirected Request. Pure.

A browser that gets 421 retries the request on a new connection, opened with the right SNI,
so it reaches the right filter chain and route table. Two methods:

- vhost: no code at all. Each affected route table (`https.<port>.<portName>.<gw>.<ns>`, matched
  by name, which keeps the Gateway *server* port) gets one more virtual host whose domains are
  the hosts that can be coalesced onto that chain, answering 421. Envoy rejects a route table
  with a domain twice, so a host the table already routes is left out (and said so).
- lua: a filter before the router on the listener (matched by the port Envoy *binds*, the
  Service targetPort) that resolves both the SNI and the Host to a filter chain the way Envoy
  picks chains (exact, then the longest `*.suffix`, then the chain without names) and answers
  421 when they differ. It uses `streamInfo():requestedServerName()`, a method call: the widely
  copied `streamInfo().requestedServerName` is the method itself, never equal to a host, so
  that filter answers 421 to every request. Hosts are data: each is validated against the
  host-name alphabet before it is written into the code, and anything else is left out.

Objects are scoped to the gateway workload (workloadSelector, its namespace), carry the label
app.kubernetes.io/managed-by=kubectl-gwdup and a deterministic name, so applying twice changes
nothing and --delete removes exactly these.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..analysis.chains import LUA_DIGEST_PREFIX, ChainIndex, chain_table, live_chains, table_digest
from ..hosts import bare_host, safe_host, sorted_hosts
from ..model import MANAGED_BY, Finding, Inventory, Listener, Placement, ServerRef

API_VERSION = "networking.istio.io/v1alpha3"
HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"
LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
MIN_ISTIO = (1, 12)
LUA_SOURCE_CODE_SINCE = (1, 16)  # Envoy 1.24 (Istio 1.16) has Lua default_source_code


class Method421(enum.Enum):
    VHOST = "vhost"
    LUA = "lua"


@dataclass
class Plan421:
    objects: List[Dict[str, Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    sizes: List[str] = field(default_factory=list)  # config each object adds, for the report
    covered: List[Tuple[str, int, str, str]] = field(default_factory=list)  # (workload, port, server, host)


def _foreign(findings: Sequence[Finding]) -> Dict[Tuple[str, int], Dict[ServerRef, List[str]]]:
    """(workload, listener port) -> from server -> hosts that reach it from other chains."""
    out: Dict[Tuple[str, int], Dict[ServerRef, List[str]]] = {}
    for f in findings:
        d = f.detail
        if "outcome" not in d:
            continue
        per = out.setdefault((d["workload"], d["listenerPort"]), {})
        for src in d["from"]:
            per.setdefault(ServerRef.from_dict(src), []).extend(d["hosts"])
    return out


def _object(listener: Listener, root_namespace: str, patches: List[Dict[str, Any]], method: Method421) -> Dict[str, Any]:
    w = listener.workload
    namespace = w.namespace or root_namespace  # selector-only workloads: the root namespace reaches all
    name = re.sub(r"[^a-z0-9-]+", "-", f"gwdup-421-{w.name}-{listener.port}".lower()).strip("-")[:253]
    return {"apiVersion": API_VERSION, "kind": "EnvoyFilter",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": dict(MANAGED_BY), "annotations": {"gwdup.kubectl.io/method": method.value}},
            "spec": {"workloadSelector": {"labels": dict(w.labels)}, "configPatches": patches}}


def plan_421(inventory: Inventory, findings: Sequence[Finding], method: Method421,
             root_namespace: str = "istio-system", istio_version: Optional[Tuple[int, int]] = None) -> Plan421:
    plan = Plan421()
    foreign = _foreign(findings)
    by_listener: Dict[Listener, List[Placement]] = {}
    for p in inventory.placements:
        by_listener.setdefault(p.listener, []).append(p)
    for listener in sorted(by_listener):
        per = foreign.get((listener.workload.key, listener.port))
        if not per:
            continue
        live = live_chains(by_listener[listener])
        if method is Method421.VHOST:
            patches = _vhost_patches(plan, listener, live, per)
        else:
            patches = _lua_patches(plan, listener, live, istio_version)
        if patches:
            plan.objects.append(_object(listener, root_namespace, patches, method))
    return plan


def _vhost_patches(plan: Plan421, listener: Listener, live: List[Placement],
                   per: Dict[ServerRef, List[str]]) -> List[Dict[str, Any]]:
    chains = ChainIndex(live)
    patches = []
    total = 0
    for p in live:
        hosts = per.get(p.server.ref)
        if not hosts:
            continue
        taken = {v.domain for v in p.vhosts}
        own = [bare_host(h) for h in p.server.hosts]
        domains: List[str] = []
        for host in sorted_hosts(hosts):
            h = safe_host(host)
            if h is None:
                plan.notes.append(f"{host!r} is not a host name: left out")
                continue
            if not h.startswith("*") and chains.lookup(h) is p:
                continue  # p's own chain serves it: reuse is legitimate
            if h in taken:
                plan.notes.append(f"{h} is routed by {p.server.ref} itself, so no 421 virtual host can be "
                                  "added there (Envoy rejects a repeated domain): use --method lua")
                continue
            if h.startswith("*.") and any(o.endswith(h[1:]) for o in own):
                plan.notes.append(f"{h} overlaps hosts of {p.server.ref} itself: left out, use --method lua")
                continue
            domains += [h, f"{h}:*"]
            plan.covered.append((listener.workload.key, listener.port, str(p.server.ref), h))
        if not domains:
            continue
        total += len(domains)
        patches.append({
            "applyTo": "VIRTUAL_HOST",
            "match": {"context": "GATEWAY", "routeConfiguration": {
                "portNumber": p.server.ref.port_number, "name": p.server.route_name}},
            "patch": {"operation": "ADD", "value": {
                "name": "gwdup-misdirected", "domains": domains,
                "routes": [{"name": "gwdup-421", "match": {"prefix": "/"},
                            "directResponse": {"status": 421, "body": {"inlineString": "Misdirected Request\n"}}}]}}})
    if patches:
        plan.sizes.append(f"{listener}: {total} domains in {len(patches)} route table(s)")
    return patches


def lua_code(live: Sequence[Placement]) -> Tuple[str, List[str]]:
    """The Lua source for one listener, and the hosts left out. Grows with hosts, not pairs."""
    exact, wild, catch_all, dropped = chain_table(live)

    def table(d: Dict[str, int]) -> str:
        return "{" + ", ".join(f'["{k}"] = {v}' for k, v in sorted(d.items())) + "}"

    code = f"""-- kubectl-gwdup: 421 for requests whose host belongs to another filter chain than the SNI's
-- {LUA_DIGEST_PREFIX}{table_digest(live)}
local exact = {table(exact)}
local wild = {table(wild)}
local catch_all = {catch_all if catch_all else "nil"}

local function chain_of(name)
  local id = exact[name]
  if id then return id end
  local rest = name
  while true do
    rest = rest:match("^[^.]*%.(.+)$")
    if not rest then return catch_all end
    id = wild[rest]
    if id then return id end
  end
end

local function bare(host)
  host = string.lower(host)
  if host:sub(1, 1) == "[" then return host:match("^(%[[^%]]*%])") or host end
  host = host:gsub(":%d*$", "")
  return (host:gsub("%.$", ""))
end

function envoy_on_request(handle)
  local sni = handle:streamInfo():requestedServerName()
  if sni == nil or sni == "" then return end
  local authority = handle:headers():get(":authority")
  if authority == nil then return end
  local want = chain_of(bare(authority))
  if want ~= nil and want ~= chain_of(bare(sni)) then
    handle:respond({{[":status"] = "421"}}, "Misdirected Request\\n")
  end
end
"""
    return code, dropped


def _lua_patches(plan: Plan421, listener: Listener, live: List[Placement],
                 istio_version: Optional[Tuple[int, int]]) -> List[Dict[str, Any]]:
    code, dropped = lua_code(live)
    for raw in dropped:
        plan.notes.append(f"{raw!r} is not a host name: left out of the Lua filter")
    source = ({"defaultSourceCode": {"inlineString": code}}
              if istio_version is None or istio_version >= LUA_SOURCE_CODE_SINCE else {"inlineCode": code})
    plan.sizes.append(f"{listener}: Lua filter of {len(code.encode())} bytes for {len(live)} chain(s)")
    for p in live:
        if p.server.http_routed:
            for h in p.server.hosts:
                plan.covered.append((listener.workload.key, listener.port, str(p.server.ref), bare_host(h)))
    return [{
        "applyTo": "HTTP_FILTER",
        "match": {"context": "GATEWAY", "listener": {
            "portNumber": listener.port,  # the port Envoy binds (targetPort), not the Service port
            "filterChain": {"filter": {"name": HCM, "subFilter": {"name": ROUTER}}}}},
        "patch": {"operation": "INSERT_BEFORE", "value": {
            "name": "gwdup.misdirected", "typedConfig": {"@type": LUA_TYPE, **source}}}}]


def parse_version(text: str) -> Optional[Tuple[int, int]]:
    """`1.24.2`, `1.24.2-distroless`, `1-24-2` (revision) -> (1, 24)."""
    m = re.search(r"(\d+)[.-](\d+)(?:[.-]\d+)?", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None
