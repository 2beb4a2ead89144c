"""The virtual hosts of a terminating server's route table.

Mirrors pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig, with
pilot/pkg/config/host names.go (NamesForNamespace, Names.Intersection) and
pilot/pkg/networking/core/route/route.go SortVHostRoutes, the same from Istio 1.24 to
controlplane.NEWEST_MODELLED: for each VirtualService bound to the server's Gateway, in
creation order, the server hosts its namespace may bind intersected with its hosts give the
domains; its routes (istiod/route.py) are appended to each domain's; a VirtualService with no
route for the server ("no routes matched") adds no virtual host. Then, per domain, catch-all
routes move last, and nothing after the first of them is reached. The domain is lower-cased
after a case-sensitive match.

A chain that is not HTTP-routed at the gateway (PASSTHROUGH, or TLS terminated then TCP) sends
every request that reaches it to its upstream, whatever the host: one catch-all stands for it.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ..hosts import HostSet, bare_host
from ..model import RouteSource, Server, VirtualHost, VirtualService
from ..objects import sanitized_hosts
from .route import CLUSTER_DOMAIN, Route, build_http_routes


def service_ports(services: Sequence[Mapping[str, Any]], default_namespace: str) -> Dict[str, Tuple[int, ...]]:
    """Each Service's ports by its name in the mesh (`name.ns.svc.cluster.local`): a route's
    destination without a port goes to a Service's only port (GetDestinationCluster)."""
    out: Dict[str, Tuple[int, ...]] = {}
    for svc in services:
        m = svc.get("metadata") if isinstance(svc.get("metadata"), dict) else {}
        spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
        ports = tuple(p.get("port") for p in (spec.get("ports") or []) if isinstance(p, dict)
                      and isinstance(p.get("port"), int))
        if m.get("name"):
            out[f"{m['name']}.{m.get('namespace') or default_namespace}.svc.{CLUSTER_DOMAIN}"] = ports
    return out


def route_owner(route_id: str) -> str:
    """`VirtualService ns/name http[0].match[1]` -> `VirtualService ns/name` (HTTPRoute: `rules[`)."""
    for mark in (" http[", " rules["):
        if mark in route_id:
            return route_id.split(mark, 1)[0]
    return route_id


def virtual_hosts(server: Server, bound: Sequence[VirtualService], have_vs: bool,
                  known_ports: Mapping[str, Tuple[int, ...]]) -> Tuple[VirtualHost, ...]:
    """The virtual hosts istiod puts in this server's route table; `bound` are the
    VirtualServices bound to its Gateway, in creation order. Without VirtualServices read, each
    of the server's hosts is taken to route to the server's own backend."""
    gw_key = server.ref.gateway.key
    if not have_vs:
        origin = f"server {server.ref}"
        src = RouteSource(origin, routes=(Route(origin, backend=origin),))
        return tuple(VirtualHost(h, src) for h in dict.fromkeys(bare_host(x) for x in server.hosts))
    hosts = sanitized_hosts(server)
    routes: Dict[str, List[Route]] = {}
    by_domain: Dict[str, List[VirtualService]] = {}
    # NamesForNamespace, indexed once: bare hosts bind every namespace, `ns/h` only ns
    scoped: Dict[str, List[str]] = defaultdict(list)
    for h in hosts:
        ns, slash, name = h.partition("/")
        scoped[ns if slash else ""].append(name if slash else h)
    index = {ns: HostSet(hs) for ns, hs in scoped.items()}
    everyone = index.get("")
    for vs in bound:
        mine = index.get(vs.ref.namespace)
        domains = list(dict.fromkeys((everyone.intersect(vs.hosts) if everyone else [])
                                     + (mine.intersect(vs.hosts) if mine and vs.ref.namespace else [])))
        if not domains:
            continue
        built = build_http_routes(vs, gw_key, server.ref.port_number, known_ports)
        if not built:  # BuildHTTPRoutesForVirtualService fails ("no routes matched"): no virtual host from it
            continue
        for d in domains:
            d = d.lower()  # istiod matches case-sensitively, then lower-cases the domain
            routes.setdefault(d, []).extend(built)
            by_domain.setdefault(d, []).append(vs)
    out = []
    for d, composed in routes.items():
        # catch-all routes last, and nothing after the first of them: it takes every request
        ordered = tuple([r for r in composed if not r.catch_all] + [r for r in composed if r.catch_all][:1])
        vss = by_domain[d]
        first = (dict.fromkeys(route_owner(r.id) for r in ordered)
                 or dict.fromkeys(v.origin or str(v.ref) for v in vss))
        scope = gw_key if any(gw_key in v.route_gateways for v in vss) else ""
        out.append(VirtualHost(d, RouteSource(" + ".join(first), scope, ordered)))
    return tuple(out)


def opaque(server: Server) -> Tuple[VirtualHost, ...]:
    """The one catch-all of a chain that is not HTTP-routed here."""
    origin = f"upstream of {server.ref}"
    return (VirtualHost("*", RouteSource(origin, routes=(Route(origin, backend=origin),))),) if server.sni_chain else ()
