"""Dry runs never write: the whole store is read before and after every dry-run path.

On the emulator the comparison is its entire store (every kind, every namespace, uid and
resourceVersion included); on a real cluster (GWDUP_TEST_KUBECONFIG) it is every object of the
kinds we write in the test's namespaces, with uid and resourceVersion, which a real write bumps.
"""
from __future__ import annotations

import pexpect
import pytest

from conftest import run_cli
from test_fix import spawn, two_groups
from test_live import scenario_docs

KINDS = ("/apis/networking.istio.io/v1/gateways", "/apis/networking.istio.io/v1/virtualservices",
         "/apis/networking.istio.io/v1alpha3/envoyfilters", "/api/v1/secrets")


def whole_state(cluster):
    if cluster.emulator is not None:
        return cluster.emulator.snapshot()
    out = {}
    for path in KINDS:
        for o in cluster.call("GET", path)[1].get("items", []):
            m = o["metadata"]
            if m["namespace"].startswith(cluster.prefix):
                out[(o["kind"], m["namespace"], m["name"])] = (m["uid"], m["resourceVersion"], o.get("spec"))
    return out


def test_the_emulator_reads_delete_options_from_the_body_as_the_api_server_does(cluster, certs) -> None:
    """The bug that deleted Gateways: with a body, `?dryRun=All` is ignored by kube-apiserver."""
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    path = f"/apis/networking.istio.io/v1/namespaces/{cluster.ns('team-a')}/gateways/gw-a"
    code, _ = cluster.call("DELETE", path + "?dryRun=All", {"kind": "DeleteOptions", "apiVersion": "v1"})
    assert code == 200
    assert cluster.call("GET", path)[0] == 404  # gone: the query was not read


def test_merge_apply_refused_without_a_terminal_writes_nothing(cluster, certs) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    before = whole_state(cluster)
    r = run_cli(["merge", "--apply", "-n", cluster.ns("team-a")], cluster.env)
    assert r.status == 2 and "add --yes" in r.stderr
    assert "deleted (server dry run)" in r.stderr  # the deletes were tried as dry runs
    assert whole_state(cluster) == before


def test_merge_apply_answered_no_writes_nothing(cluster, certs, tmp_path) -> None:
    two_groups(cluster, certs)
    before = whole_state(cluster)
    import os
    import sys
    from conftest import ROOT

    env = {**os.environ, **cluster.env, "PYTHONPATH": ROOT, "NO_COLOR": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "kubectl_gwdup", "merge", "--apply", "--backup-dir", str(tmp_path),
                                           "-n", cluster.ns("team-a")], env=env, cwd=ROOT, encoding="utf-8", timeout=60)
    child.expect(r"Apply this merge\? \[y/N\] ")
    child.sendline("n")
    child.expect("not applied")
    child.expect(pexpect.EOF)
    child.close()
    assert whole_state(cluster) == before


@pytest.mark.parametrize("method", ["vhost", "lua"])
def test_apply_421_server_dry_run_and_its_delete_write_nothing(cluster, certs, method) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed")))
    scope = ["-n", cluster.ns("istio-system")]
    mine = ["-n", cluster.ns("team-a")]  # on a shared real cluster, only this test's hazards
    before = whole_state(cluster)
    r = run_cli(["apply-421", "--dry-run=server", "--method", method, *mine], cluster.env)
    assert r.status == 0 and "(server dry run)" in r.stdout, r.stderr
    assert whole_state(cluster) == before
    r = run_cli(["apply-421", "--method", method, *mine], cluster.env)
    assert r.status == 0, r.stderr
    applied = whole_state(cluster)
    assert applied != before
    r = run_cli(["apply-421", "--delete", "--dry-run=server", *scope], cluster.env)
    assert r.status == 0 and "deleted (server dry run)" in r.stdout, r.stderr
    assert whole_state(cluster) == applied
    r = run_cli(["apply-421", "--delete", *scope], cluster.env)
    assert r.status == 0 and " deleted" in r.stdout


def test_fix_quitting_at_the_prompt_writes_nothing(cluster, certs, tmp_path) -> None:
    two_groups(cluster, certs)
    before = whole_state(cluster)
    child = spawn(cluster, tmp_path, "-n", cluster.ns("team-a"))
    child.expect(r"\[q\]uit\? ")
    child.sendline("m")
    child.expect(r"Apply this merge\? \[y/N\] ")  # the server dry run has run by now
    child.sendline("n")
    if child.expect([r"\[q\]uit\? ", "summary:"]) == 0:
        child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert whole_state(cluster) == before
