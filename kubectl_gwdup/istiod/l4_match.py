"""Which VirtualServices and which of their L4 matches apply to a gateway server, for the
chains built from `tls` and `tcp` routes.

Mirrors pilot/pkg/networking/core/gateway.go pickMatchingGatewayHosts and l4SingleMatch
(isPortMatch, isGatewayMatch), the same from Istio 1.24 to controlplane.NEWEST_MODELLED: a
VirtualService bound to the server's Gateway counts when its hosts meet the server's (as its
namespace may bind them); a match counts when its port, if given, is the server's and its
gateways, if given, name the server's Gateway. A TLS match is read as an L4 one
(convertTLSMatchToL4Match: its SNI names are not part of it).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence, Tuple

from ..hosts import istio_intersection, names_for_namespace
from ..model import Server, VirtualService
from ..objects import resolve_gateway_name, sanitized_hosts


def matching_virtual_services(server: Server, bound: Sequence[VirtualService]
                              ) -> Iterator[Tuple[VirtualService, Mapping[str, Any]]]:
    """pickMatchingGatewayHosts: those of `bound` (bound to the server's Gateway, in creation
    order) whose hosts meet the server's, with their specs."""
    hosts = sanitized_hosts(server)
    for vs in bound:
        if istio_intersection(names_for_namespace(hosts, vs.ref.namespace), vs.hosts):
            yield vs, vs.raw.get("spec") if isinstance(vs.raw.get("spec"), Mapping) else {}


def l4_match(match: Any, server: Server, namespace: str) -> bool:
    """l4SingleMatch for a match of a VirtualService of `namespace` (short Gateway names are
    that namespace's)."""
    if not isinstance(match, Mapping):
        return False
    if match.get("port") not in (None, 0, server.ref.port_number):
        return False
    gws = match.get("gateways") or []
    return not gws or server.ref.gateway.key in {resolve_gateway_name(str(g), namespace) for g in gws}
