"""tls.CertificateMismatch: a server's certificate does not cover a host its chain is chosen for.

Envoy picks the chain by SNI, then presents that chain's certificate: a host the certificate
does not list (a one-label `*.x` SAN covers `a.x`, not `a.b.x`) gets a certificate error in
every browser, and a browser never pools a connection with an error on it.
"""
from __future__ import annotations

from typing import Iterator, List

from ..catalogue import CERT_NOT_VALID_FOR_HOST
from ..hosts import bare_host, representative
from ..model import CertStatus, Finding, Input
from .chains import ChainIndex, live_chains
from .rule import InventoryView, Metadata, Settings

META = Metadata("tls.CertificateMismatch", "A server's certificate is not valid for one of its own hosts",
                inputs=frozenset({Input.GATEWAYS, Input.WORKLOADS, Input.CERTIFICATES}))

def analyze(view: InventoryView, settings: Settings) -> Iterator[Finding]:
    for listener, placements in view.listeners():
        live = live_chains(placements)
        chains = ChainIndex(live)
        for p in live:
            p = view.certificates_of(p)
            if not p.server.terminated_here or p.cert_status is not CertStatus.LOADED:
                continue
            missed: List[str] = []
            for h in dict.fromkeys(bare_host(x) for x in p.server.hosts):
                if h == "*":
                    continue  # the catch-all chain: judged by the names it actually gets
                name = representative(h)  # the host, or a name under a wildcard host
                if chains.lookup(name) is p and not p.covers(name):
                    missed.append(h)
            if missed:
                yield CERT_NOT_VALID_FOR_HOST.finding(
                    p.server.ref.resource, server=str(p.server.ref), sans=", ".join(p.coverage) or "no name",
                    hosts=", ".join(missed),
                    detail={"server": p.server.ref.to_dict(), "workload": listener.workload.key,
                            "listenerPort": listener.port, "hosts": missed, "dnsNames": list(p.coverage)})
