"""gateway.DroppedServer: istiod silently drops a TLS server that repeats a listener's host.

istiod registers the hosts of each server with TLS settings per listener, Gateways oldest
first; a later server listing any host already there is skipped whole (Envoy would reject two
filter chains with one SNI match). Its other hosts then have no chain of their own.
"""
from __future__ import annotations

from typing import Iterator

from ..catalogue import SERVER_DROPPED
from ..model import Finding, Input
from .rule import InventoryView, Metadata, Settings

META = Metadata("gateway.DroppedServer",
                "A TLS server repeats a host already on its listener, so istiod drops it",
                inputs=frozenset({Input.GATEWAYS, Input.WORKLOADS}))


def analyze(view: InventoryView, settings: Settings) -> Iterator[Finding]:
    for listener, placements in view.listeners():
        by_ref = {p.server.ref: p for p in placements}
        for p in placements:
            if p.dropped_for is None:
                continue
            winner, host = p.dropped_for
            kept = by_ref.get(winner)
            if not p.server.sni_chain and kept is not None and set(p.server.hosts) <= set(kept.server.hosts):
                # a plain-HTTP server (an httpsRedirect on port 80, say) repeating only hosts the
                # kept one lists: istiod's check applies to it too, but nothing it served is lost
                continue
            yield SERVER_DROPPED.finding(
                p.server.ref.resource, server=str(p.server.ref), host=host,
                listener=str(listener), winner=str(winner),
                detail={"server": p.server.ref.to_dict(), "workload": listener.workload.key,
                        "listenerPort": listener.port, "duplicateHost": host,
                        "keptServer": winner.to_dict(), "hosts": list(p.server.hosts)})
