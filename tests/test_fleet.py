"""check across clusters: two API servers (the test cluster, emulated or real with
GWDUP_TEST_KUBECONFIG, and a second emulator) in one kubeconfig, names answered by dnsmasq on
loopback."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from conftest import run_cli
from dnsserver import DnsServer
from test_live import scenario_docs


@pytest.fixture
def second(certs, tmp_path_factory):
    from emulator.server import Emulator, gateway_api_kinds

    leaf = certs.leaf("localhost", "IP:127.0.0.1", tag="apiserver-two")
    emu = Emulator(leaf.cert_path, leaf.key_path, gateway_api=gateway_api_kinds()).start()
    yield emu
    emu.stop()


def fleet_kubeconfig(path, cluster, second, certs, extra=()):
    """The test cluster's current context as `one`, the second emulator as `two`, and `extra`
    (name, server) contexts with the emulator's credentials."""
    with open(cluster.kubeconfig) as f:
        base = yaml.safe_load(f)
    current = next(c for c in base["contexts"] if c["name"] == base["current-context"])["context"]
    cl = next(c for c in base["clusters"] if c["name"] == current["cluster"])["cluster"]
    user = next(u for u in base["users"] if u["name"] == current["user"])["user"]
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "one",
           "clusters": [{"name": "one", "cluster": cl}], "users": [{"name": "one", "user": user}],
           "contexts": [{"name": "one", "context": {"cluster": "one", "user": "one"}}]}
    for name, server in [("two", second.url)] + list(extra):
        doc["clusters"].append({"name": name, "cluster": {"server": server, "certificate-authority": certs.ca_cert}})
        doc["users"].append({"name": name, "user": {"token": "admin-token"}})
        doc["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    return str(path)


def split_seed(certs, cluster, second):
    """gw-a in cluster one, gw-b in cluster two, each with the certificate for both hosts."""
    docs = scenario_docs(certs, "seed")
    one = [d for d in docs if not (d["kind"] in ("Gateway", "VirtualService") and "gw-b" in d["metadata"]["name"])]
    two = [d for d in docs if d["kind"] in ("Pod", "Service", "Secret") or "gw-b" in d["metadata"]["name"]]
    cluster.apply(cluster.isolate(one))
    for ns in sorted({d["metadata"]["namespace"] for d in two}):
        second.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for d in two:
        second.put_object(copy.deepcopy(d))


def _run(kc, *args, dns=None):
    env = {"KUBECONFIG": kc, "HOME": "/nonexistent", "GWDUP_RESOLVE": ""}
    extra = ["--nameserver", dns.address, "--dns-timeout", "1s"] if dns else ["--resolve=false"]
    return run_cli(["check", *args, *extra], env)


def test_one_report_with_a_cluster_column_and_the_hazards_between_clusters(cluster, certs, second, tmp_path) -> None:
    split_seed(certs, cluster, second)
    kc = fleet_kubeconfig(tmp_path / "config", cluster, second, certs)
    records = {"a.example.com": ["192.0.2.7"], "b.example.com": ["192.0.2.7"], "c.example.com": ["192.0.2.9"]}
    with DnsServer(records, local=["example.com"]) as dns:
        r = _run(kc, "--context", "one", "--context", "two", "-o", "json", dns=dns)
        table = _run(kc, "--context", "one", "--context", "two", dns=dns)
    assert r.status == 3, r.stderr
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["clusters"]] == ["one", "two"] and all(c["status"] == "Read" for c in doc["clusters"])
    across = [f for f in doc["findings"] if f["code"] == "GWD0107"]
    pairs = {(f["from"][0]["cluster"], f["to"][0]["cluster"], tuple(f["hosts"])) for f in across}
    assert ("one", "two", ("b.example.com",)) in pairs and ("two", "one", ("a.example.com",)) in pairs, pairs
    for f in across:
        assert f["sharedAddresses"] == ["192.0.2.7"] and f["outcome"] == "NotFound" and f["cluster"] in ("one", "two")
    assert all("cluster" in f for f in doc["findings"])
    assert table.stdout.splitlines()[0].split()[:2] == ["CLUSTER", "GATEWAYS"], table.stdout
    assert "across clusters" in table.stderr


def test_apart_in_dns_no_hazard_between_clusters(cluster, certs, second, tmp_path) -> None:
    split_seed(certs, cluster, second)
    kc = fleet_kubeconfig(tmp_path / "config", cluster, second, certs)
    records = {"a.example.com": ["192.0.2.7"], "b.example.com": ["192.0.2.8"], "c.example.com": ["192.0.2.9"]}
    with DnsServer(records, local=["example.com"]) as dns:
        r = _run(kc, "--all-contexts", "-o", "json", dns=dns)
    doc = json.loads(r.stdout)
    assert not [f for f in doc["findings"] if f["code"] == "GWD0107"], doc["findings"]
    assert [c["name"] for c in doc["clusters"]] == ["one", "two"]


def test_a_cluster_that_fails_is_named_and_never_stops_the_others(cluster, certs, second, tmp_path) -> None:
    split_seed(certs, cluster, second)
    kc = fleet_kubeconfig(tmp_path / "config", cluster, second, certs, extra=[("dead", "https://127.0.0.1:1")])
    second.tokens.pop("admin-token")  # two refuses the token: 401
    try:
        r = _run(kc, "--all-contexts", "-o", "json", "--request-timeout", "5s")
    finally:
        second.tokens["admin-token"] = "admin"
    assert r.status == 1, r.stderr
    doc = json.loads(r.stdout)
    status = {c["name"]: c for c in doc["clusters"]}
    assert status["one"]["status"] == "Read" and status["dead"]["status"] == "Error" and status["two"]["status"] == "Error"
    assert "Unable to connect to the server" in status["dead"]["error"]
    assert "Unauthorized" in status["two"]["error"]
    assert "error: cluster dead: Unable to connect" in r.stderr and "error: cluster two:" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,message", [
    (["apply-421", "--context", "a", "--context", "b"], "only check reads several clusters"),
    (["check", "--all-contexts", "--context", "a"], "cannot go with --context"),
    (["check", "--context", "a", "--context", "b", "-f", "examples/"], "cannot go with -f"),
    (["check", "--context", "a", "--context", "b", "--watch"], "--watch reads one cluster"),
])
def test_fleet_flag_errors(args, message) -> None:
    r = run_cli(args)
    assert r.status == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_sarif_and_yaml_carry_the_cluster(cluster, certs, second, tmp_path) -> None:
    split_seed(certs, cluster, second)
    kc = fleet_kubeconfig(tmp_path / "config", cluster, second, certs)
    records = {"a.example.com": ["192.0.2.7"], "b.example.com": ["192.0.2.7"], "c.example.com": ["192.0.2.9"]}
    with DnsServer(records, local=["example.com"]) as dns:
        sarif = _run(kc, "--all-contexts", "-o", "sarif", dns=dns)
        as_yaml = _run(kc, "--all-contexts", "-o", "yaml", dns=dns)
    results = json.loads(sarif.stdout)["runs"][0]["results"]
    assert results and {r["properties"]["cluster"] for r in results} == {"one", "two"}
    doc = yaml.safe_load(as_yaml.stdout)
    assert {f["cluster"] for f in doc["findings"]} == {"one", "two"} and len(doc["clusters"]) == 2
