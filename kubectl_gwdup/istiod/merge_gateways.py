"""The order istiod merges Gateways in, and the TLS servers it drops for a repeated host.

Mirrors pilot/pkg/model/gateway.go mergeGateways and CheckDuplicates (with
pilot/pkg/model/push_context.go sorting Gateways by creation time, then name, then namespace),
the same from Istio 1.24 to controlplane.NEWEST_MODELLED: Gateways are merged oldest first,
each one's servers in spec order; on one listener (workload and bound port), a TLS server
repeating a host an earlier TLS server there has is dropped whole (RecordRejectedConfig), and
the earlier one keeps the host.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

from ..model import Server, ServerRef
from ..objects import sanitized_hosts


def gateway_order(server: Server) -> Tuple[Tuple[str, str, str], int]:
    """Where istiod merges this server: its Gateway's age, name and namespace, then its index."""
    gw = server.ref.gateway
    return ((server.created, gw.name, gw.namespace), server.ref.index)


class ListenerHosts:
    """The TLS hosts taken on one listener so far, in merge order."""

    def __init__(self) -> None:
        self.known: Dict[str, Server] = {}

    def claim(self, server: Server) -> Optional[Tuple[ServerRef, str]]:
        """None when the server keeps its hosts; else (the server holding it, the host) for the
        first repeated host, and the server is dropped whole."""
        if not server.has_tls:
            return None
        hosts = sanitized_hosts(server)
        dup = next((h for h in hosts if h in self.known), None)
        if dup is not None:
            return (self.known[dup].ref, dup)
        for h in hosts:
            self.known[h] = server
        return None
