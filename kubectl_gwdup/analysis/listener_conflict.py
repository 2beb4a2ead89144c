"""gateway.ListenerConflict: two filter chains with one SNI match, which Envoy refuses.

istiod drops a server repeating a host only when the host *strings* are equal after `ns/`
sanitizing (CheckDuplicates), but the filter chain's server_names strip `ns/`, and Envoy
matches them case-insensitively. `A.example.com` next to `a.example.com`, or `ns1/a.example.com`
next to `ns2/a.example.com`, pass istiod and then make Envoy reject the whole listener
("multiple filter chains with overlapping matching rules"). Two servers listing `*` in
different spellings (`*` and `ns/*`) both get a chain with no server names: the same conflict.
Verified on the real Envoy (tests/test_envoy.py).
"""
from __future__ import annotations

from typing import Iterator

from ..catalogue import LISTENER_REJECTED
from ..model import Finding, Input
from .chains import conflicts, live_chains
from .rule import InventoryView, Metadata, Settings

META = Metadata("gateway.ListenerConflict",
                "Two TLS servers on one listener match the same SNI, so Envoy rejects the listener",
                inputs=frozenset({Input.GATEWAYS, Input.WORKLOADS}))


def analyze(view: InventoryView, settings: Settings) -> Iterator[Finding]:
    for listener, placements in view.listeners():
        for p, other, clash in conflicts(live_chains(placements)):
            yield LISTENER_REJECTED.finding(
                p.server.ref.resource, server=str(p.server.ref), other=str(other.server.ref),
                host=clash, listener=str(listener),
                detail={"server": p.server.ref.to_dict(), "conflictsWith": other.server.ref.to_dict(),
                        "sni": clash, "workload": listener.workload.key, "listenerPort": listener.port,
                        "hosts": list(p.server.hosts)})
