"""Envoy's filter-chain choice on one listener, indexed for lookups in O(labels). Pure.

Envoy picks the chain by SNI: an exact server name first, then the longest ``*.suffix``
(which, unlike a certificate wildcard, spans several labels), then a chain without server
names. istiod emits that last kind for a server listing ``*``: it catches every SNI that no
other chain names.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from ..hosts import bare_host, parent
from ..model import Placement


class ChainIndex:
    def __init__(self, live: Sequence[Placement]) -> None:
        self.exact: Dict[str, Placement] = {}
        self.wild: Dict[str, Placement] = {}  # suffix without "*." -> placement
        self.catch_all: Optional[Placement] = None
        self.children: Dict[str, List[str]] = defaultdict(list)  # parent -> exact names
        for p in live:
            hosts = [bare_host(h) for h in p.server.hosts]
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
