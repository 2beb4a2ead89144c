"""tls.Coalescing: requests a browser can send on another server's TLS connection.

A browser reuses a connection for host h when the certificate on it is valid for h (and h
resolves to the same address: same workload, same listener). Envoy chose that connection's
filter chain, hence its route table, at the handshake; the request for h is routed there,
not in the table of the chain h's own SNI would have picked.

Cost is kept near-linear by grouping: servers presenting the same certificate coverage on one
listener form one `from` group; the hosts at risk are found by walking the certificate's SANs
through the listener's chain index, never by pairing servers.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..catalogue import COALESCED_MISROUTED, COALESCED_NOT_FOUND
from ..hosts import (DomainIndex, bare_host, cert_covers, is_wildcard, parent, representative, safe_host, sorted_hosts,
                     strip_namespace)
from ..model import (CertStatus, Finding, Input, Level, Listener, Outcome, Placement, RouteSource, ServerRef,
                     TlsMode, VirtualHost)
from .chains import ChainIndex, chain_table, conflicts, live_chains, table_digest, table_lookup
from .request_classes import Request, judge_requests
from .rule import InventoryView, Metadata, Settings

META = Metadata(
    "tls.Coalescing",
    "A certificate on one TLS server is valid for hosts that another server's filter chain serves",
    inputs=frozenset({Input.GATEWAYS, Input.WORKLOADS}),
    optional=frozenset({Input.CERTIFICATES, Input.VIRTUAL_SERVICES, Input.ENVOY_FILTERS}))

Hosts = Dict[str, Placement]  # host or cert pattern -> the chain its SNI selects


def analyze(view: InventoryView, settings: Settings) -> Iterator[Finding]:
    for listener, placements in view.listeners():
        live = live_chains(placements)
        if len(live) < 2 or next(conflicts(live), None):
            continue  # Envoy rejects a listener with conflicting chains (gateway.ListenerConflict)
        chains = ChainIndex(live)
        groups: Dict[Tuple[Tuple[str, ...], bool], List[Placement]] = {}
        for p in live:
            if p.server.terminated_here and view.certificates_of(p).coverage and opens_connections(p, chains):
                mode = p.server.tls_mode
                # Chrome does not pool a connection on which it sent a client certificate
                key = (p.coverage, bool(mode and mode.client_cert))
                groups.setdefault(key, []).append(p)
        guards = Guards(view, listener, live, chains)
        for (coverage, mtls), members in groups.items():
            # route tables indexed once per group (kept per listener, they cost more in memory
            # and collector time than rebuilding the few a group asks for)
            for f in _group_findings(view, listener, chains, coverage, mtls, members, Tables()):
                yield _mitigated(f, guards, members, chains)


class AtRisk:
    """The hosts of one finding, with the chain each one's own SNI picks, and what the guards
    work out about them once per finding rather than once per source server (a wildcard
    certificate on 5,000 Gateways is one finding with 5,000 sources and 5,000 hosts)."""

    def __init__(self, hosts: Sequence[str], chains: ChainIndex) -> None:
        self.hosts = hosts
        self.owner = {h: chains.lookup(representative(h)) for h in hosts}
        self.unanswered: Dict[Tuple[Tuple[str, int], ...], List[str]] = {}  # installed domains -> hosts not 421
        self.lua_numbers: Optional[Dict[Optional[int], List[str]]] = None  # Lua chain number -> hosts

    def foreign_in(self, hosts: Sequence[str], p: Placement) -> bool:
        """Some of these hosts belongs to another chain than p's (p must answer it)."""
        return any(self.owner[h] is not p for h in hosts)


class Guards:
    """The 421 and HTTP/1.1 mitigations installed on one listener, as check judges them."""

    def __init__(self, view: InventoryView, listener: Listener, live: List[Placement], chains: ChainIndex) -> None:
        self.live = live
        self.chains = chains
        self.vhost: List[Tuple[str, Dict[str, Tuple[Tuple[str, int], ...]]]] = []
        self.lua: List[str] = []  # Lua filters whose chain table is current (a stale one guards nothing)
        self.http1: Dict[str, List[str]] = {}  # SNI on this listener -> filters
        digest = None
        for m in view.mitigations():
            if not m.applies_to(listener.workload):
                continue
            if m.route_domains:
                self.vhost.append((m.ref.name, dict(m.route_domains)))
            if listener.port in m.lua:
                digest = digest or table_digest(live)
                if m.lua[listener.port] == digest:
                    self.lua.append(m.ref.name)
            for port, sni in m.http1:
                if port == listener.port:
                    self.http1.setdefault(sni, []).append(m.ref.name)
        self._table = chain_table(live) if self.lua else None
        self._number = {id(q): i for i, q in enumerate(live, 1)}

    def __bool__(self) -> bool:
        return bool(self.vhost or self.lua or self.http1)

    def answered(self, p: Placement, risk: AtRisk) -> Optional[Tuple[str, List[str]]]:
        """(method, filters) when every request for each of the finding's hosts that another
        chain serves is answered 421 on p's connections, or p's connections are never pooled;
        else None."""
        # a patch selects a chain by one of its server names; a chain with `*` has none
        sni = [strip_namespace(h) for h in p.sni_hosts]
        names = [] if "*" in sni else [n for h in sni for n in self.http1.get(h, ())]
        if names:
            return "http1", names
        if self._table is not None and self._lua_answers(p, risk):
            return "lua", list(self.lua)
        installed: List[Tuple[str, int]] = []
        names = []
        for name, tables in self.vhost:
            if p.server.route_name in tables:
                installed += list(tables[p.server.route_name])
                names.append(name)
        if names and self._vhost_answers(p, tuple(installed), risk):
            return "vhost", names
        return None

    def _lua_answers(self, p: Placement, risk: AtRisk) -> bool:
        number = self._number[id(p)]
        own = [representative(h) for h in (safe_host(x) for x in p.sni_hosts) if h is not None]
        if not own or any(table_lookup(self._table, o) != number for o in own):
            return False  # the filter would not know p's connections as p's
        if risk.lua_numbers is None:
            risk.lua_numbers = {}
            for h in risk.hosts:
                risk.lua_numbers.setdefault(table_lookup(self._table, representative(h)), []).append(h)
        # unanswered: a host the table does not know, or one it puts on p's own chain
        return not risk.foreign_in(risk.lua_numbers.get(None, []) + risk.lua_numbers.get(number, []), p)

    def _vhost_answers(self, p: Placement, installed: Tuple[Tuple[str, int], ...], risk: AtRisk) -> bool:
        if not answers_foreign_hosts(p, self.chains):
            # p's own domains are its own exact names, which decide none of another chain's
            # hosts: the verdict depends on the installed domains alone, shared by every such p
            unanswered = risk.unanswered.get(installed)
            if unanswered is None:
                index = DomainIndex(list(installed))
                unanswered = risk.unanswered[installed] = [
                    h for h in risk.hosts if (index.lookup(representative(h)) or ("", 0))[1] != 421]
            return not risk.foreign_in(unanswered, p)
        index = DomainIndex([(d, 0) for d in sorted({v.domain for v in p.vhosts})] + list(installed))
        return all((index.lookup(representative(h)) or ("", 0))[1] == 421
                   for h in risk.hosts if risk.owner[h] is not p)


def _mitigated(f: Finding, guards: Guards, members: List[Placement], chains: ChainIndex) -> Finding:
    """The finding at Info level when installed mitigations answer every pair it describes:
    each request for each of its hosts, on the connections of each of its servers. (A host of
    a server's own chain is not at risk from it, so it needs no 421 there.)"""
    if not guards:
        return f
    by_ref = {p.server.ref: p for p in members}
    risk = AtRisk(f.detail["hosts"], chains)
    methods, names = set(), set()
    for src in f.detail["from"]:
        p = by_ref.get(ServerRef.from_dict(src))
        if p is None:
            return f
        how = guards.answered(p, risk)
        if how is None:
            return f
        methods.add(how[0])
        names.update(how[1])
    detail = dict(f.detail, mitigation={"method": "+".join(sorted(methods)), "envoyFilters": sorted(names)})
    return Finding(f.type, f.resource, Level.INFO, f.message + "; answered by an installed mitigation", detail)


def opens_connections(p: Placement, chains: ChainIndex) -> bool:
    """Some name's SNI selects p and p's certificate is valid for that name. Otherwise every
    connection to p shows a certificate error, and Chrome never pools on one
    (SpdySession::CanPool): e.g. a `*` chain whose names are all taken by other chains."""
    def valid(name: str) -> bool:
        return p.covers(name)

    for h in p.server.hosts:
        h = bare_host(h)
        if h == "*" or h.startswith("*."):
            for san in p.coverage:  # names under the pattern that the certificate lists
                if san.startswith("*."):
                    if (h == "*" or san == h or san.endswith(h[1:])) and chains.default_child(san[2:]) is p:
                        return True
                elif (h == "*" or san.endswith(h[1:])) and chains.lookup(san) is p:
                    return True
        elif chains.lookup(h) is p and valid(h):
            return True
    return False


def broken(t: Placement) -> bool:
    """A terminating chain whose certificate never arrives (its Secret is missing or holds no
    certificate): istiod keeps it, Envoy resets every handshake on it. Its hosts fail on their
    own connections, which is MissingSecret's outage, not a coalescing one."""
    return t.server.terminated_here and t.cert_status in (CertStatus.MISSING, CertStatus.INVALID, CertStatus.NO_CA)


def covered_chains(chains: ChainIndex, coverage: Sequence[str]) -> Hosts:
    """Every host (or ``*.x`` pattern) the certificate is valid for, with the chain it reaches
    (chains whose own handshakes fail are left out: see `broken`)."""
    return _covered(chains, coverage)[0]


def _covered(chains: ChainIndex, coverage: Sequence[str]) -> Tuple[Hosts, Tuple[str, ...]]:
    """covered_chains, and the names it leaves out because their own chain fails them: they
    are not at risk, nor part of any ``*.x`` pattern reported (that pattern's chain is not
    theirs)."""
    out: Hosts = {}
    for san in coverage:
        if san.startswith("*."):
            base = san[2:]
            for name in chains.children.get(base, ()):
                out.setdefault(name, chains.exact[name])
            t = chains.default_child(base)
            if t is not None:
                out.setdefault(san, t)
        else:
            t = chains.lookup(san)
            if t is not None:
                out.setdefault(san, t)
    kept: Hosts = {}
    failed: List[str] = []
    for h, t in out.items():
        if broken(t):
            failed.append(h)
            continue
        if not _invalid_for(t, h):
            kept.setdefault(h, t)
        elif h.startswith("*."):  # of the names under h, those t's own certificate does cover
            for san in t.coverage:
                if not san.startswith("*") and cert_covers(h, san) and chains.lookup(san) is t:
                    kept.setdefault(san, t)
        else:
            failed.append(h)
    return kept, tuple(h for h in failed if not h.startswith("*") and h not in kept)


def _invalid_for(t: Placement, host: str) -> bool:
    """t's own certificate is not valid for the host (or, for ``*.x``, for a name under it): the
    host gets a certificate error on its own connection, GWD0106's outage, whatever coalescing
    does with it.

    A PASSTHROUGH chain's certificate is its backend's, never read: it is taken to be valid for
    the names its TLS routes list, as a certificate lists them (`*.x` one label deep). Envoy
    picks that chain for deeper names too (its SNI wildcards match any depth), whose handshakes
    then fail at the backend."""
    if t.server.tls_mode is TlsMode.PASSTHROUGH and t.sni:
        names = [bare_host(n) for n in t.sni]
        return "*" not in names and not any(cert_covers(n, representative(host)) for n in names)
    if not t.server.terminated_here or t.cert_status is not CertStatus.LOADED:
        return False
    return not t.covers(representative(host))


def answers_foreign_hosts(p: Placement, chains: ChainIndex) -> bool:
    """Whether p's route table can match a host whose SNI picks another chain."""
    return any(is_wildcard(v.domain) or chains.lookup(v.domain) is not p for v in p.vhosts)


class RouteTable:
    """A route table's virtual hosts, indexed once so that each question costs the name's
    labels, not the table's size (a merged server's table can hold thousands of domains)."""

    def __init__(self, vhosts: Sequence[VirtualHost]) -> None:
        self.domains = DomainIndex([(v.domain, v.source) for v in vhosts])
        self.children: Dict[str, List[str]] = {}  # parent -> exact domains one label under it
        for v in vhosts:
            if not is_wildcard(v.domain):
                self.children.setdefault(parent(v.domain), []).append(v.domain)

    def route(self, host: str) -> Optional[RouteSource]:
        """The routes answering `host`; None for a 404 (no virtual host, or one without routes,
        which still takes the host from any wildcard)."""
        hit = self.domains.lookup(host)
        return hit[1] if hit and hit[1].answers else None

    def wildcard_route(self, base: str) -> Optional[RouteSource]:
        """The routes a generic child ``x.base`` gets: the longest covering ``*.suffix``, or ``*``."""
        s = base
        while s:
            hit = self.domains.suffix.get("." + s)
            if hit is not None:
                return hit[1] if hit[1].answers else None
            s = parent(s)
        star = self.domains.star
        return star[1] if star and star[1].answers else None


EMPTY = RouteTable(())


class Tables:
    """One RouteTable per placement of a listener, built when first asked for."""

    def __init__(self) -> None:
        self._by_id: Dict[Any, RouteTable] = {}

    def of(self, p: Placement) -> RouteTable:
        table = self._by_id.get(p.id)
        if table is None:
            table = self._by_id[p.id] = RouteTable(p.vhosts)
        return table


Outcomes = Iterator[Tuple[str, Placement, Optional[Outcome], Tuple[Request, ...]]]


def outcomes(mine: RouteTable, host: str, t: Placement, chains: ChainIndex, tables: Tables) -> Outcomes:
    """What requests for `host` (a name or ``*.x``) get from the table `mine` instead of t's:
    (name, t, outcome, the classes of requests it holds for, () for all of them).

    Outcome None marks a name inside a pattern that one of the tables answers on its own (an
    exact virtual host), or whose SNI picks a chain other than t's; it is judged by itself and
    the pattern's result excludes it. Nothing is yielded where both tables answer alike: same
    configuration, the same backend for every request, or a 404 either way.
    """
    theirs = tables.of(t)
    if host.startswith("*."):
        base = host[2:]
        exact = sorted({d for d in mine.children.get(base, []) + theirs.children.get(base, [])
                        if cert_covers(host, d) and d not in chains.exact})
        for d in exact:
            yield d, t, None, ()
            yield from _compare(d, t, mine.route(d), theirs.route(d))
        for d in chains.children.get(base, ()):
            if chains.exact[d] is not t:  # a chain of its own: not the pattern's, judged as its own host
                yield d, t, None, ()
        yield from _compare(host, t, mine.wildcard_route(base), theirs.wildcard_route(base))
    else:
        yield from _compare(host, t, mine.route(host), theirs.route(host))


def _compare(host: str, t: Placement, mine: Optional[RouteSource], theirs: Optional[RouteSource]) -> Outcomes:
    if mine == theirs or theirs is None:
        # the same routes; or nothing answers the host on its own connection (a 404 there
        # too), so no intended backend is missed, whatever the other table does with it
        return
    # request by request (kubectl_gwdup/analysis/request_classes.py): with route matches the outcome
    # depends on the path and headers, and a route to the same backend misroutes nothing
    for outcome, classes in judge_requests(mine, theirs, representative(host)):
        yield host, t, outcome, classes


Judged = Tuple[Dict[Tuple[Outcome, Tuple[Request, ...]], Hosts], Tuple[str, ...]]


def judge(mine: RouteTable, at_risk: Hosts, chains: ChainIndex, tables: Tables,
          skip: Optional[Placement] = None) -> Judged:
    """Hosts per outcome (and the classes of requests it holds for) for a table, and the
    pattern members judged on their own."""
    per: Dict[Tuple[Outcome, Tuple[Request, ...]], Hosts] = {}
    excepted: List[str] = []
    for h, t in at_risk.items():
        if t is skip:
            continue
        for name, target, outcome, classes in outcomes(mine, h, t, chains, tables):
            if outcome is None:
                excepted.append(name)
            else:
                per.setdefault((outcome, classes), {})[name] = target
    return per, tuple(sorted(set(excepted)))


def _group_findings(view: InventoryView, listener: Listener, chains: ChainIndex,
                    coverage: Tuple[str, ...], mtls: bool,
                    members: List[Placement], tables: Tables) -> Iterator[Finding]:
    at_risk, failed = _covered(chains, coverage)
    if not at_risk:
        return
    results: Dict[Tuple[Any, ...], Tuple[List[Placement], Hosts, Tuple[str, ...]]] = {}

    def add(sources: List[Placement], judged: Judged) -> None:
        per, excepted = judged
        for (outcome, classes), hosts in per.items():
            kept = tuple(sorted({e for e in excepted + failed if e not in hosts}))
            key = (outcome, classes, tuple(sorted((h, t.server.ref) for h, t in hosts.items())), kept)
            results.setdefault(key, ([], hosts, kept))[0].extend(sources)

    plain: List[Placement] = []
    for p in members:
        if answers_foreign_hosts(view.routes_of(p), chains):
            add([p], judge(tables.of(p), at_risk, chains, tables, skip=p))
        else:
            plain.append(p)
    if plain:
        # a table holding only its own chain's names answers every foreign host alike (404),
        # so the plain servers are judged once, together: output stays linear in hosts
        add(plain, judge(EMPTY, at_risk, chains, tables, skip=plain[0] if len(plain) == 1 else None))

    for key in sorted(results, key=lambda k: (k[0].value, k[1], k[2], k[3])):
        sources, hosts, excepted = results[key]
        yield _finding(listener, coverage, mtls, key[0], key[1], sources, hosts, excepted)


def _names(refs: Sequence[str], limit: int = 2) -> str:
    shown = ", ".join(refs[:limit])
    return shown + (f" (+{len(refs) - limit} more)" if len(refs) > limit else "")


def _finding(listener: Listener, coverage: Tuple[str, ...], mtls: bool, outcome: Outcome, classes: Tuple[Request, ...],
             sources: List[Placement], hosts: Hosts, excepted: Tuple[str, ...]) -> Finding:
    sources = sorted(sources, key=lambda p: p.server.ref)
    targets = sorted({t.server.ref: t for t in hosts.values()}.values(), key=lambda p: p.server.ref)
    host_list = sorted_hosts(hosts)
    kind = COALESCED_MISROUTED if outcome is Outcome.MISROUTED else COALESCED_NOT_FOUND
    creds = sorted({str(c) for p in sources for c in p.credentials})
    detail = {
        "outcome": outcome.value,
        "mtls": mtls,
        "workload": listener.workload.key,
        "workloadVia": listener.workload.via.value,
        "listenerPort": listener.port,
        "from": [p.server.ref.to_dict() for p in sources],
        "to": [t.server.ref.to_dict() for t in targets],
        "hosts": host_list,
        # a request of each class (path, method, headers) this outcome holds for; empty: every request
        "requests": [r.to_dict() for r in classes],
        # names inside a pattern of `hosts` that this finding does not cover (answered otherwise)
        "exceptHosts": [h for h in excepted if any(cert_covers(p, h) for p in host_list if p.startswith("*."))],
        "certificate": {
            "credentials": creds,
            "sha256": sorted({c.fingerprint for p in sources for c in p.certificates}),
            "dnsNames": list(coverage),
            "inspected": not any(p.coverage_inferred for p in sources),
        },
        "passthroughTargets": [str(t.server.ref) for t in targets
                               if t.server.tls_mode in (TlsMode.PASSTHROUGH, TlsMode.AUTO_PASSTHROUGH)],
    }
    level = kind.level.lowered() if mtls else kind.level
    return kind.finding(
        sources[0].server.ref.resource, level=level, detail=detail,
        hosts=_names(host_list, 3),
        to=_names(sorted({t.server.ref.label for t in targets})),
        from_=_names(sorted({p.server.ref.label for p in sources})),
        requests=f" (for {_names([r.label() for r in classes], 3)})" if classes else "")
