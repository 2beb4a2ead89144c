"""Every intermediate state of a merge, on the real Envoy, through the independent translation.

For each family, the product plans the merge; then every prefix of its write sequence is
applied to the manifests as the API server applies it (an update replaces the spec and keeps
the metadata, creationTimestamp included; a delete removes the object), translated by
tests/istiod_translate.py (which never imports kubectl_gwdup) and served by the real Envoy. A
browser-like HTTP/2 client then asks for every host on a connection of its own: each host must
be answered by its old route in every state, never by a 404 and never by another host's route.
"""
from __future__ import annotations

import copy
import os
from typing import Dict, List, Tuple

import pytest
import yaml

from istiod_translate import Envoy, Translation, get, new_workdir
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.plans.merge import plan_merge
from kubectl_gwdup.sources.files import load_files
from test_merge import apply_steps

PORT = 8443  # the Service's targetPort for 443: where the listener is bound


def ts(i: int) -> str:
    return f"2024-03-01T00:00:{i:02d}Z"


def workload() -> List[dict]:
    return [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "ingress-7d4f-abcde", "namespace": "istio-system",
                          "labels": {"istio": "ingressgateway", "pod-template-hash": "7d4f"}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "istio-system"},
             "spec": {"selector": {"istio": "ingressgateway"}, "ports": [{"name": "https", "port": 443, "targetPort": PORT}]}}]


def gateway(ns: str, name: str, hosts: List[str], cred: str, t: int) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts(t)},
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": hosts,
                 "tls": {"mode": "SIMPLE", "credentialName": cred}}]}}


def vs(ns: str, name: str, hosts: List[str], gateways: List[str], t: int, http=None) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts(t)},
            "spec": {"hosts": hosts, "gateways": gateways,
                     "http": http or [{"route": [{"destination": {"host": f"{name}.{ns}.svc.cluster.local"}}]}]}}


def secret(certs, name: str, *sans: str) -> dict:
    leaf = certs.leaf(*sans, tag=name)
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "istio-system"},
            "stringData": {"tls.crt": leaf.cert_pem.decode(), "tls.key": leaf.key_pem.decode()}}


def seed(certs) -> Tuple[List[dict], List[Tuple[str, str]]]:
    docs = workload() + [
        gateway("team-a", "gw-a", ["team-a/a.example.com"], "shared", 1),
        gateway("team-b", "gw-b", ["b.example.com"], "shared", 2),
        secret(certs, "shared", "a.example.com", "b.example.com"),
        vs("team-a", "a", ["a.example.com"], ["gw-a"], 3), vs("team-b", "b", ["b.example.com"], ["gw-b"], 4)]
    return docs, [("a.example.com", "/"), ("b.example.com", "/")]


def wildcard_family(certs) -> Tuple[List[dict], List[Tuple[str, str]]]:
    """A wildcard server and two specific ones on one wildcard certificate; the wildcard's
    catch-all VirtualService is the newest, so it never answers the specific hosts."""
    docs = workload() + [
        gateway("web", "gw-w", ["*.example.com"], "wild", 1),
        gateway("shop", "gw-x", ["x.example.com"], "wild", 2),
        gateway("pay", "gw-y", ["y.example.com"], "wild", 3),
        secret(certs, "wild", "*.example.com"),
        vs("shop", "x", ["x.example.com"], ["gw-x"], 4, http=[
            {"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": "api"}}]},
            {"route": [{"destination": {"host": "x"}}]}]),
        vs("pay", "y", ["y.example.com"], ["gw-y"], 5),
        vs("web", "web", ["*.example.com"], ["gw-w"], 6)]
    return docs, [("x.example.com", "/"), ("x.example.com", "/api/v1"), ("y.example.com", "/"),
                  ("z.example.com", "/")]


def namespaces_family(certs) -> Tuple[List[dict], List[Tuple[str, str]]]:
    """Three Gateways in three namespaces on one certificate; a VirtualService of another
    namespace binds one of them by `ns/name`, another routes per gateway (match.gateways)."""
    docs = workload() + [
        gateway("ns-a", "gw-a", ["a.example.org"], "org", 1),
        gateway("ns-b", "gw-b", ["b.example.org"], "org", 2),
        gateway("ns-c", "gw-c", ["./c.example.org"], "org", 3),
        secret(certs, "org", "a.example.org", "b.example.org", "c.example.org"),
        vs("ns-a", "a", ["a.example.org"], ["gw-a"], 4),
        vs("ns-b", "b", ["b.example.org"], ["gw-b"], 5, http=[
            {"match": [{"uri": {"prefix": "/only-b"}, "gateways": ["gw-b"]}], "route": [{"destination": {"host": "ob"}}]},
            {"route": [{"destination": {"host": "b"}}]}]),
        vs("ns-c", "c", ["c.example.org"], ["ns-c/gw-c"], 6),
        vs("ns-a", "shared", ["b.example.org"], ["ns-b/gw-b"], 7, http=[
            {"match": [{"uri": {"prefix": "/shared"}}], "route": [{"destination": {"host": "s"}}]}])]
    return docs, [("a.example.org", "/"), ("b.example.org", "/"), ("b.example.org", "/only-b"),
                  ("b.example.org", "/shared"), ("c.example.org", "/")]


def namespaced_wildcard_family(certs) -> Tuple[List[dict], List[Tuple[str, str]]]:
    """An older catch-all wildcard VirtualService in one namespace and a specific one in another:
    in one server the wildcard's route would come first for b; spelled `ns/host`, each host binds
    only its own namespace's VirtualServices, and b keeps its backend."""
    docs = workload() + [
        gateway("web", "gw-w", ["*.example.net"], "net-wild", 1),
        gateway("shop", "gw-b", ["b.example.net"], "net-wild", 2),
        secret(certs, "net-wild", "*.example.net"),
        vs("web", "web", ["*.example.net"], ["gw-w"], 3),
        vs("shop", "b", ["b.example.net"], ["gw-b"], 4)]
    return docs, [("b.example.net", "/"), ("www.example.net", "/")]


def plan_of(docs: List[dict]) -> dict:
    path = os.path.join(new_workdir(), "manifests.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f)
    raw = load_files([path])
    inv = build_inventory(raw)
    return plan_merge(raw, inv, registry.run(inv).findings).to_dict()


def answers(docs: List[dict], certs, requests: List[Tuple[str, str]]) -> Dict[Tuple[str, str], Tuple[int, str]]:
    passthrough = certs.leaf("passthrough.invalid", tag="upstream")
    t = Translation(docs, new_workdir(), (passthrough.cert_path, passthrough.key_path))
    (port,) = [p for (proxy, bound), p in t.ports.items() if bound == PORT]
    with Envoy(t):
        return {(host, path): get(port, host, host, certs.ca_cert, path) for host, path in requests}


@pytest.mark.parametrize("family", [seed, wildcard_family, namespaces_family, namespaced_wildcard_family])
def test_every_prefix_of_the_writes_serves_every_host_with_its_own_routes(certs, family) -> None:
    docs, requests = family(certs)
    doc = plan_of(docs)
    steps = doc["steps"]
    assert steps and steps[-1]["action"] == "delete", doc["notes"]
    before = answers(docs, certs, requests)
    assert all(status == 200 for status, _ in before.values()), before
    for k in range(1, len(steps) + 1):
        now = answers(apply_steps(docs, steps[:k]), certs, requests)
        assert now == before, (k, steps[k - 1]["phase"], steps[k - 1]["name"])


def checkout_shape(certs) -> List[dict]:
    """A wildcard VirtualService older than a specific one of the same namespace: merged into one
    server, istiod would append the catch-all of the older first, and it would answer checkout."""
    return workload() + [
        gateway("shop", "gw-store", ["*.shop.example.com"], "shop-wild", 1),
        gateway("shop", "gw-checkout", ["checkout.shop.example.com"], "shop-wild", 2),
        secret(certs, "shop-wild", "*.shop.example.com"),
        vs("shop", "storefront", ["*.shop.example.com"], ["gw-store"], 3),
        vs("shop", "checkout", ["checkout.shop.example.com"], ["gw-checkout"], 4)]


def test_a_merge_that_would_send_checkout_to_the_storefront_is_declined(certs) -> None:
    docs = checkout_shape(certs)
    doc = plan_of(docs)
    assert doc["steps"] == []
    assert any("checkout.shop.example.com" in n and "shop/storefront" in n for n in doc["notes"]), doc["notes"]
    # the decline is right: the naive merge, on the real Envoy, answers checkout from the storefront
    ask = [("checkout.shop.example.com", "/"), ("www.shop.example.com", "/")]
    before = answers(docs, certs, ask)
    assert before[ask[0]] == (200, "shop/checkout#http[0]")
    naive = copy.deepcopy(docs)
    naive = [d for d in naive if d["metadata"]["name"] != "gw-checkout"]
    store = next(d for d in naive if d["metadata"]["name"] == "gw-store")
    store["spec"]["servers"][0]["hosts"].append("checkout.shop.example.com")
    next(d for d in naive if d["metadata"]["name"] == "checkout")["spec"]["gateways"] = ["shop/gw-store"]
    assert answers(naive, certs, ask)[ask[0]] == (200, "shop/storefront#http[0]")


def test_virtual_services_of_two_namespaces_are_kept_apart_with_ns_hosts(certs) -> None:
    docs, _ = namespaced_wildcard_family(certs)
    doc = plan_of(docs)
    assert [(s["phase"], s["name"]) for s in doc["steps"]] == [
        ("bind", "b"), ("qualify", "gw-b"), ("merge", "gw-w"), ("unbind", "b"), ("delete", "gw-b")]
    assert doc["steps"][1]["spec"]["servers"][0]["hosts"] == ["shop/b.example.net"]
    assert doc["steps"][2]["spec"]["servers"][0]["hosts"] == ["web/*.example.net", "shop/b.example.net"]
