"""What changed between two reports, for `check --watch` and `serve`'s Events. Pure.

A hazard is the same hazard while its kind, outcome, workload, listener port, the servers it
goes from and to, and its hosts stay the same; its message may change (a count, a sample). So:

- APPEARED: a hazard (or any other finding) the last report did not have;
- DISAPPEARED: one the new report has no longer (merged, a Gateway deleted, DNS names changed);
- MITIGATED: the same hazard, now answered by an installed filter (421, HTTP/1.1);
- UNMITIGATED: the same hazard, its filter gone.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from ..model import Finding


class Change(enum.Enum):
    APPEARED = "APPEARED"
    DISAPPEARED = "DISAPPEARED"
    MITIGATED = "MITIGATED"
    UNMITIGATED = "UNMITIGATED"


@dataclass(frozen=True)
class FindingChange:
    change: Change
    finding: Finding


def _refs(refs: Any) -> Tuple[Tuple[str, Any, Any], ...]:
    out = set()
    for r in refs or ():
        if isinstance(r, dict):
            out.add((str(r.get("gateway")), r.get("server"), r.get("listener")))
    return tuple(sorted(out, key=repr))


def identity(f: Finding) -> Tuple[Any, ...]:
    d = f.detail
    if "outcome" in d:
        return (f.code, d.get("outcome"), d.get("workload"), d.get("listenerPort"), _refs(d.get("from")),
                _refs(d.get("to")), tuple(sorted(str(h) for h in d.get("hosts") or ())))
    return (f.code, str(f.resource), f.message)


def mitigated(f: Finding) -> bool:
    return bool(f.detail.get("mitigation"))


def diff(before: Sequence[Finding], after: Sequence[Finding]) -> List[FindingChange]:
    """Changes from `before` to `after`, in the order of `after` then what left."""
    old: Dict[Tuple[Any, ...], Finding] = {identity(f): f for f in before}
    new: Dict[Tuple[Any, ...], Finding] = {identity(f): f for f in after}
    out: List[FindingChange] = []
    for key, f in new.items():
        was = old.get(key)
        if was is None:
            out.append(FindingChange(Change.APPEARED, f))
        elif mitigated(f) and not mitigated(was):
            out.append(FindingChange(Change.MITIGATED, f))
        elif mitigated(was) and not mitigated(f):
            out.append(FindingChange(Change.UNMITIGATED, f))
    out += [FindingChange(Change.DISAPPEARED, f) for key, f in old.items() if key not in new]
    return out
