"""`serve`'s metrics, in Prometheus' text format through prometheus_client.

What describes the mesh (hazards, conditions, objects watched) is a custom collector that
reads the latest evaluation at scrape time: a hazard that is gone leaves no series behind, so
the number of series follows the mesh, never the history of changes. What counts events
(evaluations, watch errors, writes) is ordinary Counters and a Histogram in a registry of its
own (not the process-global one: two servers in one process, as in tests, never share).

Every metric is named in METRICS, with its help; `deploy/grafana-dashboard.json` has a panel
for each, and a test holds the two to each other.
"""
from __future__ import annotations

import threading
from collections import Counter as Tally
from typing import Any, Dict, Iterator, Optional, Tuple

PREFIX = "gwdup_"
METRICS = {
    "gwdup_hazards": "Hazards check finds now, by outcome, code, Gateway (each Gateway a hazard involves) and "
                     "its namespace, and whether an installed filter answers it",
    "gwdup_findings": "Findings of every kind check finds now, by code and level",
    "gwdup_suppressed_findings": "Findings accepted by --suppress or the gwdup.kubectl.io/suppress annotation",
    "gwdup_listener_overlap": "Gateway API listeners with GEP-3567's OverlappingTLSConfig condition (1), by reason",
    "gwdup_watched_objects": "Objects held per watched kind",
    "gwdup_watch_errors_total": "Failed lists and watches, by kind and reason (Forbidden: RBAC refuses it)",
    "gwdup_last_successful_sync_timestamp_seconds": "When the last analysis of the watched state finished",
    "gwdup_analysis_duration_seconds": "Time to analyse the watched state once",
    "gwdup_evaluations_total": "Analyses run, by result (ok, error)",
    "gwdup_writes_total": "Writes to the cluster, by what (condition, event) and result",
    "gwdup_build_info": "The running kubectl-gwdup's version",
}


class State:
    """What the collector reads; replaced whole by the serving loop after each evaluation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hazards: Dict[Tuple[str, str, str, str, str], int] = {}
        self.findings: Dict[Tuple[str, str], int] = {}
        self.suppressed: Dict[str, int] = {}
        self.overlaps: Dict[Tuple[str, str, str, str], int] = {}
        self.objects: Dict[str, int] = {}
        self.last_sync: Optional[float] = None

    def update(self, report: Any, objects: Dict[str, int], finished: float) -> None:
        hazards: Tally = Tally()
        findings: Tally = Tally()
        for f in report.findings:
            findings[(f.code, f.level.label)] += 1
            d = f.detail
            if "outcome" not in d:
                continue
            gateways = {str(r["gateway"]) for r in list(d.get("from") or []) + list(d.get("to") or [])
                        if isinstance(r, dict)}
            for gw in gateways:
                ns = gw.split("/", 1)[0]
                hazards[(str(d["outcome"]), f.code, gw, ns, "true" if d.get("mitigation") else "false")] += 1
        suppressed: Tally = Tally(f.code for f, _by in report.suppressed)
        overlaps = {}
        for e in report.conditions:
            cond = e.get("condition")
            if cond:
                ns, _ = str(e["gateway"]).split("/", 1)
                overlaps[(str(e["gateway"]), ns, str(e["listener"]), str(cond["reason"]))] = 1
        with self.lock:
            self.hazards, self.findings, self.suppressed = dict(hazards), dict(findings), dict(suppressed)
            self.overlaps, self.objects, self.last_sync = overlaps, dict(objects), finished


class Metrics:
    def __init__(self, version: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.state = State()
        self.registry = CollectorRegistry(auto_describe=True)
        self.evaluations = Counter("gwdup_evaluations", METRICS["gwdup_evaluations_total"], ["result"],
                                   registry=self.registry)
        self.watch_errors = Counter("gwdup_watch_errors", METRICS["gwdup_watch_errors_total"], ["resource", "reason"],
                                    registry=self.registry)
        self.writes = Counter("gwdup_writes", METRICS["gwdup_writes_total"], ["what", "result"], registry=self.registry)
        self.duration = Histogram("gwdup_analysis_duration_seconds", METRICS["gwdup_analysis_duration_seconds"],
                                  buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry)
        self.version = version
        self.registry.register(_MeshCollector(self))

    def exposition(self) -> Tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _MeshCollector:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterator[Any]:
        return iter(())  # series are known only at scrape time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        s = self.metrics.state
        with s.lock:
            hazards, findings, suppressed = dict(s.hazards), dict(s.findings), dict(s.suppressed)
            overlaps, objects, last = dict(s.overlaps), dict(s.objects), s.last_sync
        for name, labels, series in (
                ("gwdup_hazards", ["outcome", "code", "gateway", "namespace", "mitigated"], hazards),
                ("gwdup_findings", ["code", "level"], findings),
                ("gwdup_suppressed_findings", ["code"], {(c,): n for c, n in suppressed.items()}),
                ("gwdup_listener_overlap", ["gateway", "namespace", "listener", "reason"], overlaps),
                ("gwdup_watched_objects", ["resource"], {(r,): n for r, n in objects.items()})):
            g = GaugeMetricFamily(name, METRICS[name], labels=labels)
            for values, n in sorted(series.items()):
                g.add_metric(list(values), n)
            yield g
        if last is not None:
            yield GaugeMetricFamily("gwdup_last_successful_sync_timestamp_seconds",
                                    METRICS["gwdup_last_successful_sync_timestamp_seconds"], value=last)
        info = GaugeMetricFamily("gwdup_build_info", METRICS["gwdup_build_info"], labels=["version"])
        info.add_metric([self.metrics.version], 1)
        yield info
