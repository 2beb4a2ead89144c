"""check --resolve: each hazard live, latent or unknown by what DNS answers, asked of a real DNS
server on loopback (dnsmasq, configured per test; never the machine's resolver, never public
DNS), and offline from hosts files and external-dns annotations."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli
from dnsserver import DnsServer
from test_live import scenario_docs

SEED = ("a.example.com", "b.example.com", "c.example.com")


def _hazards(result):
    doc = json.loads(result.stdout)
    return [f for f in doc["findings"] if "outcome" in f]


def _check(cluster, server, *extra):
    env = {**cluster.env, "GWDUP_RESOLVE": ""}
    return run_cli(["check", "-o", "json", "-n", cluster.ns("team-a"), "--nameserver", server.address,
                    "--dns-timeout", "1s", *extra], env)


CASES = {
    # name: (records, cnames, blackhole, expected state, evidence)
    "live": ({"a.example.com": ["192.0.2.7"], "b.example.com": ["192.0.2.7"], "c.example.com": ["192.0.2.9"]},
             [], [], "live", "192.0.2.7"),
    "latent": ({"a.example.com": ["192.0.2.7"], "b.example.com": ["192.0.2.8"], "c.example.com": ["192.0.2.9"]},
               [], [], "latent", "no address shared"),
    "cname_chain": ({"a.example.com": ["192.0.2.7"], "edge.cdn.test": ["192.0.2.7"], "c.example.com": ["192.0.2.9"]},
                    [("b.example.com", "mid.example.com"), ("mid.example.com", "edge.cdn.test")], [], "live",
                    "192.0.2.7"),
    "cdn_in_front_of_one": ({"a.example.com": ["192.0.2.7"], "edge.cdn.test": ["198.51.100.1"],
                             "c.example.com": ["192.0.2.9"]}, [("b.example.com", "edge.cdn.test")], [], "latent",
                            "no address shared"),
    "nxdomain": ({"a.example.com": ["192.0.2.7"], "c.example.com": ["192.0.2.9"]}, [], [], "unknown",
                 "b.example.com: NXDOMAIN"),
    "ipv6_only": ({"a.example.com": ["2001:db8::7"], "b.example.com": ["2001:db8::7", "192.0.2.8"],
                   "c.example.com": ["192.0.2.9"]}, [], [], "live", "2001:db8::7"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_live_cluster_hazards_labelled_by_dns(case, cluster, certs) -> None:
    records, cnames, blackhole, state, evidence = CASES[case]
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    with DnsServer(records, cnames, local=["example.com", "cdn.test"], blackhole=blackhole) as dns_server:
        result = _check(cluster, dns_server)
    assert result.status == 3, result.stderr  # latent and unknown hazards stay findings
    (hazard,) = _hazards(result)
    dns = hazard["dns"]
    assert dns["state"] == state, dns
    assert evidence in json.dumps(dns), dns
    if case == "cname_chain":
        assert dns["cnames"]["b.example.com"] == ["mid.example.com", "edge.cdn.test"], dns
    assert "note: DNS: " in result.stderr and f"hazards 1 {state}" in result.stderr, result.stderr


def test_a_silent_nameserver_is_a_bounded_unknown(cluster, certs) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    with DnsServer({}, blackhole=["example.com"]) as dns_server:
        start = time.monotonic()
        result = _check(cluster, dns_server)
        took = time.monotonic() - start
    (hazard,) = _hazards(result)
    assert hazard["dns"]["state"] == "unknown" and "timeout after 1s" in hazard["dns"]["why"], hazard["dns"]
    assert took < 10, took  # names asked in parallel, each bounded


def test_the_table_says_the_state(cluster, certs) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    records = CASES["latent"][0]
    with DnsServer(records, local=["example.com"]) as dns_server:
        env = {**cluster.env, "GWDUP_RESOLVE": ""}
        table = run_cli(["check", "-n", cluster.ns("team-a"), "--nameserver", dns_server.address], env)
        wide = run_cli(["check", "-o", "wide", "-n", cluster.ns("team-a"), "--nameserver", dns_server.address], env)
    assert "NotFound (latent)" in table.stdout, table.stdout
    assert "DNS latent: no address shared" in wide.stdout, wide.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 120


def test_resolve_false_asks_nothing(cluster, certs) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    result = run_cli(["check", "-o", "json", "-n", cluster.ns("team-a"), "--resolve=false"],
                     {**cluster.env, "GWDUP_RESOLVE": ""})
    (hazard,) = _hazards(result)
    assert "dns" not in hazard and "DNS" not in result.stderr


class GarbageDns:
    """A UDP "nameserver" that answers every query with bytes no resolver can parse, or with
    a reply to another query ID: what a stranger's server may send."""

    def __init__(self, reply) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.reply = reply
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stopped:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            self.sock.sendto(self.reply(data), peer)

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()


@pytest.mark.parametrize("reply", [
    lambda q: b"\x00" * 3,
    lambda q: q[:2] + b"\x81\x80" + b"\x00\x01\x00\x05\x00\x00\x00\x00" + b"\xff" * 40,  # counts it lacks
    lambda q: bytes([q[0] ^ 1, q[1]]) + q[2:],  # another query's ID
])
def test_a_hostile_nameserver_is_an_unknown_never_a_crash(reply, tmp_path, scenario_files) -> None:
    server = GarbageDns(reply)
    try:
        files = scenario_files("seed")
        start = time.monotonic()
        r = run_cli(["check", "-o", "json", "--nameserver", server.address, "--dns-timeout", "1s",
                     *sum((["-f", f] for f in files), [])])
        assert time.monotonic() - start < 15
    finally:
        server.stop()
    assert r.status == 3, r.stderr
    for hazard in _hazards(r):
        assert hazard["dns"]["state"] == "unknown" and hazard["dns"]["why"], hazard["dns"]


# -- offline -----------------------------------------------------------------------------------
def test_manifests_with_a_hosts_file(tmp_path, scenario_files) -> None:
    files = sum((["-f", f] for f in scenario_files("seed")), [])
    hosts = tmp_path / "hosts"
    hosts.write_text("# as /etc/hosts\n192.0.2.7 a.example.com\n192.0.2.7 b.example.com  # same\n"
                     "2001:db8::9 c.example.com\n")
    r = run_cli(["check", "-o", "json", "--resolve-from", str(hosts), *files])
    (hazard,) = _hazards(r)
    assert hazard["dns"]["state"] == "live" and hazard["dns"]["sharedAddresses"] == ["192.0.2.7"]
    hosts.write_text("192.0.2.7 a.example.com\n")
    (hazard,) = _hazards(run_cli(["check", "-o", "json", "--resolve-from", str(hosts), *files]))
    assert hazard["dns"]["state"] == "unknown" and "b.example.com" in hazard["dns"]["why"]
    plain = run_cli(["check", "-o", "json", *files])  # -f: off unless asked
    assert "dns" not in _hazards(plain)[0]


def test_manifests_with_external_dns_annotations(tmp_path, certs) -> None:
    """external-dns publishes each Gateway's hosts at its target annotation, else at the
    load-balancer addresses of the Services its selector matches; a hostname target is
    followed through the hosts file."""
    import yaml

    from conftest import render_scenario, SCENARIOS
    import os

    with open(os.path.join(SCENARIOS, "seed.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(render_scenario(certs, f.read())) if d]
    with open(os.path.join(SCENARIOS, "_workload.yaml")) as f:
        docs += [d for d in yaml.safe_load_all(render_scenario(certs, f.read())) if d]
    svc = next(d for d in docs if d["kind"] == "Service")
    svc["status"] = {"loadBalancer": {"ingress": [{"hostname": "lb-1.elb.example.net"}]}}
    gw_b = next(d for d in docs if d["kind"] == "Gateway" and d["metadata"]["name"] == "gw-b")
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    hosts = tmp_path / "hosts"
    hosts.write_text("203.0.113.5 lb-1.elb.example.net\n")
    r = run_cli(["check", "-o", "json", "--resolve", "-f", str(path), "--resolve-from", str(hosts)])
    (hazard,) = _hazards(r)
    assert hazard["dns"]["state"] == "live" and hazard["dns"]["sharedAddresses"] == ["203.0.113.5"], hazard["dns"]
    assert hazard["dns"]["gatewayAddress"] is True
    gw_b.setdefault("metadata", {}).setdefault("annotations", {})[
        "external-dns.alpha.kubernetes.io/target"] = "198.51.100.20"  # b published elsewhere (a CDN)
    path.write_text(yaml.safe_dump_all(docs))
    r = run_cli(["check", "-o", "json", "--resolve", "-f", str(path), "--resolve-from", str(hosts)])
    (hazard,) = _hazards(r)
    assert hazard["dns"]["state"] == "latent", hazard["dns"]


def test_a_bad_hosts_file_is_one_error_line(tmp_path, scenario_files) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.7 a.example.com\nnot-an-address b.example.com\n")
    r = run_cli(["check", "--resolve-from", str(hosts), *sum((["-f", f] for f in scenario_files("seed")), [])])
    assert r.status == 1 and f"{hosts}:2: not `ADDRESS NAME...`" in r.stderr and r.stderr.count("\n") == 1, r.stderr


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_hosts_file_parser_never_fails_otherwise(text) -> None:
    from kubectl_gwdup.errors import InputError
    from kubectl_gwdup.sources.dns import parse_hosts

    try:
        found = parse_hosts(text, "h")
    except InputError as exc:
        assert str(exc).startswith("h:")
        return
    for name, answer in found.items():
        assert answer.addresses and name == name.lower()


@pytest.mark.parametrize("flags,message", [
    (["--resolve=maybe"], "true or false"),
    (["--nameserver", "dns.example"], "invalid --nameserver"),
    (["--resolve=false", "--nameserver", "127.0.0.1"], "cannot go with"),
    (["--dns-timeout", "0"], "--dns-timeout must be more than 0"),
])
def test_dns_flag_errors(flags, message) -> None:
    r = run_cli(["check", "-f", "examples/", *flags])
    assert r.status == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
