"""istiod's merge of Gateway API routes: precedence order, GRPCRoutes, and the releases that
merge HTTPRoutes and GRPCRoutes apart (kubectl_gwdup/istiod/route_merging.py)."""
from __future__ import annotations

import copy
from typing import Any, Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayapi_translate import _before as _less  # sortHTTPRoutes' comparator, as istiod writes it
from kubectl_gwdup import controlplane
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import RawObjects, Settings, build_inventory, parse_virtual_services
from kubectl_gwdup.istiod.route_merging import sort_http_routes
from kubectl_gwdup.model import Input
from kubectl_gwdup.sources.files import load_files


def test_a_longer_prefix_written_later_still_takes_its_paths(scenario_files) -> None:
    """gwapi_route_precedence: /api/v2 (newer) goes to site before /api (older) is tried, so
    only the paths under /api but not under /api/v2 are misrouted."""
    report = registry.run(build_inventory(load_files(scenario_files("gwapi_route_precedence"))))
    misrouted = [f for f in report.findings if f.code == "GWD0102"]
    assert [r["path"] for f in misrouted for r in f.detail["requests"]] == ["/api/v2x"]
    not_found = [f for f in report.findings if f.code == "GWD0101" and f.detail["hosts"] == ["b.example.com"]]
    assert sorted(r["path"] for f in not_found for r in f.detail["requests"]) == ["/", "/pkg.Svc"]


def _route(kind: str, ns: str, name: str, created: str, match: Dict[str, Any], backend: str) -> Dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
            "spec": {"parentRefs": [{"name": "web", "namespace": "apps"}], "hostnames": ["a.example.com"],
                     "rules": [{"matches": [match], "backendRefs": [{"name": backend, "port": 80}]}]}}


def _raw(grpc_namespace: str) -> RawObjects:
    raw = RawObjects(source="test")
    raw.gateway_api.gateways.append({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"gatewayClassName": "istio", "listeners": [
            {"name": "a", "hostname": "*.example.com", "port": 80, "protocol": "HTTP",
             "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
    raw.gateway_api.http_routes.append(_route("HTTPRoute", "apps", "http", "2024-01-01T00:00:00Z",
                                              {"path": {"type": "PathPrefix", "value": "/api"}}, "api"))
    raw.gateway_api.grpc_routes.append(_route("GRPCRoute", grpc_namespace, "grpc", "2024-01-02T00:00:00Z",
                                              {"method": {"service": "pkg.Svc", "method": "Get"}}, "grpc"))
    raw.gateway_api.routes_read = True
    raw.available.add(Input.SERVICES)
    return raw


def _routes(raw: RawObjects, version: str) -> List[List[str]]:
    cp = controlplane.from_flag(version)
    vss, notes = parse_virtual_services(raw, Settings(grpc_routes_joined=cp.grpc_routes_joined))
    return [list(v.route_ids) for v in vss], notes


def test_http_and_grpc_routes_of_one_host_merge_as_the_release_does() -> None:
    joined = [["GRPCRoute apps/grpc rules[0].matches[0]", "HTTPRoute apps/http rules[0].matches[0]"]]
    for version in ("1.24", "1.25", "1.30", "1.31"):
        routes, notes = _routes(_raw("apps"), version)
        assert (routes, notes) == (joined, []), version  # one VirtualService; the exact path first
    for version in ("1.26", "1.29"):
        routes, notes = _routes(_raw("apps"), version)
        assert routes == [["HTTPRoute apps/http rules[0].matches[0]"]], version
        assert len(notes) == 1 and "GRPCRoute apps/grpc" in notes[0] and "not programmed" in notes[0]
        # in another namespace the two VirtualServices differ by namespace: both stay, unsorted
        routes, notes = _routes(_raw("other"), version)
        assert routes == [["HTTPRoute apps/http rules[0].matches[0]"], ["GRPCRoute other/grpc rules[0].matches[0]"]]
        assert notes == []


_matches = st.one_of(st.none(), st.fixed_dictionaries({
    "uri": st.one_of(st.none(), st.builds(lambda k, v: {k: v}, st.sampled_from(["exact", "prefix", "regex"]),
                                          st.sampled_from(["/", "/a", "/ab", "/abc"]))),
    "method": st.one_of(st.none(), st.just({"exact": "GET"})),
    "headers": st.dictionaries(st.sampled_from(["x", "y"]), st.just({"exact": "1"}), max_size=2),
    "queryParams": st.dictionaries(st.sampled_from(["q", "r"]), st.just({"exact": "1"}), max_size=2),
}))


@settings(max_examples=300, deadline=None)
@given(st.lists(_matches, max_size=8))
def test_precedence_is_istiods_stable_order(drawn) -> None:
    entries = [({"match": [{k: v for k, v in m.items() if v}]} if m is not None else {}) for m in drawn]
    ids = [str(i) for i in range(len(entries))]
    got, got_ids = sort_http_routes(copy.deepcopy(entries), ids)
    assert sorted(got_ids, key=int) == ids and [entries[int(i)] for i in got_ids] == got
    for i in range(len(got)):
        for j in range(i + 1, len(got)):
            assert not _less(got[j], got[i]), (got[i], got[j])
            if not _less(got[i], got[j]):  # equal in precedence: kept in the order written
                assert int(got_ids[i]) < int(got_ids[j])
