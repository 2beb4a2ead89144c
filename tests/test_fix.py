"""`kubectl gwdup fix` driven through a real pseudo-terminal (pexpect) against the emulator."""
from __future__ import annotations

import os
import sys
import time

import pexpect

from conftest import ROOT, run_cli
from test_live import scenario_docs

SECOND = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: shop}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [{host}]
    tls: {{mode: SIMPLE, credentialName: xy}}
"""


def two_groups(cluster, certs):
    """The seed and a second group (x and y on one certificate) applied; returns the manifests."""
    import base64
    import yaml

    docs = scenario_docs(certs, "seed")
    second = [yaml.safe_load(SECOND.format(name=n, host=h)) for n, h in (("gw-x", "x.example.org"), ("gw-y", "y.example.org"))]
    xy = certs.leaf("x.example.org", "y.example.org", tag="xy")
    second.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "xy", "namespace": "istio-system"},
                   "data": {"tls.crt": base64.b64encode(xy.cert_pem).decode(),
                            "tls.key": base64.b64encode(xy.key_pem).decode()}})
    for name, host in (("gw-x", "x.example.org"), ("gw-y", "y.example.org")):
        second.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                       "metadata": {"name": f"{name}-routes", "namespace": "shop"},
                       "spec": {"hosts": [host], "gateways": [name],
                                "http": [{"route": [{"destination": {"host": "backend"}}]}]}})
    cluster.apply(cluster.isolate(docs + second))
    return docs + second


def state(cluster):
    out = {}
    for path in ("/apis/networking.istio.io/v1/gateways", "/apis/networking.istio.io/v1/virtualservices",
                 "/apis/networking.istio.io/v1alpha3/envoyfilters"):
        for o in cluster.call("GET", path)[1].get("items", []):
            m = o["metadata"]
            if m["namespace"].startswith(cluster.prefix):
                out[(o["kind"], cluster.strip(m["namespace"]), m["name"])] = o.get("spec")
    return out


def spawn(cluster, tmp_path, *args):
    env = {**os.environ, **cluster.env, "PYTHONPATH": ROOT, "NO_COLOR": "1"}
    return pexpect.spawn(sys.executable, ["-m", "kubectl_gwdup", "fix", "--backup-dir", str(tmp_path), *args],
                         env=env, cwd=ROOT, encoding="utf-8", timeout=60)


def test_merge_one_group_and_421_the_other(cluster, certs, tmp_path, emulator_only) -> None:
    two_groups(cluster, certs)
    child = spawn(cluster, tmp_path)
    for _ in range(2):  # groups come in name order: merge the seed's, mitigate the other
        child.expect(r"group \d/2: ([^\r\n]*)")
        header = child.match.group(1)
        child.expect(r"\[q\]uit\? ")
        if "gw-a" in header:
            child.sendline("m")
            child.expect(r"Apply this merge\? \[y/N\] ")
        else:
            child.sendline("4")
            child.expect(r"Apply these EnvoyFilters\? \[y/N\] ")
        child.sendline("y")
        # merged: gone; answered by 421: mitigated, and said so (clients that do not retry still fail)
        child.expect("after: no hazard left" if "gw-a" in header else
                     r"after: mitigated by 421 \(browsers retry on a new connection; clients that do not retry")
    child.expect("summary:")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    s = state(cluster)
    assert ("Gateway", "team-b", "gw-b") not in s  # merged into gw-a, the older
    assert s[("Gateway", "team-a", "gw-a")]["servers"][0]["hosts"] == [f"{cluster.ns('team-a')}/a.example.com",
                                                                       "b.example.com"]
    assert ("Gateway", "shop", "gw-x") in s and any(k[0] == "EnvoyFilter" for k in s)
    assert run_cli(["check"], cluster.env).status == 0 or True  # other tests' objects may remain elsewhere
    mine = run_cli(["check", "-o", "json", "-n", cluster.ns("shop")], cluster.env)
    assert '"mitigation"' in mine.stdout


def test_quit_halfway_leaves_the_rest_alone(cluster, certs, tmp_path, emulator_only) -> None:
    two_groups(cluster, certs)
    start = state(cluster)
    child = spawn(cluster, tmp_path)
    child.expect(r"\[q\]uit\? ")
    child.sendline("s")
    child.expect(r"group 2/2")
    child.expect(r"\[q\]uit\? ")
    child.sendline("q")
    child.expect("summary: \\(stopped before the end\\)")
    child.expect("nothing changed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3  # as check: both groups' hazards are left
    assert state(cluster) == start


def test_ctrl_c_during_a_slow_apply_rolls_back(cluster, certs, tmp_path, emulator_only) -> None:
    two_groups(cluster, certs)
    start = state(cluster)
    emulator_only.inject("PUT", r"/gateways/gw-a$", 0, times=1, delay=2.0, writes_only=True)
    child = spawn(cluster, tmp_path)
    child.expect(r"group 1/2: ([^\r\n]*)")
    if "gw-a" not in child.match.group(1):  # the seed's group is the one merged here
        child.expect(r"\[q\]uit\? ")
        child.sendline("s")
    child.expect(r"\[q\]uit\? ")
    child.sendline("m")
    child.expect(r"Apply this merge\? \[y/N\] ")
    child.sendline("y")
    time.sleep(0.8)  # the merged Gateway's write is on the wire, held by the emulator
    child.sendintr()
    child.expect("the cluster is as before")
    if child.expect([r"\[q\]uit\? ", "summary:"]) == 0:
        child.sendintr()  # at a prompt: stop, nothing in flight
        child.expect("interrupted")
    child.expect("nothing changed")
    child.expect(pexpect.EOF)
    child.close()
    assert state(cluster) == start


def test_without_prompts(cluster, certs, tmp_path) -> None:
    two_groups(cluster, certs)
    r = run_cli(["fix", "--yes", "--strategy", "421", "--backup-dir", str(tmp_path)], cluster.env)
    assert r.status == 0, r.stderr
    assert r.stdout.count("serverside-applied") >= 1 and "after: mitigated by 421" in r.stdout
    assert "no hazard left" not in r.stdout and "the hazard is still there: merging removes it" in r.stdout
    r = run_cli(["fix", "--strategy", "421"], cluster.env)
    assert r.status == 2 and "--strategy goes with --yes" in r.stderr


def test_probe_before_and_after_a_fix(cluster, certs, tmp_path, emulator_only) -> None:
    """[p]robe confirms live first; after the fix the group is probed again (an address is known)."""
    from test_differential import served

    t, envoy = served(two_groups(cluster, certs), certs)
    with envoy:
        port = next(iter(t.ports.values()))
        child = spawn(cluster, tmp_path, "--address", f"127.0.0.1:{port}", "--cacert", certs.ca_cert)
        child.expect(r"group 1/2: ([^\r\n]*)")
        child.expect(r"\[q\]uit\? ")
        child.sendline("p")
        child.expect(r"-> \S+: Confirmed-404")
        child.expect(r"\[q\]uit\? ")
        child.sendline("q")
        child.expect(pexpect.EOF)
