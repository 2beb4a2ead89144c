"""Kubernetes label selectors (`-l`): parse once, match many. Pure."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Mapping, Tuple

from .errors import UsageError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TERM = re.compile(
    rf"^\s*(?:(?P<not>!)\s*(?P<nk>{_KEY})"
    rf"|(?P<k>{_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<v>{_VALUE})"
    rf"|\s+(?P<set>in|notin)\s*\((?P<vals>[^)]*)\))?)\s*$")


@dataclass(frozen=True)
class Selector:
    terms: Tuple[Tuple[str, str, Tuple[str, ...]], ...]  # (op, key, values)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for op, key, values in self.terms:
            have = key in labels
            if op == "exists" and not have:
                return False
            if op == "!exists" and have:
                return False
            if op == "in" and labels.get(key) not in values:
                return False
            if op == "notin" and have and labels[key] in values:
                return False
        return True


def _split(text: str) -> List[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_selector(text: str) -> Selector:
    terms = []
    if not text.strip():
        return Selector(())
    for part in _split(text):
        m = _TERM.match(part)
        if not m:
            raise UsageError(f'unable to parse requirement: "{part.strip()}" in selector "{text}"')
        if m.group("nk"):
            terms.append(("!exists", m.group("nk"), ()))
        elif m.group("op"):
            op = "notin" if m.group("op") == "!=" else "in"
            terms.append((op, m.group("k"), (m.group("v") or "",)))
        elif m.group("set"):
            vals = tuple(v.strip() for v in m.group("vals").split(",") if v.strip())
            terms.append((m.group("set"), m.group("k"), vals))
        else:
            terms.append(("exists", m.group("k"), ()))
    return Selector(tuple(terms))
