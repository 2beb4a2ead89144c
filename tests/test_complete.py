"""`__complete`: cobra's protocol, as kubectl asks plugins for completions."""
from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize("args,expected", [
    ([""], ["check\tfind HTTP/2 connection-coalescing hazards",
            "probe\tconfirm hazards on a live gateway, as a browser meets them",
            "apply-421\tanswer 421 Misdirected Request to coalesced requests (EnvoyFilters)",
            "merge\tmerge the servers that share a certificate into one Gateway (the lasting fix)",
            "impact\tcount the requests the hazards broke, from the gateways' access logs",
            "fix\tan interactive session from finding to verified fix",
            "serve\tcheck, always on: Prometheus metrics, listener conditions and Events (for deploy/)", ":4"]),
    (["pr"], ["probe\tconfirm hazards on a live gateway, as a browser meets them", ":4"]),
    (["check", "--fail"], ["--fail-level\tlowest finding level that makes the exit status 3: info, warning, "
                           "error or never", ":4"]),
    (["check", "-o", ""], ["wide", "json", "yaml", ":4"]),
    (["check", "--output=y"], ["--output=yaml", ":4"]),
    (["check", "-f", ""], [":0"]),
    (["impact", "--log-fo"], ["--log-format\ttext (Istio's default), json (Istio's JSON), an Envoy format string of "
                              "%OPERATOR% fields, or a JSON object of key: %OPERATOR% (default: told apart per pod)",
                              ":4"]),
    # the hidden, deprecated -f/--filename of impact is not offered
    (["impact", "--fil"], [":4"]),
    (["check", "x"], [":4"]),
])
def test_static_completions(args, expected) -> None:
    r = run_cli(["__complete", *args])
    assert r.status == 0 and r.stdout.splitlines() == expected


def test_contexts_and_namespaces_from_the_cluster(cluster) -> None:
    code, _ = cluster.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": cluster.ns("shop")}})
    cluster.namespaces.append(cluster.ns("shop"))
    r = run_cli(["__complete", "check", "-n", cluster.prefix], cluster.env)
    assert r.stdout.splitlines() == [cluster.ns("shop"), ":4"]
    r = run_cli(["__complete", "check", "--context", ""], cluster.env)
    assert r.stdout.splitlines()[-1] == ":4" and len(r.stdout.splitlines()) >= 2


def test_completion_never_fails_without_a_cluster() -> None:
    r = run_cli(["__complete", "check", "-n", ""], {"KUBECONFIG": "/nonexistent"})
    assert r.status == 0 and r.stdout == ":4\n"
