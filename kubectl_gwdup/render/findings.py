"""Rows for check findings, in table and wide form, from each finding's to_dict()."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

from ..model import Finding

HEADERS = ["gateway", "port", "hosts", "to", "outcome", "certificate"]
WIDE_HEADERS = HEADERS + ["level", "code", "workload", "listener", "port names", "evidence"]
MAX_CELL_ITEMS = 3


def _short(items: Sequence[str]) -> str:
    if not items:
        return "<none>"
    shown = ",".join(items[:MAX_CELL_ITEMS])
    return shown + (f" (+{len(items) - MAX_CELL_ITEMS})" if len(items) > MAX_CELL_ITEMS else "")


def label(ref: Dict[str, Any]) -> str:
    """A server as a cell: `ns/gateway`, or `ns/gateway/listener` for a Gateway API listener."""
    return f"{ref['gateway']}/{ref['listener']}" if "listener" in ref else ref["gateway"]


def _gateways(refs: Sequence[Dict[str, Any]]) -> List[str]:
    return list(dict.fromkeys(label(r) for r in refs))


def row(f: Finding, wide: bool) -> List[str]:
    d = f.to_dict()
    if "from" in d:
        cert = d["certificate"]
        cells = [_short(_gateways(d["from"])), str(d["from"][0]["portNumber"]), _short(d["hosts"]),
                 _short(_gateways(d["to"])),
                 d["outcome"] + (" (mTLS)" if d["mtls"] else "") + (_mitigated(d.get("mitigation"))),
                 _short(cert["credentials"])]
        if wide:
            names = sorted({r["portName"] for r in d["from"] + d["to"]})
            evidence = ["SANs " + ",".join(cert["dnsNames"][:MAX_CELL_ITEMS])
                        + ("" if cert["inspected"] else " (inferred, cert not read)")]
            if d["workloadVia"] == "managed":
                evidence.append("workload deployed by istiod")
            elif d["workloadVia"] != "pods":
                evidence.append(f"workload by {d['workloadVia']}")
            if d["passthroughTargets"]:
                evidence.append("to PASSTHROUGH")
            cells += [f.level.label, f.code, d["workload"], str(d["listenerPort"]),
                      ",".join(names), "; ".join(evidence)]
        return cells
    if "keptServer" in d:
        s = d["server"]
        cells = [label(s), str(s["portNumber"]), _short(d["hosts"]), label(d["keptServer"]),
                 "Dropped", "-"]
        if wide:
            cells += [f.level.label, f.code, d["workload"], str(d["listenerPort"]), s["portName"],
                      f"duplicate host {d['duplicateHost']}"]
        return cells
    if "conflictsWith" in d:
        s = d["server"]
        cells = [label(s), str(s["portNumber"]), d["sni"], label(d["conflictsWith"]), "Rejected", "-"]
        if wide:
            cells += [f.level.label, f.code, d["workload"], str(d["listenerPort"]), s["portName"],
                      "same SNI match in two filter chains"]
        return cells
    s = d.get("server", {})
    cells = [label(s) if s else f.resource.key, str(s.get("portNumber", "")), _short(d.get("hosts", [])),
             "-", "NoSecret" if f.type.name == "SecretNotFound" else f.type.name, d.get("credential", "-")]
    if wide:
        cells += [f.level.label, f.code, d.get("workload", ""), "", s.get("portName", ""), f.message]
    return cells


def _mitigated(mitigation) -> str:
    if not mitigation:
        return ""
    return " (HTTP/1.1)" if mitigation["method"] == "http1" else " (421)"


CONDITION_HEADERS = ["listener", "port", "OverlappingTLSConfig", "overlaps with", "hazards measured"]


def condition_rows(conditions: Sequence[Dict[str, Any]]) -> List[List[str]]:
    """GEP-3567's condition per Gateway API listener beside what check measured (-o wide)."""
    out = []
    for c in conditions:
        cond = c["condition"]
        seen = sorted({f"{h['outcome']} as {h['as']}" + (" (mitigated)" if h["mitigated"] else "")
                       for h in c["hazards"]})
        out.append([label(c), str(c["portNumber"]), cond["reason"] if cond else "<not set>",
                    _short(c["overlapsWith"]) if c["overlapsWith"] else "-", ", ".join(seen) or "none"])
    return out
