"""Kubernetes Events on the Istio Gateways a hazard involves, for `serve --write-events`. Pure.

`kubectl describe gateway` and `kubectl get events` are where a team looks first; an Istio
Gateway has no status condition for this (its status is istiod's analysis messages), so an
event says it: Warning `CoalescingHazard` when a hazard appears (or loses its mitigation),
Normal `CoalescingHazardResolved` / `CoalescingHazardMitigated` when it goes or is answered.

events.k8s.io/v1, as `pkg/apis/core/validation/events.go` ValidateEventCreate wants it:
eventTime, reportingController, reportingInstance, action and reason set, a note of at most
1 kB. Events are deduplicated and rate-limited as client-go's recorder does it:

- an event's name is derived from the hazard and the change, so the same news is one event:
  sent again (a restart, another replica) it is 409 AlreadyExists, taken as already said;
- each Gateway has a token bucket of 25 events refilled one per 5 minutes
  (`client-go/tools/record/events_cache.go` defaultSpamBurst, defaultSpamQPS): a Gateway in
  a flapping hazard cannot flood the API server.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..analysis.changes import Change, FindingChange, identity

REPORTING_CONTROLLER = "gwdup.kubectl.io/serve"
ACTION = "Analyze"
NOTE_LIMIT = 1024
REASONS = {Change.APPEARED: ("Warning", "CoalescingHazard"),
           Change.UNMITIGATED: ("Warning", "CoalescingHazardUnmitigated"),
           Change.MITIGATED: ("Normal", "CoalescingHazardMitigated"),
           Change.DISAPPEARED: ("Normal", "CoalescingHazardResolved")}
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0
REMEMBERED = 10_000  # event names kept to deduplicate within the process


def _note(text: str) -> str:
    data = text.encode()
    if len(data) <= NOTE_LIMIT:
        return text
    return data[:NOTE_LIMIT - 3].decode("utf-8", "ignore") + "..."


def events(changes: Sequence[FindingChange], gateways: Mapping[Tuple[str, str], Mapping[str, Any]],
           instance: str, event_time: str) -> List[Dict[str, Any]]:
    """One event per (change of a hazard, Istio Gateway it involves)."""
    out = []
    for c in changes:
        d = c.finding.detail
        if "outcome" not in d:
            continue
        involved = sorted({str(r["gateway"]) for r in list(d.get("from") or []) + list(d.get("to") or [])
                           if isinstance(r, dict) and "listener" not in r})
        kind, reason = REASONS[c.change]
        digest = hashlib.sha256(repr((identity(c.finding), c.change.value)).encode()).hexdigest()[:16]
        for ref in involved:
            ns, name = ref.split("/", 1)
            gw = gateways.get((ns, name))
            if gw is None:
                continue  # deleted since: nothing to attach the event to
            m = gw.get("metadata") or {}
            regarding = {"apiVersion": str(gw.get("apiVersion") or "networking.istio.io/v1"), "kind": "Gateway",
                         "namespace": ns, "name": name}
            if m.get("uid"):
                regarding["uid"] = m["uid"]
            event_name = f"{name[:200]}.gwdup-{digest}"
            out.append({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                        "metadata": {"name": event_name, "namespace": ns},
                        "eventTime": event_time, "reportingController": REPORTING_CONTROLLER,
                        "reportingInstance": instance[:128], "action": ACTION, "reason": reason, "type": kind,
                        "regarding": regarding,
                        "note": _note(f"{c.finding.code} {d['outcome']}: {c.finding.message}")})
    return out


@dataclass
class Limiter:
    """Deduplication by name and a token bucket per regarded object."""

    burst: int = SPAM_BURST
    refill: float = SPAM_REFILL_SECONDS
    buckets: Dict[Tuple[str, str], Tuple[float, float]] = field(default_factory=dict)  # (tokens, at)
    sent: "OrderedDict[Tuple[str, str], None]" = field(default_factory=OrderedDict)

    def admit(self, event: Mapping[str, Any], now: float) -> Optional[str]:
        """None when the event may go; else why not ("duplicate", "ratelimited")."""
        key = (event["metadata"]["namespace"], event["metadata"]["name"])
        if key in self.sent:
            return "duplicate"
        r = event["regarding"]
        obj = (r["namespace"], r["name"])
        tokens, at = self.buckets.get(obj, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.refill)
        if tokens < 1.0:
            self.buckets[obj] = (tokens, now)
            return "ratelimited"
        self.buckets[obj] = (tokens - 1.0, now)
        self.remember(key)
        return None

    def remember(self, key: Tuple[str, str]) -> None:
        self.sent[key] = None
        while len(self.sent) > REMEMBERED:
            self.sent.popitem(last=False)
