"""One VirtualService per Gateway API listener and hostname, its routes in precedence order.

Mirrors pilot/pkg/config/kube/gateway (route_collections.go mergeHTTPRoutes, conversion.go
sortHTTPRoutes and sortRoutesByCreationTime; in 1.24 and 1.25, conversion.go
convertVirtualService):

- Each HTTPRoute (and GRPCRoute) gives, per listener it binds and hostname, a VirtualService of
  that one host whose routes are its rules, one route per match. All those of one key (the
  listener's internal Gateway name and the hostname) become one VirtualService: the oldest first
  (creation time, then namespace, then name), their routes appended, then sorted.
- sortHTTPRoutes (stable): routes with a match first; then by the path match's kind (exact,
  prefix, regex, none), its length (longer first), a method match, more header matches, more
  query parameter matches. This is Gateway API precedence: a later, longer prefix wins over an
  earlier, shorter one, which the order written would not give.
- HTTPRoutes and GRPCRoutes of one key (version dependent):
  - 1.24 and 1.25: one map of both kinds, so one VirtualService with the routes of both.
  - 1.26.2 to 1.29: each kind merged on its own, then joined by object key. When both kinds
    land in one namespace, the HTTPRoutes' VirtualService is kept and the GRPCRoutes' is
    dropped (istio/istio issue 57172). In two namespaces both are kept, and istiod's gateway
    merge appends the second one's routes in creation order, unsorted.
  - 1.30 on: both kinds joined before the merge, as in 1.24 (istio/istio pull request 59222,
    testdata http-grpc-same-host).
  Our version model reads minor releases only, so 1.26 counts as split.

The VirtualServices are kubectl_gwdup.model.VirtualService; `route_ids` follow `spec.http`.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from ..model import Ref, VirtualService

_RANK = {"exact": 3, "prefix": 2, "regex": 1}


def _precedence(entry: Mapping[str, Any]) -> Tuple[int, int, int, int, int, int]:
    """sortHTTPRoutes' order as a key (it only reads match[0]: istiod writes one match per route)."""
    matches = entry.get("match") or []
    if not matches:
        return (1, 0, 0, 0, 0, 0)
    m = matches[0]
    uri = m.get("uri") if isinstance(m.get("uri"), Mapping) else {}
    rank, length = -1, 0
    for kind, r in _RANK.items():
        if isinstance(uri.get(kind), str):
            rank, length = r, len(uri[kind])
            break
    return (0, -rank, -length, 0 if m.get("method") else 1, -len(m.get("headers") or {}),
            -len(m.get("queryParams") or {}))


def sort_http_routes(entries: Sequence[Mapping[str, Any]], ids: Sequence[str]
                     ) -> Tuple[List[Mapping[str, Any]], List[str]]:
    """sortHTTPRoutes, keeping each route's id beside it."""
    order = sorted(range(len(entries)), key=lambda i: _precedence(entries[i]))
    return [entries[i] for i in order], [ids[i] for i in order]


def _key(vs: VirtualService) -> Tuple[str, str]:
    return (vs.gateways[0], vs.hosts[0])


def _merged(group: List[VirtualService]) -> VirtualService:
    group = sorted(group, key=lambda v: (v.created, v.ref.namespace, v.ref.name))  # sortRoutesByCreationTime
    base = group[0]
    entries: List[Mapping[str, Any]] = []
    ids: List[str] = []
    for vs in group:
        spec = vs.raw.get("spec") or {}
        entries += list(spec.get("http") or [])
        ids += list(vs.route_ids)
    entries, ids = sort_http_routes(entries, ids)
    gw, host = _key(base)
    name = f"{gw}/{host}".replace("/", "~")
    return VirtualService(ref=Ref("VirtualService", base.ref.namespace, name), hosts=(host,), gateways=(gw,),
                          route_gateways=(), created=base.created,
                          raw={"spec": {"hosts": [host], "gateways": [gw], "http": entries}},
                          origin=" + ".join(dict.fromkeys(v.origin for v in group)), route_ids=tuple(ids))


def _merge(vss: Iterable[VirtualService]) -> List[VirtualService]:
    groups: Dict[Tuple[str, str], List[VirtualService]] = defaultdict(list)
    for vs in vss:
        groups[_key(vs)].append(vs)
    return [_merged(g) for g in groups.values()]


def merge_route_virtual_services(http: Sequence[VirtualService], grpc: Sequence[VirtualService],
                                 joined: bool) -> Tuple[List[VirtualService], List[str]]:
    """The VirtualServices istiod keeps from the per-route ones of HTTPRoutes and GRPCRoutes,
    and a note for each GRPCRoute VirtualService a split release drops."""
    if joined:
        return _merge(list(http) + list(grpc)), []
    kept = _merge(http)
    names = {(v.ref.namespace, v.ref.name) for v in kept}
    notes = []
    for vs in _merge(grpc):
        if (vs.ref.namespace, vs.ref.name) in names:
            notes.append(f"{vs.origin} on {vs.gateways[0]} for {vs.hosts[0]} not programmed: an HTTPRoute of "
                         f"namespace {vs.ref.namespace} has that listener and hostname (Istio 1.26.2 to 1.29 keep "
                         "one VirtualService of the two)")
            continue
        kept.append(vs)
    return kept, notes
