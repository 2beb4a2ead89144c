"""What every merge plan is made of, whichever objects it rewrites: ordered writes, the phases
they run in, and the answers a plan must keep for every name between two writes. Pure.

kubectl_gwdup/plans/merge.py plans Istio Gateway merges, kubectl_gwdup/plans/merge_listeners.py
Gateway API listener merges; both build on this module, neither on the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ..model import Finding, Inventory, Placement

PHASES = ("bind", "qualify", "merge", "unbind", "delete")
SINGLE = ("qualify", "merge")  # phases whose every write is simulated, not only the phase's end
API_VERSION = "gwdup.kubectl.io/v1alpha2"
Answer = Tuple[str, ...]


@dataclass
class Step:
    """One write: `update` replaces the object's spec, `delete` removes it."""

    phase: str
    action: str  # update | delete
    before: Dict[str, Any]  # the object as read
    spec: Optional[Dict[str, Any]] = None  # the spec after this step (update)

    @property
    def key(self) -> Tuple[str, str, str]:
        m = self.before["metadata"]
        return self.before["kind"], m.get("namespace") or "", m["name"]

    def to_dict(self) -> Dict[str, Any]:
        kind, ns, name = self.key
        out: Dict[str, Any] = {"phase": self.phase, "action": self.action, "apiVersion": self.before["apiVersion"],
                               "kind": kind, "namespace": ns, "name": name}
        if self.spec is not None:
            out["spec"] = self.spec
        return out


@dataclass
class MergeUnit:
    target: Dict[str, Any]  # the group's oldest Gateway, as read
    steps: List[Step]
    deleted: List[Dict[str, Any]]  # the other Gateways, as read


@dataclass
class MergePlan:
    units: List[MergeUnit] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def steps(self) -> List[Step]:
        """Every unit's writes, phase by phase: all binds, all merges, all unbinds, all deletes."""
        return [s for phase in PHASES for u in self.units for s in u.steps if s.phase == phase]

    def to_dict(self) -> Dict[str, Any]:
        seen: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
        for s in self.steps:
            seen.setdefault(s.key, s.before)
        pre = [{"kind": k[0], "namespace": k[1], "name": k[2], "uid": o["metadata"].get("uid"),
                "resourceVersion": o["metadata"].get("resourceVersion")} for k, o in seen.items()]
        return {"apiVersion": API_VERSION, "kind": "MergePlan", "steps": [s.to_dict() for s in self.steps],
                "preconditions": pre, "notes": list(self.notes)}


class _Union:
    def __init__(self) -> None:
        self.parent: Dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: Any, b: Any) -> None:
        self.parent[self.find(a)] = self.find(b)


def unit_key(ref: Mapping[str, Any]) -> str:
    """A finding's server reference as a merge-unit key: `ns/name` for an Istio Gateway,
    `<Kind.group> ns/name` for a Gateway API Gateway or ListenerSet."""
    return f"{ref['kind']} {ref['gateway']}" if "listener" in ref else str(ref["gateway"])


def has_listeners(keys: Set[str]) -> bool:
    """The unit holds Gateway API listeners (kubectl_gwdup/plans/merge_listeners.py plans it)."""
    return any(" " in k for k in keys)


def hazard_units(findings: Sequence[Finding]) -> List[Set[str]]:
    """Sets of Gateway keys to merge together: connected by hazards, or by sharing a Gateway. An
    Istio Gateway is `ns/name`, a Gateway API Gateway (or ListenerSet) `<Kind.group> ns/name`."""
    u = _Union()
    for f in findings:
        d = f.detail
        if "outcome" not in d:
            continue
        gws = [unit_key(s) for s in d["from"] + d["to"]]
        for g in gws:
            u.join(gws[0], g)
    groups: Dict[Any, Set[str]] = {}
    for g in list(u.parent):
        groups.setdefault(u.find(g), set()).add(g)
    return sorted(groups.values(), key=lambda s: sorted(s))


def answers(inv: Inventory, names: Set[str]) -> Dict[Tuple[str, str], Answer]:
    """How each name is answered on each listener of an inventory: the chain its SNI picks, then
    that chain's virtual host (domain, certificate validity, routes); what a merge plan must
    keep from one write to the next."""
    from ..analysis.chains import ChainIndex, conflicts, live_chains
    from ..hosts import DomainIndex

    by_listener: Dict[Any, List[Placement]] = {}
    for p in inv.placements:
        by_listener.setdefault(p.listener, []).append(p)
    out: Dict[Tuple[str, str], Answer] = {}
    tables: Dict[int, Any] = {}
    for listener, ps in by_listener.items():
        live = live_chains(ps)
        rejected = next(conflicts(live), None) is not None
        chains = ChainIndex(live)
        for name in names:
            key = (str(listener), name)
            if rejected:  # Envoy refuses the whole listener
                out[key] = ("listener rejected",)
                continue
            t = chains.lookup(name)
            if t is None:
                continue
            if not t.server.http_routed:
                out[key] = ("opaque", t.server.route_name)
                continue
            covered = not t.coverage or t.covers(name)
            if t.id not in tables:  # one index per chain and state, for every name
                tables[t.id] = DomainIndex([(v.domain, v.source) for v in t.vhosts])
            hit = tables[t.id].lookup(name)
            if hit is None:
                out[key] = ("404", "" if covered else "certificate error")
            else:
                out[key] = (hit[0], "" if covered else "certificate error") + tuple(r.id for r in hit[1].routes)
    return out


def describe(answer: Answer) -> str:
    if answer[0] in ("no chain", "listener rejected", "opaque"):
        return {"no chain": "no filter chain", "listener rejected": "a listener Envoy rejects",
                "opaque": "an opaque chain"}[answer[0]]
    if answer[0] == "404":
        return "a 404"
    routes = answer[2:]
    return f"routes {', '.join(routes[:3])}{' ...' if len(routes) > 3 else ''} (virtual host {answer[0]})" \
        if routes else f"a virtual host without routes ({answer[0]})"
