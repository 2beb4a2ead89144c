"""A Gateway API route rule's match as the Istio HTTPMatchRequest istiod writes for it.

Mirrors pilot/pkg/config/kube/gateway/conversion.go, the same from Istio 1.24 to
controlplane.NEWEST_MODELLED:

- convertHTTPRoute: createURIMatch (PathPrefix, the default, loses a trailing `/` unless it is
  `/` alone; Exact; RegularExpression), createHeadersMatch and createQueryParamsMatch (Exact, the
  default, or RegularExpression), createMethodMatch (exact).
- convertGRPCRoute: createGRPCURIMatch turns `/<service>/<method>` into a path match (Exact:
  service and method an exact path, service alone a prefix `/<service>/`, method alone the regex
  `/[^/]+/<method>`; RegularExpression: regexes of the same shapes) and createGRPCHeadersMatch
  (Exact or RegularExpression). A match without a method has no path match at all.

The API server defaults an HTTPRoute match's path to PathPrefix `/` (and a rule without matches
to one such match); manifests read from files were not defaulted, so the default is applied here.
A GRPCRoute match has no such default.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ..objects import ShapeError


def _typed(value: Any, where: str, allowed: Mapping[str, str], default: str) -> str:
    kind = str(value or default)
    if kind not in allowed:
        raise ShapeError(f"{where}: type {kind!r} is not one of {', '.join(sorted(allowed))}")
    return allowed[kind]


def _string_matches(items: Any, where: str) -> Dict[str, Dict[str, str]]:
    """createHeadersMatch / createQueryParamsMatch / createGRPCHeadersMatch: name -> StringMatch."""
    out: Dict[str, Dict[str, str]] = {}
    for k, item in enumerate(items or ()):
        if not isinstance(item, Mapping):
            raise ShapeError(f"{where}[{k}]: must be a mapping")
        kind = _typed(item.get("type"), f"{where}[{k}]", {"Exact": "exact", "RegularExpression": "regex"}, "Exact")
        out[str(item.get("name"))] = {kind: str(item.get("value") if item.get("value") is not None else "")}
    return out


def http_match(m: Mapping[str, Any], where: str = "match") -> Dict[str, Any]:
    """convertHTTPRoute for one match."""
    out: Dict[str, Any] = {}
    path = m.get("path") if isinstance(m.get("path"), Mapping) else {}
    kind = _typed(path.get("type"), f"{where}.path",
                  {"PathPrefix": "prefix", "Exact": "exact", "RegularExpression": "regex"}, "PathPrefix")
    value = str(path.get("value") if path.get("value") is not None else "/")
    if kind == "prefix" and value != "/":
        value = value[:-1] if value.endswith("/") else value  # strings.TrimSuffix: one `/`
    out["uri"] = {kind: value}
    headers = _string_matches(m.get("headers"), f"{where}.headers")
    if headers:
        out["headers"] = headers
    params = _string_matches(m.get("queryParams"), f"{where}.queryParams")
    if params:
        out["queryParams"] = params
    if m.get("method"):
        out["method"] = {"exact": str(m["method"])}
    return out


def grpc_uri(method: Optional[Mapping[str, Any]], where: str) -> Optional[Dict[str, str]]:
    """createGRPCURIMatch."""
    if not method:
        return None
    kind = _typed(method.get("type"), f"{where}.method", {"Exact": "exact", "RegularExpression": "regex"}, "Exact")
    service, name = method.get("service"), method.get("method")
    if service is None and name is None:
        raise ShapeError(f"{where}.method: gRPC match must have method or service defined")
    if kind == "exact":
        if name is None:
            return {"prefix": f"/{service}/"}
        if service is None:
            return {"regex": f"/[^/]+/{name}"}
        return {"exact": f"/{service}/{name}"}
    if name is None:
        return {"regex": f"/{service}/.+"}
    if service is None:
        return {"regex": f"/[^/]+/{name}"}
    return {"regex": f"/{service}/{name}"}


def grpc_match(m: Mapping[str, Any], where: str = "match") -> Dict[str, Any]:
    """convertGRPCRoute for one match."""
    out: Dict[str, Any] = {}
    method = m.get("method")
    if method is not None and not isinstance(method, Mapping):
        raise ShapeError(f"{where}.method: must be a mapping")
    uri = grpc_uri(method, where)
    if uri is not None:
        out["uri"] = uri
    headers = _string_matches(m.get("headers"), f"{where}.headers")
    if headers:
        out["headers"] = headers
    return out
