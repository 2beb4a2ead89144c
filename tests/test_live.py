"""check against a cluster: the real kubernetes client, a real kubeconfig, HTTPS on loopback.

Runs against the API emulator, or unchanged against a real cluster (with Istio's CRDs) when
GWDUP_TEST_KUBECONFIG points at one; tests that need fault injection skip there.
"""
from __future__ import annotations

import base64
import json
import os

import pytest
import yaml

from conftest import SCENARIOS, render_scenario, run_cli, with_keys
from kube import write_kubeconfig

LIVE_SCENARIOS = ["seed", "two_secrets_one_cert", "one_gateway_two_servers", "wildcard_cert_direction",
                  "wildcard_host_misrouted", "merged", "same_name_two_namespaces", "other_workload_or_port",
                  "catch_all_host", "multi_label_wildcard", "case_insensitive_sni",
                  "passthrough_swallowed", "mutual", "same_vs_both_gateways", "named_target_port"]


def with_routes(docs):
    """Manifests without VirtualServices are analysed as if each server routes its own hosts;
    a cluster answers 404 for unbound hosts, so give it those routes explicitly."""
    if any(d["kind"] == "VirtualService" for d in docs):
        return docs
    extra = []
    for d in docs:
        if d["kind"] != "Gateway" or not d["apiVersion"].startswith("networking.istio.io/"):
            continue
        hosts = sorted({h.split("/", 1)[-1] for s in d["spec"]["servers"] for h in s["hosts"]})
        extra.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                      "metadata": {"name": f"{d['metadata']['name']}-routes", "namespace": d["metadata"]["namespace"]},
                      "spec": {"hosts": hosts, "gateways": [d["metadata"]["name"]],
                               "http": [{"route": [{"destination": {"host": "backend"}}]}]}})
    return docs + extra


def scenario_docs(certs, name):
    docs = []
    for fname in ("_workload.yaml", f"{name}.yaml"):
        with open(os.path.join(SCENARIOS, fname)) as f:
            docs += [d for d in yaml.safe_load_all(render_scenario(certs, f.read())) if d]
    with_keys(docs, certs)
    for d in docs:  # a cluster stores Secrets with base64 data
        if d["kind"] == "Secret" and "stringData" in d:
            d["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in d.pop("stringData").items()}
    return with_routes(docs)


def summarize(doc, strip=lambda s: s, keep=lambda f: True):
    return sorted((f["code"], strip(f["resource"]), tuple(f.get("hosts", ())), f.get("outcome", ""))
                  for f in doc["findings"] if keep(f))


@pytest.mark.parametrize("name", LIVE_SCENARIOS)
def test_live_equals_manifests(name, cluster, certs, scenario_files) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, name)))
    live = run_cli(["check", "-o", "json"], cluster.env)
    assert live.status in (0, 3), live.stderr
    offline = run_cli(["check", "-o", "json", *sum((["-f", p] for p in scenario_files(name)), [])])
    mine = lambda f: f["resource"].split(" ", 1)[1].startswith(cluster.prefix)
    doc = json.loads(live.stdout)
    got = summarize(doc, cluster.strip, mine)
    assert got == summarize(json.loads(offline.stdout))
    # the exit status of this scenario's findings alone: a shared cluster holds other findings
    scoped = 3 if any(mine(f) and f["level"] in ("Warning", "Error") for f in doc["findings"]) else 0
    assert scoped == offline.status


def test_paging_reads_every_page(cluster, certs, api_server) -> None:
    docs = scenario_docs(certs, "seed")
    for i in range(7):
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                     "metadata": {"name": f"extra-{i}", "namespace": "team-c"},
                     "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                         {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                          "hosts": [f"x{i}.example.com"], "tls": {"mode": "SIMPLE", "credentialName": "c-cert"}}]}})
    cluster.apply(cluster.isolate(docs))
    result = run_cli(["check", "-o", "json", "--chunk-size", "2", "-n", cluster.ns("team-a")], cluster.env)
    assert result.status == 3, result.stderr
    doc = json.loads(result.stdout)
    assert summarize(doc, cluster.strip) == [("GWD0101", "Gateway team-a/gw-a", ("a.example.com", "b.example.com"), "NotFound")]
    emu = api_server[1]
    if emu is not None:
        pages = emu.requests("GET", r"/networking\.istio\.io/v1/gateways$")
        assert len(pages) >= 5 and all(q.get("limit") == ["2"] for _, _, q in pages)
        assert sum(1 for _, _, q in pages if q.get("continue")) == len(pages) - 1


def test_request_budget_one_list_per_kind(cluster, certs, emulator_only) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    emulator_only.log.clear()
    result = run_cli(["check", "-o", "json"], cluster.env)
    assert result.status == 3
    lists = [p for m, p, q in emulator_only.log if m == "GET" and not p.split("/")[-1].startswith(("shared", "c-cert"))]
    secrets = emulator_only.requests("GET", r"/secrets/")
    assert sorted(p.rsplit("/", 1)[1] for _, p, _ in secrets) == ["c-cert", "shared"]
    # Istio: discovery + gateways + virtualservices + pods (one selector) + services + our
    # envoyfilters + istiod's Deployment (its release decides versioned rules); Gateway API:
    # group and version discovery, one LIST per kind
    istio = [p for p in lists if "gateway.networking.k8s.io" not in p]
    assert len(istio) == 7 and "/apis/apps/v1/deployments" in istio, istio
    gateway_api = sorted(p for p in lists if "gateway.networking.k8s.io" in p)
    assert gateway_api == ["/apis/gateway.networking.k8s.io", "/apis/gateway.networking.k8s.io/v1",
                           "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
                           "/apis/gateway.networking.k8s.io/v1/gateways", "/apis/gateway.networking.k8s.io/v1/grpcroutes",
                           "/apis/gateway.networking.k8s.io/v1/httproutes",
                           "/apis/gateway.networking.k8s.io/v1/listenersets",
                           "/apis/gateway.networking.k8s.io/v1alpha2", "/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes",
                           "/apis/gateway.networking.k8s.io/v1beta1",
                           "/apis/gateway.networking.k8s.io/v1beta1/referencegrants"], gateway_api


def test_forbidden_secrets_fall_back_to_credential_identity(cluster, certs, emulator_only) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    emulator_only.deny.append(("*", "get", "", "secrets"))
    emulator_only.deny.append(("*", "list", "", "secrets"))
    result = run_cli(["check", "-o", "json"], cluster.env)
    assert result.status == 3, result.stderr
    doc = json.loads(result.stdout)
    mine = [f for f in doc["findings"] if cluster.prefix in f["resource"]]
    assert [f["code"] for f in mine] == ["GWD0101"]
    assert mine[0]["certificate"]["inspected"] is False
    assert "secrets not readable (Forbidden)" in result.stderr


def test_forbidden_gateways_is_a_clear_error(cluster, emulator_only) -> None:
    emulator_only.deny.append(("*", "list", "networking.istio.io", "gateways"))
    result = run_cli(["check"], cluster.env)
    assert result.status == 1
    assert result.stderr.startswith('Error from server (Forbidden): gateways.networking.istio.io is forbidden: '
                                    'User "admin" cannot list resource "gateways"')
    assert "Traceback" not in result.stderr


def test_missing_secret_is_reported(cluster, certs, emulator_only) -> None:
    docs = [d for d in scenario_docs(certs, "seed") if not (d["kind"] == "Secret" and d["metadata"]["name"] == "c-cert")]
    cluster.apply(cluster.isolate(docs))
    result = run_cli(["check", "-o", "json", "-n", cluster.ns("team-c")], cluster.env)
    doc = json.loads(result.stdout)
    assert [(f["code"], cluster.strip(f["resource"])) for f in doc["findings"]] == [("GWD0104", "Gateway team-c/gw-c")]


def test_pods_forbidden_falls_back_to_deployments(cluster, certs, emulator_only) -> None:
    docs = [d for d in scenario_docs(certs, "seed") if d["kind"] != "Pod"]
    docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                 "spec": {"selector": {"matchLabels": {"istio": "ingressgateway"}},
                          "template": {"metadata": {"labels": {"istio": "ingressgateway"}}}}})
    cluster.apply(cluster.isolate(docs))
    emulator_only.deny.append(("*", "list", "", "pods"))
    result = run_cli(["check", "-o", "json", "-n", cluster.ns("team-a")], cluster.env)
    assert result.status == 3, result.stderr
    (f,) = json.loads(result.stdout)["findings"]
    assert f["workloadVia"] == "deployments" and f["listenerPort"] == 8443
    assert "pods not readable (Forbidden)" in result.stderr


def _emulator(certs, tmp_path, **kw):
    from emulator.server import Emulator

    leaf = certs.leaf("localhost", "IP:127.0.0.1", tag="apiserver")
    emu = Emulator(leaf.cert_path, leaf.key_path, **kw).start()
    path = write_kubeconfig(str(tmp_path / "config"), emu.url, certs.ca_cert, "admin-token")
    return emu, path


def test_istio_crds_absent(certs, tmp_path, emulator_only) -> None:
    emu, path = _emulator(certs, tmp_path, istio_versions=None)
    try:
        result = run_cli(["check"], {"KUBECONFIG": path, "GWDUP_RESOLVE": "false"})
    finally:
        emu.stop()
    assert result.status == 1
    assert result.stderr == ("error: networking.istio.io is not served by this cluster "
                             "(are the Istio CRDs installed?)\n")


def test_v1beta1_only_cluster(certs, tmp_path, emulator_only) -> None:
    from kube import TestCluster

    emu, path = _emulator(certs, tmp_path, istio_versions=("v1beta1",))
    try:
        c = TestCluster(path, emu)
        docs = scenario_docs(certs, "seed")
        for d in docs:
            d["apiVersion"] = d["apiVersion"].replace("networking.istio.io/v1", "networking.istio.io/v1beta1")
        c.apply(c.isolate(docs))
        result = run_cli(["check", "-o", "json"], c.env)
        assert result.status == 3, result.stderr
        assert emu.requests("GET", r"^/apis/networking.istio.io/v1beta1/gateways$")
        assert not emu.requests("GET", r"^/apis/networking.istio.io/v1/")
    finally:
        emu.stop()


def test_unauthorized_token(cluster, tmp_path, certs, api_server, emulator_only) -> None:
    path = write_kubeconfig(str(tmp_path / "bad"), emulator_only.url, certs.ca_cert, "expired-token")
    result = run_cli(["check"], {"KUBECONFIG": path, "GWDUP_RESOLVE": "false"})
    assert result.status == 1
    assert result.stderr == "error: You must be logged in to the server (Unauthorized)\n"


def test_unreachable_server(tmp_path, certs) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    path = write_kubeconfig(str(tmp_path / "config"), f"https://127.0.0.1:{port}", certs.ca_cert, "t")
    result = run_cli(["check", "--request-timeout", "5s"], {"KUBECONFIG": path, "GWDUP_RESOLVE": "false"})
    assert result.status == 1
    assert result.stderr.startswith("error: Unable to connect to the server:")
    assert "Traceback" not in result.stderr


def test_verbose_shows_api_requests(cluster, emulator_only) -> None:
    result = run_cli(["check", "-v", "6"], cluster.env)
    assert "GET https://127.0.0.1:" in result.stderr and "/apis/networking.istio.io 200 in" in result.stderr


def test_private_keys_never_leave_the_cluster_module(cluster, certs, api_server) -> None:
    import base64

    docs = scenario_docs(certs, "seed")
    marker = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
    for d in docs:
        if d["kind"] == "Secret":
            d["data"]["tls.key"] = base64.b64encode(marker.encode()).decode()
    cluster.apply(cluster.isolate(docs))
    for fmt in ("json", "yaml", "wide"):
        result = run_cli(["check", "-o", fmt, "-v", "9"], cluster.env)
        assert "TOPSECRET" not in result.stdout + result.stderr
        assert "PRIVATE KEY" not in result.stdout + result.stderr

    from kubectl_gwdup.cli.flags import KubeFlags
    from kubectl_gwdup.sources.live import load_cluster

    raw = load_cluster(KubeFlags(environ=cluster.env).cluster)
    assert raw.secrets and all(b"PRIVATE KEY" not in pem for pem in raw.secrets.values())


def test_missing_secret_row_in_the_table(cluster, certs, emulator_only) -> None:
    docs = [d for d in scenario_docs(certs, "seed") if not (d["kind"] == "Secret" and d["metadata"]["name"] == "c-cert")]
    cluster.apply(cluster.isolate(docs))
    r = run_cli(["check", "-n", cluster.ns("team-c")], cluster.env)
    (line,) = r.stdout.splitlines()[1:]
    assert "NoSecret" in line and "c.example.com" in line and f"secret {cluster.ns('istio-system')}/c-cert" in line
    assert "1 SecretNotFound" in r.stderr
