"""`serve`'s writes, each off unless its flag is given: the OverlappingTLSConfig listener
condition (server-side apply of the status subresource, plans.listener_status) and Events on
Istio Gateways (plans.hazard_events).

A refused or failed write is one log line (said again only when the reason changes) and a
count in gwdup_writes_total; it never stops the serving loop.
"""
from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from ..analysis.changes import diff
from ..errors import ApiError, GwdupError
from ..plans import hazard_events, listener_status

Count = Callable[[str, str], None]  # (what, result)


def _now(micro: bool = False) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


class _Said:
    """One log line per (subject, reason) until the reason changes."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.last: Dict[Any, str] = {}

    def __call__(self, subject: Any, reason: str, line: str) -> None:
        if self.last.get(subject) != reason:
            self.last[subject] = reason
            self.log(line)


class ConditionWriter:
    def __init__(self, access: Any, count: Count, log: Callable[[str], None]) -> None:
        self.access = access
        self.count = count
        self.log = log
        self.said = _Said(log)
        self.applied: Dict[Tuple[str, str, str], Tuple[Tuple[str, Any], ...]] = {}

    def write(self, raw: Any, report: Any) -> int:
        objects = list(raw.gateway_api.gateways) + list(raw.gateway_api.listener_sets)
        applies = listener_status.plan(report.conditions, objects, _now(), self.applied)
        done = 0
        for a in applies:
            try:
                self.access.request("PATCH", a.path, {"fieldManager": listener_status.FIELD_MANAGER},
                                    body=a.body, content_type="application/apply-patch+yaml")
            except ApiError as exc:
                result = {409: "conflict", 403: "forbidden", 404: "notfound"}.get(exc.code, "error")
                self.count("condition", result)
                self.said(a.key(), result, f"condition not written: {listener_status.described(a)}: "
                                           f"{exc.render().strip()}")
                if exc.code in (409, 404):
                    self.applied[a.key()] = a.fingerprint  # not again until it changes
                continue
            except GwdupError as exc:
                self.count("condition", "error")
                self.said(a.key(), "error", f"condition not written: {listener_status.described(a)}: {exc}")
                continue
            self.applied[a.key()] = a.fingerprint
            self.said(a.key(), "ok", f"condition written: {listener_status.described(a)}")
            self.count("condition", "applied")
            done += 1
        return done


class EventWriter:
    def __init__(self, access: Any, count: Count, log: Callable[[str], None], instance: str) -> None:
        self.access = access
        self.count = count
        self.said = _Said(log)
        self.instance = instance
        self.limiter = hazard_events.Limiter()
        self.last: Optional[Sequence[Any]] = None

    def write(self, raw: Any, report: Any) -> int:
        changes = diff(self.last or (), report.findings)
        self.last = report.findings
        gateways = {}
        for gw in raw.gateways:
            m = gw.get("metadata") or {}
            gateways[(str(m.get("namespace") or raw.default_namespace), str(m.get("name") or ""))] = gw
        sent = 0
        for event in hazard_events.events(changes, gateways, self.instance, _now(micro=True)):
            why = self.limiter.admit(event, time.monotonic())
            if why is not None:
                self.count("event", why)
                continue
            ns = event["metadata"]["namespace"]
            try:
                self.access.request("POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events", body=event)
            except ApiError as exc:
                if exc.code == 409:  # the same news, already said (a restart, another replica)
                    self.count("event", "duplicate")
                    continue
                result = {403: "forbidden", 404: "notfound", 422: "invalid"}.get(exc.code, "error")
                self.count("event", result)
                self.said(("events", ns), result, f"event not written in {ns}: {exc.render().strip()}")
                continue
            except GwdupError as exc:
                self.count("event", "error")
                self.said(("events", ns), "error", f"event not written in {ns}: {exc}")
                continue
            self.count("event", "created")
            sent += 1
        return sent
