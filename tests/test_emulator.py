"""The API behaviours our writes depend on, asserted as kube-apiserver behaves.

Against the emulator they check that it follows the API server; with GWDUP_TEST_KUBECONFIG they
run against a real one and check the same facts there, so the emulator's claims are tested.
"""
from __future__ import annotations

import base64

import pytest

SECRETS = "/api/v1/namespaces/{ns}/secrets"


@pytest.fixture
def ns(cluster):
    name = cluster.ns("emu")
    code, body = cluster.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": name}})
    assert code == 201, body
    cluster.namespaces.append(name)
    return name


def secret(name: str, data: dict, type_: str = "kubernetes.io/tls", ns: str = "") -> dict:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": meta,
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def test_a_tls_secret_needs_its_key(cluster, ns) -> None:
    code, body = cluster.call("POST", SECRETS.format(ns=ns), secret("no-key", {"tls.crt": b"x"}))
    assert code == 422 and body["reason"] == "Invalid" and "data[tls.key]: Required value" in body["message"]
    code, _ = cluster.call("POST", SECRETS.format(ns=ns), secret("opaque", {"tls.crt": b"x"}, "Opaque"))
    assert code == 201


def test_names_and_namespaces_are_validated(cluster, ns) -> None:
    code, body = cluster.call("POST", SECRETS.format(ns=ns), secret("Bad_Name", {"a": b"x"}, "Opaque"))
    assert code == 422 and "metadata.name" in body["message"]
    code, body = cluster.call("POST", SECRETS.format(ns=ns), secret("elsewhere", {"a": b"x"}, "Opaque", ns="other"))
    assert code == 400 and "does not match the namespace" in body["message"]


def test_updates_keep_uid_and_creation_and_refuse_a_stale_version(cluster, ns) -> None:
    code, made = cluster.call("POST", SECRETS.format(ns=ns), secret("s", {"a": b"1"}, "Opaque"))
    assert code == 201
    path = SECRETS.format(ns=ns) + "/s"
    change = dict(made, data={"a": base64.b64encode(b"2").decode()})
    change["metadata"] = dict(made["metadata"], uid="00000000-0000-0000-0000-000000000000",
                              creationTimestamp="2001-01-01T00:00:00Z")
    code, body = cluster.call("PUT", path, change)
    assert code == 200, body
    assert body["metadata"]["uid"] == made["metadata"]["uid"]
    assert body["metadata"]["creationTimestamp"] == made["metadata"]["creationTimestamp"]
    code, body = cluster.call("PUT", path, dict(change, data={"a": base64.b64encode(b"3").decode()}))
    assert code == 409 and body["reason"] == "Conflict"  # change carried the old resourceVersion


def test_delete_options_come_from_the_body(cluster, ns) -> None:
    cluster.call("POST", SECRETS.format(ns=ns), secret("d", {"a": b"1"}, "Opaque"))
    path = SECRETS.format(ns=ns) + "/d"
    code, _ = cluster.call("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]})
    assert code == 200 and cluster.call("GET", path)[0] == 200  # a dry run: still there
    code, body = cluster.call("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1",
                                              "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})
    assert code == 409 and "Precondition failed" in body["message"]
    code, _ = cluster.call("DELETE", path + "?dryRun=All", {"kind": "DeleteOptions", "apiVersion": "v1"})
    assert code == 200 and cluster.call("GET", path)[0] == 404  # the query was not read


def test_a_request_body_over_3_mib_is_refused(cluster, ns) -> None:
    # just over the limit: a real server drains the little that is left and the answer arrives
    big = secret("big", {"a": b"x" * 2_435_000}, "Opaque")  # base64: about 100 KB over 3 MiB
    code, body = cluster.call("POST", SECRETS.format(ns=ns), big)
    assert code == 413 and "Request entity too large" in body.get("message", "")
