"""The filter chains of a PASSTHROUGH server: one per TLS route match, named by its SNI hosts.

Mirrors pilot/pkg/networking/core/gateway.go buildGatewayNetworkFiltersFromTLSRoutes (with
pickMatchingGatewayHosts and l4SingleMatch, istiod/l4_match.py) and pilot/pkg/model/gateway.go CheckDuplicates, the
same from Istio 1.24 to controlplane.NEWEST_MODELLED: the TLS routes of the VirtualServices
bound to the server's Gateway whose hosts meet the server's, matched on each route's sniHosts
(`*` when none); without such a route istiod builds no chain, and the server's hosts reach
whatever other chain matches them.

A match repeating an SNI name that an earlier match on the same listener took (in istiod's
order: servers, then VirtualServices by creation, then routes and matches) is skipped whole
(istiod warns "skipping VirtualService ... duplicate SNI host names"), so Envoy never sees two
chains for one name from TLS routes: the listener stands, and the first route keeps the name.
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Set, Tuple

from ..model import Server, VirtualService
from .l4_match import l4_match, matching_virtual_services


def passthrough_sni(server: Server, virtual_services: Sequence[VirtualService], taken: Set[str],
                    skipped: List[str]) -> Optional[Tuple[str, ...]]:
    """The names the server's chains are matched on, or None when there is no TLS route (no
    chain). `virtual_services` are those bound to its Gateway, in creation order; `taken` the
    SNI names TLS routes already took on the listener (updated); each skip is said in `skipped`."""
    names: List[str] = []
    found = False
    for vs, spec in matching_virtual_services(server, virtual_services):
        for i, route in enumerate(spec.get("tls") or []):
            if not isinstance(route, Mapping) or not route.get("route"):
                continue
            for j, match in enumerate(route.get("match") or []):
                if not l4_match(match, server, vs.ref.namespace):
                    continue
                sni = [str(h) for h in match.get("sniHosts") or ["*"]]
                repeated = [h for h in sni if h in taken]
                if repeated:
                    skipped.append(f"TLS route {vs.ref.namespace}/{vs.ref.name} tls[{i}].match[{j}] skipped on "
                                   f"{server.ref}: SNI {', '.join(repeated)} already routed on that listener "
                                   "(istiod keeps the first)")
                    continue
                taken.update(sni)
                found = True
                names += sni
    return tuple(dict.fromkeys(names)) if found else None
