"""GEP-3567's `OverlappingTLSConfig` listener condition, as server-side apply bodies. Pure.

GEP-3567 (Gateway TLS updates for HTTP/2 connection coalescing) asks implementations to set
this condition on a listener whose hostname or certificate overlaps another's on the same
port; istiod does not set it (it is in no release up to 1.30, nor at HEAD). `serve
--write-conditions` sets it from check's analysis (`analysis.overlap.listener_conditions`).

Each Gateway (or ListenerSet) gets one apply of the status subresource, under a field manager
of its own, holding only this condition on the listeners that have it. Server-side apply then
does what the issue asks of the write:

- other conditions, istiod's and anyone's, are other managers' fields and are never touched;
- a listener whose overlap is gone is simply left out of the next apply, and the API server
  removes the condition this manager owned there (a field a manager stops applying is removed
  unless another manager owns it);
- the write is not forced: a condition of this type someone else owns with another value is
  a conflict, reported, never overwritten.

istiod keeps conditions it does not set: it builds a listener's conditions from the existing
ones (`pilot/pkg/config/kube/gatewaycommon/conversion.go` ReportListenerCondition, starting
from `statusListeners[index].Conditions`, and SetListenerConditions; 1.24-1.30 and HEAD), so
its own status updates leave this condition in place.

Only listeners istiod already reports in `status.listeners` are written: a listener status
needs `supportedKinds` and `attachedRoutes`, which are istiod's to say; a listener not reported
yet is written once istiod has reported it (the watch sees that status update).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from ..analysis.overlap import CONDITION

FIELD_MANAGER = "kubectl-gwdup-conditions"
KINDS = {"Gateway": "gateways", "ListenerSet": "listenersets"}
COMPARED = ("status", "reason", "message", "observedGeneration")


@dataclass(frozen=True)
class StatusApply:
    kind: str  # Gateway or ListenerSet
    namespace: str
    name: str
    api_version: str
    body: Dict[str, Any]
    listeners: Tuple[str, ...]  # listeners the apply sets the condition on (empty: it clears them)
    fingerprint: Tuple[Tuple[str, Any], ...]  # what `applied` remembers of it once written

    @property
    def path(self) -> str:
        return f"/apis/{self.api_version}/namespaces/{self.namespace}/{KINDS[self.kind]}/{self.name}/status"

    def key(self) -> Tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


def _observed(obj: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """listener name -> its OverlappingTLSConfig condition as the object shows it."""
    out = {}
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    for listener in status.get("listeners") or []:
        if not isinstance(listener, dict):
            continue
        for cond in listener.get("conditions") or []:
            if isinstance(cond, dict) and cond.get("type") == CONDITION:
                out[str(listener.get("name"))] = cond
    return out


def _reported(obj: Mapping[str, Any]) -> List[str]:
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    return [str(x.get("name")) for x in status.get("listeners") or [] if isinstance(x, dict)]


def _fingerprint(conds: Mapping[str, Mapping[str, Any]]) -> Tuple[Tuple[str, Any], ...]:
    """What decides whether a listener's condition needs writing: its fields but the time."""
    return tuple(sorted((lst, tuple(c.get(k) for k in COMPARED)) for lst, c in conds.items()))


def plan(entries: Sequence[Mapping[str, Any]], objects: Iterable[Mapping[str, Any]], now: str,
         applied: Mapping[Tuple[str, str, str], Tuple[Tuple[str, Any], ...]]) -> List[StatusApply]:
    """The applies that bring each Gateway's (and ListenerSet's) listeners to what the analysis
    says, given `applied`: what this process applied last per object (a fingerprint); an
    object is written when its wanted conditions differ from that, or from what it shows."""
    wanted: Dict[Tuple[str, str, str], Dict[str, Dict[str, Any]]] = {}
    for e in entries:
        cond = e.get("condition")
        if not cond:
            continue
        ns, name = str(e["gateway"]).split("/", 1)
        kind = "ListenerSet" if str(e.get("kind", "")).startswith("ListenerSet") else "Gateway"
        wanted.setdefault((kind, ns, name), {})[str(e["listener"])] = dict(cond)
    out = []
    for obj in objects:
        kind = str(obj.get("kind") or "")
        if kind not in KINDS:
            continue
        m = obj.get("metadata") or {}
        key = (kind, str(m.get("namespace") or ""), str(m.get("name") or ""))
        observed = _observed(obj)
        reported = set(_reported(obj))
        generation = m.get("generation")
        conds: Dict[str, Dict[str, Any]] = {}
        for listener, cond in sorted(wanted.get(key, {}).items()):
            if listener not in reported:
                continue
            seen = observed.get(listener)
            full = {"type": CONDITION, "status": cond["status"], "reason": cond["reason"],
                    "message": cond["message"][:32768],
                    "lastTransitionTime": seen["lastTransitionTime"] if seen and seen.get("status") == cond["status"]
                    and seen.get("lastTransitionTime") else now}
            if isinstance(generation, int):
                full["observedGeneration"] = generation
            conds[listener] = full
        fingerprint = _fingerprint(conds)
        shown = _fingerprint({lst: c for lst, c in observed.items() if lst in conds})
        last = applied.get(key)
        stale = [lst for lst in observed if lst not in conds]  # shown, no longer wanted
        if fingerprint == last and fingerprint == shown:
            continue
        if not conds and not (last or (last is None and stale)):
            continue  # nothing wanted, nothing of ours to clear
        body = {"apiVersion": str(obj.get("apiVersion") or "gateway.networking.k8s.io/v1"), "kind": kind,
                "metadata": {"name": key[2], "namespace": key[1]},
                "status": {"listeners": [{"name": lst, "conditions": [c]} for lst, c in sorted(conds.items())]}}
        out.append(StatusApply(kind, key[1], key[2], body["apiVersion"], body, tuple(sorted(conds)), fingerprint))
    return out


def described(apply: StatusApply) -> str:
    what = f"{apply.kind.lower()}.gateway.networking.k8s.io/{apply.name} -n {apply.namespace}"
    if apply.listeners:
        return f"{what}: {CONDITION}=True on {', '.join(apply.listeners)}"
    return f"{what}: {CONDITION} cleared"
