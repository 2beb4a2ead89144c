"""The outcome per request: istiod's route translation (kubectl_gwdup/istiod/route.py) and the
classes of requests check reports (kubectl_gwdup/analysis/request_classes.py).

The property tests judge route tables against a brute force written here, from Envoy's
documentation of RouteMatch (envoy/config/route/v3/route_components.proto), not from the code
under test: every request of a wide set is routed by both tables, and the outcomes that occur
must be the outcomes check reports, each shown by a request that really gets it."""
from __future__ import annotations

import re

from typing import Dict, Optional, Sequence, Tuple

from hypothesis import HealthCheck, given, settings, strategies as st

from kubectl_gwdup.analysis.request_classes import OTHER_PATH, Request, judge_requests
from kubectl_gwdup.istiod.route import Matcher, Route, build_http_routes, fqdn, translate_match
from kubectl_gwdup.model import Outcome, Ref, RouteSource, VirtualService


# --- istiod's translation -----------------------------------------------------------------------

def _vs(http: list, namespace: str = "web", route_ids: Tuple[str, ...] = ()) -> VirtualService:
    raw = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "v", "namespace": namespace}, "spec": {"hosts": ["a.example.com"], "http": http}}
    return VirtualService(ref=Ref("VirtualService", namespace, "v"), hosts=("a.example.com",),
                          gateways=("web/gw",), route_gateways=(), raw=raw, route_ids=route_ids)


def test_a_virtual_service_prefix_is_a_string_prefix_and_an_http_route_one_whole_segments() -> None:
    assert translate_match({"uri": {"prefix": "/api"}}, False)[:2] == ("prefix", "/api")
    # UseGatewaySemantics: a PathPrefix /api/ is the separated prefix /api; `/` stays a prefix
    assert translate_match({"uri": {"prefix": "/api/"}}, True)[:2] == ("separated", "/api")
    assert translate_match({"uri": {"prefix": "/"}}, True)[:2] == ("prefix", "/")
    assert translate_match({"uri": {"exact": "/login"}, "ignoreUriCase": True}, False)[:3] == ("exact", "/login", True)


def test_header_matchers_as_istiod_writes_them() -> None:
    _, _, _, matchers = translate_match({"headers": {"X-Canary": {"exact": "1"}, "x-any": {"regex": "*"}},
                                         "withoutHeaders": {"x-off": {}}, "method": {"exact": "POST"},
                                         "queryParams": {"v": {"prefix": "2"}}}, False)
    assert matchers == (Matcher("header", "x-any", "present"), Matcher("header", "x-canary", "exact", "1"),
                        Matcher("header", "x-off", "present", invert=True), Matcher("header", ":method", "exact", "POST"),
                        Matcher("query", "v", "prefix", "2"))


def test_short_names_are_services_of_the_virtual_service_namespace() -> None:
    assert fqdn("shop", "web") == "shop.web.svc.cluster.local"
    assert fqdn("shop.other", "web") == "shop.other"  # a dot: taken as written
    assert fqdn("*", "web") == "*"


def test_the_first_catch_all_ends_the_routes() -> None:
    routes = build_http_routes(_vs([{"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": "api"}}]},
                                    {"match": [{"uri": {"prefix": "/"}}], "route": [{"destination": {"host": "site"}}]},
                                    {"match": [{"uri": {"prefix": "/never"}}], "route": [{"destination": {"host": "x"}}]}]),
                               "web/gw", 443, {"api.web.svc.cluster.local": (8080,)})
    assert [(r.path, r.backend) for r in routes] == [("/api", "outbound|8080||api.web.svc.cluster.local"),
                                                     ("/", "outbound|443||site.web.svc.cluster.local")]
    assert routes[-1].catch_all and not routes[0].catch_all


def test_a_match_for_another_gateway_or_port_builds_no_route() -> None:
    routes = build_http_routes(_vs([{"match": [{"gateways": ["other"], "uri": {"prefix": "/a"}},
                                               {"port": 8443, "uri": {"prefix": "/b"}},
                                               {"gateways": ["gw"], "uri": {"prefix": "/c"}}],
                                     "route": [{"destination": {"host": "x"}}]}]), "web/gw", 443)
    assert [r.path for r in routes] == ["/c"]


# --- the requests check reports, against a brute force --------------------------------------------

def _path_holds(kind: str, value: str, ignore_case: bool, path: str) -> bool:
    if ignore_case and kind != "regex":
        value, path = value.lower(), path.lower()
    if kind == "exact":
        return path == value
    if kind == "regex":  # safe_regex: the whole path (ignoreUriCase does not reach a regex)
        return re.fullmatch(value, path) is not None
    if kind == "prefix":
        return path[:len(value)] == value
    # path_separated_prefix: the value, then the end of the path or a `/`
    return path[:len(value)] == value and (len(path) == len(value) or path[len(value)] == "/")


def _header_holds(m: Matcher, headers: Dict[str, str]) -> bool:
    got = headers.get(m.name)
    if got is None and m.invert and m.kind != "present":
        got = ""  # istiod's withoutHeaders value match: treat_missing_header_as_empty
    held = got is not None and (m.kind == "present" or (m.kind == "exact" and got == m.value)
                                or (m.kind == "prefix" and got[:len(m.value)] == m.value))
    return held != m.invert


def _picks(routes: Sequence[Route], path: str, headers: Dict[str, str]) -> Optional[Route]:
    for r in routes:
        if _path_holds(r.path_kind, r.path, r.ignore_case, path) and all(_header_holds(m, headers) for m in r.matchers):
            return r
    return None


def _outcome(mine: Sequence[Route], theirs: Sequence[Route], path: str, headers: Dict[str, str]) -> Optional[str]:
    own = _picks(theirs, path, headers)
    if own is None:
        return None  # B's own table does not answer it: nothing lost
    got = _picks(mine, path, headers)
    if got is None:
        return "NotFound"
    return None if got.backend == own.backend else "Misrouted"


# every path drawn, at, just past, below and beside it, in other cases, and paths nobody names
DRAWN = ["/", "/api", "/api/", "/login", "/a", "/API"]
PATHS = sorted({v for p in DRAWN for q in (p, p.upper(), p.capitalize()) for v in (q, q + "x", q + "/", q.rstrip("/") + "/x")}
               | {OTHER_PATH, "/zz", "/apix/y", "//", "/a12", "/a1/x", "/login/x", "/api/x/y", "/zx", "/api/v2x"})
# regex routes as users write them (path classes only these tell apart, and ones they share)
REGEXES = ["/api/.*", "/a[0-9]+", "/(login|api)/x", "/.*x", "/api/v[0-9]+x?"]
VALUES = [None, "", "1", "10", "b", "bo", "bob", "2"]  # each drawn value, values beyond and before it, another
HEADER_SETS = [{k: v for k, v in (("x-canary", c), ("x-user", u)) if v is not None} for c in VALUES for u in VALUES]

matchers = st.builds(Matcher, st.just("header"), st.sampled_from(["x-canary", "x-user"]),
                     st.sampled_from(["exact", "prefix", "present"]), st.sampled_from(["1", "b", "bob", ""]), st.booleans())
routes = st.one_of(
    st.builds(Route, st.text("abc", min_size=1, max_size=3), st.sampled_from(["prefix", "separated", "exact"]),
              st.sampled_from(DRAWN), st.booleans(), st.lists(matchers, max_size=2).map(tuple),
              st.sampled_from(["web", "api", "shop"])),
    st.builds(Route, st.text("abc", min_size=1, max_size=3), st.just("regex"), st.sampled_from(REGEXES),
              st.just(False), st.lists(matchers, max_size=1).map(tuple), st.sampled_from(["web", "api", "shop"])))


def _as_istiod_writes(i: int, r: Route) -> Route:
    """Route ids unique within a table; a separated prefix never ends in `/` (Envoy refuses it;
    istiod trims it, and keeps `/` a plain prefix); no empty prefix."""
    kind, path = r.path_kind, r.path
    if kind == "separated":
        path = path.rstrip("/")
        kind, path = ("separated", path) if path else ("prefix", "/")
    # Envoy refuses an empty prefix match
    matchers = tuple(Matcher(m.where, m.name, "exact", "", m.invert) if m.kind == "prefix" and not m.value else m
                     for m in r.matchers)
    return Route(f"r{i}-{r.id}", kind, path, r.ignore_case, matchers, r.backend)


tables = st.lists(routes, max_size=4).map(lambda rs: tuple(_as_istiod_writes(i, r) for i, r in enumerate(rs)))


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tables, tables)
def test_the_reported_outcomes_are_those_requests_get(mine, theirs) -> None:
    judged = judge_requests(RouteSource("VirtualService web/a", routes=mine) if mine else None,
                            RouteSource("VirtualService shop/b", routes=theirs))
    occurring = {o for p in PATHS for h in HEADER_SETS for o in [_outcome(mine, theirs, p, h)] if o}
    reported = {outcome.value for outcome, _ in judged}
    if not (not mine and theirs and theirs[0].catch_all):  # no virtual host: 404 for all, taken as said
        assert reported == occurring, (judged, occurring)
    for outcome, requests in judged:
        for r in requests:  # each example gets what it is said to get
            assert _outcome(mine, theirs, r.path, dict(r.headers)) == outcome.value, (outcome, r)
        if not requests:  # "every request": no request B's table answers escapes it
            for p in PATHS:
                for h in HEADER_SETS:
                    assert _outcome(mine, theirs, p, h) in (None, outcome.value) or _picks(theirs, p, h) is None


def test_same_backend_by_other_routes_is_no_hazard() -> None:
    mine = (Route("w0", "prefix", "/api", backend="api"), Route("w1", backend="shop"))
    theirs = (Route("c0", "prefix", "/api", backend="api"), Route("c1", backend="shop"))
    assert judge_requests(RouteSource("VirtualService web/w", routes=mine),
                          RouteSource("VirtualService shop/c", routes=theirs)) == ()
    only_b = (Route("b0", backend="shop"),)
    judged = judge_requests(RouteSource("VirtualService web/w", routes=mine), RouteSource("VirtualService shop/b", routes=only_b))
    assert [(o, [r.path for r in rs]) for o, rs in judged] == [(Outcome.MISROUTED, ["/api"])]


def test_a_request_label_is_what_a_client_sends() -> None:
    assert Request("GET", "/api", (("x-canary", "1"),)).label() == "/api with x-canary: 1"
    assert Request("POST", OTHER_PATH).label() == "POST other paths"
    assert Request("GET", "/", (), (("v", "2"),)).to_dict()["label"] == "/?v=2"


def test_a_regex_route_gets_paths_it_takes() -> None:
    """Each branch of an alternative, each repeat at its minimum and once more; nothing for what
    Python's parser reads but a plain string cannot stand for (a back-reference)."""
    from kubectl_gwdup.analysis.regex_samples import samples

    assert samples("/api/.*") == ["/api/", "/api/x"]
    assert samples("/(login|api)/x") == ["/login/x", "/api/x"]
    assert samples("/api/v[0-9]+/\\w+") == ["/api/v0/x", "/api/v00/xx"]
    assert samples("/(a)\\1") == [] and samples("(") == []
    # a manifest's pattern is a stranger's: a huge repeat writes nothing, rather than gigabytes
    assert samples("/x{1000000000}") == [] and samples("/(x{100}){100}") == [] and samples("/a{3}") == ["/aaa"]
    for pattern in REGEXES:
        assert samples(pattern) and all(re.fullmatch(pattern, p) for p in samples(pattern))
