"""tls.MissingSecret: a credentialName that names no Secret in the workload's namespace.

The gateway reads credentialName Secrets where its pods run, so a Secret created next to the
Gateway in an application namespace is not found and the server's handshakes fail.
"""
from __future__ import annotations

from typing import Iterator, Set, Tuple

from ..catalogue import SECRET_NOT_FOUND
from ..model import CertStatus, Finding, Input
from .rule import InventoryView, Metadata, Settings

META = Metadata("tls.MissingSecret", "A server's credentialName Secret does not exist where it is read",
                inputs=frozenset({Input.GATEWAYS, Input.WORKLOADS, Input.CERTIFICATES}))


def analyze(view: InventoryView, settings: Settings) -> Iterator[Finding]:
    seen: Set[Tuple[object, ...]] = set()
    for p in view.placements():
        if view.certificates_of(p).cert_status is not CertStatus.MISSING:
            continue
        for cred in p.credentials:
            key = (p.server.ref, cred)
            if key in seen:
                continue
            seen.add(key)
            yield SECRET_NOT_FOUND.finding(
                p.server.ref.gateway, server=str(p.server.ref), credential=str(cred),
                hosts=", ".join(p.server.hosts),
                detail={"server": p.server.ref.to_dict(), "credential": str(cred),
                        "workload": p.listener.workload.key, "hosts": list(p.server.hosts)})
