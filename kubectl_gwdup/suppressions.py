"""Findings a team has accepted: `--suppress CODE=KIND/NS/NAME` and the annotation
`gwdup.kubectl.io/suppress`. Pure.

Modelled on istioctl analyze's `--suppress` and its `galley.istio.io/analyze-suppress`
annotation: a flag names a code and the resource a finding is reported on, each part with
shell wildcards (`GWD01*=Gateway/team-*/*`, KIND matched without case, with or without its API
group); the annotation, on a Gateway (Istio or Gateway API, a listener's Gateway) or a
VirtualService, lists codes (`GWD0101,GWD0102`, or `*`) and holds for every finding that
involves it: a Gateway the finding's connections are opened on or whose hosts arrive on them,
or a VirtualService bound to one of those Gateways that routes one of the finding's hosts.

A suppressed finding is never dropped silently: the report counts it and says by what, and a
flag that matches no finding is a warning (a typo must not pass for a quiet mesh).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .errors import UsageError
from .model import Finding

ANNOTATION = "gwdup.kubectl.io/suppress"


@dataclass(frozen=True)
class Rule:
    code: str
    kind: str
    namespace: str
    name: str
    text: str  # as given, for messages


def parse_rule(text: str) -> Rule:
    """`CODE=KIND/NS/NAME`; a cluster-scoped resource is `KIND/NAME`."""
    code, eq, target = text.partition("=")
    parts = target.split("/")
    if not eq or not code or len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f'invalid --suppress "{text}": use CODE=KIND/NAMESPACE/NAME (wildcards allowed), '
                         "e.g. GWD0101=Gateway/team-a/*")
    kind, ns, name = (parts[0], "", parts[1]) if len(parts) == 2 else parts
    return Rule(code.upper(), kind, ns, name, text)


def _kind_matches(pattern: str, kind: str) -> bool:
    """`Gateway` matches an Istio Gateway and `Gateway.gateway.networking.k8s.io`; a pattern
    with a group matches that group only."""
    pattern, kind = pattern.lower(), kind.lower()
    return fnmatch.fnmatchcase(kind, pattern) or fnmatch.fnmatchcase(kind.split(".", 1)[0], pattern)


def rule_matches(rule: Rule, f: Finding) -> bool:
    r = f.resource
    return (fnmatch.fnmatchcase(f.code, rule.code) and _kind_matches(rule.kind, r.kind)
            and fnmatch.fnmatchcase(r.namespace, rule.namespace or "") and fnmatch.fnmatchcase(r.name, rule.name))


@dataclass(frozen=True)
class Annotated:
    """The annotation's codes per object: Gateways by `ns/name` (both APIs), VirtualServices
    with the Gateways they bind and their hosts."""

    gateways: Mapping[str, Tuple[str, ...]]
    virtual_services: Tuple[Tuple[str, Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]], ...] = ()  # key, gws, hosts, codes


def codes_of(obj: Mapping[str, Any]) -> Tuple[str, ...]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    value = (meta.get("annotations") or {}).get(ANNOTATION) if isinstance(meta.get("annotations"), Mapping) else None
    if not isinstance(value, str):
        return ()
    return tuple(c.strip().upper() for c in value.split(",") if c.strip())


def annotated(gateways: Iterable[Mapping[str, Any]],
              virtual_services: Iterable[Tuple[str, Sequence[str], Sequence[str], Tuple[str, ...]]],
              default_namespace: str) -> Annotated:
    """`virtual_services`: the annotated ones, as (key, resolved gateways, hosts, codes)."""
    gws: Dict[str, Tuple[str, ...]] = {}
    for g in gateways:
        codes = codes_of(g)
        if codes:
            meta = g.get("metadata") or {}
            gws[f"{meta.get('namespace') or default_namespace}/{meta.get('name')}"] = codes
    vss = tuple((key, tuple(bound), tuple(h.lower() for h in hosts), tuple(codes))
                for key, bound, hosts, codes in virtual_services if codes)
    return Annotated(gws, vss)


def _holds(codes: Sequence[str], code: str) -> bool:
    return any(fnmatch.fnmatchcase(code, c) for c in codes)


def annotation_on(f: Finding, marks: Annotated) -> Optional[str]:
    """What annotation suppresses f (`Gateway ns/name`, `VirtualService ns/name`), or None."""
    d = f.detail
    involved = [f.resource.key] + [r["gateway"] for r in list(d.get("from") or []) + list(d.get("to") or [])]
    for key in (d.get("server"), d.get("keptServer"), d.get("conflictsWith")):
        if isinstance(key, Mapping) and key.get("gateway"):
            involved.append(key["gateway"])
    for g in dict.fromkeys(involved):
        if _holds(marks.gateways.get(g, ()), f.code):
            return f"annotation on Gateway {g}"
    hosts = {str(h).lower() for h in d.get("hosts") or ()}
    for key, bound, vs_hosts, codes in marks.virtual_services:
        if _holds(codes, f.code) and set(bound) & set(involved) and \
                any(fnmatch.fnmatchcase(h, v) or fnmatch.fnmatchcase(v, h) for h in hosts for v in vs_hosts):
            return f"annotation on VirtualService {key}"
    return None


def apply(findings: Sequence[Finding], rules: Sequence[Rule], marks: Annotated
          ) -> Tuple[List[Finding], List[Tuple[Finding, str]], List[Rule]]:
    """(kept, suppressed with what suppressed each, flags that matched nothing)."""
    kept: List[Finding] = []
    suppressed: List[Tuple[Finding, str]] = []
    used: Set[Rule] = set()
    for f in findings:
        matching = [r for r in rules if rule_matches(r, f)]
        used.update(matching)
        if matching:
            suppressed.append((f, f"--suppress {matching[0].text}"))
            continue
        mark = annotation_on(f, marks)
        if mark is not None:
            suppressed.append((f, mark))
            continue
        kept.append(f)
    return kept, suppressed, [r for r in rules if r not in used]
