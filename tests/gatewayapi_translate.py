"""A second reading of istiod's Gateway API controller, for tests: Gateway API manifests -> the
Istio objects istiod derives from them, which tests/istiod_translate.py then turns into Envoy
configuration. Written from istio/istio's source without importing kubectl_gwdup, so that a
test comparing `check` with the real Envoy compares two readings of istiod.

What it follows (paths under istio/istio `pilot/pkg/config/kube/`):
- gateway/gateway_collection.go GatewayCollection and ListenerSetCollection: a Gateway of an
  istio class; its listeners, then those of each ListenerSet its allowedListeners admits
  (gatewaycommon/gateway_utils.go NamespaceAcceptedByAllowListeners), ListenerSets by creation
  then namespace/name (gatewaycommon/listener_conflict.go orderedMergedListeners); a listener
  not distinct from an earlier accepted one is dropped (listenersDistinct);
- gateway/conversion.go buildListener: a server with port name `default`; a listener whose TLS
  does not resolve is not Valid, and controller.go GatewayConfigs keeps Valid ones only;
  buildHostnameMatch/namespacesFromSelector for hosts; buildTLS/buildSecretReference: the
  Secret must exist with a certificate and key, a cross-namespace one needs a ReferenceGrant
  (gatewaycommon/references.go SecretAllowed); the internal Gateway carries
  `internal.istio.io/gateway-service` (extractGatewayServices: `<name>-istio` when managed,
  the Hostname addresses otherwise) and `internal.istio.io/parent-namespace`;
- the deployment controller's template (manifests/charts/istio-control/istio-discovery/files/
  kube-gateway.yaml): a managed Gateway's Deployment and Service `<name>-istio`, pods labelled
  `gateway.networking.k8s.io/gateway-name`, one Service port per listener port, no targetPort;
- gateway/conversion.go referenceAllowed, hostnameAllowedByIsolation, extractParentReferenceInfo
  and gateway/route_collections.go HTTPRouteCollection / GRPCRouteCollection / TLSRouteCollection:
  one VirtualService per (admitted listener, route hostname), its routes named
  `<ns>.<name>.<rule>` (convertHTTPRoute, convertGRPCRoute), those of all HTTPRoutes and
  GRPCRoutes there merged oldest first and put in precedence order (mergeHTTPRoutes,
  sortHTTPRoutes); a TLS route matched on the hostnames narrowed to the listener's
  (constrainTLSRoutesToListenerHost).
"""
from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional, Sequence, Tuple

GROUP = "gateway.networking.k8s.io"
NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


def _m(o: Dict[str, Any]) -> Dict[str, Any]:
    return o.get("metadata") or {}


def _ns(o: Dict[str, Any]) -> str:
    return _m(o).get("namespace") or "default"


def _wild(h: str) -> bool:
    return h.startswith("*")


def _matches(a: str, b: str) -> bool:
    """host.Name.Matches (pkg/config/host/name.go)."""
    if _wild(a) and _wild(b):
        return (b[1:].endswith(a[1:]) if len(a) < len(b) else a[1:].endswith(b[1:]))
    if _wild(a):
        return b.endswith(a[1:])
    if _wild(b):
        return a.endswith(b[1:])
    return a == b


def _subset(a: str, b: str) -> bool:
    """host.Name.SubsetOf."""
    if _wild(b):
        return (a[1:] if _wild(a) else a).endswith(b[1:])
    return not _wild(a) and a == b


def _secret_ok(secret: Optional[Dict[str, Any]]) -> bool:
    """kubecreds.ExtractCertInfo + tls.X509KeyPair, as far as presence goes."""
    if secret is None:
        return False
    data, plain = secret.get("data") or {}, secret.get("stringData") or {}
    crt = plain.get("tls.crt") or (base64.b64decode(data["tls.crt"]).decode() if "tls.crt" in data else "")
    return "BEGIN CERTIFICATE" in crt and ("tls.key" in plain or "tls.key" in data)


class _Listener:
    def __init__(self, owner: Dict[str, Any], raw: Dict[str, Any], internal: str, server: Dict[str, Any]) -> None:
        self.owner, self.raw, self.internal, self.server = owner, raw, internal, server
        self.hostname = raw.get("hostname") or ""
        self.port = raw["port"]
        self.protocol = raw["protocol"]


def istio_view(docs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """What istiod reads: the Istio and core objects as they are, the Gateway API ones
    replaced by what it derives from them."""
    return [d for d in docs if not str(d.get("apiVersion", "")).startswith(GROUP + "/")] + istio_objects(docs)


def istio_objects(docs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The Istio Gateways, VirtualServices, Deployments and Services istiod adds for the
    Gateway API objects among `docs` (the other docs are not repeated)."""
    by_kind: Dict[str, List[Dict[str, Any]]] = {}
    for d in docs:
        if str(d.get("apiVersion", "")).startswith(GROUP + "/"):
            by_kind.setdefault(d["kind"], []).append(d)
    secrets = {(_ns(d), _m(d)["name"]): d for d in docs if d.get("kind") == "Secret"}
    namespaces = {_m(d)["name"]: dict(_m(d).get("labels") or {}) for d in docs if d.get("kind") == "Namespace"}
    classes = {"istio"} | {_m(c)["name"] for c in by_kind.get("GatewayClass", [])
                           if (c.get("spec") or {}).get("controllerName") == "istio.io/gateway-controller"}
    grants = []
    for g in by_kind.get("ReferenceGrant", []):
        for f in (g.get("spec") or {}).get("from") or []:
            for t in (g.get("spec") or {}).get("to") or []:
                if f.get("group") == GROUP and t.get("kind") == "Secret" and not t.get("group"):
                    grants.append((_ns(g), f.get("kind"), f.get("namespace"), t.get("name")))
    out: List[Dict[str, Any]] = []
    parents: Dict[Tuple[str, str, str], List[_Listener]] = {}
    for gw in sorted(by_kind.get("Gateway", []), key=lambda g: (_ns(g), _m(g)["name"])):
        spec = gw.get("spec") or {}
        if spec.get("gatewayClassName") not in classes:
            continue
        name, ns = _m(gw)["name"], _ns(gw)
        addresses = spec.get("addresses") or []
        managed = not addresses or (len(addresses) == 1 and addresses[0].get("type", "IPAddress") == "IPAddress")
        if managed:
            services = [f"{name}-istio"]
        else:
            services = [a["value"].split(".")[0] for a in addresses if a.get("type") == "Hostname"
                        and (len(a["value"].split(".")) < 2 or a["value"].split(".")[1] == ns)]
        sets = [s for s in by_kind.get("ListenerSet", [])
                if (s["spec"]["parentRef"].get("namespace") or _ns(s), s["spec"]["parentRef"]["name"]) == (ns, name)
                and _admitted(gw, _ns(s), namespaces)]
        sets.sort(key=lambda s: (_m(s).get("creationTimestamp") or "", f"{_ns(s)}/{_m(s)['name']}"))
        owners = [("Gateway", gw)] + [("ListenerSet", s) for s in sets]
        accepted: List[Dict[str, Any]] = []
        ports = []
        for kind, owner in owners:
            for raw in (owner.get("spec") or {}).get("listeners") or []:
                raw = dict(raw)
                raw.setdefault("port", {"HTTP": 80, "HTTPS": 443}.get(raw.get("protocol")))
                if any(not _distinct(raw, a) for a in accepted):
                    continue
                accepted.append(raw)
                server = _server(kind, owner, raw, spec, secrets, grants, namespaces)
                if server is None:
                    continue
                ports.append(raw["port"])
                internal = f"{_m(owner)['name']}~istio-autogenerated-k8s-gateway~{raw['name']}"
                out.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {
                    "name": internal, "namespace": _ns(owner),
                    "creationTimestamp": _m(owner).get("creationTimestamp"),
                    "annotations": {"internal.istio.io/gateway-service":
                                    ",".join(f"{s}.{ns}.svc.cluster.local" for s in services),
                                    "internal.istio.io/parent-namespace": ns,
                                    # the service account istiod deploys a managed Gateway with
                                    **({"internal.istio.io/service-account-name": f"{name}-istio"}
                                       if managed else {})}},
                    "spec": {"servers": [server]}})
                parents.setdefault((kind, _ns(owner), _m(owner)["name"]), []).append(
                    _Listener(owner, raw, f"{_ns(owner)}/{internal}", server))
        if managed:
            labels = {NAME_LABEL: name}
            out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{name}-istio", "namespace": ns},
                        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}})
            out.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-istio", "namespace": ns},
                        "spec": {"selector": labels, "ports": [{"name": f"p{p}", "port": p} for p in sorted(set(ports))]}})
    out += _http_routes(by_kind.get("HTTPRoute", []) + by_kind.get("GRPCRoute", []), parents)
    for route in by_kind.get("TLSRoute", []):
        out += _tls_route(route, parents)
    return out


def _admitted(gw: Dict[str, Any], ns: str, namespaces: Dict[str, Dict[str, str]]) -> bool:
    spaces = ((gw.get("spec") or {}).get("allowedListeners") or {}).get("namespaces") or {}
    frm = spaces.get("from")
    if frm == "Selector":
        return ns in _picked(spaces.get("selector"), namespaces)
    return frm == "All" or (frm == "Same" and ns == _ns(gw))


def _picked(selector: Any, namespaces: Dict[str, Dict[str, str]]) -> List[str]:
    """namespacesFromSelector: the Namespaces (each labelled kubernetes.io/metadata.name with its
    own name by the API server) a LabelSelector picks; LabelSelectorAsSelector's reading: `{}`
    picks all, no selector none."""
    if not isinstance(selector, dict):
        return []
    out = []
    for name, labels in sorted(namespaces.items()):
        labels = {**labels, "kubernetes.io/metadata.name": name}
        ok = all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
        for e in selector.get("matchExpressions") or []:
            have, values = labels.get(e["key"]), e.get("values") or []
            ok = ok and {"In": have is not None and have in values, "NotIn": have is None or have not in values,
                         "Exists": have is not None, "DoesNotExist": have is None}.get(e["operator"], False)
        if ok:
            out.append(name)
    return out


def _distinct(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """listenersDistinct."""
    if a["port"] != b["port"]:
        return True
    l7, l4 = ("HTTP", "HTTPS", "TLS"), ("TCP", "UDP")
    pa, pb = a["protocol"], b["protocol"]
    if (pa in l4 and pb in l7) or (pa in l7 and pb in l4) or (pa in l4 and pb in l4):
        return False
    if pa in l7 and pb in l7:
        return (a.get("hostname") or "*") != (b.get("hostname") or "*")
    return pa != pb


def _server(kind: str, owner: Dict[str, Any], raw: Dict[str, Any], gw_spec: Dict[str, Any],
            secrets: Dict[Tuple[str, str], Dict[str, Any]], grants: List[Tuple[Any, ...]],
            namespaces: Dict[str, Dict[str, str]]) -> Optional[Dict[str, Any]]:
    ns = _ns(owner)
    hostname = raw.get("hostname") or "*"
    spaces = ((raw.get("allowedRoutes") or {}).get("namespaces")) or {}
    frm = spaces.get("from", "Same")
    hosts = ([f"{ns}/{hostname}"] if frm == "Same" else [f"*/{hostname}"] if frm == "All" else
             [f"{n}/{hostname}" for n in _picked(spaces.get("selector"), namespaces)] if frm == "Selector" else [])
    hosts = hosts or [f"~/{hostname}"]
    server: Dict[str, Any] = {"port": {"number": raw["port"], "name": "default", "protocol": raw["protocol"]},
                              "hosts": hosts}
    tls = raw.get("tls")
    if tls is None:
        return None if raw["protocol"] in ("HTTPS", "TLS") else server
    if tls.get("mode") == "Passthrough":
        server["tls"] = {"mode": "PASSTHROUGH"}
        return server
    creds = []
    for ref in tls.get("certificateRefs") or []:
        sns = ref.get("namespace") or ns
        if sns != ns and not any(g[0] == sns and g[1] == kind and g[2] == ns and g[3] in (None, ref["name"])
                                 for g in grants):
            continue
        if not _secret_ok(secrets.get((sns, ref["name"]))):
            continue
        creds.append(f"kubernetes-gateway://{sns}/{ref['name']}")
    if not creds or len(tls.get("certificateRefs") or []) > 2:
        return None
    server["tls"] = {"mode": "SIMPLE", "credentialName": creds[0]} if len(creds) == 1 else \
        {"mode": "SIMPLE", "credentialNames": creds}
    return server


def _candidates(route: Dict[str, Any], parents: Dict[Tuple[str, str, str], List[_Listener]], kind: str):
    spec = route.get("spec") or {}
    hostnames = spec.get("hostnames") or ["*"]
    for ref in spec.get("parentRefs") or []:
        pkind = ref.get("kind") or "Gateway"
        listeners = parents.get((pkind, ref.get("namespace") or _ns(route), ref["name"]), [])
        for lst in listeners:
            if ref.get("port") and ref["port"] != lst.port:
                continue
            if ref.get("sectionName") and ref["sectionName"] != lst.raw["name"]:
                continue
            ok = any(_matches(h.split("/", 1)[1], rh) and h.split("/", 1)[0] in ("*", _ns(route))
                     for rh in hostnames for h in lst.server["hosts"])
            allowed = {"HTTP": ["HTTPRoute", "GRPCRoute"], "HTTPS": ["HTTPRoute", "GRPCRoute"],
                       "TLS": ["TLSRoute"]}.get(lst.protocol, [])
            wanted = [k.get("kind") for k in (lst.raw.get("allowedRoutes") or {}).get("kinds") or []]
            if ok and kind in allowed and (not wanted or kind in wanted):
                yield lst, listeners


def _isolated(lst: _Listener, siblings: List[_Listener], host: str) -> bool:
    ours = lst.hostname
    if ours and not _wild(ours):
        return False
    if ours and not _matches(host, ours):
        return True
    banned = {o.hostname for o in siblings if o is not lst and o.port == lst.port and o.protocol == lst.protocol}
    banned.discard(ours)
    return any(len(ours) <= len(b) and _subset(host, b) for b in banned)


def _typed_strings(items: Any) -> Dict[str, Dict[str, str]]:
    # createHeadersMatch, createQueryParamsMatch, createGRPCHeadersMatch: Exact unless RegularExpression
    return {i["name"]: ({"regex": i["value"]} if i.get("type") == "RegularExpression" else {"exact": i["value"]})
            for i in items or []}


def _http_match(m: Dict[str, Any]) -> Dict[str, Any]:
    # createURIMatch: PathPrefix (the CRD's default) drops one trailing slash, `/` alone kept
    path = m.get("path") or {}
    value = path.get("value", "/")
    kind = path.get("type", "PathPrefix")
    if kind == "PathPrefix" and value != "/" and value[-1] == "/":
        value = value[:-1]
    out: Dict[str, Any] = {"uri": {{"Exact": "exact", "PathPrefix": "prefix", "RegularExpression": "regex"}[kind]: value}}
    for field, key in (("headers", "headers"), ("queryParams", "queryParams")):
        if m.get(field):
            out[key] = _typed_strings(m[field])
    if m.get("method"):
        out["method"] = {"exact": m["method"]}
    return out


def _grpc_match(m: Dict[str, Any]) -> Dict[str, Any]:
    # createGRPCURIMatch: `/<service>/<method>` spelled as a path; createGRPCHeadersMatch
    out: Dict[str, Any] = {}
    method = m.get("method")
    if method:
        svc, name = method.get("service"), method.get("method")
        if method.get("type") == "RegularExpression":
            out["uri"] = {"regex": f"/{svc}/.+" if name is None else f"/[^/]+/{name}" if svc is None
                          else f"/{svc}/{name}"}
        elif name is None:
            out["uri"] = {"prefix": f"/{svc}/"}
        elif svc is None:
            out["uri"] = {"regex": f"/[^/]+/{name}"}
        else:
            out["uri"] = {"exact": f"/{svc}/{name}"}
    if m.get("headers"):
        out["headers"] = _typed_strings(m["headers"])
    return out


def _route_entries(route: Dict[str, Any]) -> List[Dict[str, Any]]:
    """HTTPRouteCollection / GRPCRouteCollection: each rule split into one route per match (an
    HTTPRoute rule without matches has the CRD's default one, PathPrefix `/`; a GRPCRoute's has
    none), each named `<ns>.<name>.<rule>`."""
    grpc = route["kind"] == "GRPCRoute"
    entries = []
    for n, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        # conversion.go buildHTTPDestination: a Service backendRef is `name.ns.svc.<domain>` on its
        # port, of weight 1 unless given; with no weight above 0, the specification's 500
        dests = [{"destination": dict({"host": f"{b['name']}.{b.get('namespace', _ns(route))}.svc.cluster.local"},
                                      **({"port": {"number": b["port"]}} if "port" in b else {})),
                  "weight": b.get("weight", 1)} for b in rule.get("backendRefs") or []]
        action: Dict[str, Any] = ({"route": dests} if any(d["weight"] for d in dests)
                                  else {"directResponse": {"status": 500}})
        matches = rule.get("matches") or ([None] if grpc else [{"path": {"type": "PathPrefix", "value": "/"}}])
        for m in matches:
            entry: Dict[str, Any] = dict({"name": f"{_ns(route)}.{_m(route)['name']}.{n}"}, **action)
            if m is not None:
                entry["match"] = [_grpc_match(m) if grpc else _http_match(m)]
            entries.append(entry)
    return entries


def _before(r1: Dict[str, Any], r2: Dict[str, Any]) -> bool:
    """sortHTTPRoutes' less(i, j), as written there (match[0] only: one match per route)."""
    if not r1.get("match"):
        return False
    if not r2.get("match"):
        return True
    m1, m2 = r1["match"][0], r2["match"][0]

    def rank(m):
        uri = m.get("uri") or {}
        return 3 if "exact" in uri else 2 if "prefix" in uri else 1 if "regex" in uri else -1

    def length(m):
        return len(next(iter((m.get("uri") or {"": ""}).values())))

    if rank(m1) != rank(m2):
        return rank(m1) > rank(m2)
    if length(m1) != length(m2):
        return length(m1) > length(m2)
    if ("method" in m1) != ("method" in m2):
        return "method" in m1
    if len(m1.get("headers") or {}) != len(m2.get("headers") or {}):
        return len(m1.get("headers") or {}) > len(m2.get("headers") or {})
    return len(m1.get("queryParams") or {}) > len(m2.get("queryParams") or {})


def _stable_sorted(routes: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """sort.SliceStable with `_before`: an insertion sort, which is stable."""
    out: List[Dict[str, Any]] = []
    for r in routes:
        i = len(out)
        while i > 0 and _before(r, out[i - 1]):
            i -= 1
        out.insert(i, r)
    return out


def _http_routes(routes: List[Dict[str, Any]], parents) -> List[Dict[str, Any]]:
    """One VirtualService per (admitted listener, hostname) for all the HTTPRoutes and
    GRPCRoutes there (controller.go joins both kinds before mergeHTTPRoutes, from 1.30): the
    routes of the oldest (creation, namespace, name) first, then sortHTTPRoutes."""
    keyed: Dict[Tuple[str, str], List[Tuple[Tuple[str, str, str], Dict[str, Any], List[Dict[str, Any]]]]] = {}
    for route in routes:
        spec = route.get("spec") or {}
        entries = _stable_sorted(_route_entries(route))
        done = set()
        for lst, siblings in _candidates(route, parents, route["kind"]):
            for h in spec.get("hostnames") or ["*"]:
                if _isolated(lst, siblings, h) or (lst.internal, h) in done:
                    continue
                done.add((lst.internal, h))
                age = (str(_m(route).get("creationTimestamp") or ""), _ns(route), _m(route)["name"])
                keyed.setdefault((lst.internal, h), []).append((age, route, entries))
    out = []
    for (internal, h), found in keyed.items():
        found.sort(key=lambda f: f[0])
        base = found[0][1]
        out.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {
            # named by its key, `/` spelled `~` (istiod's order reads it)
            "name": f"{internal}/{h}".replace("/", "~"), "namespace": _ns(base),
            "annotations": {"internal.istio.io/route-semantics": "gateway"},
            "creationTimestamp": _m(base).get("creationTimestamp")},
            "spec": {"hosts": [h], "gateways": [internal],
                     "http": _stable_sorted([e for _, _, entries in found for e in entries])}})
    return out


def _narrow(a: str, b: str) -> Optional[str]:
    if not _matches(a, b):
        return None
    if _wild(a) != _wild(b):
        return b if _wild(a) else a
    return a if len(a) >= len(b) else b


def _tls_route(route: Dict[str, Any], parents) -> List[Dict[str, Any]]:
    spec = route.get("spec") or {}
    out = []
    for lst, _ in _candidates(route, parents, "TLSRoute"):
        hosts = spec.get("hostnames") or ["*"]
        if lst.hostname:
            hosts = list(dict.fromkeys(x for x in (_narrow(h, lst.hostname) for h in hosts) if x))  # a set
        for h in hosts:
            out.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {
                "name": f"{_m(route)['name']}-tls-{lst.internal}-{h}".replace("/", "-").replace("*", "wild"),
                "namespace": _ns(route), "creationTimestamp": _m(route).get("creationTimestamp"),
                "annotations": {"internal.istio.io/parents": f"TLSRoute/{_m(route)['name']}.{_ns(route)}"}},
                "spec": {"hosts": [h], "gateways": [lst.internal],
                         "tls": [{"match": [{"sniHosts": hosts}], "route": [{"destination": {"host": "backend"}}]}]}})
    return out
