"""Accepted findings: `--suppress CODE=KIND/NS/NAME` and the `gwdup.kubectl.io/suppress`
annotation (kubectl_gwdup/suppressions.py). Counted, listed, never silently dropped."""
from __future__ import annotations

import json
import os
import shutil
from typing import List

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, run_cli
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.sources.files import load_files
from kubectl_gwdup.suppressions import Annotated, apply, parse_rule, rule_matches

EXAMPLES = os.path.join(ROOT, "examples")


def _json(args: List[str]):
    r = run_cli(["check", "-o", "json", *args])
    return r, json.loads(r.stdout)


def test_a_flag_accepts_exactly_what_it_names() -> None:
    before = _json(["-f", EXAMPLES])[1]
    r, doc = _json(["-f", EXAMPLES, "--suppress", "GWD0101=Gateway/drawdb/*", "--suppress", "GWD0102=gateway/x/y"])
    gone = [f for f in before["findings"] if f["resource"] == "Gateway drawdb/drawdb-gateway"]
    assert len(gone) == 1 and gone[0]["code"] == "GWD0101"
    assert [f["message"] for f in doc["findings"]] == [f["message"] for f in before["findings"] if f not in gone]
    assert doc["suppressed"] == [{"code": "GWD0101", "resource": "Gateway drawdb/drawdb-gateway",
                                  "message": gone[0]["message"], "by": "--suppress GWD0101=Gateway/drawdb/*"}]
    assert "warning: --suppress GWD0102=gateway/x/y matches no finding" in r.stderr
    assert r.stderr.strip().endswith("; 1 suppressed (1 by --suppress)")
    assert r.status == 3  # the others remain


def test_everything_accepted_exits_zero_and_says_so() -> None:
    r = run_cli(["check", "-f", EXAMPLES, "--suppress", "GWD01*=*/*/*"])
    assert r.status == 0 and r.stdout == ""
    assert r.stderr.strip().endswith("no hazards found in 6 Gateway(s), 8 server(s); 3 suppressed (3 by --suppress)")


def test_a_malformed_flag_is_one_error_line() -> None:
    for bad in ["GWD0101", "GWD0101=Gateway", "=Gateway/a/b", "GWD0101=Gateway//b"]:
        r = run_cli(["check", "-f", EXAMPLES, "--suppress", bad])
        assert r.status == 2 and r.stdout == ""
        assert r.stderr.startswith(f'error: invalid --suppress "{bad}"') and r.stderr.count("\n") == 1


def _annotated_copy(tmp_path, kind: str, name: str, codes: str) -> str:
    """examples/ with the annotation on one object; returns the directory."""
    out = tmp_path / "examples"
    shutil.copytree(EXAMPLES, out)
    for path in sorted(out.iterdir()):
        docs = list(yaml.safe_load_all(path.read_text()))
        for d in docs:
            if d and d.get("kind") == kind and d["metadata"]["name"] == name:
                d["metadata"].setdefault("annotations", {})["gwdup.kubectl.io/suppress"] = codes
        path.write_text(yaml.safe_dump_all(docs))
    return str(out)


def test_the_annotation_on_any_gateway_involved_or_a_routing_virtual_service(tmp_path) -> None:
    cases = [("Gateway", "authory-gateway", "GWD0101", "Gateway nm-edu-authory/authory-gateway"),  # a target
             ("Gateway", "portal", "GWD0101", "Gateway portal/portal"),  # a Gateway API Gateway
             ("VirtualService", "checkout", "gwd0102", "VirtualService payments/checkout"),
             ("Gateway", "storefront", "*", "Gateway shop/storefront")]
    for i, (kind, name, codes, by) in enumerate(cases):
        r, doc = _json(["-f", _annotated_copy(tmp_path / str(i), kind, name, codes)])
        assert [s["by"] for s in doc["suppressed"]] == [f"annotation on {by}"], (name, doc["suppressed"])
        assert len(doc["findings"]) == 2 and r.stderr.strip().endswith("; 1 suppressed (1 by annotation)")
    # another code suppresses nothing
    r, doc = _json(["-f", _annotated_copy(tmp_path / "other", "Gateway", "storefront", "GWD0101")])
    assert doc["suppressed"] == [] and len(doc["findings"]) == 3


def _findings():
    return registry.run(build_inventory(load_files([EXAMPLES]))).findings


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["GWD0101", "GWD0102", "GWD01*", "*", "GWD0999"]),
                          st.sampled_from(["Gateway", "gateway", "Gateway.gateway.networking.k8s.io", "*",
                                           "VirtualService"]),
                          st.sampled_from(["drawdb", "portal", "shop", "*", "p*"]),
                          st.sampled_from(["*", "portal", "storefront", "drawdb-gateway"])), max_size=4))
def test_suppression_partitions_the_findings(rules) -> None:
    """Every finding is kept or suppressed, once, in order; a flag is unused exactly when it
    matches no finding, and a finding is suppressed exactly when some flag names its code,
    kind, namespace and name."""
    findings = _findings()
    parsed = [parse_rule(f"{c}={k}/{ns}/{n}") for c, k, ns, n in rules]
    kept, suppressed, unused = apply(findings, parsed, Annotated({}))
    assert len(kept) + len(suppressed) == len(findings)
    assert [f for f in findings if f in kept] == kept
    for f in findings:
        named = any(c in ("*", f.code, "GWD01*" if f.code.startswith("GWD01") else "") and
                    (k == "*" or k.lower() in (f.resource.kind.lower(), f.resource.kind.split(".")[0].lower())) and
                    (ns == "*" or ns == f.resource.namespace or (ns == "p*" and f.resource.namespace.startswith("p")))
                    and (n == "*" or n == f.resource.name) for c, k, ns, n in rules)
        assert (f not in kept) == named, (f.resource, rules)
    assert unused == [r for r in parsed if not any(rule_matches(r, f) for f in findings)]
