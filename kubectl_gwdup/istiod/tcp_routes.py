"""Whether a TLS server terminated at the gateway but not HTTP-routed (protocol TLS, mode
SIMPLE or MUTUAL) gets a filter chain at all.

Mirrors pilot/pkg/networking/core/gateway.go createGatewayTCPFilterChainOpts and
buildGatewayNetworkFiltersFromTCPRoutes, the same from Istio 1.24 to controlplane.NEWEST_MODELLED
but for TLSRoutes (below): such a server's chain is a TCP proxy to the first
VirtualService bound to its Gateway whose hosts meet the server's (pickMatchingGatewayHosts)
and that has a `tcp` route with a destination matching the server's port and Gateway
(l4MultiMatch: no match at all matches). Without one istiod warns "listener missed network
filter" and builds no chain: the server's names reach whatever other chain matches them, or
none. From Istio 1.30 a VirtualService istiod made of a TLSRoute (a Gateway API listener of
protocol TLS in Terminate mode) counts by its `tls` routes too (l4SingleMatch on each match's
port and gateways, the SNI names not read); before 1.30 such a listener has no chain.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Sequence

from ..hosts import istio_intersection, names_for_namespace
from ..model import Server, VirtualService
from ..objects import resolve_gateway_name, sanitized_hosts


def _l4_match(match: Any, server: Server, gateway: str, namespace: str) -> bool:
    """l4SingleMatch: the port, if given, is the server's; the gateways, if given, name it."""
    if not isinstance(match, Mapping):
        return False
    if match.get("port") not in (None, 0, server.ref.port_number):
        return False
    gws = match.get("gateways") or []
    return not gws or gateway in {resolve_gateway_name(str(g), namespace) for g in gws}


def has_tcp_chain(server: Server, virtual_services: Sequence[VirtualService], tls_routes_count: bool) -> bool:
    """buildGatewayNetworkFiltersFromTCPRoutes found a route: the chain exists."""
    gateway = server.ref.gateway.key
    hosts = sanitized_hosts(server)
    for vs in virtual_services:  # those bound to the Gateway, in creation order
        if not istio_intersection(names_for_namespace(hosts, vs.ref.namespace), vs.hosts):
            continue
        spec = vs.raw.get("spec") if isinstance(vs.raw.get("spec"), Mapping) else {}
        for tcp in spec.get("tcp") or []:
            if not isinstance(tcp, Mapping) or not tcp.get("route"):
                continue
            matches: List[Any] = list(tcp.get("match") or [])
            if not matches or any(_l4_match(m, server, gateway, vs.ref.namespace) for m in matches):
                return True
        if tls_routes_count and vs.origin.startswith("TLSRoute "):
            for tls in spec.get("tls") or []:
                if isinstance(tls, Mapping) and any(_l4_match(m, server, gateway, vs.ref.namespace)
                                                    for m in tls.get("match") or []):
                    return True
    return False
