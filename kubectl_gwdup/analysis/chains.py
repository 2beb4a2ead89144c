"""Envoy's filter-chain choice on one listener, indexed for lookups in O(labels). Pure.

Envoy picks the chain by SNI: an exact server name first, then the longest ``*.suffix``
(which, unlike a certificate wildcard, spans several labels), then a chain without server
names. istiod emits that last kind for a server listing ``*``: it catches every SNI that no
other chain names.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..hosts import bare_host, parent, safe_host, strip_namespace
from ..model import Placement


class ChainIndex:
    def __init__(self, live: Sequence[Placement]) -> None:
        self.exact: Dict[str, Placement] = {}
        self.wild: Dict[str, Placement] = {}  # suffix without "*." -> placement
        self.catch_all: Optional[Placement] = None
        self.children: Dict[str, List[str]] = defaultdict(list)  # parent -> exact names
        for p in live:
            hosts = [bare_host(h) for h in p.sni_hosts]
            if "*" in hosts:
                # istiod leaves server_names empty when any host is "*"
                if self.catch_all is None:
                    self.catch_all = p
                continue
            for h in hosts:
                if h.startswith("*."):
                    self.wild.setdefault(h[2:], p)
                elif h not in self.exact:
                    self.exact[h] = p
                    self.children[parent(h)].append(h)

    def wildcard_for(self, suffix: str) -> Optional[Placement]:
        """Chain for a name ending in ``.suffix`` that no exact or longer wildcard names."""
        s = suffix
        while s:
            hit = self.wild.get(s)
            if hit is not None:
                return hit
            s = parent(s)
        return self.catch_all

    def lookup(self, name: str) -> Optional[Placement]:
        hit = self.exact.get(name)
        return hit if hit is not None else self.wildcard_for(parent(name))

    def default_child(self, base: str) -> Optional[Placement]:
        """Chain for a generic one-label child ``x.base`` (what a cert's ``*.base`` covers)."""
        return self.wildcard_for(base)


def live_chains(placements: Sequence[Placement]) -> List[Placement]:
    """The TLS servers that got a filter chain on their listener (istiod kept them, and a
    PASSTHROUGH one has a TLS route)."""
    return [p for p in placements if p.server.sni_chain and p.dropped_for is None and p.chained]


def conflicts(live: Sequence[Placement]) -> Iterator[Tuple[Placement, Placement, str]]:
    """(server, earlier server, SNI key) for chains whose match repeats an earlier one.

    Envoy compares server names case-insensitively and a `*` chain has no names at all, so
    these survive istiod's string comparison and then make Envoy reject the listener.
    """
    seen: Dict[str, Placement] = {}
    for p in live:
        spelled = {strip_namespace(h) for h in p.sni_hosts}
        names = {h.lower() for h in spelled}
        if "*" in names:
            keys = {"*"}
        elif len(names) < len(spelled):  # one chain listing a name twice, in two cases
            yield p, p, next(n for n in sorted(names) if sum(h.lower() == n for h in spelled) > 1)
            keys = names
        else:
            keys = names
        clash = next((k for k in sorted(keys) if k in seen and seen[k] is not p), None)
        if clash is not None:
            yield p, seen[clash], clash
        for k in keys:
            seen.setdefault(k, p)


LUA_DIGEST_PREFIX = "gwdup-chains: "  # written into the 421 Lua filter, read back by check
ChainTable = Tuple[Dict[str, int], Dict[str, int], Optional[int], List[str]]


def chain_table(live: Sequence[Placement]) -> ChainTable:
    """Envoy's chain choice as plain data: exact name -> chain, `*.suffix` -> chain, the
    chain without names, and the host strings left out because they are not host names.
    Chains are numbered 1.. in istiod's order."""
    exact: Dict[str, int] = {}
    wild: Dict[str, int] = {}
    catch_all: Optional[int] = None
    dropped: List[str] = []
    for i, p in enumerate(live, 1):
        if "*" in {bare_host(h) for h in p.sni_hosts}:
            catch_all = catch_all or i
            continue
        for raw in p.sni_hosts:
            h = safe_host(raw)
            if h is None:
                dropped.append(raw)
            elif h.startswith("*."):
                wild.setdefault(h[2:], i)
            else:
                exact.setdefault(h, i)
    return exact, wild, catch_all, dropped


def table_lookup(table: ChainTable, name: str) -> Optional[int]:
    """The chain number the Lua filter's `chain_of` gives a (lower-case, bare) name."""
    exact, wild, catch_all, _ = table
    hit = exact.get(name)
    if hit is not None:
        return hit
    rest = name
    while "." in rest:
        rest = rest.split(".", 1)[1]
        if not rest:
            break
        hit = wild.get(rest)
        if hit is not None:
            return hit
    return catch_all


def table_digest(live: Sequence[Placement]) -> str:
    """A short digest of the chain table, to tell whether an installed 421 filter is current."""
    import hashlib
    import json

    exact, wild, catch_all, _ = chain_table(live)
    text = json.dumps([sorted(exact.items()), sorted(wild.items()), catch_all])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
