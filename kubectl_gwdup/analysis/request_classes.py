"""What one request for a host gets from a route table, as Envoy picks the route, and what the
requests for a host get on another host's connection, class by class.

Envoy answers a request with the first route of the virtual host whose match it satisfies
(envoy/config/route/v3/route_components.proto RouteMatch): `prefix` the path begins with it,
`path` the path without its query is it, `path_separated_prefix` the path is it or continues
with `/`, `safe_regex` the whole path without its query matches; case-insensitive paths when
`case_sensitive` is false; every header and query parameter matcher must hold (an inverted one
must not). No route: 404.

So with route matches, what a request for B gets on A's connection depends on its path and
headers: A's table may send `/api` to the wrong backend and answer 404 for the rest, or send
every path to the very backend B's own table would. The requests a client can send fall into
classes: within one, both tables pick the same routes. One request of each class decides it.
The classes are found from the matchers of both tables: each path a matcher names, just past
it, below it, and beside it; a path none names; and for each header or query parameter a
matcher names: absent, each value named, one just past it, one none names (every combination
up to MAX_SHAPES, else each route's own request and those with one value changed). Regexes are
tried with those requests only. A withoutHeaders value match takes a missing header as empty
(istiod sets treat_missing_header_as_empty, route.go TranslateRouteMatch).
"""
from __future__ import annotations

import functools
import itertools
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..istiod.route import Matcher, Route
from ..model import Outcome, RouteSource
from . import regex_samples

OTHER_PATH = "/.gwdup-unnamed-path"  # a path no matcher names (one of Envoy's own would be a guess)


class Request(NamedTuple):
    method: str
    path: str
    headers: Tuple[Tuple[str, str], ...] = ()  # lower-case names
    query: Tuple[Tuple[str, str], ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        """The request as a report gives it: a client (or a test) can send it as it is."""
        return {"label": self.label(), "method": self.method, "path": self.path,
                "headers": dict(self.headers), "query": dict(self.query)}

    def label(self) -> str:
        """How a report names the class of this request."""
        path = "other paths" if self.path == OTHER_PATH else self.path
        if self.query:
            path += "?" + "&".join(f"{k}={v}" for k, v in self.query)
        head = "" if self.method == "GET" else f"{self.method} "
        tail = "".join(f" with {k}: {v}" for k, v in self.headers)
        return head + path + tail


def _string(kind: str, value: str, got: Optional[str], ignore_case: bool = False) -> bool:
    if got is None:
        return False
    if kind == "present":
        return True
    if ignore_case:
        got, value = got.lower(), value.lower()
    if kind == "exact":
        return got == value
    if kind == "prefix":
        return got.startswith(value)
    try:
        return re.fullmatch(value, got) is not None
    except re.error:  # RE2 syntax Python does not read: the route is not taken by these requests
        return False


def _path(route: Route, path: str) -> bool:
    value, got = route.path, path
    if route.ignore_case and route.path_kind != "regex":
        value, got = value.lower(), got.lower()
    if route.path_kind == "prefix":
        return got.startswith(value)
    if route.path_kind == "exact":
        return got == value
    if route.path_kind == "separated":
        return got == value or got.startswith(value + "/")
    return _string("regex", value, got)


def _matcher(m: Matcher, request: Request, authority: str) -> bool:
    if m.where == "query":
        got = dict(request.query).get(m.name)
    elif m.where == "claim":
        got = None  # a JWT claim: no request here carries a token
    elif m.name == ":method":
        got = request.method
    elif m.name == ":authority":
        got = authority
    elif m.name == ":scheme":
        got = "https"
    else:
        got = dict(request.headers).get(m.name)
        if got is None and m.invert and m.kind != "present":
            got = ""  # istiod sets treat_missing_header_as_empty on a withoutHeaders value match
    return _string(m.kind, m.value, got) != m.invert


def route_for(routes: Sequence[Route], request: Request, authority: str) -> Optional[Route]:
    """The route Envoy picks for the request: the first whose match holds."""
    for r in routes:
        if _path(r, request.path) and all(_matcher(m, request, authority) for m in r.matchers):
            return r
    return None


Shape = Tuple[str, Tuple[Tuple[str, str], ...], Tuple[Tuple[str, str], ...]]  # method, headers, query
Field = Tuple[str, str]  # ("header" | "query", name)


def _named(routes: Sequence[Route]) -> Dict[Field, List[Matcher]]:
    """The matchers per header (or parameter) a request can set (`:authority` and `:scheme`
    are the request's own; a JWT claim no request here carries)."""
    out: Dict[Field, List[Matcher]] = {}
    for r in routes:
        for m in r.matchers:
            if m.where != "claim" and m.name not in (":authority", ":scheme"):
                out.setdefault((m.where, m.name), []).append(m)
    return out


def _shape(values: Sequence[Tuple[Field, Optional[str]]]) -> Shape:
    method, headers, query = "GET", [], []
    for (where, name), value in values:
        if value is None:
            continue
        if name == ":method":
            method = value
        elif where == "query":
            query.append((name, value))
        else:
            headers.append((name, value))
    return method, tuple(headers), tuple(query)


def _holds(ms: Sequence[Matcher], field: Field, value: Optional[str]) -> bool:
    where, name = field
    given = () if value is None else ((name, value),)
    probe = Request(value if name == ":method" and value is not None else "GET", "/",
                    given if where == "header" else (), given if where == "query" else ())
    return all(_matcher(m, probe, "") for m in ms)


def _options(matchers: Sequence[Matcher]) -> List[Optional[str]]:
    """Values worth trying for one header: absent, each value a matcher names, one just past
    it, and one none names."""
    out: Dict[Optional[str], None] = {None: None}
    for m in matchers:
        if m.kind != "regex" or re.escape(m.value) == m.value:
            out[m.value] = None
            out[m.value + "-gwdup"] = None
    out["gwdup"] = None
    return list(out)


def _satisfying(route: Route) -> Optional[Shape]:
    """A request that satisfies the route's matchers, or None when none is found: per header
    (or parameter), the first value worth trying that all its matchers hold for (absent first)."""
    if any(m.where == "claim" and not m.invert for m in route.matchers):
        return None
    chosen: List[Tuple[Field, Optional[str]]] = []
    for field, ms in sorted(_named([route]).items()):
        value = next((v for v in _options(ms) if _holds(ms, field, v)), False)
        if value is False:
            return None
        chosen.append((field, value))
    return _shape(chosen)


def _paths(routes: Sequence[Route]) -> List[str]:
    out: Dict[str, None] = {"/": None}
    for r in routes:
        if r.path_kind == "regex":  # paths the pattern takes, so that its route is judged too
            out.update((p, None) for p in regex_samples.samples(r.path) if p.startswith("/"))
            continue
        v = r.path
        for p in (v, v.rstrip("/") + "/", v.rstrip("/") + "/x", v + "x"):
            out[p] = None
            if r.ignore_case:
                out[p.upper()] = None
    out[OTHER_PATH] = None
    return list(out)


MAX_SHAPES = 64  # header and parameter combinations tried in full; beyond, one change at a time


def _shapes(routes: Sequence[Route]) -> List[Shape]:
    named = _named(routes)
    keys = sorted(named)
    options = [_options(named[k]) for k in keys]
    total = 1
    for o in options:
        total *= len(o)
    if total <= MAX_SHAPES:
        combos = list(itertools.product(*options))
    else:  # each route's own request, and each of those with one header changed
        combos = [tuple(None for _ in keys)]
        for method, headers, query in (s for s in (_satisfying(r) for r in routes if r.matchers) if s is not None):
            given: Dict[Field, Optional[str]] = {("header", n): v for n, v in headers}
            given.update({("query", n): v for n, v in query})
            if method != "GET":
                given[("header", ":method")] = method
            row = tuple(given.get(k) for k in keys)
            combos.append(row)
            combos += [row[:i] + (v,) + row[i + 1:] for i, o in enumerate(options) for v in o if v != row[i]]
    return list(dict.fromkeys(_shape(list(zip(keys, row))) for row in combos))


def candidates(routes: Sequence[Route]) -> List[Request]:
    """One request per class the routes can tell apart (and some more)."""
    return [Request(method, path, headers, query) for method, headers, query in _shapes(routes)
            for path in _paths(routes)]


Judgement = Tuple[Tuple[Outcome, Tuple[Request, ...]], ...]


def judge_requests(mine: Optional[RouteSource], theirs: RouteSource, authority: str = "") -> Judgement:
    """What requests that B's own table (`theirs`) answers get from `mine` (None: no virtual
    host, a 404 for all): per outcome, the classes of requests it holds for by a request of
    each (() when it holds for every request B's table answers). A request B's own table does
    not answer either is no loss; one the other table sends to the same backend is none."""
    mine_routes = mine.routes if mine is not None else ()
    uses_authority = any(m.name == ":authority" for r in mine_routes + theirs.routes for m in r.matchers)
    backends: Dict[str, int] = {}
    return _judge(_shape_of(mine_routes, "m", backends), _shape_of(theirs.routes, "t", backends),
                  authority if uses_authority else "")


def _shape_of(routes: Sequence[Route], side: str, backends: Dict[str, int]) -> Tuple[Route, ...]:
    """The routes with what the judgement does not read renamed: ids by position, backends by
    first appearance across both tables (only which are equal matters, and which answer 404),
    so that the many pairs of tables written alike (one per Gateway of a team, say) are judged
    once."""
    out = []
    for i, r in enumerate(routes):
        n = backends.setdefault(r.backend, len(backends))
        backend = f"direct 404 #{n}" if r.backend.startswith("direct 404 ") else f"#{n}"
        out.append(Route(f"{side}{i}", r.path_kind, r.path, r.ignore_case, r.matchers, backend))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _judge(mine_routes: Tuple[Route, ...], theirs_routes: Tuple[Route, ...], authority: str) -> Judgement:
    if not mine_routes and theirs_routes and theirs_routes[0].catch_all:
        return ((Outcome.NOT_FOUND, ()),)
    per: Dict[Outcome, Dict[Tuple[str, str], Request]] = {}
    answered: Dict[Tuple[str, str], None] = {}
    for request in candidates(mine_routes + theirs_routes):
        own = route_for(theirs_routes, request, authority)
        if own is None:
            continue
        got = route_for(mine_routes, request, authority)
        signature = (got.id if got else "", own.id)
        answered[signature] = None
        if got is not None and got.backend == own.backend:
            continue
        outcome = Outcome.NOT_FOUND if got is None or got.backend.startswith("direct 404 ") else Outcome.MISROUTED
        per.setdefault(outcome, {}).setdefault(signature, request)
    out = []
    for outcome in sorted(per, key=lambda o: o.value):
        classes = per[outcome]
        every = len(per) == 1 and len(classes) == len(answered)
        out.append((outcome, () if every else tuple(classes.values())))
    return tuple(out)
