"""tls.MissingSecret: a credentialName that names no Secret in the workload's namespace (or, for
a MUTUAL server, no client CA: neither ca.crt in that Secret nor a <name>-cacert Secret).

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
        status = view.certificates_of(p).cert_status
        if status not in (CertStatus.MISSING, CertStatus.NO_CA):
            continue
        for cred in p.credentials:
            key = (p.server.ref, cred)
            if key in seen:
                continue
            seen.add(key)
            # a MUTUAL server's client CA: ca.crt in its Secret, or the Secret <name>-cacert
            what = str(cred) if status is CertStatus.MISSING else f"the client CA of {cred} (ca.crt, or {cred.name}-cacert)"
            yield SECRET_NOT_FOUND.finding(
                p.server.ref.resource, server=str(p.server.ref), credential=what,
                hosts=", ".join(p.server.hosts),
                detail={"server": p.server.ref.to_dict(), "credential": str(cred),
                        "workload": p.listener.workload.key, "hosts": list(p.server.hosts)})
