"""The vhost 421 method: which domains one route table needs, linear in its own names. Pure.

Envoy picks a virtual host the way it picks a filter chain: the exact name, then the longest
``*.suffix``, then ``*``. A 421 virtual host listing the certificate's own SAN patterns
therefore answers every foreign name the certificate lets a browser send on this chain's
connections, while the table's own, more specific domains keep answering the chain's own
names. Listing every foreign host instead would cost each table the whole listener: the
quadratic output istio/istio PR #60046 was closed over.

More is needed only where the SAN patterns do not decide:
- a SAN wildcard ``*.b`` whose generic names this chain's own SNI wildcard takes is not used;
  the foreign names under the chain's own wildcards (domains or SNI patterns) are listed one
  by one instead. Only a chain's own wildcards can swallow a name, and the chains whose
  wildcards lie above a name are at most its label count, so this stays linear;
- an own SNI pattern that a 421 domain would take, and that the table does not route, gets a
  virtual host without routes: Envoy's own 404 (response flag NR), as before;
- a domain the table already has cannot be added (Envoy rejects a repeated domain), and a 421
  domain that would take names the table routes through a less specific domain is not added:
  both are left out with a note (the lua method answers them).

Candidates are decided from the least specific to the most specific, each against the table
as built so far, so an entry is added only where the answer would otherwise be wrong.

A name no chain serves, under a SAN wildcard that is used, answers 421 instead of 404; its
own connection then fails the handshake, as it does without coalescing.
"""
from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ..analysis.chains import ChainIndex
from ..hosts import DomainIndex, parent, representative, safe_host, specificity, suffix_match
from ..model import Placement


class Answer(enum.Enum):
    OWN = "own"  # the table's own virtual hosts (routes, or none)
    MISDIRECTED = "421"
    NO_ROUTE = "404"  # a virtual host without routes: Envoy's NR 404


class ListenerPatterns:
    """Every chain's SNI patterns on one listener, by each suffix they lie strictly under
    (the empty suffix holds them all, for a ``*`` table)."""

    def __init__(self, live: Sequence[Placement]) -> None:
        under: Dict[str, Set[str]] = defaultdict(set)
        for p in live:
            for raw in p.sni_hosts:
                h = safe_host(raw)
                if h is None or h == "*":
                    continue
                under[""].add(h)
                s = h[2:] if h.startswith("*.") else h
                while True:
                    s = parent(s)
                    if not s:
                        break
                    under[s].add(h)
        self.under = {k: sorted(v) for k, v in under.items()}

    def below(self, wildcard: str) -> List[str]:
        return self.under.get("" if wildcard == "*" else wildcard[2:], [])


@dataclass
class TableEntries:
    misdirected: List[str] = field(default_factory=list)
    no_route: List[str] = field(default_factory=list)
    left_out: List[Tuple[str, str]] = field(default_factory=list)  # (pattern, why)


def _reachable(p: Placement, pattern: str) -> bool:
    """p's certificate lets a browser send some name of the pattern on p's connections."""
    if not pattern.startswith("*"):
        return p.covers(pattern)
    if pattern == "*":
        return bool(p.coverage)
    base = pattern[2:]
    return p.covers(representative(pattern)) or any(
        not san.startswith("*") and san.endswith("." + base) for san in p.coverage)


def _foreign_below(chains: ChainIndex, base: str, p: Placement) -> bool:
    return any(chains.exact[n] is not p for n in chains.children.get(base, ()))


def table_entries(p: Placement, chains: ChainIndex, patterns: ListenerPatterns) -> TableEntries:
    """The virtual hosts p's route table needs: 421 domains, route-less (404) domains, and what
    could not be added. Candidates: p's certificate SANs, p's own SNI patterns, and the other
    chains' patterns under p's own wildcards; each is judged against the table built so far,
    from the least specific to the most specific, so that an entry is added only where the
    answer would otherwise be wrong."""
    out = TableEntries()
    own_domains = {v.domain for v in p.vhosts}
    table: DomainIndex = DomainIndex([(d, Answer.OWN) for d in sorted(own_domains)])
    original: DomainIndex = DomainIndex([(d, Answer.OWN) for d in sorted(own_domains)])
    own = sorted({h for h in (safe_host(x) for x in p.sni_hosts) if h is not None}, key=specificity)

    candidates: Dict[str, str] = {}
    for san in p.coverage:
        candidates.setdefault(san, "san")
    for o in own:
        candidates.setdefault(o, "own")
    swallowing = [o for o in own if o == "*" or o.startswith("*.")] + \
                 [d for d in own_domains if d == "*" or d.startswith("*.")]
    for w in sorted(set(swallowing)):
        for f in patterns.below(w):
            candidates.setdefault(f, "foreign")

    for g in sorted(candidates, key=lambda h: (specificity(h), h)):
        rep = representative(g)
        target = chains.lookup(rep)
        hit = table.lookup(rep)
        current = hit[1] if hit else None
        if target is p or not _reachable(p, g):
            wanted = Answer.OWN
        elif target is not None:
            wanted = Answer.MISDIRECTED
        elif candidates[g] == "san" and g.startswith("*.") and _foreign_below(chains, g[2:], p):
            wanted = Answer.MISDIRECTED  # one domain for the foreign names under the SAN
        else:
            wanted = Answer.OWN  # no chain serves it: its 404 stays
        if wanted is Answer.MISDIRECTED and current is not Answer.MISDIRECTED:
            if g in own_domains:
                out.left_out.append((g, "the table routes this very domain"))
                continue
            taken = _takes_routed(g, own, original)
            if taken:
                out.left_out.append((g, f"it would take {taken[0]}, which the table routes through {taken[1]}"))
                continue
            table.add((g, Answer.MISDIRECTED))
            out.misdirected.append(g)
        elif wanted is Answer.OWN and current is Answer.MISDIRECTED:
            before = original.lookup(rep)
            if before is None:
                table.add((g, Answer.NO_ROUTE))
                out.no_route.append(g)
    return out


def _takes_routed(g: str, own: Iterable[str], original: DomainIndex) -> Optional[Tuple[str, str]]:
    """(own pattern, its domain) when a 421 domain g would answer names of the chain's own
    patterns that the table routes through a domain less specific than g."""
    for o in own:
        rep = representative(o)
        if o == g or not suffix_match(g, rep):
            continue
        hit = original.lookup(rep)
        if hit is not None and specificity(hit[0]) < specificity(g):
            return o, hit[0]
    return None
