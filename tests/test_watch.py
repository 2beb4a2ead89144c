"""check --watch and the watch engine against the API emulator (a real cluster with
GWDUP_TEST_KUBECONFIG: the tests that break watches or compact the history skip there)."""
from __future__ import annotations

import time

import pytest

from test_live import scenario_docs
from watching import Running

APPEAR_WITHIN = 2.0  # seconds from a write to the line that reports it (the bound)


def _hazard_docs(certs, cluster):
    """The seed scenario: gw-a and gw-b on one certificate; gw-b is applied later by the tests."""
    docs = cluster.isolate(scenario_docs(certs, "seed"))
    gw_b = next(d for d in docs if d["kind"] == "Gateway" and d["metadata"]["name"] == "gw-b")
    rest = [d for d in docs if d is not gw_b]
    return rest, gw_b


def _watch(cluster, *extra):
    ns = cluster.ns("team-a")
    return Running(["check", "--watch", "-n", ns, *extra], cluster.env)


def test_watch_reports_a_hazard_appearing_and_disappearing(cluster, certs) -> None:
    rest, gw_b = _hazard_docs(certs, cluster)
    cluster.apply(rest)
    run = _watch(cluster)
    try:
        run.wait_stderr(lambda line: "no hazards found" in line or "found " in line, 30)
        assert not any("GWD0101" in line or "NotFound" in line for line in run.stdout), run.stdout
        start = time.monotonic()
        cluster.apply([gw_b])
        line = run.expect(lambda s: s.startswith("APPEARED"), 10, "APPEARED")
        assert time.monotonic() - start < APPEAR_WITHIN, time.monotonic() - start
        assert "NotFound" in line and "a.example.com,b.example.com" in line, line
        start = time.monotonic()
        code, body = cluster.call("DELETE", f"/apis/networking.istio.io/v1/namespaces/{cluster.ns('team-b')}/gateways/gw-b")
        assert code == 200, body
        line = run.expect(lambda s: s.startswith("DISAPPEARED"), 10, "DISAPPEARED")
        assert time.monotonic() - start < APPEAR_WITHIN
    finally:
        status = run.stop()
    assert status == 130, "".join(run.stderr)
    header = run.stdout[0].split()
    assert header[:2] == ["EVENT", "GATEWAYS"], run.stdout
    assert sum(1 for line in run.stdout if line.startswith("EVENT")) == 1, "the header once"


def test_watch_json_lines(cluster, certs) -> None:
    import json

    rest, gw_b = _hazard_docs(certs, cluster)
    cluster.apply(rest + [gw_b])
    run = _watch(cluster, "-o", "json", "--watch-duration", "20s")
    try:
        line = run.expect(lambda s: s.strip().startswith("{"), 30, "a JSON line")
        doc = json.loads(line)
        assert doc["type"] == "FOUND" and doc["finding"]["code"] == "GWD0101", doc
    finally:
        run.stop()


def test_watch_duration_ends_the_watch(cluster, certs) -> None:
    rest, _ = _hazard_docs(certs, cluster)
    cluster.apply(rest)
    start = time.monotonic()
    run = _watch(cluster, "--watch-duration", "3s")
    status = run.proc.wait(timeout=60)
    assert status == 0, "".join(run.stderr)
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("flags,message", [
    (["-f", "examples/"], "--watch reads the cluster"),
    (["-o", "sarif"], "not sarif"),
    (["--nameserver", "127.0.0.1"], "--watch does not resolve DNS"),
])
def test_watch_flag_errors(flags, message) -> None:
    from conftest import run_cli

    r = run_cli(["check", "--watch", *flags])
    assert r.status == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_watch_reports_a_hazard_mitigated_by_apply_421(cluster, certs, emulator_only) -> None:
    """apply-421's filters answer the hazard: MITIGATED; deleted again: UNMITIGATED. (Emulator
    only: the filters go to the gateway workload's namespace, shared on a real cluster.)"""
    from conftest import run_cli

    rest, gw_b = _hazard_docs(certs, cluster)
    cluster.apply(rest + [gw_b])
    run = _watch(cluster)
    try:
        run.expect(lambda s: s.startswith("FOUND"), 30, "FOUND")
        applied = run_cli(["apply-421", "-n", cluster.ns("team-a")], cluster.env)
        assert applied.status == 0, applied.stderr
        run.expect(lambda s: s.startswith("MITIGATED"), 10, "MITIGATED")
        deleted = run_cli(["apply-421", "--delete"], cluster.env)
        assert deleted.status == 0, deleted.stderr
        run.expect(lambda s: s.startswith("UNMITIGATED"), 10, "UNMITIGATED")
    finally:
        run.stop()
