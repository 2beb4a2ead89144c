"""The sorted rule registry and the one entry point that runs it."""
from __future__ import annotations

from typing import List, Tuple

from ..model import Finding, Inventory, Report, SkippedRule
from . import cert_mismatch, coalescing, dropped_server, listener_conflict, missing_secret
from .rule import InventoryView, Rule, Settings

ALL_RULES: Tuple[Rule, ...] = tuple(sorted(
    (Rule(m.META, m.analyze) for m in (cert_mismatch, coalescing, dropped_server, listener_conflict,
                                          missing_secret)),
    key=lambda r: r.meta.name))


def run(inventory: Inventory, settings: Settings = Settings(),
        rules: Tuple[Rule, ...] = ALL_RULES) -> Report:
    """Findings sorted by (code, resource, message); rules lacking inputs are listed as skipped."""
    findings: List[Finding] = []
    skipped: List[SkippedRule] = []
    for rule in rules:
        missing = sorted(i.value for i in rule.meta.inputs if i not in inventory.available)
        if missing:
            skipped.append(SkippedRule(rule.meta.name, tuple(missing)))
            continue
        findings.extend(rule.analyze(InventoryView(inventory), settings))
    findings.sort(key=Finding.sort_key)
    return Report(tuple(findings), tuple(skipped), inventory.notes)
