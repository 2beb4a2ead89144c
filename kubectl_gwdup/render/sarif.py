"""`check -o sarif`: the report as SARIF 2.1.0, for code scanning (GitHub's upload, IDEs). Pure.

One run; the driver's rules are the whole catalogue (each with an absolute help URI into the
README's finding codes); one result per finding, at its level (error, warning, note), located
at the Gateway server or listener its connections are opened on: the file and line it was read
from with `-f`, and always the resource itself as a logical location. A suppressed finding
(`--suppress`, or the annotation) stays a result, with a SARIF suppression saying by what, as
code scanning expects. A partial fingerprint (code, resource, hosts) keeps a result the same
result across runs.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .. import catalogue
from ..model import Finding, Level, Report

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "note"}

# (kind, namespace, name, server index or None, listener name or None) -> (uri, line)
Position = Callable[[str, str, str, Optional[int], Optional[str]], Optional[Tuple[str, int]]]


def _server_of(f: Finding) -> Optional[Mapping[str, Any]]:
    d = f.detail
    if d.get("from"):
        return d["from"][0]
    server = d.get("server")
    return server if isinstance(server, Mapping) and server.get("gateway") else None


def _location(f: Finding, position: Position) -> Dict[str, Any]:
    ref = _server_of(f)
    kind, name = f.resource.kind.split(".", 1)[0], f.resource.key
    found = None
    if ref is not None:
        kind = str(ref.get("kind") or "Gateway").split(".", 1)[0]
        ns, _, gw = str(ref["gateway"]).partition("/")
        name = str(ref["gateway"])
        found = position(kind, ns, gw, ref.get("server"), ref.get("listener"))
        if "listener" in ref:
            name += f"/{ref['listener']}"
        elif ref.get("server") is not None:
            name += f"[{ref['server']}]"
    loc: Dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": f"{kind} {name}", "kind": "resource"}]}
    if found is not None:
        uri, line = found
        loc["physicalLocation"] = {"artifactLocation": {"uri": uri}, "region": {"startLine": line}}
    return loc


def _fingerprint(f: Finding) -> str:
    hosts = ",".join(sorted(str(h) for h in f.detail.get("hosts") or ()))
    return hashlib.sha256(f"{f.code}|{f.resource}|{hosts}".encode()).hexdigest()[:32]


def _result(f: Finding, index: Dict[str, int], position: Position, by: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "ruleId": f.code, "ruleIndex": index[f.code], "level": LEVELS[f.level],
        "message": {"text": f.message}, "locations": [_location(f, position)],
        "partialFingerprints": {"gwdupFinding/v1": _fingerprint(f)},
        "properties": {k: v for k, v in f.to_dict().items() if k not in ("code", "level", "message", "docs")},
    }
    if by:
        out["suppressions"] = [{"kind": "external" if by.startswith("--suppress") else "inSource",
                                "justification": by}]
    return out


def document(report: Report, position: Position, version: str, homepage: str) -> Dict[str, Any]:
    rules: List[Dict[str, Any]] = []
    index: Dict[str, int] = {}
    for i, t in enumerate(catalogue.ALL):
        index[t.code] = i
        rules.append({"id": t.code, "name": t.name, "shortDescription": {"text": t.summary},
                      "helpUri": f"{homepage}#{t.code.lower()}",
                      "defaultConfiguration": {"level": LEVELS[t.level]}})
    results = [_result(f, index, position) for f in report.findings]
    results += [_result(f, index, position, by) for f, by in report.suppressed]
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "kubectl-gwdup", "version": version, "informationUri": homepage,
                            "rules": rules}},
        "results": results,
        "invocations": [{"executionSuccessful": True,
                         "toolExecutionNotifications": [{"message": {"text": n}, "level": "note"}
                                                        for n in report.notes]}]}]}
