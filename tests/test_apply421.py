"""apply-421 on the real Envoy (patches applied as istiod applies them) and against the emulator."""
from __future__ import annotations

import json
from typing import List, Tuple

import pytest
import yaml

from conftest import run_cli
from envoy_harness import apply_envoyfilters, serve
from kubectl_gwdup import netprobe
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.analysis.chains import ChainIndex, live_chains
from kubectl_gwdup.hosts import cert_covers
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.plans.misdirect421 import Method421, lua_code, plan_421, safe_host
from kubectl_gwdup.sources.files import load_files
from test_envoy import names_on, predicted

HAZARDS = ("NotFound", "Misrouted")
SCENARIOS = ["seed", "wildcard_host_misrouted", "catch_all_host", "multi_label_wildcard", "one_gateway_two_servers",
             "passthrough_swallowed", "mutual", "same_vs_both_gateways", "case_insensitive_sni"]


def mitigated(name, method, scenario_files, certs):
    inv = build_inventory(load_files(scenario_files(name)))
    report = registry.run(inv)
    plan = plan_421(inv, report.findings, method)
    gw = serve(inv, certs, lambda config, ports: apply_envoyfilters(config, inv, plan.objects))
    return inv, report, plan, gw


@pytest.mark.parametrize("method", list(Method421), ids=lambda m: m.value)
@pytest.mark.parametrize("name", SCENARIOS)
def test_coalesced_requests_get_421_and_nothing_else_changes(name, method, scenario_files, certs) -> None:
    inv, report, plan, gw = mitigated(name, method, scenario_files, certs)
    ctx = netprobe.client_context(certs.ca_cert)
    wrong: List[Tuple] = []
    try:
        for listener, port in gw.ports.items():
            chains = ChainIndex(live_chains([p for p in inv.placements if p.listener == listener]))
            names = names_on([p for p in inv.placements if p.listener == listener])
            for c in names:
                f = chains.lookup(c)
                if f is None or not f.server.http_routed or not any(cert_covers(s, c) for s in f.coverage):
                    continue
                own = netprobe.Connection("127.0.0.1", port, c, ctx, 5).open()
                try:
                    assert own.request(c).status != 421, f"{c} on its own connection got 421"
                finally:
                    own.close()
                for r in names:
                    t = chains.lookup(r)
                    if r == c or t is None:
                        continue
                    before = predicted(report, listener, chains, f, r)
                    filtered = any((w, port_) == (listener.workload.key, listener.port) for w, port_, _, _ in plan.covered)
                    if method is Method421.LUA and filtered:  # the filter guards the whole listener
                        want = "Misdirected" if before != "NoCoalesce" and t is not f else before
                    elif method is Method421.LUA:
                        want = before
                    else:
                        want = "Misdirected" if before in HAZARDS else before
                    got = netprobe.probe_pair("127.0.0.1", port, c, r, ctx, timeout=5)
                    seen = {"Mitigated-421": "Misdirected", "NotCoalesced": "NoCoalesce", "Ok": "Ok",
                            "Confirmed-404": "NotFound", "Confirmed-misroute": "Misrouted"}.get(got.result.value)
                    if seen != want:
                        wrong.append((c, r, want, seen, got.detail))
                    if seen == "Misdirected":  # the browser's retry, on a connection of its own
                        retry = netprobe.Connection("127.0.0.1", port, r, ctx, 5).open()
                        try:
                            assert retry.request(r).status != 421
                        finally:
                            retry.close()
    finally:
        gw.stop()
    assert wrong == []


@pytest.mark.parametrize("method", list(Method421), ids=lambda m: m.value)
def test_unknown_hosts_keep_their_404_and_wildcard_reuse_stays(method, scenario_files, certs) -> None:
    inv, report, plan, gw = mitigated("wildcard_host_misrouted", method, scenario_files, certs)
    ctx = netprobe.client_context(certs.ca_cert)
    port = next(iter(gw.ports.values()))
    try:
        conn = netprobe.Connection("127.0.0.1", port, "x.example.com", ctx, 5).open()
        assert conn.request("y.example.com").status == 200  # one wildcard chain: legitimate reuse
        assert conn.request("b.example.com").status == 421  # another chain's host
        conn.close()
        conn = netprobe.Connection("127.0.0.1", port, "b.example.com", ctx, 5).open()
        assert conn.request("b.example.com").status == 200
        assert conn.request("nobody.example.net").status == 404  # no server serves it: its 404 stays
        conn.close()
    finally:
        gw.stop()


def test_hostile_hosts_are_data_never_code(tmp_path, certs, scenario_files) -> None:
    evil = 'x"] = 1 } os.exit(1) --.example.com'
    text = open(scenario_files("seed")[1]).read().replace("[b.example.com]", f"[b.example.com, '{evil}']")
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    inv = build_inventory(load_files([scenario_files("seed")[0], str(path)]))
    code, dropped = lua_code(live_chains(inv.placements))
    assert dropped == [evil] and "os.exit" not in code and safe_host(evil) is None
    for method in Method421:
        plan = plan_421(inv, registry.run(inv).findings, method)
        assert "os.exit" not in json.dumps(plan.objects)
    gw = serve(inv, certs, lambda config, ports: apply_envoyfilters(
        config, inv, plan_421(inv, registry.run(inv).findings, Method421.LUA).objects))
    try:
        port = next(iter(gw.ports.values()))
        ctx = netprobe.client_context(certs.ca_cert)
        conn = netprobe.Connection("127.0.0.1", port, "a.example.com", ctx, 5).open()
        assert conn.request("a.example.com").status == 200
        try:  # Envoy itself refuses such an :authority; either way nothing runs it
            assert conn.request(evil.replace(" ", "")).status in (400, 404, 421)
        except netprobe.ProbeError:
            pass
        conn.close()
        again = netprobe.Connection("127.0.0.1", port, "b.example.com", ctx, 5).open()
        assert again.request("b.example.com").status == 200 and gw.process.poll() is None
        again.close()
    finally:
        gw.stop()


SEED_LUA = """
function envoy_on_request(request_handle)
  local authority = request_handle:headers():get(":authority")
  local sni = request_handle:streamInfo().requestedServerName
  if sni ~= "" and sni ~= authority:match("([^:]+)") then
    request_handle:respond({[":status"] = "421"}, "Misdirected Request")
  end
end
"""


def test_the_widely_copied_dot_form_answers_421_to_every_request(scenario_files, certs) -> None:
    """Regression we fix: `streamInfo().requestedServerName` is the method, never a host."""
    inv = build_inventory(load_files(scenario_files("merged")))
    port_of = {p.listener: p.listener.port for p in inv.placements}
    seed_filter = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
                   "metadata": {"name": "misdirected-request", "namespace": "istio-system"},
                   "spec": {"configPatches": [{"applyTo": "HTTP_FILTER", "match": {"context": "GATEWAY", "listener": {
                       "portNumber": next(iter(port_of.values())), "filterChain": {"filter": {
                           "name": "envoy.filters.network.http_connection_manager"}}}},
                       "patch": {"operation": "INSERT_BEFORE", "value": {"name": "envoy.lua", "typed_config": {
                           "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                           "inlineCode": SEED_LUA}}}}]}}
    gw = serve(inv, certs, lambda config, ports: apply_envoyfilters(config, inv, [seed_filter]))
    try:
        port = next(iter(gw.ports.values()))
        conn = netprobe.Connection("127.0.0.1", port, "a.example.com", netprobe.client_context(certs.ca_cert), 5).open()
        assert conn.request("a.example.com").status == 421  # even the host the connection was opened for
        conn.close()
    finally:
        gw.stop()


# --- against the API server --------------------------------------------------------------------

def test_apply_reapply_delete(cluster, certs) -> None:
    from test_live import scenario_docs

    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    args = ["apply-421", "-n", cluster.ns("team-a"), "--istio-version", "1.24"]
    r = run_cli(args, cluster.env)
    assert r.status == 0, r.stderr
    (line,) = r.stdout.splitlines()
    assert line.startswith("envoyfilter.networking.istio.io/gwdup-421-") and line.endswith(" serverside-applied")
    name = line.split("/")[1].split()[0]
    path = f"/apis/networking.istio.io/v1alpha3/namespaces/{cluster.ns('istio-system')}/envoyfilters/{name}"
    code, first = cluster.call("GET", path)
    assert code == 200 and first["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubectl-gwdup"
    assert first["spec"]["workloadSelector"]["labels"]["istio"] == f"ingressgateway-{cluster.prefix}"
    assert "warning: clients that do not retry on 421" in r.stderr
    r = run_cli(args, cluster.env)
    code, second = cluster.call("GET", path)
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # no change
    r = run_cli(["apply-421", "--delete", "-n", cluster.ns("istio-system")], cluster.env)
    assert r.stdout == f"envoyfilter.networking.istio.io/{name} deleted\n", r.stderr
    assert cluster.call("GET", path)[0] == 404


def test_server_dry_run_sends_dry_run_all(cluster, certs, emulator_only) -> None:
    from test_live import scenario_docs

    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    emulator_only.log.clear()
    r = run_cli(["apply-421", "--dry-run=server", "-n", cluster.ns("team-a"), "--istio-version", "1.24"], cluster.env)
    assert r.status == 0 and r.stdout.endswith("serverside-applied (server dry run)\n")
    (patch,) = emulator_only.requests("PATCH", "envoyfilters")
    assert patch[2]["dryRun"] == ["All"] and patch[2]["fieldManager"] == ["kubectl-gwdup"]
    assert not list(emulator_only.store[("networking.istio.io", "envoyfilters")])


def test_forbidden_and_missing_crd(cluster, certs, emulator_only) -> None:
    from test_live import scenario_docs

    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    emulator_only.deny.append(("*", "patch", "networking.istio.io", "envoyfilters"))
    r = run_cli(["apply-421", "-n", cluster.ns("team-a"), "--istio-version", "1.24"], cluster.env)
    assert r.status == 1 and r.stderr.splitlines()[-1].startswith(
        'Error from server (Forbidden): envoyfilters.networking.istio.io "gwdup-421-')
    emulator_only.deny.clear()
    kind = emulator_only.kinds.pop(("networking.istio.io", "envoyfilters"))
    try:
        r = run_cli(["apply-421", "-n", cluster.ns("team-a"), "--istio-version", "1.24"], cluster.env)
    finally:
        emulator_only.kinds[("networking.istio.io", "envoyfilters")] = kind
    assert r.status == 1 and 'doesn\'t have a resource type "envoyfilters"' in r.stderr


@pytest.mark.parametrize("image,ok", [("docker.io/istio/pilot:1.11.8", False), ("docker.io/istio/pilot:1.22.3", True)])
def test_istio_version_gate(cluster, certs, image, ok, emulator_only) -> None:  # a real cluster has its own istiod
    from test_live import scenario_docs

    docs = scenario_docs(certs, "seed") + [{
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod", "namespace": "istio-system",
                                                                    "labels": {"app": "istiod"}},
        "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                 "template": {"metadata": {"labels": {"app": "istiod"}}, "spec": {"containers": [
                     {"name": "discovery", "image": image}]}}}}]
    cluster.apply(cluster.isolate(docs))
    r = run_cli(["apply-421", "--dry-run=server", "-n", cluster.ns("team-a")], cluster.env)
    if ok:
        assert r.status == 0 and "control plane: Istio 1.22 (image tag of Deployment" in r.stderr
    else:
        assert r.status == 1 and "Istio 1.11 (from the image tag of Deployment" in r.stderr and "older than 1.12" in r.stderr


def test_offline_gitops_yaml(scenario_files) -> None:
    r = run_cli(["apply-421", *sum((["-f", f] for f in scenario_files("seed")), []), "--dry-run=client", "-o", "yaml",
                 "--istio-version", "1.15", "--method", "lua"])
    doc = yaml.safe_load(r.stdout)
    (ef,) = doc["items"]
    cfg = ef["spec"]["configPatches"][0]["patch"]["value"]["typedConfig"]
    assert "inlineCode" in cfg  # Istio 1.15 predates Lua's default_source_code
    assert ef["spec"]["configPatches"][0]["match"]["listener"]["portNumber"] == 8443
    r = run_cli(["apply-421", *sum((["-f", f] for f in scenario_files("seed")), [])])
    assert r.status == 2 and "-f works offline: add --dry-run=client" in r.stderr


@pytest.mark.parametrize("name", ["seed", "wildcard_host_misrouted", "catch_all_host"])
@pytest.mark.parametrize("method", ["vhost", "lua"])
def test_check_recognizes_the_mitigation(method, name, scenario_files, tmp_path) -> None:
    files = sum((["-f", f] for f in scenario_files(name)), [])
    r = run_cli(["apply-421", *files, "--dry-run=client", "-o", "yaml", "--method", method, "--istio-version", "1.24"])
    ef = tmp_path / "ef.yaml"
    ef.write_text(r.stdout)
    before = run_cli(["check", *files, "-o", "json"])
    after = run_cli(["check", *files, "-f", str(ef), "-o", "json"])
    assert before.status == 3 and after.status == 0, after.stderr
    findings = json.loads(after.stdout)["findings"]
    assert findings and all(f["mitigation"]["method"] == method and f["level"] == "Info" for f in findings)
    assert "answered 421 by installed mitigations" in after.stderr
    assert run_cli(["check", *files, "-f", str(ef), "--fail-level", "info"]).status == 3


def test_a_stale_lua_filter_guards_nothing(scenario_files, tmp_path) -> None:
    files = sum((["-f", f] for f in scenario_files("seed")), [])
    r = run_cli(["apply-421", *files, "--dry-run=client", "-o", "yaml", "--method", "lua", "--istio-version", "1.24"])
    ef = tmp_path / "ef.yaml"
    ef.write_text(r.stdout)
    extra = tmp_path / "new-gateway.yaml"
    extra.write_text("""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-new, namespace: team-d}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [d.example.com]
    tls: {mode: SIMPLE, credentialName: c-cert}
""")
    after = run_cli(["check", *files, "-f", str(ef), "-f", str(extra), "-o", "json"])
    assert after.status == 3 and not any(f.get("mitigation") for f in json.loads(after.stdout)["findings"])


def test_live_check_after_apply(cluster, certs) -> None:
    from test_live import scenario_docs

    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    scope = ["-n", cluster.ns("team-a")]
    assert run_cli(["check", *scope], cluster.env).status == 3
    assert run_cli(["apply-421", *scope, "--istio-version", "1.24"], cluster.env).status == 0
    r = run_cli(["check", *scope, "-o", "json"], cluster.env)
    assert r.status == 0, r.stderr
    (f,) = json.loads(r.stdout)["findings"]
    assert f["mitigation"]["method"] == "vhost"
    run_cli(["apply-421", "--delete"], cluster.env)
