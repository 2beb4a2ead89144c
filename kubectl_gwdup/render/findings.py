"""Rows for check findings, in table and wide form, from each finding's to_dict().

The table is one line per finding, each Gateway once (those a connection is opened for and
those whose hosts arrive on it, together), its lists cut as kubectl cuts an Ingress's hosts
(`a,b + 3 more...`), so that it reads in a 120-column terminal; `-o wide` gives the direction
(GATEWAY, TO) and the details."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

from ..model import Finding

HEADERS = ["gateways", "port", "hosts", "outcome", "certificate"]
WIDE_HEADERS = ["gateway", "port", "hosts", "to", "outcome", "certificate", "level", "code", "workload", "listener",
                "port names", "evidence"]
OUTCOME_COLUMN = {False: HEADERS.index("outcome"), True: WIDE_HEADERS.index("outcome")}
MAX_CELL_ITEMS = 3
CELL_BUDGET = 40  # characters of a table cell's list before `+ N more...`


def _more(items: Sequence[str]) -> str:
    """kubectl's cut of a list (an Ingress's HOSTS): as many as fit the cell's budget (one at
    least), then `+ N more...`."""
    items = list(dict.fromkeys(items))
    if not items:
        return "<none>"
    shown = 1
    while shown < len(items) and len(",".join(items[:shown + 1])) <= CELL_BUDGET:
        shown += 1
    head = ",".join(items[:shown])
    return head + (f" + {len(items) - shown} more..." if len(items) > shown else "")


def _narrow(d: Dict[str, Any], cells: List[str], gateways: Sequence[str]) -> List[str]:
    """The table's row from the wide row's first six cells (gateway, port, hosts, to, outcome,
    certificate): every Gateway once, lists cut."""
    # a Secret by its name (its namespace, the workload's or a certificateRef's, is in -o wide)
    creds = [c.rsplit("/", 1)[-1] if c.startswith("secret ") else c for c in d.get("certificate", {}).get(
        "credentials", [])] if isinstance(d.get("certificate"), dict) else [cells[5]]
    hosts = [d["sni"]] if d.get("sni") else d.get("hosts") or []
    return [_more(gateways), cells[1], _more(hosts) if hosts else cells[2], cells[4],
            _more(creds) if creds else cells[5]]


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
    cells = _wide_row(f, d, wide)
    if wide:
        return cells
    if "from" in d:
        gateways = _gateways(d["from"] + d["to"])
    elif "keptServer" in d:
        gateways = [label(d["server"]), label(d["keptServer"])]
    elif "conflictsWith" in d:
        gateways = [label(d["server"]), label(d["conflictsWith"])]
    else:
        gateways = [cells[0]]
    return _narrow(d, cells, gateways)


def _wide_row(f: Finding, d: Dict[str, Any], wide: bool) -> List[str]:
    if "from" in d:
        cert = d["certificate"]
        cells = [_short(_gateways(d["from"])), str(d["from"][0]["portNumber"]), _short(d["hosts"]),
                 _short(_gateways(d["to"])),
                 d["outcome"] + (" (mTLS)" if d["mtls"] else "") + (_mitigated(d.get("mitigation")))
                 + (f" ({d['dns']['state']})" if d.get("dns") else ""),
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
            if d.get("dns"):
                dns = d["dns"]
                evidence.append(f"DNS shares {','.join(dns['sharedAddresses'][:MAX_CELL_ITEMS])}" if dns["state"] == "live"
                                else f"DNS {dns['state']}: {dns.get('why', '')}")
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
