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

from ..hosts import strip_namespace
from ..model import Finding, Inventory, ListenerOrigin, Placement, ServerRef

CONDITION = "OverlappingTLSConfig"
HOSTNAMES = "OverlappingHostnames"
CERTIFICATES = "OverlappingCertificates"


def _hostname(p: Placement) -> str:
    return strip_namespace(p.server.hosts[0]) if p.server.hosts else "*"


SHOWN = 5  # peers listed per listener; the count says how many there are


class _Peers:
    """The listeners a listener overlaps with, kept as a count and the first few names (a
    certificate on 5,000 listeners would otherwise list 5,000 peers 5,000 times)."""

    def __init__(self) -> None:
        self.count = 0
        self.shown: Set[str] = set()

    def add(self, names: Iterable[str], count: int) -> None:
        self.count += count
        for n in names:
            if len(self.shown) >= SHOWN:
                break
            self.shown.add(n)


def _hostname_peers(members: Sequence[Tuple[ListenerOrigin, str]]) -> Dict[ListenerOrigin, List[ListenerOrigin]]:
    """Pairs whose hostnames share a name (Gateway API: `*.x` is any name under x, unset is every
    name), found through indexes: an exact hostname meets only `*` and the wildcards over it."""
    star = [o for o, h in members if h == "*"]
    wild: Dict[str, List[ListenerOrigin]] = defaultdict(list)
    under: Dict[str, List[ListenerOrigin]] = defaultdict(list)  # suffix -> exact hostnames below it
    for o, h in members:
        if h.startswith("*."):
            wild[h[2:]].append(o)
        elif h != "*":
            labels = h.split(".")
            for i in range(1, len(labels)):
                under[".".join(labels[i:])].append(o)
    out: Dict[ListenerOrigin, List[ListenerOrigin]] = defaultdict(list)
    for o, h in members:
        if h == "*":
            out[o] += [x for x, _ in members if x != o]
            continue
        out[o] += star
        if h.startswith("*."):
            base = h[2:]
            out[o] += under.get(base, [])
            out[o] += [x for b, xs in wild.items() if b != base and (b.endswith("." + base) or base.endswith("." + b))
                       for x in xs]
            out[o] += [x for x in wild[base] if x != o]
        else:
            labels = h.split(".")
            for i in range(1, len(labels)):
                out[o] += wild.get(".".join(labels[i:]), [])
    return out


def _certificate_groups(members: Sequence[Tuple[ListenerOrigin, Tuple[str, ...]]]
                        ) -> Tuple[Dict[Tuple[str, ...], List[ListenerOrigin]], Dict[Tuple[str, ...], Set[Tuple[str, ...]]]]:
    """Listeners by certificate coverage, and which coverages share a name (RFC 6125: one label
    per `*`), through an index of SANs rather than pairs of listeners."""
    groups: Dict[Tuple[str, ...], List[ListenerOrigin]] = defaultdict(list)
    for o, cov in members:
        if cov:
            groups[cov].append(o)
    by_san: Dict[str, Set[Tuple[str, ...]]] = defaultdict(set)
    for cov in groups:
        for san in cov:
            by_san[san].add(cov)
    meets: Dict[Tuple[str, ...], Set[Tuple[str, ...]]] = defaultdict(set)
    for cov in groups:
        for san in cov:
            meets[cov] |= by_san[san]
            if san.startswith("*."):
                continue
            head, _, rest = san.partition(".")
            if rest:
                meets[cov] |= by_san.get("*." + rest, set())
    for cov, others in list(meets.items()):  # symmetric: a wildcard meets the names under it
        for other in others:
            meets[other].add(cov)
    return groups, meets


def listener_conditions(inventory: Inventory, findings: Sequence[Finding]) -> Tuple[Dict[str, Any], ...]:
    """One entry per Gateway API listener that has the condition or a measured hazard."""
    listeners: Dict[ListenerOrigin, Placement] = {}
    for p in inventory.placements:
        o = p.server.ref.origin
        if o is not None and p.server.protocol in ("HTTPS", "TLS") and p.server.has_tls:
            listeners.setdefault(o, p)
    groups: Dict[Tuple[str, int], List[ListenerOrigin]] = defaultdict(list)
    for o, p in listeners.items():
        groups[(o.parent, p.server.ref.port_number)].append(o)
    by_host: Dict[ListenerOrigin, _Peers] = {}
    by_cert: Dict[ListenerOrigin, _Peers] = {}
    for members in groups.values():
        members.sort()
        for o, peers in _hostname_peers([(o, _hostname(listeners[o])) for o in members]).items():
            if peers:
                by_host.setdefault(o, _Peers()).add(sorted(str(x) for x in set(peers)), len(set(peers)))
        certs, meets = _certificate_groups([(o, listeners[o].coverage) for o in members])
        for cov, owners in certs.items():
            met = sorted(meets.get(cov, ()))
            total = sum(len(certs[c]) for c in met) - 1  # itself is in its own coverage group
            if total <= 0:
                continue
            sample: List[str] = []
            for c in met:
                sample += [str(x) for x in certs[c][:SHOWN + 1]]
                if len(sample) > SHOWN:
                    break
            for o in owners:
                by_cert.setdefault(o, _Peers()).add((n for n in sorted(sample) if n != str(o)), total)
    hazards: Dict[ListenerOrigin, Dict[Tuple[str, str, str, bool], List[int]]] = defaultdict(dict)
    for i, f in enumerate(findings):
        d = f.detail
        if "outcome" not in d:
            continue
        for role, refs in (("source", d["from"]), ("target", d["to"])):
            for r in refs:
                o = ServerRef.from_dict(r).origin
                if o is not None:
                    hazards[o].setdefault((f.code, d["outcome"], role, bool(d.get("mitigation"))), []).append(i)
    out = []
    for o in sorted(set(by_host) | set(by_cert) | set(hazards)):
        p = listeners.get(o)
        entry: Dict[str, Any] = {"gateway": f"{o.namespace}/{o.name}", "listener": o.listener, "kind": o.full_kind,
                                 "portNumber": p.server.ref.port_number if p else None}
        peers = by_cert.get(o) or by_host.get(o)
        if peers is not None:
            reason = CERTIFICATES if o in by_cert else HOSTNAMES
            what = "certificate" if reason == CERTIFICATES else "hostname"
            shown = sorted(peers.shown)
            more = f" (+{peers.count - len(shown)} more)" if peers.count > len(shown) else ""
            entry["condition"] = {"type": CONDITION, "status": "True", "reason": reason,
                                  "message": f"its {what} overlaps that of {', '.join(shown)}{more} on the same port"}
            entry["overlapsWith"] = shown
            entry["overlapCount"] = peers.count
        else:
            entry["condition"] = None
            entry["overlapsWith"] = []
            entry["overlapCount"] = 0
        # each hazard once per kind and role, pointing at its findings (indexes into `findings`)
        entry["hazards"] = [{"code": k[0], "outcome": k[1], "as": k[2], "mitigated": k[3], "findings": v[:SHOWN],
                             "findingCount": len(v)} for k, v in sorted(hazards.get(o, {}).items())]
        out.append(entry)
    return tuple(out)
