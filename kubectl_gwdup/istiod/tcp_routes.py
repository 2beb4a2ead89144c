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

from ..model import Server, VirtualService
from .l4_match import l4_match, matching_virtual_services


def has_tcp_chain(server: Server, virtual_services: Sequence[VirtualService], tls_routes_count: bool) -> bool:
    """buildGatewayNetworkFiltersFromTCPRoutes found a route: the chain exists. `virtual_services`
    are those bound to the server's Gateway, in creation order."""
    for vs, spec in matching_virtual_services(server, virtual_services):
        for tcp in spec.get("tcp") or []:
            if not isinstance(tcp, Mapping) or not tcp.get("route"):
                continue
            matches: List[Any] = list(tcp.get("match") or [])
            if not matches or any(l4_match(m, server, vs.ref.namespace) for m in matches):
                return True
        if tls_routes_count and vs.origin.startswith("TLSRoute "):
            for tls in spec.get("tls") or []:
                if isinstance(tls, Mapping) and any(l4_match(m, server, vs.ref.namespace)
                                                    for m in tls.get("match") or []):
                    return True
    return False
