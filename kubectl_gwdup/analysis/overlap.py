"""GEP-3567's OverlappingTLSConfig, as a conformant implementation would set it, beside what
the gateway actually does. Pure.

The Gateway API defines the condition on listeners (apis/v1/gateway_types.go
ListenerConditionOverlappingTLSConfig): set on every HTTPS or TLS listener whose hostname
overlaps another listener's on the same port (reason OverlappingHostnames), or whose
certificate overlaps another's (OverlappingCertificates, preferred when both hold); a
negative-polarity condition, absent when false. Istio does not set it. The condition says
that a hazard may exist, not which one: the hazards check measures (404 or a misroute, and
in which direction) are listed with it, and so are hazards the condition cannot see, such as
listeners of two Gateways on one manual deployment.

Scope: the listeners of one Gateway and of the ListenerSets attached to it, on one port, as
they are programmed (a listener istiod does not program has no TLS configuration to overlap).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple

from ..hosts import cert_covers, istio_matches, strip_namespace
from ..model import Finding, Inventory, ListenerOrigin, Placement, ServerRef

CONDITION = "OverlappingTLSConfig"
HOSTNAMES = "OverlappingHostnames"
CERTIFICATES = "OverlappingCertificates"


def _hostname(p: Placement) -> str:
    return strip_namespace(p.server.hosts[0]) if p.server.hosts else "*"


def _sans_overlap(a: Sequence[str], b: Sequence[str]) -> bool:
    """Some name is valid under both certificates (RFC 6125: one label per `*`)."""
    return any(x == y or cert_covers(x, y) or cert_covers(y, x) for x in a for y in b)


def _label(o: ListenerOrigin) -> str:
    return str(o)


def listener_conditions(inventory: Inventory, findings: Iterable[Finding]) -> Tuple[Dict[str, Any], ...]:
    """One entry per Gateway API listener that has the condition or a measured hazard."""
    listeners: Dict[ListenerOrigin, Placement] = {}
    for p in inventory.placements:
        o = p.server.ref.origin
        if o is not None and p.server.protocol in ("HTTPS", "TLS") and p.server.has_tls:
            listeners.setdefault(o, p)
    groups: Dict[Tuple[str, int], List[ListenerOrigin]] = defaultdict(list)
    for o, p in listeners.items():
        groups[(o.parent, p.server.ref.port_number)].append(o)
    reasons: Dict[ListenerOrigin, Set[str]] = defaultdict(set)
    peers: Dict[ListenerOrigin, Set[str]] = defaultdict(set)
    for members in groups.values():
        members.sort()
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                pa, pb = listeners[a], listeners[b]
                found = set()
                if istio_matches(_hostname(pa), _hostname(pb)):
                    found.add(HOSTNAMES)
                if pa.coverage and pb.coverage and _sans_overlap(pa.coverage, pb.coverage):
                    found.add(CERTIFICATES)
                for x, y in ((a, b), (b, a)):
                    if found:
                        reasons[x] |= found
                        peers[x].add(_label(y))
    hazards: Dict[ListenerOrigin, List[Dict[str, Any]]] = defaultdict(list)
    for f in findings:
        d = f.detail
        if "outcome" not in d:
            continue
        for role, refs in (("source", d["from"]), ("target", d["to"])):
            for r in refs:
                o = ServerRef.from_dict(r).origin
                if o is not None:
                    hazards[o].append({"code": f.code, "outcome": d["outcome"], "as": role, "hosts": list(d["hosts"]),
                                       "mitigated": bool(d.get("mitigation"))})
    out = []
    for o in sorted(set(reasons) | set(hazards)):
        p = listeners.get(o)
        entry: Dict[str, Any] = {"gateway": f"{o.namespace}/{o.name}", "listener": o.listener, "kind": o.full_kind,
                                 "portNumber": p.server.ref.port_number if p else None}
        if o in reasons:
            reason = CERTIFICATES if CERTIFICATES in reasons[o] else HOSTNAMES
            what = "certificate" if reason == CERTIFICATES else "hostname"
            others = sorted(peers[o])
            entry["condition"] = {"type": CONDITION, "status": "True", "reason": reason,
                                  "message": f"its {what} overlaps that of {', '.join(others)} on the same port"}
            entry["overlapsWith"] = others
        else:
            entry["condition"] = None
            entry["overlapsWith"] = []
        entry["hazards"] = hazards.get(o, [])
        out.append(entry)
    return tuple(out)
