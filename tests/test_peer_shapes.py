"""istio's own test inputs as a peer suite: every shape they hold that bears on which filter
chain and route table answers a TLS connection is one the random differential tests draw.

Read (facts only; our inputs are our own) from istio/istio:
- pilot/pkg/config/kube/gateway/testdata/*.yaml, the inputs of TestConvertResources (istiod's
  Gateway API controller);
- pkg/config/analysis/analyzers/testdata/*.yaml, the inputs of istioctl analyze's analyzers
  (gateway, VirtualService and conflicting-gateway ones).

Each SHAPE names the file(s) it comes from and a test of a drawn manifest list. The draws are
those of tests/test_differential.py (`inventories`, `gateway_api_inventories`), so a shape drawn
here is a shape compared with the real Envoy there. Shapes left out, with why: east-west,
waypoint, mesh (parentRef to a Service), TCP and backend TLS policy inputs (no HTTP route table
behind a TLS-terminating gateway listener), inference pools, and weights (a weighted backend is
compared as a whole, like any other).
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Callable, Dict, Iterable, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings

from test_differential import gateway_api_inventories, gateway_api_manifests, inventories, manifests

Docs = List[dict]


def _kind(docs: Docs, kind: str) -> List[dict]:
    return [d for d in docs if d.get("kind") == kind]


def _servers(docs: Docs) -> Iterable[Tuple[dict, dict]]:
    for g in _kind(docs, "Gateway"):
        for s in (g.get("spec") or {}).get("servers") or []:
            yield g, s


def _listeners(docs: Docs) -> Iterable[Tuple[dict, dict]]:
    for owner in _kind(docs, "Gateway") + _kind(docs, "ListenerSet"):
        for lst in (owner.get("spec") or {}).get("listeners") or []:  # an Istio Gateway has none
            yield owner, lst


def _http(docs: Docs) -> List[List[dict]]:
    return [(d.get("spec") or {}).get("http") or [] for d in _kind(docs, "VirtualService")]


def _route_matches(docs: Docs) -> List[dict]:
    return [m for r in _kind(docs, "HTTPRoute") + _kind(docs, "GRPCRoute")
            for rule in (r.get("spec") or {}).get("rules") or [] for m in rule.get("matches") or []]


def _same_listener_routes(docs: Docs) -> Dict[Tuple[str, str], List[dict]]:
    out: Dict[Tuple[str, str], List[dict]] = {}
    for r in _kind(docs, "HTTPRoute") + _kind(docs, "GRPCRoute"):
        for p in (r.get("spec") or {}).get("parentRefs") or []:
            out.setdefault((p.get("namespace") or r["metadata"]["namespace"], p["name"]), []).append(r)
    return out


def _secrets(docs: Docs) -> set:
    return {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in _kind(docs, "Secret")}


def _istio_shapes() -> Dict[str, Callable[[Docs], bool]]:
    def selects_twice(docs):
        deployments = [d["spec"]["template"]["metadata"]["labels"] for d in _kind(docs, "Deployment")]
        return any(sum(all(lab.get(k) == v for k, v in g["spec"]["selector"].items()) for lab in deployments) > 1
                   for g in _kind(docs, "Gateway"))

    def repeated_host(docs):
        seen = Counter((g["spec"]["selector"].get("istio"), s["port"]["number"], h)
                       for g, s in _servers(docs) for h in s["hosts"])
        return any(n > 1 for n in seen.values())

    return {
        # conflicting-gateways.yaml: two Gateways, one selector, one port, one host
        "conflicting-gateways: a host repeated on one workload and port": repeated_host,
        # conflicting-gateways-subSelector.yaml: a selector matching pods of two Deployments
        "conflicting-gateways-subSelector: one selector, two workloads": selects_twice,
        # conflicting-gateways-multiple-ports.yaml
        "conflicting-gateways-multiple-ports: a Gateway with servers on two ports":
            lambda docs: any(len({s["port"]["number"] for s in g["spec"]["servers"]}) > 1
                             for g in _kind(docs, "Gateway")),
        # gateway-duplicate-certificate.yaml: one credentialName on servers of two Gateways
        "gateway-duplicate-certificate: one credential, two Gateways":
            lambda docs: any(n > 1 for n in Counter(
                (s.get("tls") or {}).get("credentialName") for g in _kind(docs, "Gateway")
                for s in {id(x): x for x in g["spec"]["servers"]}.values() if (s.get("tls") or {}).get("credentialName")
            ).values()) and len(_kind(docs, "Gateway")) > 1,
        # gateway-secrets.yaml, gateway-secrets-validation.yaml: a credentialName with no Secret
        "gateway-secrets: a credentialName without its Secret":
            lambda docs: any((s.get("tls") or {}).get("credentialName") and
                             not any(n == s["tls"]["credentialName"] for _, n in _secrets(docs))
                             for _, s in _servers(docs)),
        # gateway-custom-ingressgateway-translation.yaml, gateway-correct-port.yaml: Service port 443 -> 8443
        "gateway-custom-ingressgateway-translation: a targetPort other than the port":
            lambda docs: any(p.get("targetPort") not in (None, p["port"]) for s in _kind(docs, "Service")
                             for p in s["spec"]["ports"]),
        # eastwest-namedport.yaml (the same question for istiod's port resolution): a named targetPort
        "eastwest-namedport: a named targetPort":
            lambda docs: any(isinstance(p.get("targetPort"), str) for s in _kind(docs, "Service")
                             for p in s["spec"]["ports"]),
        # virtualservice_host_not_found_gateway_with_ns_prefix.yaml: `ns/host` and `./host`
        "virtualservice_host_not_found_gateway_with_ns_prefix: a namespace-scoped server host":
            lambda docs: any("/" in h and not h.startswith("./") for _, s in _servers(docs) for h in s["hosts"]),
        "virtualservice_host_not_found_gateway_with_ns_prefix: a `./` server host":
            lambda docs: any(h.startswith("./") for _, s in _servers(docs) for h in s["hosts"]),
        # virtualservice_gateways.yaml: a VirtualService naming its Gateway as ns/name
        "virtualservice_gateways: gateways named ns/name":
            lambda docs: any("/" in g for v in _kind(docs, "VirtualService") for g in v["spec"].get("gateways") or []),
        # virtualservice_dupmatches.yaml, virtualservice_overlappingmatches.yaml: an entry shadowed by an earlier one
        "virtualservice_overlappingmatches: a catch-all before another entry":
            lambda docs: any(any(not e.get("match") for e in h[:-1]) for h in _http(docs)),
        # virtualservice_jwtclaimroute.yaml (header-keyed routes): a header match, and withoutHeaders
        "virtualservice_jwtclaimroute: a route on a header":
            lambda docs: any("headers" in m for h in _http(docs) for e in h for m in e.get("match") or []),
        "virtualservice_jwtclaimroute: a route on a header's absence":
            lambda docs: any("withoutHeaders" in m for h in _http(docs) for e in h for m in e.get("match") or []),
        # virtualservice_route_rule_no_effects_ingress.yaml: a VirtualService with TLS routes only
        "virtualservice_route_rule_no_effects_ingress: TLS routes only":
            lambda docs: any(v["spec"].get("tls") and not v["spec"].get("http") for v in _kind(docs, "VirtualService")),
        # gateway-no-workload.yaml: a selector nobody's pods carry... drawn as a Gateway on a workload without Service
        "gateway-no-port: a workload without a Service":
            lambda docs: any(g["spec"]["selector"].get("istio") == "edge" for g in _kind(docs, "Gateway")),
        "PASSTHROUGH server with TLS routes (tls.yaml's Istio twin)":
            lambda docs: any((s.get("tls") or {}).get("mode") == "PASSTHROUGH" for _, s in _servers(docs)),
        "a wildcard server host": lambda docs: any(h.startswith("*.") for _, s in _servers(docs) for h in s["hosts"]),
        "a `*` server host": lambda docs: any(h == "*" for _, s in _servers(docs) for h in s["hosts"]),
    }


def _gateway_api_shapes() -> Dict[str, Callable[[Docs], bool]]:
    def isolation(docs):
        for g in _kind(docs, "Gateway"):
            names = [lst.get("hostname") for lst in g["spec"].get("listeners") or []]
            if any(n is None or n.startswith("*") for n in names) and any(n and not n.startswith("*") for n in names):
                return True
        return False

    def listener_set_conflict(docs):
        gateway = {(g["metadata"]["namespace"], g["metadata"]["name"]):
                   {lst.get("hostname") for lst in g["spec"].get("listeners") or []} for g in _kind(docs, "Gateway")}
        return any(lst.get("hostname") in gateway.get((ls["metadata"]["namespace"], ls["spec"]["parentRef"]["name"]), ())
                   for ls in _kind(docs, "ListenerSet") for lst in ls["spec"]["listeners"])

    def precedence(docs):
        for routes in _same_listener_routes(docs).values():
            prefixes = {m["path"]["value"].rstrip("/") for r in routes for rule in r["spec"]["rules"]
                        for m in rule.get("matches") or [] if (m.get("path") or {}).get("type") == "PathPrefix"}
            if any(a != b and b.startswith(a + "/") for a in prefixes for b in prefixes):
                return True
        return False

    def grpc_beside_http(docs):
        return any({r["kind"] for r in routes} == {"HTTPRoute", "GRPCRoute"}
                   for routes in _same_listener_routes(docs).values())

    def foreign_route(docs):
        return any(r["metadata"]["namespace"] != (p.get("namespace") or r["metadata"]["namespace"])
                   for r in _kind(docs, "HTTPRoute") for p in r["spec"]["parentRefs"])

    def strict_merging(docs):
        managed = {g["metadata"]["name"] for g in _kind(docs, "Gateway")
                   if g.get("apiVersion", "").startswith("gateway.") and not g["spec"].get("addresses")}
        return any(g.get("apiVersion", "").startswith("networking.istio.io") and
                   g["spec"].get("selector", {}).get("gateway.networking.k8s.io/gateway-name") in managed
                   for g in _kind(docs, "Gateway"))

    api = lambda d: d.get("apiVersion", "").startswith("gateway.")  # noqa: E731
    return {
        # tls-terminate.yaml, http.yaml (HTTPS): listeners terminating TLS with certificateRefs
        "tls-terminate: an HTTPS listener terminating TLS": lambda docs: any(
            lst["protocol"] == "HTTPS" and lst["tls"].get("mode") == "Terminate" for _, lst in _listeners(docs)),
        "tls-terminate: a TLS listener terminating TLS, with a TLSRoute": lambda docs: any(
            lst["protocol"] == "TLS" and lst["tls"].get("mode") == "Terminate" for _, lst in _listeners(docs))
            and bool(_kind(docs, "TLSRoute")),
        # tls.yaml: Passthrough and TLSRoutes
        "tls: a Passthrough listener with a TLSRoute": lambda docs: any(
            (lst.get("tls") or {}).get("mode") == "Passthrough" for _, lst in _listeners(docs))
            and bool(_kind(docs, "TLSRoute")),
        # isolation.yaml: a wildcard (or unset) hostname beside a more specific one
        "isolation: wildcard and specific listeners on one port": isolation,
        "isolation: a listener without hostname": lambda docs: any(
            "hostname" not in lst for _, lst in _listeners(docs)),
        # listenerset.yaml, listenerset-cross-namespace.yaml
        "listenerset: a ListenerSet admitted by allowedListeners": lambda docs: bool(_kind(docs, "ListenerSet")),
        # listenerset-hostname-conflict.yaml
        "listenerset-hostname-conflict: a ListenerSet listener repeating its Gateway's": listener_set_conflict,
        # reference-policy-tls.yaml, frontend-tls-refgrant.yaml: a certificateRef in another namespace
        "reference-policy-tls: a cross-namespace certificateRef with a ReferenceGrant": lambda docs: any(
            "namespace" in ref for _, lst in _listeners(docs) for ref in (lst.get("tls") or {}).get("certificateRefs") or [])
            and bool(_kind(docs, "ReferenceGrant")),
        "reference-policy-tls: a cross-namespace certificateRef without one": lambda docs: any(
            "namespace" in ref for _, lst in _listeners(docs) for ref in (lst.get("tls") or {}).get("certificateRefs") or [])
            and not _kind(docs, "ReferenceGrant"),
        # invalid.yaml: a certificateRef whose Secret does not exist
        "invalid: a certificateRef without its Secret": lambda docs: any(
            (ref.get("namespace") or o["metadata"]["namespace"], ref["name"]) not in _secrets(docs)
            for o, lst in _listeners(docs) for ref in (lst.get("tls") or {}).get("certificateRefs") or []),
        # route-binding.yaml: sectionName, port, namespaces All and Selector, routes of another namespace
        "route-binding: a parentRef with sectionName": lambda docs: any(
            "sectionName" in p for r in _kind(docs, "HTTPRoute") for p in r["spec"]["parentRefs"]),
        "route-binding: a parentRef with port": lambda docs: any(
            "port" in p for r in _kind(docs, "HTTPRoute") for p in r["spec"]["parentRefs"]),
        "route-binding: allowedRoutes from All": lambda docs: any(
            (lst.get("allowedRoutes") or {}).get("namespaces", {}).get("from") == "All" for _, lst in _listeners(docs)),
        "route-binding: allowedRoutes from a Selector": lambda docs: any(
            (lst.get("allowedRoutes") or {}).get("namespaces", {}).get("from") == "Selector"
            for _, lst in _listeners(docs)),
        "route-binding: a route of another namespace": foreign_route,
        "route-binding: route hostnames against listener hostnames": lambda docs: any(
            r["spec"].get("hostnames") for r in _kind(docs, "HTTPRoute")),
        # route-precedence.yaml: prefixes of several lengths on one listener, an exact path, a regex
        "route-precedence: a longer prefix beside a shorter one": precedence,
        "route-precedence: an Exact path": lambda docs: any(
            (m.get("path") or {}).get("type") == "Exact" for m in _route_matches(docs)),
        "route-precedence: a RegularExpression path": lambda docs: any(
            (m.get("path") or {}).get("type") == "RegularExpression" for m in _route_matches(docs)),
        # http.yaml: header matches
        "http: a header match": lambda docs: any(m.get("headers") for m in _route_matches(docs)),
        # grpc.yaml, http-grpc-same-host.yaml
        "grpc: a GRPCRoute with a method match": lambda docs: any(
            m.get("method") for r in _kind(docs, "GRPCRoute") for rule in r["spec"]["rules"]
            for m in rule.get("matches") or []),
        "http-grpc-same-host: a GRPCRoute beside an HTTPRoute on one Gateway": grpc_beside_http,
        # multi-gateway.yaml, alias: a Gateway on a Service named by spec.addresses
        "multi-gateway: a Gateway on a named Service": lambda docs: any(
            api(g) and g["spec"].get("addresses") for g in _kind(docs, "Gateway")),
        # mismatch.yaml: a Gateway of a class that is not istiod's
        "mismatch: a Gateway of another class": lambda docs: any(
            api(g) and g["spec"].get("gatewayClassName") != "istio" for g in _kind(docs, "Gateway")),
        # (mixed APIs) an Istio Gateway beside Gateway API listeners on the ingress
        "an Istio Gateway beside Gateway API Gateways": lambda docs: any(not api(g) for g in _kind(docs, "Gateway")),
        # pilot/pkg/model/gateway_test.go TestFilterStrictGatewayMerging: an Istio Gateway on a managed Gateway's pods
        "gateway_test TestFilterStrictGatewayMerging: an Istio Gateway on managed pods": strict_merging,
    }


def _drawn(strategy, make, examples: int) -> List[Docs]:
    out: List[Docs] = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy)
    def draw(spec) -> None:
        out.append(make(spec))

    draw()
    return out


EXAMPLES = {"istio": int(os.environ.get("GWDUP_DIFF_EXAMPLES", "200")),
            "gateway_api": int(os.environ.get("GWDUP_DIFF_EXAMPLES", "120"))}


@pytest.mark.parametrize("which", ["istio", "gateway_api"])
def test_istios_test_input_shapes_are_drawn(which, certs) -> None:
    """As many draws as the differential test makes, with its seed: each shape in at least 2%."""
    if which == "istio":
        shapes, drawn = _istio_shapes(), _drawn(inventories, lambda s: manifests(s, certs), EXAMPLES[which])
    else:
        shapes = _gateway_api_shapes()
        drawn = _drawn(gateway_api_inventories, lambda s: gateway_api_manifests(s, certs), EXAMPLES[which])
    counts = {name: sum(1 for docs in drawn if test(docs)) for name, test in shapes.items()}
    rare = {name: n for name, n in counts.items() if n < max(1, len(drawn) // 50)}
    assert not rare, f"shapes drawn too rarely in {len(drawn)} draws: {rare}"
