"""`kubectl gwdup probe` against the real Envoy on loopback, serving the scenarios as
tests/istiod_translate.py translates them (and the EnvoyFilters apply-421 plans, as
tests/envoyfilter_patch.py applies them)."""
from __future__ import annotations

import json
import socket
import ssl
import threading

import pytest

from conftest import manifests_of, run_cli
from kubectl_gwdup.inventory import build_inventory
from test_differential import served
from test_live import with_routes
from kubectl_gwdup.sources.files import load_files


def assumed_secrets(docs, certs):
    """For manifests without Secrets (check then assumes each credentialName is one
    certificate valid for the hosts of every server naming it), the cluster check assumed."""
    if any(d["kind"] == "Secret" for d in docs):
        return []
    hosts = {}
    for d in docs:
        if d["kind"] == "Gateway" and d["apiVersion"].startswith("networking.istio.io/"):
            for server in d["spec"]["servers"]:
                name = (server.get("tls") or {}).get("credentialName")
                if name:
                    hosts.setdefault(name, set()).update(h.split("/", 1)[-1] for h in server["hosts"])
    out = []
    for name, names in sorted(hosts.items()):
        leaf = certs.leaf(*sorted(names), tag=f"assumed-{name}")
        out.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": name, "namespace": "istio-system"},
                    "stringData": {"tls.crt": leaf.cert_pem.decode(), "tls.key": leaf.key_pem.decode()}})
    return out


@pytest.fixture
def gateway(scenario_files, certs):
    started = []

    def start(name, envoy_filters=()):
        files = scenario_files(name)
        docs = with_routes(manifests_of(files, certs))
        serving = served(docs + assumed_secrets(docs, certs), certs, envoy_filters)
        assert serving is not None, f"Envoy refuses {name}"
        t, envoy = serving
        started.append(envoy)
        return files, next(iter(t.ports.values()))
    yield start
    for envoy in started:
        envoy.stop()


def probe(files, port, certs, *extra):
    args = ["probe", *sum((["-f", f] for f in files), []), "--address", f"127.0.0.1:{port}",
            "--cacert", certs.ca_cert, "-o", "json", *extra]
    r = run_cli(args)
    return r, json.loads(r.stdout) if r.stdout.startswith("{") else None


def test_seed_is_confirmed_404_both_ways(gateway, certs) -> None:
    files, port = gateway("seed")
    r, doc = probe(files, port, certs)
    assert r.status == 3, r.stderr
    got = sorted((x["fromHost"], x["host"], x["result"]) for x in doc["results"])
    assert got == [("a.example.com", "b.example.com", "Confirmed-404"),
                   ("b.example.com", "a.example.com", "Confirmed-404")]
    assert all(x["expected"] == x["result"] for x in doc["results"])
    assert all(x["requests"] <= 4 for x in doc["results"])


def test_wildcard_is_confirmed_misroute(gateway, certs) -> None:
    files, port = gateway("wildcard_host_misrouted")
    r, doc = probe(files, port, certs, "--sample-host", "www.example.com")
    assert r.status == 3, r.stderr
    assert [(x["fromHost"], x["host"], x["result"]) for x in doc["results"]] == [
        ("www.example.com", "b.example.com", "Confirmed-misroute")]


def test_merged_form_is_ok(gateway, certs) -> None:
    files, port = gateway("merged")
    r, doc = probe(files, port, certs)
    assert r.status == 0 and doc["results"] == []
    r = run_cli(["probe", "--host", "a.example.com", "--host", "b.example.com", "--address",
                 f"127.0.0.1:{port}", "--cacert", certs.ca_cert])
    assert r.status == 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[:6] == ["FROM", "HOST", "HOST", "ADDRESS", "EXPECTED", "RESULT"]
    assert all(" Ok " in line for line in lines[1:]) and len(lines) == 3


@pytest.mark.parametrize("name", ["two_secrets_one_cert", "one_gateway_two_servers", "wildcard_cert_direction",
                                  "case_insensitive_sni", "passthrough_swallowed", "mutual", "selector_variants",
                                  "multi_label_wildcard", "catch_all_host", "no_secrets"])
def test_probe_confirms_what_check_predicts(name, gateway, certs) -> None:
    files, port = gateway(name)
    r, doc = probe(files, port, certs, "--sample-host", "zz.v2.example.com", "--sample-host", "zz.example.com")
    assert doc["results"], r.stderr
    for x in doc["results"]:
        assert x["result"] == x["expected"], x


def test_mitigated_421(gateway, certs, scenario_files) -> None:
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.plans.misdirect421 import Method421, plan_421

    inv = build_inventory(load_files(scenario_files("seed")))
    files, port = gateway("seed", plan_421(inv, registry.run(inv).findings, Method421.VHOST).objects)
    r, doc = probe(files, port, certs)
    assert r.status == 0, r.stderr
    assert {x["result"] for x in doc["results"]} == {"Mitigated-421"}


def test_unreachable_and_errors_are_per_pair(gateway, certs, tmp_path) -> None:
    files, port = gateway("seed")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    r, doc = probe(files, closed, certs)
    assert r.status == 1 and {x["result"] for x in doc["results"]} == {"Unreachable"}
    assert "connect 127.0.0.1" in doc["results"][0]["detail"] and "Traceback" not in r.stderr
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(certs.leaf("unrelated.example", tag="other").cert_pem)
    r = run_cli(["probe", *sum((["-f", f] for f in files), []), "--address", f"127.0.0.1:{port}",
                 "--cacert", str(other_ca), "-o", "json"])
    assert r.status == 1 and "TLS handshake with SNI" in json.loads(r.stdout)["results"][0]["detail"]


def _tls_server(certs, alpn, respond, leaf=None):
    leaf = leaf or certs.leaf("a.example.com", "b.example.com", tag="http1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf.cert_path, leaf.key_path)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(10)

    def loop():
        for _ in range(4):  # bounded: a few connections, then the thread ends
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if respond:
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1024)
                except (ssl.SSLError, OSError):
                    pass
            else:
                threading.Timer(3, conn.close).start()  # accept, then say nothing
    threading.Thread(target=loop, daemon=True).start()
    return srv


def test_no_h2_and_timeouts_are_unreachable_and_http1_is_never_pooled(certs) -> None:
    http1 = _tls_server(certs, ["http/1.1"], respond=True)
    no_alpn = _tls_server(certs, None, respond=True)
    silent = _tls_server(certs, None, respond=False)
    try:
        base = ["probe", "--host", "a.example.com", "--host", "b.example.com", "--cacert", certs.ca_cert,
                "-o", "json", "--max-requests", "4"]
        r = run_cli(base + ["--address", f"127.0.0.1:{no_alpn.getsockname()[1]}"])
        assert r.status == 1 and "no HTTP/2" in json.loads(r.stdout)["results"][0]["detail"]
        r = run_cli(base + ["--address", f"127.0.0.1:{http1.getsockname()[1]}"])
        (result,) = json.loads(r.stdout)["results"]
        assert r.status == 0 and result["result"] == "Mitigated-HTTP/1.1", r.stdout  # browsers never pool it
        assert "0 by HTTP/1.1" not in r.stderr and "1 by HTTP/1.1" in r.stderr
        r = run_cli(base + ["--address", f"127.0.0.1:{silent.getsockname()[1]}", "--timeout", "500ms"])
        assert r.status == 1 and "timed out" in json.loads(r.stdout)["results"][0]["detail"].lower()
    finally:
        http1.close()
        no_alpn.close()
        silent.close()


def test_request_budget_is_a_bound(gateway, certs) -> None:
    files, port = gateway("seed")
    r, doc = probe(files, port, certs, "--max-requests", "4")
    assert len(doc["results"]) == 1 and sum(x["requests"] for x in doc["results"]) <= 4
    assert "1 pair(s) not probed: --max-requests 4" in r.stderr


def test_patterns_need_a_sample_host(gateway, certs) -> None:
    files, port = gateway("multi_label_wildcard")
    r, doc = probe(files, port, certs)
    assert doc["results"] == [] and "give --sample-host NAME for patterns: *.v2.example.com" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--insecure", "--cacert", "x"], "--insecure and --cacert exclude each other"),
    (["--method", "POST"], '--method must be GET or HEAD, not "POST"'),
    (["--host", "a.example.com"], "--host takes at least two hosts"),
    (["--host", "a", "--host", "b"], "--host needs --address or --resolve"),
    (["--address", "host:port"], 'invalid address "host:port"'),
    (["--resolve", "a.example.com:443"], 'invalid --resolve "a.example.com:443"'),
    (["--max-requests", "3"], "--max-requests must be 4 or more"),
])
def test_probe_usage_errors(args, message) -> None:
    r = run_cli(["probe", *args])
    assert r.status == 2 and message in r.stderr


def test_resolve_and_ipv6_addresses() -> None:
    from kubectl_gwdup.probeplan import parse_address, parse_resolve

    assert parse_address("[::1]:8443") == ("::1", 8443)
    assert parse_address("::1") == ("::1", None)
    assert parse_address("gw.example.com") == ("gw.example.com", None)
    assert parse_resolve("A.example.com:443:[::1]") == ("a.example.com", 443, "::1")


def test_gateway_address_from_its_service(scenario_files) -> None:
    from kubectl_gwdup.probeplan import service_address

    inv = build_inventory(load_files(scenario_files("seed")))
    workload = inv.workloads[0].key
    svc = {"metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
           "spec": {"selector": {"istio": "ingressgateway"}, "externalIPs": ["198.51.100.9"]}}
    assert service_address([svc], inv, workload) == "198.51.100.9"
    svc["status"] = {"loadBalancer": {"ingress": [{"hostname": "gw.elb.example"}]}}
    assert service_address([svc], inv, workload) == "gw.elb.example"
    svc["status"]["loadBalancer"]["ingress"].insert(0, {"ip": "203.0.113.7"})
    assert service_address([svc], inv, workload) == "203.0.113.7"
    other = dict(svc, spec={"selector": {"istio": "egressgateway"}, "externalIPs": ["192.0.2.1"]})
    assert service_address([other], inv, workload) is None
    r = run_cli(["probe", *sum((["-f", f] for f in scenario_files("seed")), []), "-o", "json"])
    results = json.loads(r.stdout)["results"]
    assert r.status == 1 and results and all("no address" in x["detail"] for x in results)


def test_a_wrong_endpoint_is_an_error_never_a_verdict(gateway, certs) -> None:
    """Pointed at an endpoint whose certificate does not cover the host the connection was
    opened for, probe names the endpoint and exits 1; it never prints a verdict."""
    files, _ = gateway("seed")
    # a TLS endpoint speaking h2 with another host's certificate: not the gateway
    other = _tls_server(certs, ["h2"], respond=True, leaf=certs.leaf("elsewhere.example", tag="elsewhere"))
    try:
        port = other.getsockname()[1]
        r = run_cli(["probe", *sum((["-f", f] for f in files), []), "--address", f"127.0.0.1:{port}",
                     "--cacert", certs.ca_cert])
    finally:
        other.close()
    assert r.status == 1 and r.stdout == "", (r.status, r.stdout)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: 127.0.0.1:{port} is not the gateway for "), r.stderr
    assert "elsewhere.example" in lines[0]


def test_address_per_workload(gateway, certs) -> None:
    files, port = gateway("seed")
    mine = "istio-system/istio-ingressgateway"
    r, doc = probe(files, port, certs)  # the plain --address, for comparison
    base = sorted((x["fromHost"], x["host"], x["result"]) for x in doc["results"])
    args = ["probe", *sum((["-f", f] for f in files), []), "--cacert", certs.ca_cert, "-o", "json"]
    r = run_cli(args + ["--address", f"{mine}=127.0.0.1:{port}", "--address", "other/gateway=127.0.0.1:1"])
    assert r.status == 3, r.stderr
    assert sorted((x["fromHost"], x["host"], x["result"]) for x in json.loads(r.stdout)["results"]) == base
    assert {x["address"] for x in json.loads(r.stdout)["results"]} == {f"127.0.0.1:{port}"}
    r = run_cli(args + ["--address", "other/gateway=127.0.0.1:1"])  # none for this workload, no Service address
    assert {x["result"] for x in json.loads(r.stdout)["results"]} == {"Unreachable"}
    for bad, message in ((["--address", "127.0.0.1:1", "--address", "127.0.0.2:1"], "only one --address"),
                         (["--address", "gateway=127.0.0.1:1"], "NAMESPACE/NAME")):
        r = run_cli(args + bad)
        assert r.status == 2 and message in r.stderr, r.stderr


def test_only_documented_verdicts(gateway, certs) -> None:
    """A pair whose first host's certificate does not cover the second is Ok (no browser
    reuses that connection), not a state of its own."""
    files, port = gateway("seed_routed")
    r = run_cli(["probe", "--host", "a.example.com", "--host", "c.example.com", "--address", f"127.0.0.1:{port}",
                 "--cacert", certs.ca_cert, "-o", "json"])
    results = json.loads(r.stdout)["results"] if r.stdout.startswith("{") else []
    assert results and {x["result"] for x in results} <= {"Confirmed-404", "Confirmed-misroute", "Mitigated-421",
                                                           "Mitigated-HTTP/1.1", "Ok", "Unreachable"}, r.stderr
    assert any("does not cover" in x["detail"] for x in results)


def test_following_the_sample_host_hint_gets_a_pair(scenario_files) -> None:
    """The hint for a source server with only patterns names what to give: a name under the
    source's pattern other than the target. Passing the target itself (what the hint used to
    name) gets that hint, not the same one again; following it gets the pair."""
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.probeplan import plan_probes

    inv = build_inventory(load_files(scenario_files("catch_all_host")))
    findings = registry.run(inv).findings
    first = plan_probes(findings, inv)
    assert not first.pairs and first.notes == [
        "not probed, give --sample-host NAME for patterns: b.example.com (no concrete host on the source "
        "servers: give a name under * other than b.example.com)"]
    again = plan_probes(findings, inv, ["b.example.com"])
    assert not again.pairs and again.notes == first.notes  # the target is still not a source name
    followed = plan_probes(findings, inv, ["zz.example.com"])
    assert [(p.from_host, p.to_host) for p in followed.pairs] == [("zz.example.com", "b.example.com")]
    assert followed.notes == []
