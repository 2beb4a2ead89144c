"""The finding catalogue: well-formed, unique, ordered codes, each used and documented."""
from __future__ import annotations

import os
import re

from conftest import ROOT
from kubectl_gwdup import catalogue
from kubectl_gwdup.analysis import registry

README = os.path.join(ROOT, "README.md")


def test_codes_are_well_formed_unique_and_ordered() -> None:
    codes = [t.code for t in catalogue.ALL]
    assert all(catalogue.CODE_FORMAT.match(c) for c in codes)
    assert len(set(codes)) == len(codes)
    assert codes == sorted(codes)
    assert len({t.name for t in catalogue.ALL}) == len(codes)


def test_every_code_is_used_by_a_rule() -> None:
    source = ""
    for root, _, files in os.walk(os.path.join(ROOT, "kubectl_gwdup", "analysis")):
        source += "".join(open(os.path.join(root, f)).read() for f in files if f.endswith(".py"))
    for t in catalogue.ALL:
        constant = next(k for k, v in vars(catalogue).items() if v is t)
        assert re.search(rf"\b{constant}\b", source), f"{t.code} is used by no rule"


def test_readme_table_is_current() -> None:
    text = open(README).read()
    assert catalogue.rewrite_readme(text) == text, "run: python -m kubectl_gwdup.catalogue --markdown"
    for t in catalogue.ALL:
        assert t.code in text


def test_rules_have_unique_names_and_descriptions() -> None:
    names = [r.meta.name for r in registry.ALL_RULES]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(r.meta.description for r in registry.ALL_RULES)
