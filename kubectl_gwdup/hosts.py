"""Host-name patterns as each party reads them. Pure functions, no I/O.

Three different wildcard dialects meet at a gateway, and the hazard lives in their differences:
- a certificate's ``*.x`` covers exactly one extra label (RFC 6125 as browsers apply it);
- Envoy's SNI server names and virtual-host domains treat ``*.x`` as a suffix, so it also
  matches ``a.b.x``; istiod compares VirtualService hosts with the same suffix rule, but
  case-sensitively, while Envoy lower-cases everything;
- ``*`` alone is "anything" for Envoy and istiod, and never valid in a certificate.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")
_HOST_NAME = re.compile(r"^(\*|(\*\.)?[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?)*)$")


def strip_namespace(host: str) -> str:
    """``ns/host`` -> ``host``: istiod matches SNI on the bare host."""
    return host.split("/", 1)[1] if "/" in host else host


def bare_host(host: str) -> str:
    """The name Envoy matches: namespace stripped, lower-case."""
    return strip_namespace(host).lower()


def parent(name: str) -> str:
    """``a.b.c`` -> ``b.c``; a single label has the empty parent."""
    return name.split(".", 1)[1] if "." in name else ""


def is_wildcard(pattern: str) -> bool:
    return pattern == "*" or pattern.startswith("*.")


def cert_covers(san: str, name: str) -> bool:
    """A certificate SAN pattern is valid for a concrete name (one label per ``*``)."""
    san, name = san.lower(), name.lower()
    if san.startswith("*."):
        head, dot, rest = name.partition(".")
        return bool(head) and bool(dot) and rest == san[2:] and head != "*"
    return san == name


def suffix_match(pattern: str, name: str) -> bool:
    """Envoy's reading of a server name or virtual-host domain: ``*.x`` matches any ``?.x``."""
    pattern, name = pattern.lower(), name.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return len(name) > len(pattern) - 1 and name.endswith(pattern[1:])
    return pattern == name


def istio_matches(a: str, b: str) -> bool:
    """istiod's host.Name.Matches: do the two patterns share a name? Case-sensitive."""
    if a == "*" or b == "*":
        return True
    aw, bw = a.startswith("*"), b.startswith("*")
    if aw and bw:
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if aw:
        return b.endswith(a[1:])
    if bw:
        return a.endswith(b[1:])
    return a == b


def istio_subset_of(n: str, o: str) -> bool:
    """istiod's host.Name.SubsetOf: every name `n` matches, `o` matches too. Case-sensitive."""
    nw, ow = n.startswith("*"), o.startswith("*")
    if nw:
        return ow and len(n) >= len(o) and n[1:].endswith(o[1:])
    if ow:
        return n.endswith(o[1:])
    return n == o


def istio_intersection(server_hosts: Sequence[str], vs_hosts: Sequence[str]) -> List[str]:
    """istiod's host.Names.Intersection: for each matching pair, the narrower of the two. These
    become the route table's virtual-host domains (buildGatewayHTTPRouteConfig)."""
    out: List[str] = []
    for h in server_hosts:
        for o in vs_hosts:
            pick = h if istio_subset_of(h, o) else o if istio_subset_of(o, h) else None
            if pick is not None and pick not in out:
                out.append(pick)
    return out


def _dot_suffixes(name: str) -> List[str]:
    """``a.b.c`` -> ``[".b.c", ".c"]``: what a ``*.x`` pattern can be the rest of."""
    return [name[i:] for i in range(len(name)) if name[i] == "."]


class HostSet:
    """Server hosts indexed for istio_intersection with many VirtualServices: each lookup costs
    the labels of one VirtualService host, not the size of the server (a merged server can list
    thousands of hosts, each bound by its own VirtualService). Same result set as
    istio_intersection; the order may differ, which nothing downstream depends on."""

    def __init__(self, hosts: Sequence[str]) -> None:
        self.all = list(dict.fromkeys(hosts))
        self.exact = {h for h in self.all if not h.startswith("*")}
        self.wild = {h[1:]: h for h in self.all if h.startswith("*")}  # "*" -> ""
        self.concrete_under: Dict[str, List[str]] = {}  # ".x" -> concrete hosts ending in it
        for h in self.exact:
            for sfx in _dot_suffixes(h):
                self.concrete_under.setdefault(sfx, []).append(h)
        self.wild_under: Dict[str, List[str]] = {}  # ".x" -> wildcard hosts "*<u>" with u ending in it
        for u, h in self.wild.items():
            if u:  # "*.b.x" is narrower than "*.b.x" itself and than "*.x"
                for sfx in [u] + _dot_suffixes(u[1:]):
                    self.wild_under.setdefault(sfx, []).append(h)

    def intersect(self, vs_hosts: Sequence[str]) -> List[str]:
        out: Dict[str, None] = {}
        for v in vs_hosts:
            if v == "*":
                out.update(dict.fromkeys(self.all))
                continue
            if not v.startswith("*"):  # concrete: itself, when a server host equals or covers it
                if v in self.exact or "" in self.wild or any(s in self.wild for s in _dot_suffixes(v)):
                    out[v] = None
                continue
            t = v[1:]
            out.update(dict.fromkeys(self.concrete_under.get(t, ())))  # server names under v
            out.update(dict.fromkeys(self.wild_under.get(t, ())))  # narrower server wildcards
            if "" in self.wild or t in self.wild or any(s in self.wild for s in _dot_suffixes(t[1:])):
                out[v] = None  # v is narrower than (or equal to) a server wildcard
        return list(out)


def names_for_namespace(hosts: Sequence[str], namespace: str) -> List[str]:
    """istiod's host.NamesForNamespace: server hosts a VirtualService of `namespace` may bind
    (``ns/h`` only for that namespace, ``*/h`` and bare ``h`` for all), namespace stripped."""
    out = []
    for h in hosts:
        ns, slash, name = h.partition("/")
        if slash:
            if ns not in (namespace, "*"):
                continue
            h = name
        out.append(h)
    return out


def cert_sni_intersection(san: str, sni: str) -> Optional[str]:
    """Names a certificate SAN covers that an Envoy server-name pattern also matches.

    Returned in certificate syntax (a concrete name or ``*.x``, one label), or None when the
    two share no name. Example: ``*.example.com`` and ``*.b.example.com`` share nothing.
    """
    san, sni = san.lower(), sni.lower()
    if not san.startswith("*."):
        return san if suffix_match(sni, san) else None
    base = san[2:]
    if sni == "*":
        return san
    if sni.startswith("*."):
        t = sni[2:]
        if base == t or base.endswith("." + t):
            return san
        return None
    return sni if cert_covers(san, sni) else None


def best_domain(domains: Sequence[Tuple[str, T]], host: str) -> Optional[Tuple[str, T]]:
    """Envoy's virtual-host choice: exact, then longest ``*`` suffix, then prefix, then ``*``."""
    host = host.lower()
    best: Optional[Tuple[str, T]] = None
    rank = (-1, -1)
    for entry in domains:
        d = entry[0]
        if d == host:
            return entry
        if d == "*":
            r = (0, 0)
        elif d.startswith("*") and len(host) > len(d) - 1 and host.endswith(d[1:]):
            r = (2, len(d))
        elif d.endswith("*") and len(host) > len(d) - 1 and host.startswith(d[:-1]):
            r = (1, len(d))
        else:
            continue
        if r > rank:
            best, rank = entry, r
    return best


class DomainIndex:
    """best_domain for many names against one table: exact, then longest ``*`` suffix, then
    longest ``*`` prefix, then ``*``, each lookup costing the name's length, not the table's."""

    def __init__(self, domains: Sequence[Tuple[str, T]]) -> None:
        self.exact: Dict[str, Tuple[str, T]] = {}
        self.suffix: Dict[str, Tuple[str, T]] = {}
        self.prefix: Dict[str, Tuple[str, T]] = {}
        self.star: Optional[Tuple[str, T]] = None
        for entry in domains:
            self._put(entry)
        self._lengths()

    def _put(self, entry: Tuple[str, T]) -> None:
        d = entry[0]
        if d == "*":
            self.star = self.star or entry
        elif d.startswith("*"):
            self.suffix.setdefault(d[1:], entry)
        elif d.endswith("*"):
            self.prefix.setdefault(d[:-1], entry)
        else:
            self.exact.setdefault(d, entry)

    def _lengths(self) -> None:
        # only the lengths present are tried, longest first: a few per table
        self._suffix_lengths = sorted({len(k) for k in self.suffix}, reverse=True)
        self._prefix_lengths = sorted({len(k) for k in self.prefix}, reverse=True)

    def add(self, entry: Tuple[str, T]) -> None:
        """One more domain, after those given (a repeated domain keeps the first entry, as
        Envoy would refuse the second)."""
        self._put(entry)
        d = entry[0]
        if d != "*" and (d.startswith("*") or d.endswith("*")):
            self._lengths()

    def lookup(self, host: str) -> Optional[Tuple[str, T]]:
        host = host.lower()
        hit = self.exact.get(host)
        if hit is not None:
            return hit
        n = len(host)
        for length in self._suffix_lengths:
            if length < n:  # the wildcard matches at least one character
                hit = self.suffix.get(host[n - length:])
                if hit is not None:
                    return hit
        for length in self._prefix_lengths:
            if length < n:
                hit = self.prefix.get(host[:length])
                if hit is not None:
                    return hit
        return self.star


GENERIC = "gwdup-any"  # the label standing for "any name" under a wildcard


def representative(pattern: str) -> str:
    """A name only the pattern itself decides: the pattern, or a generic child of it (Envoy's
    chain and virtual-host choice treat every such child alike)."""
    if pattern == "*":
        return f"{GENERIC}.invalid"
    return f"{GENERIC}.{pattern[2:]}" if pattern.startswith("*.") else pattern


def specificity(pattern: str) -> Tuple[int, int]:
    """Envoy's preference between matching domains or server names, as a sort key (higher
    wins): exact, then the longest ``*`` suffix, then ``*``."""
    if pattern == "*":
        return (0, 0)
    return (1, len(pattern)) if pattern.startswith("*") else (2, len(pattern))


def sorted_hosts(hosts: Iterable[str]) -> list:
    """Stable display order: concrete names before patterns, then alphabetical."""
    return sorted(set(hosts), key=lambda h: (h.startswith("*"), h))


def safe_host(host: str) -> Optional[str]:
    """The host as Envoy matches it, or None when it is not a plain host name. Anything written
    into generated configuration or code passes through here first: host strings are data."""
    h = bare_host(host).rstrip(".")
    return h if len(h) <= 253 and _HOST_NAME.match(h) else None
