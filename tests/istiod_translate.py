"""A second reading of istiod, for tests: raw manifests -> the Envoy configuration of each gateway
proxy, written from istio/istio's source without importing kubectl_gwdup, so that when this
and the product agree on the real Envoy, two readings of istiod agree, not one with itself.

What it follows (paths in istio/istio):
- proxies: every gateway Pod, and every Deployment's pod template (a Deployment with no Pod
  listed still runs pods); one proxy per namespace and label set (pod-template-hash aside);
- pilot/pkg/model/push_context.go initGateways + pilot/pkg/model/config.go
  sortConfigByCreationTime: Gateways whose selector the proxy's labels satisfy, ordered by
  creationTimestamp, then name, then namespace;
- pilot/pkg/model/gateway.go MergeGateways: hosts sanitized (sanitizeServerHostNamespace:
  `./h` -> `<gw ns>/h`, `*/h` -> `h`); each server bound on resolvePorts (the Service
  targetPort of the proxy's Service whose port is the server port, a named one through the
  pods' container ports as the endpoints controller resolves it, else the port itself); a TLS
  server with a host already known on that port is skipped whole (CheckDuplicates);
  gatewayRDSRouteName `https.<server port>.<port name>.<gateway>.<namespace>`;
- pilot/pkg/networking/core/listener.go toFilterChainMatch: server_names are the hosts with the
  namespace stripped (GetSNIHostsForServer), none at all when one of them is `*`;
- credentialName (or credentialNames, each): the Secret of that name in the proxy's namespace
  (tls.crt and tls.key, or a generic Secret's cert and key); written `kubernetes-gateway://ns/name`,
  that namespace's (a Gateway API certificateRef);
- push_context.go filterStrictGatewayMerging (PILOT_ENABLE_STRICT_GATEWAY_MERGING, on from Istio
  1.31): on pods with a managed Gateway API Gateway (one istiod deployed, marked here with
  `internal.istio.io/service-account-name`), an Istio Gateway applies only if its namespace holds
  such a Gateway too;
- a Gateway with `internal.istio.io/gateway-service` (one istiod made of a Gateway API listener,
  see tests/gatewayapi_translate.py) applies to the proxies behind those Services in its parent
  namespace, on their ports only, bound at the targetPort (push_context.go mergeGateways,
  gateway.go resolvePorts without the legacy fallback);
- pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig: for every VirtualService
  bound to the server's Gateway (spec.gateways, default `mesh`; creation order,
  pilot/pkg/model/virtualservice_controller.go sortMergedVirtualServicesByCreationTime),
  host.NamesForNamespace(server hosts, vs namespace) intersected with its hosts
  (pkg/config/host/names.go Intersection: the narrower of each matching pair) gives domains,
  lower-cased; the VirtualService's routes are appended to each domain's virtual host; then
  pilot/pkg/networking/core/route/route.go SortVHostRoutes moves catch-all routes
  (IsCatchAllRoute) last; with no virtual host at all, one blackhole `*` without routes;
- pilot/pkg/networking/core/route/route.go BuildHTTPRoutesForVirtualService: one Envoy route per
  match of an http route (one with prefix `/` without matches); a match naming gateways other
  than this one, or another port, gives none (sourceMatchHTTP); the first catch-all route ends
  the VirtualService's list; TranslateRouteMatch (a prefix of a VirtualService marked with
  Gateway semantics matches whole path segments); GetDestinationCluster names the backend.
Each route answers (200, or its direct response's status) with a header naming its backend
(`x-gwdup-backend`: two routes to one backend take a request to the same place) and a body naming it (its `name`, else `ns/name#http[i].match[j]`), so a test reads
which route answered; a PASSTHROUGH server's chain proxies TCP to an upstream that terminates
TLS itself and answers `passthrough ns/name[i]`.
"""
from __future__ import annotations

import base64
import os
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import h2.config
import h2.connection
import h2.events

from envoy_process import free_port, launch, stop

TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def _meta(o: Dict[str, Any]) -> Dict[str, Any]:
    return o.get("metadata") or {}


def _ns(o: Dict[str, Any]) -> str:
    return _meta(o).get("namespace") or "default"


def _order(o: Dict[str, Any]) -> Tuple[str, str, str]:
    m = _meta(o)
    return (str(m.get("creationTimestamp") or ""), m["name"], _ns(o))


# --- host names as pkg/config/host reads them ------------------------------------------------

def _subset_of(n: str, o: str) -> bool:
    """host.Name.SubsetOf."""
    if n.startswith("*"):
        return o.startswith("*") and len(n) >= len(o) and n[1:].endswith(o[1:])
    if o.startswith("*"):
        return n.endswith(o[1:])
    return n == o


def _intersection(server_hosts: Sequence[str], vs_hosts: Sequence[str]) -> List[str]:
    out: List[str] = []
    for h in server_hosts:
        for o in vs_hosts:
            if _subset_of(h, o):
                pick = h
            elif _subset_of(o, h):
                pick = o
            else:
                continue
            if pick not in out:
                out.append(pick)
    return out


def _for_namespace(hosts: Sequence[str], namespace: str) -> List[str]:
    out = []
    for h in hosts:
        if "/" in h:
            ns, h = h.split("/", 1)
            if ns not in (namespace, "*"):
                continue
        out.append(h)
    return out


def _sanitize(hosts: Sequence[str], namespace: str) -> List[str]:
    out: List[str] = []
    for h in hosts:
        if h.startswith("./"):
            h = f"{namespace}/{h[2:]}"
        elif h.startswith("*/"):
            if h == "*/*":
                return ["*"]
            h = h[2:]
        out.append(h)
    return out


# --- proxies ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Proxy:
    namespace: str
    labels: Tuple[Tuple[str, str], ...]

    @property
    def name(self) -> str:
        return f"{self.namespace}/" + ",".join(f"{k}={v}" for k, v in self.labels)


def container_ports(docs: Iterable[Dict[str, Any]], proxy: Proxy) -> Dict[str, int]:
    """The named container ports of the pods behind a proxy (a Pod's spec, a Deployment's pod
    template): what a Service's named targetPort resolves to. Kubernetes' endpoints controller
    resolves a named targetPort per pod from its containers (pkg/api/v1/pod FindPort), and
    istiod binds a gateway listener at the endpoints' port (resolvePorts)."""
    out: Dict[str, int] = {}
    for d in docs:
        if d.get("kind") == "Pod":
            labels = {k: str(v) for k, v in (_meta(d).get("labels") or {}).items() if k != "pod-template-hash"}
            spec = d.get("spec") or {}
        elif d.get("kind") == "Deployment":
            template = (d.get("spec") or {}).get("template") or {}
            labels = {k: str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()}
            spec = template.get("spec") or {}
        else:
            continue
        if _ns(d) != proxy.namespace or tuple(sorted(labels.items())) != proxy.labels:
            continue
        for c in spec.get("containers") or []:
            for port in c.get("ports") or []:
                if port.get("name"):
                    out.setdefault(port["name"], port["containerPort"])
    return out


def proxies(docs: Iterable[Dict[str, Any]]) -> List[Proxy]:
    found = set()
    for d in docs:
        if d.get("kind") == "Pod":
            labels = {k: str(v) for k, v in (_meta(d).get("labels") or {}).items() if k != "pod-template-hash"}
        elif d.get("kind") == "Deployment":
            labels = {k: str(v) for k, v in ((((d.get("spec") or {}).get("template") or {}).get("metadata") or {})
                                             .get("labels") or {}).items()}
        else:
            continue
        found.add(Proxy(_ns(d), tuple(sorted(labels.items()))))
    return sorted(found, key=lambda p: p.name)


# --- routes ----------------------------------------------------------------------------------

def _string_match(m: Dict[str, Any]) -> Dict[str, Any]:
    if "exact" in m:
        return {"exact": m["exact"]}
    if "prefix" in m:
        return {"prefix": m["prefix"]}
    return {"safe_regex": {"regex": m["regex"]}}


def _is_presence(m: Optional[Dict[str, Any]]) -> bool:
    """canBeConvertedToPresentMatch: no value at all, or the regex `*`."""
    return not m or not any(k in m for k in ("exact", "prefix", "regex")) or m.get("regex") == "*"


def _header_matcher(name: str, m: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if _is_presence(m):
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": _string_match(m or {})}


def _envoy_match(match: Optional[Dict[str, Any]], gateway_semantics: bool = False) -> Dict[str, Any]:
    uri = (match or {}).get("uri")
    if not uri:
        out: Dict[str, Any] = {"prefix": "/"}
    elif "exact" in uri:
        out = {"path": uri["exact"]}
    elif "prefix" in uri:
        if gateway_semantics and uri["prefix"] != "/":
            # route.go TranslateRouteMatch: an HTTPRoute's PathPrefix matches whole path segments
            p = uri["prefix"]
            out = {"path_separated_prefix": p[:-1] if p.endswith("/") else p}
        else:
            out = {"prefix": uri["prefix"]}
    else:
        out = {"safe_regex": {"regex": uri["regex"]}}
    if (match or {}).get("ignoreUriCase"):
        out["case_sensitive"] = False
    headers = []
    for name, m in ((match or {}).get("headers") or {}).items():
        headers.append(_header_matcher(name, m))
    for name, m in ((match or {}).get("withoutHeaders") or {}).items():
        # route.go TranslateRouteMatch: inverted; a value match treats a missing header as
        # empty (so a request without the header is "without" it), a presence match cannot
        headers.append(dict(_header_matcher(name, m), invert_match=True,
                            **({} if _is_presence(m) else {"treat_missing_header_as_empty": True})))
    for key, name in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        if (match or {}).get(key):
            headers.append({"name": name, "string_match": _string_match(match[key])})
    if headers:
        out["headers"] = headers
    if (match or {}).get("queryParams"):
        out["query_parameters"] = [{"name": k, "string_match": _string_match(v)}
                                   for k, v in match["queryParams"].items()]
    return out


def _is_catch_all(route: Dict[str, Any]) -> bool:
    m = route["match"]
    path = m.get("prefix") == "/" or (m.get("safe_regex") or {}).get("regex") == ".*"
    return path and not m.get("headers") and not m.get("query_parameters")


GATEWAY_SEMANTICS = ("internal.istio.io/route-semantics", "gateway")  # what istiod marks an HTTPRoute's VirtualService with
BACKEND_HEADER = "x-gwdup-backend"


def _service_host(name: str, vs: Dict[str, Any]) -> str:
    """pilot/pkg/model/virtualservice.go resolveVirtualServiceShortnames (ResolveShortnameToFQDN)."""
    if name == "*" or "." in name:
        return name
    return f"{name}.{_ns(vs)}.svc.cluster.local"


def _backend(http: Dict[str, Any], vs: Dict[str, Any], port: int) -> Tuple[int, str]:
    """(status, the name of where the route sends requests): route.go GetDestinationCluster's
    `outbound|port|subset|host` (no Service registry here: a destination without a port takes the
    server's), weighted clusters without those of weight 0; a redirect or a direct response."""
    if http.get("redirect"):
        return 301, "redirect " + repr(sorted(http["redirect"].items()))
    if http.get("directResponse"):
        return int(http["directResponse"].get("status", 200)), "direct"

    def cluster(d: Dict[str, Any]) -> str:
        number = (d.get("port") or {}).get("number", port)
        return f"outbound|{number}|{d.get('subset', '')}|{_service_host(d['host'], vs)}"

    dests = http.get("route") or []
    if len(dests) == 1:
        name = cluster(dests[0]["destination"])
    else:
        name = "weighted " + " ".join(sorted(f"{cluster(d['destination'])}:{d['weight']}" for d in dests if d.get("weight")))
    if http.get("rewrite"):
        name += " rewrite " + repr(sorted(http["rewrite"].items()))
    return 200, name


def _gateway_refs(vs: Dict[str, Any], refs: Sequence[str]) -> List[str]:
    return [r if r == "mesh" or "/" in r else f"{_ns(vs)}/{r}" for r in refs]


def _vs_routes(vs: Dict[str, Any], gateway: str, port: int) -> List[Dict[str, Any]]:
    """route.go BuildHTTPRoutesForVirtualService; each route answers itself, naming its route
    in the body and its backend in a header."""
    out = []
    semantics = (_meta(vs).get("annotations") or {}).get(GATEWAY_SEMANTICS[0]) == GATEWAY_SEMANTICS[1]
    for i, http in enumerate((vs.get("spec") or {}).get("http") or []):
        matches = http.get("match") or [None]
        status, backend = _backend(http, vs, port)
        done = False
        for j, match in enumerate(matches):
            if match is not None:
                if match.get("gateways") and gateway not in _gateway_refs(vs, match["gateways"]):
                    continue
                if match.get("port") not in (None, 0, port):
                    continue
            # a named route (istiod names an HTTPRoute's `<ns>.<name>.<rule>`) is one backend
            # wherever it is bound; otherwise the VirtualService's own route
            name = http.get("name") or (f"{_ns(vs)}/{_meta(vs)['name']}#http[{i}]"
                                        + (f".match[{j}]" if match is not None else ""))
            route = {"name": name, "match": _envoy_match(match, semantics),
                     "direct_response": {"status": status, "body": {"inline_string": name}},
                     "response_headers_to_add": [{"header": {"key": BACKEND_HEADER, "value": backend}}]}
            out.append(route)
            if _is_catch_all(route):  # istiod stops at a catch-all: nothing after it is reached
                done = True
                break
        if done or not http.get("match"):
            break
    return out


def route_table(name: str, gateway: str, server: Dict[str, Any], vss: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    vhosts: Dict[str, List[Dict[str, Any]]] = {}
    for vs in sorted(vss, key=_order):
        if gateway not in _gateway_refs(vs, (vs.get("spec") or {}).get("gateways") or ["mesh"]):
            continue
        domains = _intersection(_for_namespace(server["hosts"], _ns(vs)), (vs.get("spec") or {}).get("hosts") or [])
        if not domains:
            continue
        routes = _vs_routes(vs, gateway, server["port"]["number"])
        if not routes:  # route.BuildHTTPRoutesForVirtualService: "no routes matched"; gateway.go skips the VirtualService
            continue
        for d in domains:
            vhosts.setdefault(d.lower(), []).extend(routes)
    if not vhosts:
        return {"name": name, "virtual_hosts": [{"name": "blackhole", "domains": ["*"], "routes": []}]}
    out = []
    for d, routes in sorted(vhosts.items()):
        ordered = [r for r in routes if not _is_catch_all(r)] + [r for r in routes if _is_catch_all(r)]
        out.append({"name": d, "domains": [d], "routes": ordered})
    return {"name": name, "virtual_hosts": out}


# --- the configuration -----------------------------------------------------------------------

GATEWAY_SERVICE = "internal.istio.io/gateway-service"
SERVICE_ACCOUNT = "internal.istio.io/service-account-name"  # set when istiod deploys the Gateway (managed)


def _credentials(proxy_namespace: str, tls: Dict[str, Any]) -> List[Tuple[str, str]]:
    """The Secrets a server reads: credentialName (or each of credentialNames, an RSA and an
    ECDSA certificate) in the proxy's namespace, or, written `kubernetes-gateway://ns/name` (a
    Gateway API certificateRef), that namespace's."""
    out = []
    for name in [tls["credentialName"]] if tls.get("credentialName") else list(tls.get("credentialNames") or [""]):
        if name.startswith("kubernetes-gateway://"):
            ns, _, secret = name[len("kubernetes-gateway://"):].partition("/")
            out.append((ns, secret))
        else:
            out.append((proxy_namespace, name))
    return out


def _secret_keys(secret: Dict[str, Any]) -> Tuple[str, str]:
    """Where a Secret holds its certificate and key: tls.crt and tls.key, else a generic
    Secret's cert and key (security/pkg/credentialfetcher, extractCertAndKey)."""
    held = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    return ("tls.crt", "tls.key") if "tls.crt" in held or "cert" not in held else ("cert", "key")


def _addr(port: int) -> Dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


CHAIN_HEADER = "x-gwdup-chain"


ACCESS_LOG_FIELDS = {"connection": "%CONNECTION_ID%", "sni": "%REQUESTED_SERVER_NAME%",
                     "authority": "%REQ(:AUTHORITY)%", "status": "%RESPONSE_CODE%", "protocol": "%PROTOCOL%",
                     "flags": "%RESPONSE_FLAGS%", "route": "%ROUTE_NAME%"}


# Istio's two built-in access-log formats, as istiod hands them to Envoy
# (pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat, EnvoyJSONLogFormatIstio)
ISTIO_TEXT_LOG = ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
                  '%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% '
                  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
                  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
                  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
                  '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% '
                  '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n')
ISTIO_JSON_LOG = {
    "start_time": "%START_TIME%", "route_name": "%ROUTE_NAME%", "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%", "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%", "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%", "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%", "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%", "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%"}
LOG_FORMATS = {"gwdup": {"json_format": ACCESS_LOG_FIELDS},
               "istio-text": {"text_format_source": {"inline_string": ISTIO_TEXT_LOG}},
               "istio-json": {"json_format": ISTIO_JSON_LOG}}


def _hcm(route_config: Dict[str, Any], chain: str = "", access_log: str = "",
         log_format: str = "gwdup") -> Dict[str, Any]:
    """An HTTP connection manager; every answer it gives (routed, or Envoy's own 404) carries a
    header naming its filter chain, so a test sees which chain a connection was opened on; with
    `access_log` (the browser tests), one JSON line per request (connection id, SNI, authority,
    status)."""
    hcm: Dict[str, Any] = {"@type": HCM, "stat_prefix": "gw", "codec_type": "AUTO", "route_config": route_config,
                           "http_filters": [ROUTER]}
    if access_log:
        # a browser reaches this loopback listener on a port other than 443, so its :authority
        # carries the port, which on 443 it leaves out: stripping it stands for the default port
        hcm["strip_any_host_port"] = True
        hcm["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path, "log_format": LOG_FORMATS[fmt]}}
            # the test's own fields, and beside them Istio's default text log, as a gateway writes it
            for path, fmt in ((access_log, log_format),) + (((access_log + ".istio", "istio-text"),)
                                                            if log_format == "gwdup" else ())]
    if chain:
        header = [{"header": {"key": CHAIN_HEADER, "value": chain}}]
        route_config["response_headers_to_add"] = header
        hcm["local_reply_config"] = {"mappers": [{
            "filter": {"status_code_filter": {"comparison": {"op": "GE", "value": {
                "default_value": 0, "runtime_key": "gwdup.chain_header"}}}},
            "headers_to_add": header}]}
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}


def _tls(*pairs: Tuple[str, str]) -> Dict[str, Any]:
    """A server TLS context with each (certificate, key) file pair: Envoy picks the one the
    client's signature algorithms allow, ECDSA first when both are there."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": TLS, "common_tls_context": {
        "alpn_protocols": ["h2", "http/1.1"],
        "tls_certificates": [{"certificate_chain": {"filename": cert}, "private_key": {"filename": key}}
                             for cert, key in pairs]}}}


def _bound(gw_ref: str, server: Dict[str, Any], vss: Sequence[Dict[str, Any]]):
    """The VirtualServices bound to the Gateway whose hosts meet the server's
    (pickMatchingGatewayHosts), oldest first, with their specs."""
    for vs in sorted(vss, key=_order):
        spec = vs.get("spec") or {}
        if gw_ref in _gateway_refs(vs, spec.get("gateways") or ["mesh"]) and \
                _intersection(_for_namespace(server["hosts"], _ns(vs)), spec.get("hosts") or []):
            yield vs, spec


class Translation:
    """The Envoy bootstrap for every proxy of the manifests; `ports[(proxy name, bound port)]`."""

    def __init__(self, docs: Sequence[Dict[str, Any]], workdir: str, passthrough_pem: Any, access_log: str = "",
                 log_format: str = "gwdup") -> None:
        self.workdir = workdir
        self.docs = list(docs)  # the pods' container ports resolve named targetPorts
        self.access_log = access_log
        self.log_format = log_format  # gwdup (the browser tests' fields), istio-text or istio-json
        self.ports: Dict[Tuple[str, int], int] = {}
        self.listeners: List[Dict[str, Any]] = []
        self.clusters: List[Dict[str, Any]] = []
        # the upstream behind a PASSTHROUGH chain terminates TLS itself: a certificate for the
        # route's SNI names (a callable), or one fixed (cert, key) pair
        self.passthrough_pem = passthrough_pem
        self.served: List[Tuple[Proxy, int, Dict[str, Any]]] = []  # (proxy, bound port, its listener)
        gateways = sorted((d for d in docs if d.get("kind") == "Gateway"), key=_order)
        vss = [d for d in docs if d.get("kind") == "VirtualService"]
        services = [d for d in docs if d.get("kind") == "Service"]
        secrets = {(_ns(d), _meta(d)["name"]): d for d in docs if d.get("kind") == "Secret"}
        self.secrets = secrets
        for proxy in proxies(docs):
            self._proxy(proxy, gateways, vss, services, secrets)

    def _target_port(self, proxy: Proxy, services: Sequence[Dict[str, Any]], port: int) -> int:
        labels = dict(proxy.labels)
        for svc in services:
            sel = (svc.get("spec") or {}).get("selector") or {}
            if _ns(svc) != proxy.namespace or not sel or any(labels.get(k) != str(v) for k, v in sel.items()):
                continue
            if "experimental.istio.io/disable-gateway-port-translation" in (_meta(svc).get("labels") or {}):
                continue  # gateway.go resolvePorts: a Service opting out of translation is passed over
            for p in (svc.get("spec") or {}).get("ports") or []:
                if p.get("port") == port:
                    return self._resolve(proxy, p.get("targetPort", port), port)
        return port

    def _resolve(self, proxy: Proxy, target: Any, port: int) -> int:
        """A Service targetPort as the proxy's pods bind it: a number as it is, a name through
        their container ports (a name no container has: the server port, as istiod falls back)."""
        if isinstance(target, int):
            return target
        return container_ports(self.docs, proxy).get(str(target), port)

    def _service_targets(self, proxy: Proxy, services: Sequence[Dict[str, Any]], gw: Dict[str, Any],
                         names: str) -> Optional[Dict[int, int]]:
        """push_context.go mergeGateways for a Gateway istiod made of a Gateway API one: it applies
        to the proxies behind the Services its annotation names, in its parent namespace; its
        ports are those Services' ports, bound at their targetPorts (resolvePorts). None: not
        this proxy."""
        parent_ns = (_meta(gw).get("annotations") or {}).get("internal.istio.io/parent-namespace") or _ns(gw)
        wanted = set(filter(None, names.split(",")))
        labels = dict(proxy.labels)
        targets: Dict[int, int] = {}
        found = False
        for svc in services:
            if _ns(svc) != parent_ns or f"{_meta(svc)['name']}.{parent_ns}.svc.cluster.local" not in wanted:
                continue
            sel = (svc.get("spec") or {}).get("selector") or {}
            if proxy.namespace != parent_ns or not sel or any(labels.get(k) != str(v) for k, v in sel.items()):
                continue
            found = True
            for p in (svc.get("spec") or {}).get("ports") or []:
                targets.setdefault(p["port"], self._resolve(proxy, p.get("targetPort", p["port"]), p["port"]))
        return targets if found else None

    def _secret_files(self, secret: Dict[str, Any]) -> Tuple[str, str]:
        stem = os.path.join(self.workdir, f"{_ns(secret)}-{_meta(secret)['name']}")
        data = secret.get("data") or {}
        plain = secret.get("stringData") or {}
        for suffix, key in zip((".crt", ".key"), _secret_keys(secret)):
            value = plain[key].encode() if key in plain else base64.b64decode(data[key])
            with open(stem + suffix, "wb") as f:
                f.write(value)
        return stem + ".crt", stem + ".key"

    def _proxy(self, proxy: Proxy, gateways: Sequence[Dict[str, Any]], vss: Sequence[Dict[str, Any]],
               services: Sequence[Dict[str, Any]], secrets: Dict[Tuple[str, str], Dict[str, Any]]) -> None:
        labels = dict(proxy.labels)
        known: Dict[int, set] = {}
        passthrough_sni: Dict[int, set] = {}
        chains: Dict[int, List[Dict[str, Any]]] = {}
        selected: List[Tuple[Dict[str, Any], Optional[str], Dict[int, int]]] = []
        for gw in gateways:
            gw_services = (_meta(gw).get("annotations") or {}).get(GATEWAY_SERVICE)
            targets: Dict[int, int] = {}
            if gw_services is not None:
                found = self._service_targets(proxy, services, gw, gw_services)
                if found is None:
                    continue
                targets = found
            else:
                sel = (gw.get("spec") or {}).get("selector") or {}
                if any(labels.get(k) != str(v) for k, v in sel.items()):
                    continue
            selected.append((gw, gw_services, targets))
        # filterStrictGatewayMerging (PILOT_ENABLE_STRICT_GATEWAY_MERGING, on from Istio 1.31):
        # with a managed Gateway API Gateway on these pods, only Istio Gateways of a namespace
        # holding one stay (every Gateway API one stays)
        managed_ns = {_ns(gw) for gw, svc, _ in selected
                      if svc is not None and (_meta(gw).get("annotations") or {}).get(SERVICE_ACCOUNT)}
        if managed_ns:
            selected = [x for x in selected if x[1] is not None or _ns(x[0]) in managed_ns]
        for gw, gw_services, targets in selected:
            gw_ref = f"{_ns(gw)}/{_meta(gw)['name']}"
            for i, raw_server in enumerate((gw.get("spec") or {}).get("servers") or []):
                server = dict(raw_server, hosts=_sanitize(raw_server.get("hosts") or [], _ns(gw)))
                tls = server.get("tls") or {}
                protocol = str(server["port"].get("protocol", "")).upper()
                if not tls or protocol not in ("HTTPS", "TLS"):
                    continue  # plain-text servers carry no SNI chain: not what these tests look at
                if gw_services is not None:
                    if server["port"]["number"] not in targets:
                        continue  # resolvePorts: a Service-bound Gateway has no fallback port
                    port = targets[server["port"]["number"]]
                else:
                    port = self._target_port(proxy, services, server["port"]["number"])
                seen = known.setdefault(port, set())
                if any(h in seen for h in server["hosts"]):
                    continue  # CheckDuplicates: the whole server is skipped
                seen.update(server["hosts"])
                if tls.get("mode") == "PASSTHROUGH":
                    taken = passthrough_sni.setdefault(port, set())
                    chains.setdefault(port, []).extend(self._passthrough_chains(gw_ref, i, server, vss, taken))
                    continue
                tcp = protocol == "TLS"  # terminated here, then TCP: createGatewayTCPFilterChainOpts
                if tcp and not self._tcp_routed(gw_ref, server, vss):
                    continue  # "listener missed network filter": no chain
                sni = sorted({h.split("/", 1)[-1] for h in server["hosts"]})
                chain: Dict[str, Any] = {"name": f"{gw_ref}[{i}]"}
                if "*" not in sni:
                    chain["filter_chain_match"] = {"server_names": sni}
                named = [secrets.get(ref) for ref in _credentials(proxy.namespace, tls)]
                if not all(secret is not None and self._has_certificate(secret) for secret in named):
                    # istiod keeps the chain, but its certificate never arrives over SDS: Envoy
                    # ends every handshake on it (here: a TCP proxy to a port nobody listens on)
                    chain["filters"] = [self._dead_end()]
                elif tcp:
                    chain["transport_socket"] = _tls(*[self._secret_files(secret) for secret in named])
                    chain["filters"] = [self._plain_upstream(f"{gw_ref}[{i}]")]
                else:
                    chain["transport_socket"] = _tls(*[self._secret_files(secret) for secret in named])
                    name = f"https.{server['port']['number']}.{server['port']['name']}.{_meta(gw)['name']}.{_ns(gw)}"
                    chain["filters"] = [_hcm(route_table(name, gw_ref, server, vss), f"{gw_ref}[{i}]",
                                             self.access_log, self.log_format)]
                chains.setdefault(port, []).append(chain)
        for port, cs in sorted(chains.items()):
            if not cs:
                continue  # a port whose servers got no chain gets no listener at all
            local = free_port()
            self.ports[(proxy.name, port)] = local
            self.served.append((proxy, port, {}))
            self.listeners.append({
                "name": f"{proxy.name}:{port}", "address": _addr(local),
                "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
                "filter_chains": cs})
            self.served[-1] = (proxy, port, self.listeners[-1])

    @staticmethod
    def _has_certificate(secret: Dict[str, Any]) -> bool:
        data, plain = secret.get("data") or {}, secret.get("stringData") or {}
        crt_key, key_key = _secret_keys(secret)
        try:
            crt = plain[crt_key].encode() if crt_key in plain else base64.b64decode(data.get(crt_key, ""))
            key = plain.get(key_key) or data.get(key_key)
        except (ValueError, TypeError):
            return False
        return key is not None and ssl_pem_ok(crt)

    def _tcp_proxy(self, prefix: str, port: int) -> Dict[str, Any]:
        """A TCP proxy filter to a loopback port, with its cluster."""
        name = f"{prefix}-{port}"
        self.clusters.append({"name": name, "type": "STATIC", "connect_timeout": "1s",
                              "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                                  {"endpoint": {"address": _addr(port)}}]}]}})
        return {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": prefix, "cluster": name}}

    def _dead_end(self) -> Dict[str, Any]:
        return self._tcp_proxy("dead", free_port())  # a port nobody listens on

    def _passthrough_chains(self, gw_ref: str, i: int, server: Dict[str, Any], vss: Sequence[Dict[str, Any]],
                            taken: set) -> List[Dict[str, Any]]:
        """gateway.go buildGatewayNetworkFiltersFromTLSRoutes: one chain per TLS route match of a
        bound VirtualService whose hosts match the server's (pickMatchingGatewayHosts), named by
        the match's sniHosts; a match repeating an SNI already taken on the port is skipped
        (CheckDuplicates); no route, no chain."""
        out = []
        for vs, spec in _bound(gw_ref, server, vss):
            for j, tls_route in enumerate(spec.get("tls") or []):
                if not tls_route.get("route"):
                    continue
                for k, match in enumerate(tls_route.get("match") or []):
                    if match.get("gateways") and gw_ref not in _gateway_refs(vs, match["gateways"]):
                        continue
                    if match.get("port") not in (None, 0, server["port"]["number"]):
                        continue
                    sni = list(match.get("sniHosts") or [])
                    if any(h in taken for h in sni):
                        continue
                    taken.update(sni)
                    name = f"{gw_ref}[{i}] {_ns(vs)}/{_meta(vs)['name']}#tls[{j}].match[{k}]"
                    chain: Dict[str, Any] = {"name": name, "filters": [self._passthrough(name, sni)]}
                    if "*" not in sni:
                        chain["filter_chain_match"] = {"server_names": sorted(sni)}
                    out.append(chain)
        return out

    @staticmethod
    def _tcp_routed(gw_ref: str, server: Dict[str, Any], vss: Sequence[Dict[str, Any]]) -> bool:
        """buildGatewayNetworkFiltersFromTCPRoutes finds a route: a bound VirtualService whose hosts
        meet the server's with a `tcp` route matching (no match, or one of the server's port and
        Gateway), or (1.30 on) one made of a TLSRoute with such a `tls` match."""
        def l4(match: Dict[str, Any], vs: Dict[str, Any]) -> bool:
            return match.get("port") in (None, 0, server["port"]["number"]) and (
                not match.get("gateways") or gw_ref in _gateway_refs(vs, match["gateways"]))

        for vs, spec in _bound(gw_ref, server, vss):
            for tcp in spec.get("tcp") or []:
                if tcp.get("route") and (not tcp.get("match") or any(l4(m, vs) for m in tcp["match"])):
                    return True
            parents = (_meta(vs).get("annotations") or {}).get("internal.istio.io/parents", "")
            if parents.startswith("TLSRoute/") and any(l4(m, vs) for t in spec.get("tls") or []
                                                       for m in t.get("match") or []):
                return True
        return False

    def _plain_upstream(self, chain: str) -> Dict[str, Any]:
        """A TCP proxy to a plain-text HTTP upstream answering every request 200, naming the
        chain and itself as the backend (the gateway terminated TLS; what follows is bytes)."""
        up = free_port()
        header = [{"header": {"key": CHAIN_HEADER, "value": chain}},
                  {"header": {"key": BACKEND_HEADER, "value": f"upstream of {chain}"}}]
        self.listeners.append({"name": f"upstream-tcp-{up}", "address": _addr(up), "filter_chains": [{
            "filters": [_hcm({"name": "up", "response_headers_to_add": header, "virtual_hosts": [
                {"name": "all", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]})]}]})
        return self._tcp_proxy("tcp", up)

    def _passthrough(self, name: str, sni: Sequence[str] = ()) -> Dict[str, Any]:
        up = free_port()
        body = f"passthrough {name}"
        pem = self.passthrough_pem(list(sni)) if callable(self.passthrough_pem) else self.passthrough_pem
        # one upstream per proxy: a name of its own (Envoy keeps one listener of a name)
        self.listeners.append({"name": f"upstream-{name}-{up}", "address": _addr(up), "filter_chains": [{
            "transport_socket": _tls(pem),
            "filters": [_hcm({"name": "up", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": body}}}]}]})]}]})
        return self._tcp_proxy("passthrough", up)

    @property
    def config(self) -> Dict[str, Any]:
        return {"static_resources": {"listeners": self.listeners, "clusters": self.clusters}}


# --- the real Envoy, and a browser-like client -----------------------------------------------

class Envoy:
    """The real Envoy serving a translation on loopback; stops itself on exit."""

    def __init__(self, translation: Translation) -> None:
        self.t = translation
        self.proc, _, self.log = launch(translation.config, translation.ports.values(), translation.workdir)

    def stop(self) -> None:
        stop(self.proc)

    def __enter__(self) -> "Envoy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def get(port: int, sni: str, authority: str, cafile: str, path: str = "/", timeout: float = 5.0) -> Tuple[int, str]:
    """One HTTP/2 request on a new TLS connection opened for `sni`: (status, body); (0, reason)
    when the handshake fails (a browser shows an error there)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2"])
    ctx.check_hostname = False  # a coalesced request is judged by status, not by the name
    try:
        sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout), server_hostname=sni)
    except (ssl.SSLError, OSError) as exc:
        return 0, f"handshake: {exc}"
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", authority),
                                (":path", path)], end_stream=True)
        sock.sendall(conn.data_to_send())
        status, body = 0, b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    return status, body.decode()
            sock.sendall(conn.data_to_send())
        return status, body.decode()
    finally:
        sock.close()


def ssl_pem_ok(pem: bytes) -> bool:
    """The bytes hold a certificate the ssl module can load (what SDS would deliver)."""
    try:
        ssl.PEM_cert_to_DER_cert(pem.decode("ascii", "replace").strip().split("-----END CERTIFICATE-----")[0]
                                 + "-----END CERTIFICATE-----")
        return b"BEGIN CERTIFICATE" in pem
    except ValueError:
        return False


class Connection:
    """One TLS + HTTP/2 connection opened for `sni`, as a browser opens it: the certificate must
    chain to the CA and be valid for `sni`, else `error` says why and nothing can be sent."""

    def __init__(self, port: int, sni: str, cafile: str, timeout: float = 5.0) -> None:
        self.error = ""
        self.backend = ""  # the backend header of the last answer
        self.sans: Tuple[str, ...] = ()
        self.sock: Any = None
        self.timeout = timeout
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.set_alpn_protocols(["h2"])
        try:
            self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout),
                                        server_hostname=sni)
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            self.error = f"handshake: {exc}"
            return
        self.sans = tuple(v.lower() for k, v in self.sock.getpeercert().get("subjectAltName", ()) if k == "DNS")
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def covers(self, name: str) -> bool:
        """What a browser checks before reusing the connection for `name` (RFC 6125)."""
        for san in self.sans:
            if san == name or (san.startswith("*.") and "." in name and name.split(".", 1)[1] == san[2:]):
                return True
        return False

    def request(self, authority: str, path: str = "/", user_agent: str = "",
                extra: Sequence[Tuple[str, str]] = ()) -> Tuple[int, str, str]:
        """(status, body, the chain header)."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", authority), (":path", path)]
        self.conn.send_headers(sid, headers + ([("user-agent", user_agent)] if user_agent else []) + list(extra),
                               end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        status, body, chain = 0, b"", ""
        self.backend = ""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    headers = dict(ev.headers)
                    status = int(headers[b":status"])
                    chain = headers.get(CHAIN_HEADER.encode(), b"").decode()
                    self.backend = headers.get(BACKEND_HEADER.encode(), b"").decode()
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and ev.stream_id == sid:
                    self.sock.sendall(self.conn.data_to_send())
                    return status, body.decode(), chain
            self.sock.sendall(self.conn.data_to_send())
        return status, body.decode(), chain

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def new_workdir() -> str:
    return tempfile.mkdtemp(prefix="istiod-translate-")
