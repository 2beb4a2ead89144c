"""impact: access-log requests joined with the inventory and check's findings. Pure.

A request rode a coalesced connection when the filter chain its connection's SNI selects is not
the chain that serves its authority, on the same listener (the workload whose pod logged it,
and the port it was received on). What happened to it is read from the log line:
- `421`: answered 421 Misdirected Request (kubectl-gwdup's filter, or another);
- `404 no route`: 404 with flag NR or details route_not_found (the foreign route table has no
  virtual host for it: check's NotFound);
- `misrouted`: 2xx/3xx from the foreign route table's routes where the host's own table would
  have chosen other routes (check's Misrouted);
- `same routes`: 2xx/3xx where both tables answer the host alike (reuse that hurts no one);
- `other`: anything else (a 5xx from the upstream, a 404 from the backend itself, ...).

Rows are per hazard group (check's finding whose sources include the SNI's chain and whose
hosts include the authority) and per (connection host, request host); a coalesced request no
finding predicted is a row of its own (a bug report). Memory is the rows, never the lines.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ..accesslog import Tally
from ..hosts import cert_covers
from ..model import Finding, Inventory, Listener, Placement, ServerRef, Workload
from .chains import ChainIndex, live_chains
from .coalescing import RouteTable

OUTCOMES = ("404 no route", "421", "misrouted", "same routes", "other")


@dataclass
class Row:
    finding: Optional[int]  # index into the findings; None: seen and not predicted
    workload: str
    port: int
    conn_host: str
    request_host: str
    source: str  # the SNI chain's server (label)
    target: str  # the authority's chain's server (label)
    outcomes: Counter = field(default_factory=Counter)
    agents: Counter = field(default_factory=Counter)
    first: str = ""
    last: str = ""

    def add(self, outcome: str, count: int, first: str, last: str, agents: Counter) -> None:
        self.outcomes[outcome] += count
        self.agents.update(agents)
        for t in (first, last):
            if t:
                self.first = min(self.first, t) if self.first else t
                self.last = max(self.last, t)

    def to_dict(self) -> Dict[str, Any]:
        return {"finding": self.finding, "predicted": self.finding is not None, "workload": self.workload,
                "listenerPort": self.port, "connectionHost": self.conn_host, "requestHost": self.request_host,
                "from": self.source, "to": self.target, "requests": sum(self.outcomes.values()),
                "outcomes": {o: self.outcomes.get(o, 0) for o in OUTCOMES},
                "firstSeen": self.first or None, "lastSeen": self.last or None,
                "userAgents": dict(sorted(self.agents.items()))}


@dataclass
class Totals:
    lines: int = 0
    unparsed: int = 0
    proxy_log: int = 0  # istio-proxy's own logging, in the same stream
    requests: int = 0
    without_sni: int = 0
    without_authority: int = 0
    unknown_listener: int = 0
    coalesced: int = 0


class _ListenerView:
    def __init__(self, placements: Sequence[Placement]) -> None:
        live = live_chains(placements)
        self.chains = ChainIndex(live)
        self.has_chains = bool(live)
        self.tables: Dict[int, RouteTable] = {}

    def table(self, p: Placement) -> RouteTable:
        t = self.tables.get(id(p))
        if t is None:
            t = self.tables[id(p)] = RouteTable(p.vhosts)
        return t


class Join:
    """What the analysis knows, indexed once for every log line: chains per listener, and
    check's findings by (listener, source server)."""

    def __init__(self, inventory: Inventory, findings: Sequence[Finding]) -> None:
        by_listener: Dict[Listener, List[Placement]] = {}
        for p in inventory.placements:
            by_listener.setdefault(p.listener, []).append(p)
        self.listeners = {key: _ListenerView(ps) for key, ps in by_listener.items()}
        self.by_workload: Dict[str, List[Listener]] = {}
        for key in self.listeners:
            self.by_workload.setdefault(key.workload.key, []).append(key)
        self._listener: Dict[Tuple[str, int], Optional[Listener]] = {}
        self.findings = list(findings)
        self.predicted: Dict[Tuple[str, int, ServerRef], List[int]] = {}
        for i, f in enumerate(self.findings):
            d = f.detail
            if "outcome" not in d:
                continue
            for src in d["from"]:
                self.predicted.setdefault((d["workload"], d["listenerPort"], ServerRef.from_dict(src)), []).append(i)

    def listener(self, workload: str, port: int) -> Optional[Listener]:
        """The listener a line was received on; asked once per line, worked out once per pair."""
        key = (workload, port)
        if key not in self._listener:
            self._listener[key] = self._find_listener(workload, port)
        return self._listener[key]

    def _find_listener(self, workload: str, port: int) -> Optional[Listener]:
        candidates = self.by_workload.get(workload, [])
        if port:
            found = [k for k in candidates if k.port == port]
        else:  # the line does not say: the workload's only listener with TLS chains, if it has one
            found = [k for k in candidates if self.listeners[k].has_chains]
        return found[0] if len(found) == 1 else None

    def finding_for(self, workload: str, port: int, source: Placement, host: str) -> Optional[int]:
        for i in self.predicted.get((workload, port, source.server.ref), ()):
            d = self.findings[i].detail
            if host in d["hosts"] or any(h.startswith("*.") and cert_covers(h, host) and host not in d["exceptHosts"]
                                         for h in d["hosts"]):
                return i
        return None


class Impact:
    """Rows and totals, fed tallies of log lines (several per pod, added as they come)."""

    def __init__(self, join: Join) -> None:
        self.join = join
        self.rows: Dict[Tuple[Any, ...], Row] = {}
        self.totals = Totals()

    def add(self, workload: Workload, tally: Tally) -> None:
        """A tally of the workload's log lines (kubectl_gwdup/accesslog.py): each distinct
        request is joined once, however many lines repeat it."""
        t = self.totals
        t.lines += tally.lines
        t.unparsed += tally.unparsed
        t.proxy_log += tally.proxy_log
        for kept, (count, first, last, agents) in tally.keys.items():
            sni, authority, status, flags, details, route, port = kept
            t.requests += count
            if not sni:
                t.without_sni += count
                continue
            if not authority:  # HTTP/1.0 without Host: no host was asked for, so none was pooled
                t.without_authority += count
                continue
            key = self.join.listener(workload.key, port)
            if key is None:
                t.unknown_listener += count
                continue
            view = self.join.listeners[key]
            mine, theirs = view.chains.lookup(sni), view.chains.lookup(authority)
            if mine is None or theirs is None or mine is theirs:
                continue
            t.coalesced += count
            finding = self.join.finding_for(key.workload.key, key.port, mine, authority)
            row_key = (finding, key.workload.key, key.port, sni, authority)
            row = self.rows.get(row_key)
            if row is None:
                row = self.rows[row_key] = Row(finding, key.workload.key, key.port, sni, authority,
                                               mine.server.ref.label, theirs.server.ref.label)
            row.add(_outcome(status, flags, details, authority, view, mine, theirs), count, first, last, agents)


def _outcome(status: int, flags: str, details: str, authority: str, view: _ListenerView, mine: Placement,
             theirs: Placement) -> str:
    if status == 421:
        return "421"
    if status == 404 and ("NR" in flags.split(",") or details == "route_not_found"):
        return "404 no route"
    if 200 <= status < 400:
        same = view.table(mine).route(authority) == view.table(theirs).route(authority)
        return "same routes" if same else "misrouted"
    return "other"


def report(impact: Impact, findings: Sequence[Finding], notes: Sequence[str],
           keep: Optional[Set[int]] = None, unpredicted: Callable[[Row], bool] = lambda row: True) -> Dict[str, Any]:
    """The ImpactReport document: rows, totals, and check's findings joined with them. `keep`:
    the findings in scope (-n, -l), with their rows; `unpredicted`: which other rows to report."""
    wanted = (lambda r: r.finding in keep if r.finding is not None else unpredicted(r)) if keep is not None \
        else (lambda r: True)
    rows = sorted((r for r in impact.rows.values() if wanted(r)),
                  key=lambda r: (r.finding is None, r.finding or 0, r.workload, r.port, r.conn_host, r.request_host))
    seen = {r.finding for r in rows if r.finding is not None}
    outcome_totals = Counter()
    for r in rows:
        outcome_totals.update(r.outcomes)
    hazards = [{"finding": i, "code": f.code, "outcome": f.detail["outcome"], "hosts": list(f.detail["hosts"]),
                "mitigated": bool(f.detail.get("mitigation")), "seen": i in seen}
               for i, f in enumerate(findings) if "outcome" in f.detail and (keep is None or i in keep)]
    t = impact.totals
    return {"apiVersion": "gwdup.kubectl.io/v1alpha1", "kind": "ImpactReport",
            "rows": [r.to_dict() for r in rows],
            "findings": hazards,
            "totals": {"lines": t.lines, "unparsed": t.unparsed, "proxyLog": t.proxy_log, "requests": t.requests,
                       "withoutSni": t.without_sni, "withoutAuthority": t.without_authority,
                       "unknownListener": t.unknown_listener,
                       "coalesced": sum(sum(r.outcomes.values()) for r in rows),  # in the rows reported
                       "outcomes": {o: outcome_totals.get(o, 0) for o in OUTCOMES},
                       "predictedAndSeen": sum(1 for h in hazards if h["seen"]),
                       "predictedNotSeen": sum(1 for h in hazards if not h["seen"]),
                       "seenNotPredicted": sum(sum(r.outcomes.values()) for r in rows if r.finding is None)},
            "notes": list(notes)}
