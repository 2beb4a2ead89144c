"""One grid: scenario files -> expected (code, resource) per rule; every file has a near miss."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import pytest

from kubectl_gwdup.analysis import registry
from kubectl_gwdup.analysis.rule import InventoryView, Settings
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.model import Level
from kubectl_gwdup.sources.files import load_files

RULES = {r.meta.name: r for r in registry.ALL_RULES}


@dataclass
class Case:
    name: str
    rule: str
    expected: List[Tuple[str, str]]
    hosts: Dict[str, List[str]] = field(default_factory=dict)  # resource -> hosts at risk


CASES = [
    Case("seed", "tls.Coalescing", [("GWD0101", "Gateway team-a/gw-a")],
         {"Gateway team-a/gw-a": ["a.example.com", "b.example.com"]}),
    Case("two_secrets_one_cert", "tls.Coalescing", [("GWD0101", "Gateway team-a/gw-a")]),
    Case("one_gateway_two_servers", "tls.Coalescing", [("GWD0101", "Gateway web/gw")]),
    Case("wildcard_cert_direction", "tls.Coalescing", [("GWD0101", "Gateway web/gw-w")],
         {"Gateway web/gw-w": ["b.example.com"]}),
    Case("wildcard_host_misrouted", "tls.Coalescing", [("GWD0102", "Gateway web/gw-w")],
         {"Gateway web/gw-w": ["b.example.com"]}),
    Case("merged", "tls.Coalescing", []),
    Case("same_name_two_namespaces", "tls.Coalescing", []),
    Case("other_workload_or_port", "tls.Coalescing", []),
    Case("named_target_port", "tls.Coalescing", [("GWD0101", "Gateway edge/g-a")],
         {"Gateway edge/g-a": ["a.example.com", "b.example.com"]}),
    Case("tls_only_virtual_service", "tls.Coalescing", [("GWD0102", "Gateway web/gw-w")],
         {"Gateway web/gw-w": ["b.example.com"]}),
    Case("tls_route_repeats_sni", "tls.Coalescing", [("GWD0102", "Gateway web/g-w")],
         {"Gateway web/g-w": ["db.example.com"]}),
    Case("tls_route_repeats_sni", "gateway.ListenerConflict", []),
    Case("gwapi_strict_merging", "tls.Coalescing", []),  # Istio 1.31 on: see tests/test_cli.py for 1.30
    Case("gwapi_namespace_selector", "tls.Coalescing",
         [("GWD0101", "Gateway.gateway.networking.k8s.io infra/edge")]),
    Case("catch_all_host", "tls.Coalescing", [("GWD0102", "Gateway web/gw-any")],
         {"Gateway web/gw-any": ["b.example.com"]}),
    Case("dropped_server", "gateway.DroppedServer", [("GWD0103", "Gateway web/gw-new")]),
    Case("dropped_server", "tls.Coalescing", []),
    Case("multi_label_wildcard", "tls.Coalescing", [("GWD0102", "Gateway web/gw-w")],
         {"Gateway web/gw-w": ["*.v2.example.com"]}),
    Case("case_insensitive_sni", "tls.Coalescing", [("GWD0101", "Gateway shop/gw-shop")],
         {"Gateway shop/gw-shop": ["b.example.com"]}),
    Case("passthrough_swallowed", "tls.Coalescing", [("GWD0101", "Gateway web/gw-www")],
         {"Gateway web/gw-www": ["db.example.com"]}),
    Case("mutual", "tls.Coalescing", [("GWD0101", "Gateway ops/gw-admin"),
                                      ("GWD0101", "Gateway web/gw-www")]),
    Case("no_secrets", "tls.Coalescing", [("GWD0101", "Gateway team-a/gw-a")]),
    Case("same_vs_both_gateways", "tls.Coalescing", []),
    Case("selector_variants", "tls.Coalescing", [("GWD0101", "Gateway team-a/gw-a")],
         {"Gateway team-a/gw-a": ["b.example.com"]}),
    Case("listener_conflict", "gateway.ListenerConflict", [("GWD0105", "Gateway web/gw-lower")]),
    Case("cert_misses_own_host", "tls.CertificateMismatch", [("GWD0106", "Gateway team-x/gw-x")]),
    Case("cert_misses_own_host", "tls.Coalescing", []),
    Case("seed", "tls.CertificateMismatch", []),
    Case("star_chain_never_selected", "tls.Coalescing", []),
    Case("own_route_404", "tls.Coalescing", [("GWD0101", "Gateway shop/gw-b")],
         {"Gateway shop/gw-b": ["*.example.com"]}),
    Case("broken_target_chain", "tls.Coalescing", []),
    Case("redirect_twice", "gateway.DroppedServer", [("GWD0103", "Gateway team-c/gw-ac")]),
    Case("deployment_without_pods", "tls.Coalescing", [("GWD0101", "Gateway team-p/gw-p")],
         {"Gateway team-p/gw-p": ["p.internal.example", "q.internal.example"]}),
    Case("seed", "gateway.ListenerConflict", []),
    Case("seed", "gateway.DroppedServer", []),
    Case("seed", "tls.MissingSecret", []),
    Case("route_match_per_path", "tls.Coalescing", [("GWD0102", "Gateway web/gw-w")],
         {"Gateway web/gw-w": ["b.example.com"]}),
    Case("port_translation_opt_out", "tls.Coalescing", [("GWD0101", "Gateway web/ingress-a")]),
    Case("tls_terminated_tcp", "tls.Coalescing", [("GWD0101", "Gateway web/edge"), ("GWD0102", "Gateway web/edge")]),
    Case("gwapi_route_precedence", "tls.Coalescing",
         [("GWD0101", "Gateway.gateway.networking.k8s.io apps/web")] * 2
         + [("GWD0102", "Gateway.gateway.networking.k8s.io apps/web")]),
    Case("gwapi_path_prefix_segments", "tls.Coalescing",
         [("GWD0101", "Gateway.gateway.networking.k8s.io apps/web")] * 3
         + [("GWD0102", "Gateway.gateway.networking.k8s.io apps/web")]),
]


def inventory_for(scenario_files, name: str):
    return build_inventory(load_files(scenario_files(name)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.name}-{c.rule}")
def test_rule_grid(case: Case, scenario_files) -> None:
    inv = inventory_for(scenario_files, case.name)
    rule = RULES[case.rule]
    view = InventoryView(inv)
    findings = list(rule.analyze(view, Settings()))
    got = sorted((f.code, str(f.resource)) for f in findings)
    assert got == sorted(case.expected)
    for f in findings:
        if str(f.resource) in case.hosts:
            assert f.detail["hosts"] == case.hosts[str(f.resource)]
    declared = rule.meta.inputs | rule.meta.optional
    assert view.touched <= declared, f"{case.rule} read undeclared inputs {view.touched - declared}"


def test_every_rule_reads_its_required_inputs(scenario_files) -> None:
    touched = {name: set() for name in RULES}
    for name in {c.name for c in CASES}:
        inv = inventory_for(scenario_files, name)
        for rule in registry.ALL_RULES:
            view = InventoryView(inv)
            list(rule.analyze(view, Settings()))
            touched[rule.meta.name] |= view.touched
    for name, rule in RULES.items():
        assert rule.meta.inputs <= touched[name], f"{name} declares inputs it never reads"


def expanded_pairs(findings) -> Dict[Tuple[str, str], str]:
    """(from gateway, concrete host) -> outcome, for findings whose hosts are concrete."""
    out = {}
    for f in findings:
        for src in f.detail["from"]:
            for h in f.detail["hosts"]:
                out[(src["gateway"], h)] = f.detail["outcome"]
    return out


def test_seed_is_found_in_both_directions(scenario_files) -> None:
    report = registry.run(inventory_for(scenario_files, "seed"))
    pairs = expanded_pairs([f for f in report.findings if f.code == "GWD0101"])
    assert pairs[("team-a/gw-a", "b.example.com")] == "NotFound"
    assert pairs[("team-b/gw-b", "a.example.com")] == "NotFound"
    assert not any(g == "team-c/gw-c" or h == "c.example.com" for g, h in pairs)


def test_mutual_from_is_lower_and_flagged(scenario_files) -> None:
    report = registry.run(inventory_for(scenario_files, "mutual"))
    by_res = {str(f.resource): f for f in report.findings}
    admin, www = by_res["Gateway ops/gw-admin"], by_res["Gateway web/gw-www"]
    assert admin.detail["mtls"] is True and admin.level is Level.INFO
    assert www.detail["mtls"] is False and www.level is Level.WARNING
    assert www.detail["hosts"] == ["admin.example.com"]


def test_certificate_identity_and_inspection(scenario_files) -> None:
    report = registry.run(inventory_for(scenario_files, "two_secrets_one_cert"))
    cert = report.findings[0].detail["certificate"]
    assert cert["credentials"] == ["secret istio-system/a-tls", "secret istio-system/b-tls"]
    assert len(cert["sha256"]) == 1 and cert["inspected"] is True
    report = registry.run(inventory_for(scenario_files, "no_secrets"))
    assert report.findings[0].detail["certificate"]["inspected"] is False
    assert any("not inspected" in n for n in report.notes)


def test_dropped_server_names_the_kept_one(scenario_files) -> None:
    report = registry.run(inventory_for(scenario_files, "dropped_server"))
    (f,) = [f for f in report.findings if f.code == "GWD0103"]
    assert f.detail["keptServer"]["gateway"] == "web/gw-old"
    assert f.detail["duplicateHost"] == "a.example.com"
    assert f.detail["listenerPort"] == 8443


def test_passthrough_target_is_named(scenario_files) -> None:
    report = registry.run(inventory_for(scenario_files, "passthrough_swallowed"))
    assert report.findings[0].detail["passthroughTargets"] == ["data/gw-db[0]"]


def test_listener_port_is_the_service_target_port(scenario_files) -> None:
    inv = inventory_for(scenario_files, "seed")
    assert {p.listener.port for p in inv.placements} == {8443}
    assert all(p.server.route_name.startswith("https.443.https.") for p in inv.placements)


def test_unplaced_gateways_are_noted(scenario_files) -> None:
    inv = inventory_for(scenario_files, "selector_variants")
    assert any("select no gateway pods" in n and "team-c/gw-nowhere" in n for n in inv.notes)


def test_server_certificate_files_are_opaque_identities(tmp_path) -> None:
    path = tmp_path / "files.yaml"
    gw = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [{host}]
    tls: {{mode: SIMPLE, serverCertificate: {cert}, privateKey: /etc/certs/key.pem}}
"""
    path.write_text("---\n".join([gw.format(name="a", host="a.example.com", cert="/etc/certs/shared.pem"),
                                   gw.format(name="b", host="b.example.com", cert="/etc/certs/shared.pem"),
                                   gw.format(name="c", host="c.example.com", cert="/etc/certs/c.pem")]))
    report = registry.run(build_inventory(load_files([str(path)])))
    (f,) = report.findings
    assert [s["gateway"] for s in f.detail["from"]] == ["web/a", "web/b"]
    assert f.detail["certificate"]["credentials"] == ["file:/etc/certs/shared.pem"]
    assert f.detail["certificate"]["inspected"] is False


def test_list_objects_are_flattened(tmp_path, scenario_files) -> None:
    import yaml as _yaml
    docs = [d for p in scenario_files("seed") for d in _yaml.safe_load_all(open(p)) if d]
    path = tmp_path / "list.yaml"
    path.write_text(_yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}))
    report = registry.run(build_inventory(load_files([str(path)])))
    assert [(f.code, str(f.resource)) for f in report.findings] == [("GWD0101", "Gateway team-a/gw-a")]


def test_a_mutual_server_without_its_client_ca_fails_its_handshakes(scenario_files) -> None:
    """Read as from a cluster (every Secret read): admin's Secret has no ca.crt and there is no
    admin-cacert, so istiod's chain never gets its CA and every handshake on it fails: GWD0104,
    and admin is no coalescing target. With the CA Secret beside it, the hazard is back."""
    raw = load_files(scenario_files("mutual"))
    raw.secrets_complete = True
    raw.secret_cas.discard(("istio-system", "admin"))  # the scenario's Secret without its ca.crt
    report = registry.run(build_inventory(raw))
    codes = [(f.code, str(f.resource)) for f in report.findings]
    assert ("GWD0104", "Gateway ops/gw-admin") in codes
    assert not any(f.code in ("GWD0101", "GWD0102") and "admin.example.com" in f.detail["hosts"]
                   for f in report.findings)
    raw.secret_cas.add(("istio-system", "admin-cacert"))
    report = registry.run(build_inventory(raw))
    assert all(f.code != "GWD0104" for f in report.findings)
    assert any(f.code == "GWD0101" and "admin.example.com" in f.detail["hosts"] for f in report.findings)
