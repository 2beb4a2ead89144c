"""apply-421 on the real Envoy (patches applied as istiod applies them) and against the emulator."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import List

import pytest
import yaml

import envoyfilter_patch
from conftest import ROOT, manifests_of, run_cli
from istiod_translate import Connection, Envoy, Translation, new_workdir
from kubectl_gwdup import netprobe
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.analysis.chains import live_chains
from kubectl_gwdup.hosts import safe_host
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.plans.lua421 import lua_code
from kubectl_gwdup.plans.misdirect421 import Method421, plan_421
from kubectl_gwdup.sources.files import load_files
from test_mitigations import judge_methods

SCENARIOS = ["seed_routed", "wildcard_host_misrouted", "catch_all_host", "multi_label_wildcard", "one_gateway_two_servers",
             "passthrough_swallowed", "mutual", "same_vs_both_gateways", "case_insensitive_sni", "own_route_404",
             "wildcard_cert_direction", "own_unrouted_under_san_wildcard", "tls_terminated_tcp"]


def scenario_docs_with_keys(name: str, scenario_files, certs) -> List[dict]:
    """The scenario's manifests, each test Secret with the key of its certificate."""
    return manifests_of(scenario_files(name), certs)


def scenario_names(docs: List[dict]) -> List[str]:
    """Every name the manifests mention, and one generic name under each wildcard."""
    out = set()
    for d in docs:
        spec = d.get("spec") or {}
        hosts = [h for s in spec.get("servers") or [] for h in s.get("hosts") or []] if d["kind"] == "Gateway" else \
            list(spec.get("hosts") or []) if d["kind"] == "VirtualService" else []
        for h in hosts:
            h = h.split("/", 1)[-1].lower()
            if h.startswith("*."):
                out.add("zz" + h[1:])
            elif h != "*":
                out.add(h)
    out.add("nobody.example.net")
    return sorted(out)


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_method_on_the_scenarios_through_istiods_rules(name, scenario_files, certs) -> None:
    """The rules of tests/test_mitigations.py, on the named scenarios: every hazard answered,
    direct traffic and reuse inside a chain untouched."""
    docs = scenario_docs_with_keys(name, scenario_files, certs)
    answered = judge_methods(docs, scenario_names(docs), certs)
    if name in ("seed_routed", "wildcard_host_misrouted", "own_unrouted_under_san_wildcard", "tls_terminated_tcp"):
        assert answered[Method421.VHOST] and answered[Method421.LUA] and answered[Method421.HTTP1]


def test_unknown_hosts_keep_their_404_and_wildcard_reuse_stays(scenario_files, certs) -> None:
    docs = scenario_docs_with_keys("wildcard_host_misrouted", scenario_files, certs)
    inv = build_inventory(load_files(scenario_files("wildcard_host_misrouted")))
    for method in (Method421.VHOST, Method421.LUA):
        objects = plan_421(inv, registry.run(inv).findings, method).objects
        t = Translation(docs, new_workdir(), None)
        envoyfilter_patch.apply(t, objects)
        with Envoy(t):
            port = next(iter(t.ports.values()))
            conn = Connection(port, "x.example.com", certs.ca_cert)
            assert conn.request("y.example.com")[0] == 200  # one wildcard chain: legitimate reuse
            assert conn.request("b.example.com")[0] == 421  # another chain's host, under the wildcard
            conn.close()
            conn = Connection(port, "b.example.com", certs.ca_cert)
            assert conn.request("b.example.com")[0] == 200
            assert conn.request("nobody.example.net")[0] == 404  # no server serves it: its 404 stays
            conn.close()


def test_own_names_without_routes_keep_their_404_under_a_421_wildcard(scenario_files, certs) -> None:
    """A chain's own name that its table does not route would otherwise fall to the 421 domain
    taken from the certificate, and a browser would retry it on the same chain for ever."""
    inv = build_inventory(load_files(scenario_files("own_unrouted_under_san_wildcard")))
    plan = plan_421(inv, registry.run(inv).findings, Method421.VHOST)
    added = [cp["patch"]["value"] for o in plan.objects for cp in o["spec"]["configPatches"]]
    assert {"name": "gwdup-own-404", "domains": ["b.example.com"], "routes": []} in added
    docs = scenario_docs_with_keys("own_unrouted_under_san_wildcard", scenario_files, certs)
    t = Translation(docs, new_workdir(), None)
    envoyfilter_patch.apply(t, plan.objects)
    with Envoy(t):
        port = next(iter(t.ports.values()))
        conn = Connection(port, "b.example.com", certs.ca_cert)
        assert conn.request("b.example.com")[0] == 404  # its own name, on its own connection
        assert conn.request("c.example.com")[0] == 421
        conn.close()


def test_hostile_hosts_are_data_never_code(tmp_path, certs, scenario_files) -> None:
    evil = 'x"] = 1 } os.exit(1) --.example.com'
    text = open(scenario_files("seed_routed")[1]).read().replace("hosts: [b.example.com]\n    tls",
                                                                  f"hosts: [b.example.com, '{evil}']\n    tls")
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    inv = build_inventory(load_files([scenario_files("seed_routed")[0], str(path)]))
    code, dropped = lua_code(live_chains(inv.placements))
    assert dropped == [evil] and "os.exit" not in code and safe_host(evil) is None
    for method in Method421:
        plan = plan_421(inv, registry.run(inv).findings, method)
        assert "os.exit" not in json.dumps(plan.objects)
    docs = scenario_docs_with_keys("seed_routed", scenario_files, certs)
    for d in docs:
        if d["kind"] == "Gateway" and d["metadata"]["name"] == "gw-b":
            d["spec"]["servers"][0]["hosts"].append(evil)
    t = Translation(docs, new_workdir(), None)
    envoyfilter_patch.apply(t, plan_421(inv, registry.run(inv).findings, Method421.LUA).objects)
    with Envoy(t) as envoy:
        port = next(iter(t.ports.values()))
        conn = Connection(port, "a.example.com", certs.ca_cert)
        assert conn.request("a.example.com")[0] == 200
        conn.close()
        again = Connection(port, "b.example.com", certs.ca_cert)
        assert again.request("b.example.com")[0] == 200 and envoy.proc.poll() is None
        again.close()


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
    docs = scenario_docs_with_keys("merged", scenario_files, certs)
    t = Translation(docs, new_workdir(), None)
    (_, port_bound, _), = t.served
    seed_filter = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
                   "metadata": {"name": "misdirected-request", "namespace": "istio-system"},
                   "spec": {"configPatches": [{"applyTo": "HTTP_FILTER", "match": {"context": "GATEWAY", "listener": {
                       "portNumber": port_bound, "filterChain": {"filter": {
                           "name": "envoy.filters.network.http_connection_manager",
                           "subFilter": {"name": "envoy.filters.http.router"}}}}},
                       "patch": {"operation": "INSERT_BEFORE", "value": {"name": "envoy.lua", "typed_config": {
                           "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                           "inlineCode": SEED_LUA}}}}]}}
    envoyfilter_patch.apply(t, [seed_filter])
    with Envoy(t):
        conn = Connection(next(iter(t.ports.values())), "a.example.com", certs.ca_cert)
        assert conn.request("a.example.com")[0] == 421  # even the host the connection was opened for
        conn.close()


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
    assert f"1 mitigated by installed filters (1 {method} 421)" in after.stderr
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


def test_a_host_the_lua_filter_leaves_out_keeps_its_finding_open(tmp_path, scenario_files, certs) -> None:
    """A host that is not a host name never enters the Lua table, so the pairs it is in are not
    answered: check must not call its finding mitigated."""
    odd = "b\u00e9.example.com"
    leaf = certs.leaf("*.example.com", tag="odd-wild")
    # gw-odd's own certificate: valid for its host too, but other SANs, so another group than gw-a's
    own = certs.leaf("*.example.com", "z.example.com", tag="odd-own")
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump_all([
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": name, "namespace": "web"},
         "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
             "port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": [host],
             "tls": {"mode": "SIMPLE", "credentialName": cred}}]}}
        for name, host, cred in (("gw-a", "a.example.com", "wild"), ("gw-odd", odd, "odd"))] + [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": cred, "namespace": "istio-system"},
         "stringData": {"tls.crt": c.cert_pem.decode(), "tls.key": c.key_pem.decode()}}
        for cred, c in (("wild", leaf), ("odd", own))]))
    files = ["-f", scenario_files("seed")[0], "-f", str(path)]
    before = run_cli(["check", *files, "-o", "json"])
    assert any(odd in f.get("hosts", ()) for f in json.loads(before.stdout)["findings"]), before.stdout
    r = run_cli(["apply-421", *files, "--dry-run=client", "-o", "yaml", "--mitigation", "lua", "--istio-version", "1.24"])
    assert r.status == 0 and "is not a host name: left out of the Lua filter" in r.stderr, r.stderr
    ef = tmp_path / "ef.yaml"
    ef.write_text(r.stdout)
    after = run_cli(["check", *files, "-f", str(ef), "-o", "json"])
    odd_findings = [f for f in json.loads(after.stdout)["findings"] if odd in f.get("hosts", ())]
    assert odd_findings and not any(f.get("mitigation") for f in odd_findings)
    assert after.status == 3


def test_the_method_flag_spellings(scenario_files) -> None:
    files = sum((["-f", f] for f in scenario_files("seed")), [])
    new = run_cli(["apply-421", *files, "--dry-run=client", "-o", "json", "--mitigation", "http1"])
    old = run_cli(["apply-421", *files, "--dry-run=client", "-o", "json", "--method", "http1"])
    assert new.status == old.status == 0 and new.stdout == old.stdout
    assert "warning: apply-421 --method is now --mitigation" in old.stderr and "--method" not in new.stderr
    helped = subprocess.run([sys.executable, "-m", "kubectl_gwdup", "apply-421", "--help"], capture_output=True,
                            text=True, cwd=ROOT)
    assert "--mitigation" in helped.stdout and "--method" not in helped.stdout  # one name per meaning
    assert "lose HTTP/2" in new.stderr and "clients that do not retry on 421" not in new.stderr
    (ef,) = json.loads(new.stdout)["items"]
    patches = ef["spec"]["configPatches"]
    assert sorted(p["match"]["listener"]["filterChain"]["sni"] for p in patches) == ["a.example.com", "b.example.com"]
    for patch in patches:
        assert patch["applyTo"] == "FILTER_CHAIN" and patch["match"]["listener"]["portNumber"] == 8443
        tls = patch["patch"]["value"]["transportSocket"]["typedConfig"]["commonTlsContext"]
        assert tls["alpnProtocols"] == ["http/1.1"]
        assert tls["tlsCertificateSdsSecretConfigs"] == [{"name": "kubernetes://shared",
                                                          "sdsConfig": {"ads": {}, "resourceApiVersion": "V3"}}]
    r = run_cli(["fix", "--yes", "--strategy", "421", "--mitigation", "vhost-ish"])
    assert r.status == 2 and r.stderr == 'error: --mitigation must be vhost, lua or http1, not "vhost-ish"\n'


def test_a_smaller_plan_deletes_the_objects_it_no_longer_has(cluster, certs) -> None:
    from test_live import scenario_docs

    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    args = ["apply-421", "-n", cluster.ns("team-a"), "--istio-version", "1.24"]
    r = run_cli(args, cluster.env)
    assert r.status == 0, r.stderr
    name = r.stdout.split("/")[1].split()[0]
    ns = cluster.ns("istio-system")
    base = f"/apis/networking.istio.io/v1alpha3/namespaces/{ns}/envoyfilters"
    code, first = cluster.call("GET", f"{base}/{name}")
    surplus = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
               "metadata": {"name": f"{name}-2", "namespace": ns, "labels": first["metadata"]["labels"]},
               "spec": first["spec"]}  # what an earlier, larger plan left
    other = dict(surplus, metadata=dict(surplus["metadata"], name="gwdup-421-someone-else-8443"))
    assert cluster.call("POST", base, surplus)[0] == 201 and cluster.call("POST", base, other)[0] == 201
    r = run_cli(args, cluster.env)
    assert r.status == 0 and r.stdout.splitlines() == [
        f"envoyfilter.networking.istio.io/{name} serverside-applied",
        f"envoyfilter.networking.istio.io/{name}-2 deleted"], r.stdout
    assert cluster.call("GET", f"{base}/{name}-2")[0] == 404
    assert cluster.call("GET", f"{base}/gwdup-421-someone-else-8443")[0] == 200  # another listener's: kept
    run_cli(["apply-421", "--delete"], cluster.env)


def test_probe_sees_each_mitigation_as_a_browser_would(scenario_files, certs) -> None:
    """netprobe, the client behind `probe`, offers h2 and http/1.1 as browsers do: on the
    independent translation with each plan applied, a coalesced pair reads as answered by 421,
    or as never pooled over HTTP/1.1, and a chain's own traffic still works."""
    docs = scenario_docs_with_keys("seed_routed", scenario_files, certs)
    inv = build_inventory(load_files(scenario_files("seed_routed")))
    findings = registry.run(inv).findings
    ctx = netprobe.client_context(certs.ca_cert)
    want = {None: netprobe.ProbeResult.CONFIRMED_404, Method421.VHOST: netprobe.ProbeResult.MITIGATED_421,
            Method421.LUA: netprobe.ProbeResult.MITIGATED_421, Method421.HTTP1: netprobe.ProbeResult.MITIGATED_HTTP1}
    for method, result in want.items():
        t = Translation(docs, new_workdir(), None)
        envoyfilter_patch.apply(t, plan_421(inv, findings, method).objects if method else [])
        with Envoy(t):
            port = next(iter(t.ports.values()))
            got = netprobe.probe_pair("127.0.0.1", port, "a.example.com", "b.example.com", ctx, timeout=5)
            assert got.result is result, (method, got)
            c = netprobe.probe_pair("127.0.0.1", port, "c.example.com", "a.example.com", ctx, timeout=5)
            assert c.result is netprobe.ProbeResult.NOT_COALESCED, (method, c)  # c's own h2 still works


# --- what Envoy accepts, whatever the selectors ----------------------------------------------------

from hypothesis import HealthCheck, event, given, settings, strategies as st  # noqa: E402

from envoy_process import validate  # noqa: E402
from test_differential import inventories, manifests  # noqa: E402


@settings(max_examples=int(__import__("os").environ.get("GWDUP_VALIDATE_EXAMPLES", "60")), deadline=None,
          derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                   HealthCheck.data_too_large])
@given(spec=inventories, method=st.sampled_from(list(Method421)))
def test_the_dry_run_output_is_accepted_by_envoy_on_every_pod(certs, tmp_path, spec, method) -> None:
    """`apply-421 -f --dry-run=client -o yaml` on random inventories (a Pod listed with or
    without its owner, a second Deployment of the same labels or of more), its EnvoyFilters
    applied by istiod's rules to every proxy the independent translation builds: `envoy --mode
    validate` accepts the result (two filters adding one domain to one route table would be a
    NACK), and no two filters share one namespace and one workload selector."""
    docs = manifests(spec, certs)
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    r = run_cli(["apply-421", "-f", str(path), "--dry-run=client", "-o", "yaml", "--mitigation", method.value])
    assert r.status == 0, r.stderr
    objects = (yaml.safe_load(r.stdout) or {}).get("items") or [] if r.stdout.strip() else []
    event(f"twin {spec['twin']}, pod {'listed' if spec['pod_listed'] else 'not listed'}"
          f"{'' if spec['pod_owned'] else ' without owner'}: {'objects' if objects else 'none'}")

    def upstream(sni):
        leaf = certs.leaf("upstream.invalid", tag="upstream")
        return leaf.cert_path, leaf.key_path
    t = Translation(docs, new_workdir(), upstream)
    if not validate(t.config, t.workdir)[0]:
        return  # Envoy refuses the mesh as it is: test_differential checks that check says so
    envoyfilter_patch.apply(t, objects)
    ok, log = validate(t.config, t.workdir)
    assert ok, f"{method.value}: {log}"
    stems = {}
    for o in objects:
        key = (o["metadata"]["namespace"], json.dumps(o["spec"]["workloadSelector"], sort_keys=True))
        stem = o["metadata"]["name"].rsplit("-", 1)[0] if o["metadata"]["name"][-1].isdigit() and \
            o["metadata"]["name"].rsplit("-", 1)[-1].isdigit() else o["metadata"]["name"]
        assert stems.setdefault(key, stem) == stem, f"two filters for one set of pods: {key}"


def test_a_pod_listed_without_its_owner_is_its_deployments(scenario_files, tmp_path) -> None:
    """An edited export drops ownerReferences: the Pod whose labels are exactly a Deployment's pod
    template is that Deployment's pod (istiod configures a proxy by its labels), so check names
    one workload and apply-421 makes one filter for it."""
    files = scenario_files("seed_routed")
    docs = [d for f in files for d in yaml.safe_load_all(open(f)) if d]
    for d in docs:
        if d["kind"] == "Pod":
            d["metadata"].pop("ownerReferences", None)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                  "spec": {"selector": {"matchLabels": {"istio": "ingressgateway"}},
                           "template": {"metadata": {"labels": next(
                               {k: v for k, v in d["metadata"]["labels"].items() if k != "pod-template-hash"}
                               for d in docs if d["kind"] == "Pod")}}}}
    path = tmp_path / "export.yaml"
    path.write_text(yaml.safe_dump_all(docs + [deployment]))
    inv = build_inventory(load_files([str(path)]))
    assert {p.listener.workload.key for p in inv.placements} == {"istio-system/istio-ingressgateway"}
    r = run_cli(["apply-421", "-f", str(path), "--dry-run=client", "-o", "yaml"])
    assert r.status == 0, r.stderr
    names = [o["metadata"]["name"] for o in yaml.safe_load(r.stdout)["items"]]
    assert names == ["gwdup-421-istio-ingressgateway-8443"], names


def test_the_readme_examples_are_clean_after_apply_421(tmp_path) -> None:
    """apply-421 on examples/ (offline, as a GitOps user would), its EnvoyFilters added to the
    manifests, then check: every hazard is mitigated (exit 0), and no finding is new."""
    import json
    import os

    import yaml

    from conftest import ROOT

    examples = [os.path.join(ROOT, "examples", f) for f in sorted(os.listdir(os.path.join(ROOT, "examples")))]
    flags = sum((["-f", f] for f in examples), [])
    r = run_cli(["apply-421", *flags, "--dry-run=client", "-o", "yaml"])
    assert r.status == 0, r.stderr
    filters = yaml.safe_load(r.stdout)["items"]
    assert filters and all(f["kind"] == "EnvoyFilter" for f in filters)
    path = tmp_path / "filters.yaml"
    path.write_text(yaml.safe_dump_all(filters))
    before = json.loads(run_cli(["check", "-o", "json", *flags]).stdout)["findings"]
    after_run = run_cli(["check", "-o", "json", *flags, "-f", str(path)])
    after = json.loads(after_run.stdout)["findings"]
    hazards = [f for f in after if f.get("outcome")]
    assert hazards and all(f.get("mitigation") and f["level"] == "Info" for f in hazards), hazards
    assert after_run.status == 0, after_run.stderr
    assert {(f["code"], f["resource"]) for f in after} <= {(f["code"], f["resource"]) for f in before}
