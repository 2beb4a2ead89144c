"""The finding catalogue: the only place a code, level, summary and message template live.

Codes are GWD + four digits, in code order. Ranges: 01xx check, 02xx merge, 03xx 421,
04xx probe, 09xx internal. A retired code is never reused.

`python -m kubectl_gwdup.catalogue --markdown` rewrites the README table between its markers.
"""
from __future__ import annotations

import re
import sys
from typing import List, Tuple

from .model import FindingType, Level

COALESCED_NOT_FOUND = FindingType(
    "GWD0101", "CoalescedNotFound", Level.WARNING,
    summary="A certificate on one server is also valid for hosts another server's filter chain "
            "serves; a browser reusing the connection gets 404 from the wrong route table.",
    template="{hosts} ({to}) can arrive on connections of {from_}: 404 from the wrong route table{requests}")

COALESCED_MISROUTED = FindingType(
    "GWD0102", "CoalescedMisrouted", Level.ERROR,
    summary="As GWD0101, but a wildcard host in the wrong route table matches: the request is "
            "answered 200 by the wrong backend, silently, and what the browser sends for the host "
            "(its cookies, its Authorization header) reaches that backend.",
    template="{hosts} ({to}) can arrive on connections of {from_}: answered by the wrong backend{requests}, "
             "which receives their cookies and Authorization headers")

SERVER_DROPPED = FindingType(
    "GWD0103", "ServerDropped", Level.ERROR,
    summary="istiod drops a whole TLS server whose host is already on the same listener; the "
            "hosts only it lists fail at the TLS handshake.",
    template="istiod drops {server}: host {host} is already on {listener} in {winner}")

SECRET_NOT_FOUND = FindingType(
    "GWD0104", "SecretNotFound", Level.WARNING,
    summary="A server's credentialName names no Secret in the gateway workload's namespace "
            "(Secrets are read there, not in the Gateway's namespace); its TLS handshakes fail.",
    template="{server} reads {credential}, which does not exist: TLS handshakes for {hosts} fail")

LISTENER_REJECTED = FindingType(
    "GWD0105", "ListenerRejected", Level.ERROR,
    summary="Two TLS servers on one listener match the same SNI after istiod's duplicate check, "
            "which compares host strings exactly (case, ns/ prefix); Envoy rejects the whole "
            "listener update, so no change on that port takes effect.",
    template="{server} repeats SNI {host}, already matched by {other} on {listener}: Envoy rejects the listener")

CERT_NOT_VALID_FOR_HOST = FindingType(
    "GWD0106", "CertificateNotValidForHost", Level.ERROR,
    summary="A server's certificate is not valid for one of the hosts its filter chain is selected "
            "for: every browser shows a certificate error there (and never reuses that connection).",
    template="{server} presents a certificate for {sans}, not valid for its host {hosts}: browsers show an error")

COALESCED_ACROSS_CLUSTERS = FindingType(
    "GWD0107", "CoalescedAcrossClusters", Level.WARNING,
    summary="Gateways of two clusters behind one address (an anycast IP, a global load balancer): a "
            "certificate one cluster presents is valid for a host only the other serves, so a browser "
            "sends that host to the wrong cluster, which answers 404 (Error when a wildcard route there "
            "answers it: the wrong backend). Needs DNS answers (check --context A --context B).",
    template="{hosts} ({to}, cluster {to_cluster}) can arrive at {address} on connections of {from_} "
             "(cluster {from_cluster}): {outcome} there")

ALL: Tuple[FindingType, ...] = (COALESCED_NOT_FOUND, COALESCED_MISROUTED, SERVER_DROPPED,
                                SECRET_NOT_FOUND, LISTENER_REJECTED, CERT_NOT_VALID_FOR_HOST,
                                COALESCED_ACROSS_CLUSTERS)

CODE_FORMAT = re.compile(r"^GWD0[1-49]\d\d$")
BEGIN, END = "<!-- catalogue:begin -->", "<!-- catalogue:end -->"


def markdown_table() -> str:
    rows = ["| code | type | level | what it means |", "| --- | --- | --- | --- |"]
    for t in ALL:
        rows.append(f'| <a id="{t.code.lower()}"></a>{t.code} | {t.name} | {t.level.label} | '
                    f"{t.summary} |")
    return "\n".join(rows)


def rewrite_readme(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + markdown_table() + "\n" + text[end:]


def main(argv: List[str]) -> int:
    if argv[:1] == ["--markdown"]:
        path = argv[1] if len(argv) > 1 else "README.md"
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(rewrite_readme(text))
        return 0
    print(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
