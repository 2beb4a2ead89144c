"""The Envoy routes istiod builds from a VirtualService's `http` for one gateway server.

Mirrors pilot/pkg/networking/core/route/route.go, the same in every release modelled (Istio
1.24 to controlplane.NEWEST_MODELLED):

- BuildHTTPRoutesForVirtualService: one route per match (one for an `http` entry without
  matches), in order; a match naming other gateways, or another port, gives none
  (translateRoute, sourceMatchHTTP); the first catch-all route ends the list, so later entries
  are never built; no route at all is "no routes matched" and the caller skips the VirtualService.
- TranslateRouteMatch: uri exact -> path, prefix -> prefix, regex -> safe_regex; for a
  VirtualService istiod made of an HTTPRoute (UseGatewaySemantics) a prefix other than `/` is a
  path-separated prefix without its trailing `/`; headers, withoutHeaders (inverted), method,
  authority and scheme (pseudo-header matchers), queryParams; a regex `*` is a presence match;
  ignoreUriCase makes the path match case-insensitive.
- IsCatchAllRoute: a prefix (or separated prefix) `/`, or regex `.*`, and no header or query
  parameter matcher.
- GetDestinationCluster: `outbound|<port>|<subset>|<host>`, the port being the destination's,
  else the Service's only one, else the server's; the host resolved as
  resolveVirtualServiceShortnames does (pilot/pkg/model/virtualservice.go: a name without a dot
  is `<name>.<VirtualService namespace>.svc.cluster.local`). One destination: its cluster; several:
  weighted clusters, a weight of 0 dropped (applyHTTPRouteDestination).

A Route keeps what decides which requests it takes (its match) and where they go (`backend`,
compared as a whole: the same backend means the request reaches the service it was meant for,
whichever table routed it).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple

from ..model import VirtualService
from ..objects import resolve_gateway_name

CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class Matcher:
    """One header (or pseudo-header, or query parameter) matcher of a route."""

    where: str  # "header" | "query"
    name: str  # a header's name lower-case (":method", ":authority", ":scheme" for those fields)
    kind: str  # "exact" | "prefix" | "regex" | "present"
    value: str = ""
    invert: bool = False  # withoutHeaders

    def __str__(self) -> str:
        what = f"{self.name} present" if self.kind == "present" else f"{self.name} {self.kind} {self.value}"
        return ("not " if self.invert else "") + (f"query {what}" if self.where == "query" else what)


@dataclass(frozen=True)
class Route:
    """One Envoy route of a virtual host, as istiod builds it."""

    id: str  # `VirtualService ns/name http[i].match[j]`, or an HTTPRoute's rule as written
    path_kind: str = "prefix"  # "prefix" | "separated" | "exact" | "regex"
    path: str = "/"
    ignore_case: bool = False
    matchers: Tuple[Matcher, ...] = ()
    backend: str = ""  # the cluster(s), redirect or direct response the route answers with

    @property
    def catch_all(self) -> bool:
        """IsCatchAllRoute: it takes every request, so nothing after it is ever reached."""
        path = (self.path_kind in ("prefix", "separated") and self.path == "/") or \
            (self.path_kind == "regex" and self.path == ".*")
        return path and not self.matchers

    def __str__(self) -> str:
        return self.id


def _string_match(m: Any) -> Tuple[str, str]:
    """An Istio StringMatch as (kind, value); none, or the regex `*`, is a presence match
    (canBeConvertedToPresentMatch)."""
    if isinstance(m, Mapping):
        for kind in ("exact", "prefix", "regex"):
            if isinstance(m.get(kind), str):
                if kind == "regex" and m[kind] == "*":
                    break
                return kind, m[kind]
    return "present", ""


def translate_match(match: Optional[Mapping[str, Any]], gateway_semantics: bool
                    ) -> Tuple[str, str, bool, Tuple[Matcher, ...]]:
    """TranslateRouteMatch: (path kind, path, ignore case, matchers)."""
    if not match:
        return "prefix", "/", False, ()
    kind, path = "prefix", "/"
    uri = match.get("uri")
    if isinstance(uri, Mapping):
        k, v = _string_match(uri)
        if k == "exact":
            kind, path = "exact", v
        elif k == "prefix":
            if gateway_semantics and v != "/":
                kind, path = "separated", v[:-1] if v.endswith("/") else v
            else:
                kind, path = "prefix", v
        elif k == "regex":
            kind, path = "regex", v
    matchers: List[Matcher] = []
    for field_name, invert in (("headers", False), ("withoutHeaders", True)):
        headers = match.get(field_name)
        if isinstance(headers, Mapping):
            for name, m in headers.items():
                if str(name).startswith("@request.auth.claims"):
                    k, v = _string_match(m)  # a JWT claim (dynamic metadata): not a header
                    matchers.append(Matcher("claim", str(name), k, v, invert))
                    continue
                k, v = _string_match(m)
                matchers.append(Matcher("header", str(name).lower(), k, v, invert))
    matchers.sort(key=lambda m: m.name)
    for field_name, header in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        if match.get(field_name) is not None:
            k, v = _string_match(match[field_name])
            matchers.append(Matcher("header", header, k, v))
    params = match.get("queryParams")
    if isinstance(params, Mapping):
        for name, m in params.items():
            k, v = _string_match(m)
            matchers.append(Matcher("query", str(name), k, v))
    return kind, path, bool(match.get("ignoreUriCase")), tuple(matchers)


def fqdn(host: str, namespace: str) -> str:
    """resolveVirtualServiceShortnames: a name without a dot is the namespace's Service."""
    if not host or host == "*" or "." in host or ":" in host:
        return host
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}" if namespace else host


def _cluster(destination: Mapping[str, Any], namespace: str, port: int,
             service_ports: Mapping[str, Tuple[int, ...]]) -> str:
    host = fqdn(str(destination.get("host") or ""), namespace)
    if not host:
        return "UnknownService"
    number = (destination.get("port") or {}).get("number") if isinstance(destination.get("port"), Mapping) else None
    if not isinstance(number, int) or isinstance(number, bool):
        known = service_ports.get(host, ())
        number = known[0] if len(known) == 1 else port
    return f"outbound|{number}|{destination.get('subset') or ''}|{host}"


def backend_of(http: Mapping[str, Any], namespace: str, port: int,
               service_ports: Mapping[str, Tuple[int, ...]]) -> str:
    """Where an `http` entry's requests go: a redirect, a direct response, a cluster, or weighted
    clusters (a rewrite is part of it: the backend sees another request)."""
    rewrite = http.get("rewrite")
    suffix = ""
    if isinstance(rewrite, Mapping) and rewrite:
        suffix = " rewrite " + ",".join(f"{k}={rewrite[k]}" for k in sorted(rewrite))
    if isinstance(http.get("redirect"), Mapping):
        r = http["redirect"]
        return "redirect " + ",".join(f"{k}={r[k]}" for k in sorted(r))
    if isinstance(http.get("directResponse"), Mapping):
        d = http["directResponse"]
        body = repr(d.get("body"))
        return f"direct {d.get('status')} {hashlib.sha256(body.encode()).hexdigest()[:12]}"
    dests = [d for d in (http.get("route") or []) if isinstance(d, Mapping) and isinstance(d.get("destination"), Mapping)]
    if len(dests) == 1:
        return _cluster(dests[0]["destination"], namespace, port, service_ports) + suffix
    weighted = sorted(f"{_cluster(d['destination'], namespace, port, service_ports)}={d.get('weight') or 0}"
                      for d in dests if d.get("weight"))
    return "weighted " + ",".join(weighted) + suffix


def build_http_routes(vs: VirtualService, gateway: str, port: int,
                      service_ports: Optional[Mapping[str, Tuple[int, ...]]] = None) -> Tuple[Route, ...]:
    """BuildHTTPRoutesForVirtualService for the server of `gateway` on `port`."""
    out: List[Route] = []
    spec = vs.raw.get("spec") if isinstance(vs.raw.get("spec"), dict) else {}
    entries = spec.get("http") if isinstance(spec.get("http"), list) else []
    gateway_semantics = bool(vs.route_ids)  # one istiod made of an HTTPRoute
    known = service_ports or {}
    for i, http in enumerate(entries):
        if not isinstance(http, dict):
            continue
        backend = backend_of(http, vs.ref.namespace, port, known)
        matches = http.get("match") or []
        if not matches:
            name = vs.route_ids[i] if vs.route_ids else f"{vs.ref} http[{i}]"
            out.append(Route(name, backend=backend))
            break  # a catch-all: nothing after it is built
        caught = False
        for j, match in enumerate(matches):
            if not isinstance(match, dict):
                continue
            gws = match.get("gateways") or []
            if gws and gateway not in {resolve_gateway_name(str(g), vs.ref.namespace) for g in gws}:
                continue
            if match.get("port") not in (None, 0, port):
                continue
            kind, path, ignore_case, matchers = translate_match(match, gateway_semantics)
            name = vs.route_ids[i] if vs.route_ids else f"{vs.ref} http[{i}].match[{j}]"
            route = Route(name, kind, path, ignore_case, matchers, backend)
            out.append(route)
            if route.catch_all:
                caught = True
                break
        if caught:
            break
    return tuple(out)
