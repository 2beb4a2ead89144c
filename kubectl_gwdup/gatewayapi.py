"""Gateway API -> what istiod makes of it: Istio Gateway servers and VirtualServices. No I/O.

istiod does not program Envoy from Gateway API objects directly. For every listener it accepts
it writes an internal Istio Gateway with one server, and for every HTTPRoute one
VirtualService per (listener, hostname) bound to that Gateway; the gateway proxy then merges
them like any other Gateway. So the analysis needs nothing new: this module hands it the same
records, each server remembering the listener it came from (`ServerRef.origin`).

What istiod does, and where (istio/istio `pilot/pkg/config/kube/`):
- A Gateway is istiod's when its class is `istio` or a GatewayClass names
  `istio.io/gateway-controller` (`gateway/gateway_collection.go` GatewayCollection,
  `gatewaycommon` ClassInfos).
- Each listener is one server: port name `default`; hosts `<ns>/<hostname>` for every namespace
  allowedRoutes admits (Same: the listener's own; All: `*`; Selector: each Namespace whose labels,
  with kubernetes.io/metadata.name, it selects), hostname `*` when unset, `~/` when no namespace
  is admitted (`gateway/conversion.go` buildListener, buildHostnameMatch, namespacesFromSelector).
- TLS Terminate is SIMPLE (MUTUAL with frontend validation or the tls-terminate-mode option) with
  `kubernetes-gateway://<ns>/<secret>` per certificateRef; a reference to another namespace
  counts only with a ReferenceGrant there; a listener none of whose references resolves is not
  programmed, nor is an HTTPS/TLS listener without tls (buildTLS, buildSecretReference;
  `gatewaycommon/references.go` SecretAllowed; controller.go keeps Valid configs only).
  Passthrough stays PASSTHROUGH.
- A later listener repeating an earlier one's port and hostname, in a Gateway and the
  ListenerSets attached to it, is Conflicted and not programmed
  (`gatewaycommon/listener_conflict.go` ComputeGatewayListenerConflicts).
- Placement: without spec.addresses (or with one IP address) istiod deploys the Gateway itself:
  pods labelled `gateway.networking.k8s.io/gateway-name: <name>` behind the Service
  `<name>-istio`; with Hostname addresses, the pods of those Services in the Gateway's namespace
  (extractGatewayServices, IsManaged; `model/push_context.go` mergeGateways).
- ListenerSets attach to a Gateway whose allowedListeners admits their namespace (Same, All, or a
  Selector over Namespace labels), and share its placement (ListenerSetCollection,
  NamespaceAcceptedByAllowListeners).
- HTTPRoutes: a parentRef admits the listeners of its parent matching sectionName and port,
  whose hostnames meet the route's and whose namespaces and kinds admit the route; a route
  without hostnames takes `*`; a hostname a more specific sibling listener owns is left to it
  (referenceAllowed, hostnameAllowedByIsolation; `gateway/route_collections.go`
  HTTPRouteCollection).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

from .errors import InputError
from .hosts import istio_intersection, istio_matches, istio_subset_of
from .istiod.credentials import SECRET_PREFIX
from .istiod.route import CLUSTER_DOMAIN
from .istiod.route_conversion import grpc_match, http_match
from .istiod.route_merging import sort_http_routes
from .model import GATEWAY_API_GROUP, ListenerOrigin, Ref, Server, ServerRef, TlsMode, VirtualService
from .objects import ShapeError, label_selector_matches, meta, object_ref

ISTIO_CONTROLLER = "istio.io/gateway-controller"
DEFAULT_CLASS = "istio"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
# stands for the pods of a Service named by spec.addresses when Services were not read
NAMED_SERVICE = "gwdup/service"
TERMINATE_MODE_OPTION = "gateway.istio.io/tls-terminate-mode"
HTTP_LIKE = ("HTTP", "HTTPS", "TLS")
ROUTE_KINDS = {"HTTP": ("HTTPRoute", "GRPCRoute"), "HTTPS": ("HTTPRoute", "GRPCRoute"),
               "TLS": ("TLSRoute",), "TCP": ("TCPRoute",)}


@dataclass
class GatewayApiObjects:
    """The Gateway API objects a source read, as plain dicts."""

    gateways: List[Mapping[str, Any]] = field(default_factory=list)
    listener_sets: List[Mapping[str, Any]] = field(default_factory=list)
    http_routes: List[Mapping[str, Any]] = field(default_factory=list)
    grpc_routes: List[Mapping[str, Any]] = field(default_factory=list)
    tls_routes: List[Mapping[str, Any]] = field(default_factory=list)
    reference_grants: List[Mapping[str, Any]] = field(default_factory=list)
    gateway_classes: List[Mapping[str, Any]] = field(default_factory=list)
    routes_read: bool = False  # HTTPRoutes were read (none may exist): listeners route only what they bind
    # Namespace name -> labels, for `from: Selector`; None: not read (no selector can be resolved)
    namespaces: Optional[Dict[str, Dict[str, str]]] = None

    def __bool__(self) -> bool:
        return bool(self.gateways or self.listener_sets or self.http_routes or self.grpc_routes)


@dataclass
class Translated:
    servers: List[Server] = field(default_factory=list)
    virtual_services: List[VirtualService] = field(default_factory=list)  # TLSRoutes'
    # one per route, listener and hostname, before istiod merges them (istiod/route_merging.py)
    http_route_virtual_services: List[VirtualService] = field(default_factory=list)
    grpc_route_virtual_services: List[VirtualService] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


@dataclass
class _Parent:
    """One programmed listener, as routes see it (istiod's parentInfo)."""

    origin: ListenerOrigin
    server: Server
    hostname: str  # as written ("" when unset)
    port: int
    protocol: str
    kinds: Tuple[str, ...]


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ShapeError("spec: must be a mapping")
    return spec


def _list(value: Any, where: str) -> List[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ShapeError(f"{where}: must be a list of mappings")
    return value


def _strings(value: Any, where: str) -> List[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ShapeError(f"{where}: must be a list of strings")
    return value


def _optional(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """obj[key] when it has the type the API gives it (or is absent); else a shape error."""
    value = obj.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is int):
        raise ShapeError(f"{where}.{key}: must be {'a string' if kind is str else 'a mapping' if kind is dict else 'a number'}")
    return value


def _check_listener(listener: Mapping[str, Any], where: str) -> None:
    for key, kind in (("name", str), ("hostname", str), ("protocol", str), ("allowedRoutes", dict), ("tls", dict)):
        _optional(listener, key, kind, where)
    if isinstance(listener.get("tls"), dict):
        _optional(listener["tls"], "options", dict, f"{where}.tls")
        _optional(listener["tls"], "mode", str, f"{where}.tls")


def _check_refs(spec: Mapping[str, Any]) -> None:
    for i, ref in enumerate(_list(spec.get("parentRefs"), "spec.parentRefs")):
        for key, kind in (("name", str), ("namespace", str), ("sectionName", str), ("kind", str), ("group", str),
                          ("port", int)):
            _optional(ref, key, kind, f"spec.parentRefs[{i}]")
    _strings(spec.get("hostnames"), "spec.hostnames")


def _istio_classes(objs: GatewayApiObjects) -> Set[str]:
    out = {DEFAULT_CLASS}
    for c in objs.gateway_classes:
        spec = c.get("spec") if isinstance(c.get("spec"), dict) else {}
        name = c["metadata"].get("name") if isinstance(c.get("metadata"), dict) else None
        if not isinstance(name, str):
            continue
        if name and spec.get("controllerName") == ISTIO_CONTROLLER:
            out.add(str(name))
        elif name and name in out and spec.get("controllerName") not in (None, ISTIO_CONTROLLER):
            out.discard(str(name))  # a class named istio that belongs to someone else
    return out


def _port(listener: Mapping[str, Any], where: str) -> int:
    port = listener.get("port")
    if port is None:  # ListenerSet entries may leave it to the protocol (ListenerEntryPortNumber)
        port = {"HTTP": 80, "HTTPS": 443}.get(str(listener.get("protocol")))
        if port is None:
            raise ShapeError(f"{where}.port: required for protocol {listener.get('protocol')}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ShapeError(f"{where}.port: must be a port number")
    return port


def _hostname(listener: Mapping[str, Any]) -> str:
    h = listener.get("hostname")
    return str(h) if isinstance(h, str) else ""


def _allowed_namespaces(listener: Mapping[str, Any], local: str, notes: List[str], who: str,
                        namespaces: Optional[Mapping[str, Mapping[str, str]]]) -> List[str]:
    routes = listener.get("allowedRoutes") if isinstance(listener.get("allowedRoutes"), dict) else {}
    spaces = routes.get("namespaces") if isinstance(routes.get("namespaces"), dict) else {}
    frm = spaces.get("from") or "Same"
    if frm == "Same":
        return [local]
    if frm == "All":
        return ["*"]
    if frm == "Selector":
        if namespaces is None:
            notes.append(f"{who}: allowedRoutes by namespace selector not resolved (Namespaces not read): no "
                         "route is bound to it")
            return []
        chosen = selected_namespaces(spaces.get("selector"), namespaces)
        if not chosen:
            notes.append(f"{who}: allowedRoutes selects no Namespace read: no route is bound to it")
        return chosen
    return []


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def selected_namespaces(selector: Any, namespaces: Mapping[str, Mapping[str, str]]) -> List[str]:
    """The Namespaces a LabelSelector picks (namespacesFromSelector). The API server labels every
    Namespace with its own name (kubernetes.io/metadata.name), which selectors commonly use."""
    return sorted(ns for ns, labels in namespaces.items()
                  if label_selector_matches(selector, dict(labels, **{NAMESPACE_NAME_LABEL: ns})))


def _route_kinds(listener: Mapping[str, Any], protocol: str) -> Tuple[str, ...]:
    supported = ROUTE_KINDS.get(protocol, ())
    routes = listener.get("allowedRoutes") if isinstance(listener.get("allowedRoutes"), dict) else {}
    kinds = routes.get("kinds") if isinstance(routes.get("kinds"), list) else []
    if not kinds:
        return supported
    wanted = {str(k.get("kind")) for k in kinds if isinstance(k, dict)
              and (k.get("group") or GATEWAY_API_GROUP) == GATEWAY_API_GROUP}
    return tuple(k for k in supported if k in wanted)


class _Grants:
    """ReferenceGrants: may an object of `kind` in namespace `frm` read Secret ns/name?"""

    def __init__(self, grants: Sequence[Mapping[str, Any]], default_namespace: str,
                 problem: Callable[[Mapping[str, Any], ShapeError], None]) -> None:
        self.allowed: Set[Tuple[str, str, str, str]] = set()  # (secret ns, from kind, from ns, name or "")
        for g in grants:
            try:
                ns = object_ref(g, default_namespace).namespace
                spec = _spec(g)
                tos = [t for t in _list(spec.get("to"), "spec.to")
                       if (t.get("group") or "") == "" and t.get("kind") == "Secret"]
                froms = [f for f in _list(spec.get("from"), "spec.from") if f.get("group") == GATEWAY_API_GROUP]
            except ShapeError as exc:
                problem(g, exc)
                continue
            for f in froms:
                for t in tos:
                    self.allowed.add((ns, str(f.get("kind")), str(f.get("namespace")), str(t.get("name") or "")))

    def secret_allowed(self, kind: str, frm: str, ns: str, name: str) -> bool:
        return (ns, kind, frm, "") in self.allowed or (ns, kind, frm, name) in self.allowed


def _tls(listener: Mapping[str, Any], gateway_spec: Mapping[str, Any], owner: ListenerOrigin, grants: _Grants,
         where: str) -> Tuple[Optional[TlsMode], Tuple[str, ...], Dict[str, Any], Optional[str]]:
    """(mode, credential names, Istio tls settings, why not programmed) for a listener's tls."""
    tls = listener.get("tls")
    if tls is None:
        return None, (), {}, None
    if not isinstance(tls, dict):
        raise ShapeError(f"{where}.tls: must be a mapping")
    mode = tls.get("mode") or "Terminate"
    if mode == "Passthrough":
        return TlsMode.PASSTHROUGH, (), {"mode": "PASSTHROUGH"}, None
    if mode != "Terminate":
        raise ShapeError(f"{where}.tls.mode: must be Terminate or Passthrough")
    options = tls.get("options") if isinstance(tls.get("options"), dict) else {}
    option = options.get(TERMINATE_MODE_OPTION)
    if option == "ISTIO_SIMPLE":
        return TlsMode.SIMPLE, ("builtin://",), {"mode": "SIMPLE", "credentialName": "builtin://"}, None
    if option == "ISTIO_MUTUAL":
        return TlsMode.ISTIO_MUTUAL, (), {"mode": "ISTIO_MUTUAL"}, None
    refs = _list(tls.get("certificateRefs"), f"{where}.tls.certificateRefs")
    if len(refs) > 2:
        return None, (), {}, "TLS mode can only support up to 2 server certificates"
    names: List[str] = []
    why = []
    for k, ref in enumerate(refs):
        for key in ("name", "namespace", "group", "kind"):
            _optional(ref, key, str, f"{where}.tls.certificateRefs[{k}]")
        group, kind = ref.get("group") or "", ref.get("kind") or "Secret"
        ns, name = str(ref.get("namespace") or owner.namespace), str(ref.get("name") or "")
        if (group, kind) != ("", "Secret"):
            why.append(f"certificateRef {kind} {name}: only Secrets are allowed")
        elif ns != owner.namespace and not grants.secret_allowed(owner.kind, owner.namespace, ns, name):
            why.append(f"certificateRef {ns}/{name} not permitted (no ReferenceGrant in {ns})")
        else:
            names.append(f"{SECRET_PREFIX}{ns}/{name}")
    if not names:
        return None, (), {}, "; ".join(why) or "no certificateRefs"
    tls_mode = TlsMode.SIMPLE
    frontend = (gateway_spec.get("tls") or {}).get("frontend") if isinstance(gateway_spec.get("tls"), dict) else None
    if isinstance(frontend, dict):
        port_cfg = next((p.get("tls") for p in frontend.get("perPort") or []
                         if isinstance(p, dict) and p.get("port") == listener.get("port")), frontend.get("default"))
        validation = (port_cfg or {}).get("validation") if isinstance(port_cfg, dict) else None
        if isinstance(validation, dict) and validation.get("caCertificateRefs"):
            fallback = validation.get("mode") == "AllowInsecureFallback"
            tls_mode = TlsMode.OPTIONAL_MUTUAL if fallback else TlsMode.MUTUAL
    if option in ("MUTUAL", "OPTIONAL_MUTUAL"):
        tls_mode = TlsMode(option)
    settings: Dict[str, Any] = {"mode": tls_mode.value}
    if tls_mode in (TlsMode.MUTUAL, TlsMode.OPTIONAL_MUTUAL):
        settings["caCertificates"] = "gateway-api-validation"  # the CA comes from its own reference
    return tls_mode, tuple(names), settings, None


class _Accepted:
    """Listeners already accepted on a Gateway, indexed per port for listenersDistinct (a later
    listener conflicts when, on its port, an L4 listener meets an HTTP-like one or another L4
    one, two HTTP-like ones share a hostname, or other protocols repeat)."""

    L4 = ("TCP", "UDP")

    def __init__(self) -> None:
        self.by_port: Dict[int, Tuple[Set[str], Set[str]]] = {}  # port -> (protocols, HTTP-like hostnames)

    def conflicts(self, port: int, protocol: str, hostname: str) -> bool:
        protocols, hosts = self.by_port.get(port, (set(), set()))
        if protocol in self.L4:
            return any(p in self.L4 or p in HTTP_LIKE for p in protocols)
        if protocol in HTTP_LIKE:
            return any(p in self.L4 for p in protocols) or hostname in hosts
        return protocol in protocols

    def add(self, port: int, protocol: str, hostname: str) -> None:
        protocols, hosts = self.by_port.setdefault(port, (set(), set()))
        protocols.add(protocol)
        if protocol in HTTP_LIKE:
            hosts.add(hostname)


def _admits_listener_sets(gw: Mapping[str, Any], gw_ns: str, ls_ns: str,
                          namespaces: Optional[Mapping[str, Mapping[str, str]]]) -> bool:
    """NamespaceAcceptedByAllowListeners (a malformed Gateway admits none; it is reported itself)."""
    spec = gw.get("spec") if isinstance(gw.get("spec"), dict) else {}
    allowed = spec.get("allowedListeners")
    spaces = allowed.get("namespaces") if isinstance(allowed, dict) else None
    if not isinstance(spaces, dict):
        return False
    frm = spaces.get("from")
    if frm == "Selector":
        return namespaces is not None and ls_ns in selected_namespaces(spaces.get("selector"), namespaces)
    return frm == "All" or (frm == "Same" and ls_ns == gw_ns)


def _placement(gw: Mapping[str, Any], ref: Ref, services: Sequence[Mapping[str, Any]], have_services: bool,
               notes: List[str]) -> Optional[Tuple[Tuple[str, str], ...]]:
    """The pod selector of the workload a Gateway's listeners are served by, or None."""
    addresses = _list(_spec(gw).get("addresses"), "spec.addresses")
    hostnames = [a for a in addresses if (a.get("type") or "IPAddress") == "Hostname"]
    managed = not addresses or (len(addresses) == 1 and (addresses[0].get("type") or "IPAddress") == "IPAddress")
    if managed:
        return ((GATEWAY_NAME_LABEL, ref.name),)
    selectors = []
    for a in hostnames:
        value = str(a.get("value") or "")
        name, _, rest = value.partition(".")
        ns = rest.split(".", 1)[0] if rest else ref.namespace
        if ns != ref.namespace:  # istiod only matches the Service in the Gateway's namespace
            notes.append(f"Gateway {ref.key}: address {value} is not a Service in {ref.namespace}: ignored")
            continue
        svc = next((s for s in services if (s.get("metadata") or {}).get("name") == name
                    and ((s.get("metadata") or {}).get("namespace") or "default") == ns), None)
        if svc is not None:
            sel = (svc.get("spec") or {}).get("selector") or {}
            selectors.append(tuple(sorted((str(k), str(v)) for k, v in sel.items())))
        elif not have_services:
            selectors.append(((NAMED_SERVICE, f"{ns}/{name}"),))
        else:
            notes.append(f"Gateway {ref.key}: Service {ns}/{name} named by spec.addresses not found: "
                         "its listeners were not placed")
    if len(set(selectors)) > 1:
        notes.append(f"Gateway {ref.key}: several Services in spec.addresses; the first one is used")
    return selectors[0] if selectors else None


def _listeners(out: Translated, owner: ListenerOrigin, obj: Mapping[str, Any], spec: Mapping[str, Any],
               selector: Optional[Tuple[Tuple[str, str], ...]], workload_ns: str, grants: "_Grants",
               accepted: "_Accepted", parents: "_Parents", gateway: str,
               namespaces: Optional[Mapping[str, Mapping[str, str]]]) -> None:
    """The servers of one Gateway's (or attached ListenerSet's) listeners, in order."""
    created = str(meta(obj).get("creationTimestamp") or "")
    for i, listener in enumerate(_list(_spec(obj).get("listeners"), "spec.listeners")):
        where = f"spec.listeners[{i}]"
        _check_listener(listener, where)
        name = str(listener.get("name") or "")
        if not name:
            raise ShapeError(f"{where}.name: required")
        origin = ListenerOrigin(owner.kind, owner.namespace, owner.name, name, gateway)
        protocol = str(listener.get("protocol") or "")
        port = _port(listener, where)
        hostname = _hostname(listener) or "*"
        if accepted.conflicts(port, protocol, hostname):
            out.notes.append(f"listener {origin} conflicts with an earlier listener on port {port}: "
                             "not programmed (Conflicted)")
            continue
        accepted.add(port, protocol, hostname)
        server = _server(origin, listener, spec, port, protocol, created, selector, workload_ns, grants,
                         where, out.notes, namespaces)
        if server is None or selector is None:
            continue
        out.servers.append(server)
        parents.add((owner.kind, owner.namespace, owner.name), _Parent(
            origin, server, _hostname(listener), port, protocol, _route_kinds(listener, protocol)))


def translate(objs: GatewayApiObjects, services: Sequence[Mapping[str, Any]] = (), have_services: bool = False,
              default_namespace: str = "default", strict: bool = True) -> Translated:
    out = Translated()
    classes = _istio_classes(objs)
    grants = _Grants(objs.reference_grants, default_namespace,
                     lambda g, exc: _problem(out, strict, "ReferenceGrant", g, exc))
    parents = _Parents()
    skipped_class: Set[str] = set()
    by_key: Dict[Tuple[str, str], Mapping[str, Any]] = {}
    for gw in objs.gateways:
        try:
            ref = object_ref(gw, default_namespace)
        except ShapeError as exc:
            _problem(out, strict, "Gateway", gw, exc)
            continue
        by_key[(ref.namespace, ref.name)] = gw
    attached: Dict[Tuple[str, str], List[Mapping[str, Any]]] = {}
    for ls in objs.listener_sets:
        try:
            ls_ref = object_ref(ls, default_namespace)
            p = _optional(_spec(ls), "parentRef", dict, "spec") or {}
            key = (str(p.get("namespace") or ls_ref.namespace), str(p.get("name") or ""))
        except (ShapeError, AttributeError) as exc:
            _problem(out, strict, "ListenerSet", ls, ShapeError(str(exc)))
            continue
        gw = by_key.get(key)
        if gw is None or (p.get("kind") or "Gateway") != "Gateway":
            out.notes.append(f"ListenerSet {ls_ref.key}: parent Gateway {key[0]}/{key[1]} not found: ignored")
        elif not _admits_listener_sets(gw, key[0], ls_ref.namespace, objs.namespaces):
            out.notes.append(f"ListenerSet {ls_ref.key}: not admitted by allowedListeners of Gateway "
                             f"{key[0]}/{key[1]}: ignored")
        else:
            attached.setdefault(key, []).append(ls)
    for key in sorted(by_key):
        gw = by_key[key]
        ref = Ref("Gateway", key[0], key[1])
        try:
            spec = _spec(gw)
            if str(spec.get("gatewayClassName") or "") not in classes:
                skipped_class.add(ref.key)
                continue
            selector = _placement(gw, ref, services, have_services, out.notes)
            owners = [(ListenerOrigin("Gateway", ref.namespace, ref.name, "", ref.key), gw)]
            sets = sorted(attached.get(key, ()), key=lambda o: (str(meta(o).get("creationTimestamp") or ""),
                                                                object_ref(o, default_namespace).key))
            owners += [(ListenerOrigin("ListenerSet", object_ref(o, default_namespace).namespace,
                                       object_ref(o, default_namespace).name, "", ref.key), o) for o in sets]
            accepted = _Accepted()
            for owner, obj in owners:
                try:
                    _listeners(out, owner, obj, spec, selector, key[0], grants, accepted, parents, ref.key,
                               objs.namespaces)
                except ShapeError as exc:
                    if owner.kind == "Gateway":
                        raise
                    _problem(out, strict, "ListenerSet", obj, exc)  # the set is wrong, not its Gateway
        except ShapeError as exc:
            _problem(out, strict, "Gateway", gw, exc)
    if skipped_class:
        names = sorted(skipped_class)
        out.notes.append(f"{len(names)} Gateway API Gateway(s) of another class than istio's ignored: "
                         f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
    for kind, routes, make, into in (
            ("HTTPRoute", objs.http_routes, _route_virtual_services, out.http_route_virtual_services),
            ("GRPCRoute", objs.grpc_routes, _route_virtual_services, out.grpc_route_virtual_services),
            ("TLSRoute", objs.tls_routes, _tls_route_virtual_services, out.virtual_services)):
        for route in routes:
            try:
                into.extend(make(route, parents, default_namespace, kind))
            except ShapeError as exc:
                _problem(out, strict, kind, route, exc)
    return out


def _server(origin: ListenerOrigin, listener: Mapping[str, Any], gateway_spec: Mapping[str, Any], port: int,
            protocol: str, created: str, selector: Optional[Tuple[Tuple[str, str], ...]], workload_ns: str,
            grants: _Grants, where: str, notes: List[str],
            namespaces: Optional[Mapping[str, Mapping[str, str]]] = None) -> Optional[Server]:
    if protocol not in ("HTTP", "HTTPS", "TLS", "TCP"):
        notes.append(f"listener {origin}: protocol {protocol!r} is not supported by istiod: not programmed")
        return None
    mode, creds, settings, why = _tls(listener, gateway_spec, origin, grants, where)
    if why is not None:
        notes.append(f"listener {origin}: {why}: not programmed")
        return None
    if mode is None and protocol in ("HTTPS", "TLS"):
        notes.append(f"listener {origin}: protocol {protocol} without tls: not programmed")
        return None
    hostname = _hostname(listener) or "*"
    spaces = _allowed_namespaces(listener, origin.namespace, notes, f"listener {origin}", namespaces)
    hosts = tuple(f"{ns}/{hostname}" for ns in spaces) or (f"~/{hostname}",)
    if creds:
        settings["credentialName" if len(creds) == 1 else "credentialNames"] = creds[0] if len(creds) == 1 else list(creds)
    return Server(ref=ServerRef(Ref("Gateway", origin.namespace, origin.internal_name), 0, port, "default", origin),
                  hosts=hosts, protocol=protocol, tls_mode=mode, credential_names=creds, server_certificate=None,
                  bind="", selector=selector or (), created=created, tls=settings, workload_namespace=workload_ns,
                  managed=bool(selector) and selector[0][0] == GATEWAY_NAME_LABEL)


def _problem(out: Translated, strict: bool, kind: str, obj: Mapping[str, Any], exc: ShapeError) -> None:
    m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    text = f"{kind} {m.get('namespace') or 'default'}/{m.get('name', '?')}: {exc}"
    if strict:
        raise InputError(text)
    out.notes.append(f"skipped {text}")


# --- routes ------------------------------------------------------------------------------------

def _admits(parent: _Parent, ref: Mapping[str, Any], hostnames: Sequence[str], route_ns: str,
            kind: str = "HTTPRoute") -> bool:
    """referenceAllowed for a Gateway (or ListenerSet) parent."""
    if ref.get("port") not in (None, 0, parent.port):
        return False
    if ref.get("sectionName") and ref.get("sectionName") != parent.origin.listener:
        return False
    matched = False
    for rh in hostnames or ["*"]:
        for h in parent.server.hosts:
            ns, _, name = h.partition("/")
            if istio_matches(name, rh) and ns in ("*", route_ns):
                matched = True
    return matched and kind in parent.kinds


def _isolated_out(parent: _Parent, siblings: Sequence[_Parent], host: str, parents: "_Parents") -> bool:
    """hostnameAllowedByIsolation, negated: a sibling listener (same port and protocol) with a
    hostname at least as long as ours owns this route hostname (host SubsetOf it)."""
    ours = parent.hostname
    if ours and not ours.startswith("*"):
        return False
    if ours and not istio_matches(host, ours):
        return True
    exact, wild = parents.banned(parent, siblings)
    if not host.startswith("*"):
        if host in exact:
            return True
        labels = host.split(".")
        return any(".".join(labels[i:]) in wild for i in range(1, len(labels))) or "" in wild
    return any(istio_subset_of(host, "*" + (f".{w}" if w else "")) for w in wild)


def _backends(rule: Mapping[str, Any], namespace: str, where: str) -> Dict[str, Any]:
    """Where a rule's requests go, as the VirtualService istiod makes of it
    (pilot/pkg/config/kube/gateway/conversion.go buildHTTPDestination): each Service backendRef
    a destination `<name>.<namespace>.svc.<domain>` on its port, weight 1 unless given; no
    backend of weight above 0: a direct 500, as the specification requires."""
    dests = []
    for k, b in enumerate(_list(rule.get("backendRefs"), f"{where}.backendRefs")):
        weight = b.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool):
            raise ShapeError(f"{where}.backendRefs[{k}].weight: must be an integer")
        if str(b.get("kind") or "Service") != "Service" or str(b.get("group") or "") not in ("", "core"):
            host = f"{b.get('group')}/{b.get('kind')}/{b.get('name')}"  # not a Service: named as written
        else:
            host = f"{b.get('name')}.{b.get('namespace') or namespace}.svc.{CLUSTER_DOMAIN}"
        dest: Dict[str, Any] = {"host": host}
        if isinstance(b.get("port"), int):
            dest["port"] = {"number": b["port"]}
        dests.append({"destination": dest, "weight": weight})
    if not any(d["weight"] > 0 for d in dests):
        return {"directResponse": {"status": 500}}
    return {"route": dests}


class _Parents(Dict[Tuple[str, str, str], List[_Parent]]):
    """Programmed listeners per parent (kind, namespace, name), and by listener name."""

    def __init__(self) -> None:
        super().__init__()
        self._named: Dict[Tuple[str, str, str, str], _Parent] = {}
        self._banned: Dict[ListenerOrigin, Tuple[Set[str], Set[str]]] = {}

    def add(self, key: Tuple[str, str, str], parent: _Parent) -> None:
        self.setdefault(key, []).append(parent)
        self._named.setdefault(key + (parent.origin.listener,), parent)

    def section(self, key: Tuple[str, str, str], name: str) -> Optional[_Parent]:
        return self._named.get(key + (name,))

    def banned(self, parent: _Parent, siblings: Sequence[_Parent]) -> Tuple[Set[str], Set[str]]:
        """The hostnames isolation holds against a wildcard (or unset) listener: its siblings' on
        its port and protocol, at least as long as its own and not equal to it; exact ones, and
        wildcards by suffix ("" for a sibling without hostname). Once per listener."""
        found = self._banned.get(parent.origin)
        if found is None:
            exact: Set[str] = set()
            wild: Set[str] = set()
            for other in siblings:
                if other is parent or other.port != parent.port or other.protocol != parent.protocol:
                    continue
                h = other.hostname
                if h == parent.hostname or len(parent.hostname) > len(h):
                    continue
                if h.startswith("*"):
                    wild.add(h[2:])
                else:
                    exact.add(h)
            found = self._banned[parent.origin] = (exact, wild)
        return found


def _parents_of(ref: Ref, spec: Mapping[str, Any], parents: _Parents
                ) -> Iterator[Tuple[Mapping[str, Any], List[_Parent], List[_Parent]]]:
    """(parentRef, every listener of its parent, the listeners it may name): a sectionName picks
    one listener by name, without a scan of a Gateway's thousands."""
    for pref in _list(spec.get("parentRefs"), "spec.parentRefs"):
        kind = str(pref.get("kind") or "Gateway")
        if (pref.get("group") or GATEWAY_API_GROUP) != GATEWAY_API_GROUP or kind not in ("Gateway", "ListenerSet"):
            continue
        key = (kind, str(pref.get("namespace") or ref.namespace), str(pref.get("name") or ""))
        siblings = parents.get(key, [])
        section = pref.get("sectionName")
        if section:
            named = parents.section(key, str(section))
            yield pref, siblings, [named] if named else []
        else:
            yield pref, siblings, siblings


def _tls_route_virtual_services(route: Mapping[str, Any], parents: _Parents,
                                default_namespace: str, kind: str = "TLSRoute") -> Iterator[VirtualService]:
    """TLSRouteCollection: per admitted listener, one VirtualService per hostname, its TLS route
    matched on the hostnames, narrowed to the listener's (constrainTLSRoutesToListenerHost)."""
    ref = object_ref(route, default_namespace)
    spec = _spec(route)
    _check_refs(spec)
    hostnames = list(spec.get("hostnames") or []) or ["*"]
    created = str(meta(route).get("creationTimestamp") or "")
    for pref, siblings, named in _parents_of(ref, spec, parents):
        for parent in named:
            if not _admits(parent, pref, hostnames, ref.namespace, "TLSRoute"):
                continue
            hosts = hostnames
            if parent.hostname:
                hosts = istio_intersection(hostnames, [parent.hostname])
            gw = f"{parent.origin.namespace}/{parent.origin.internal_name}"
            tls = [{"match": [{"sniHosts": hosts}], "route": [{"destination": {"host": "backend"}}]}]
            for h in hosts:
                name = f"{ref.name}~tls~{h}~{gw}".replace("/", "~")
                yield VirtualService(ref=Ref("VirtualService", ref.namespace, name), hosts=(h,), gateways=(gw,),
                                     route_gateways=(), created=created,
                                     raw={"spec": {"hosts": [h], "gateways": [gw], "tls": tls}},
                                     origin=f"TLSRoute {ref.key}")


def _route_virtual_services(route: Mapping[str, Any], parents: _Parents, default_namespace: str,
                            kind: str = "HTTPRoute") -> Iterator[VirtualService]:
    """HTTPRouteCollection / GRPCRouteCollection: per admitted listener and hostname, one
    VirtualService of that host, one route per match (istiod/route_conversion.py), sorted by
    precedence (istiod/route_merging.py merges those of one listener and hostname)."""
    ref = object_ref(route, default_namespace)
    spec = _spec(route)
    _check_refs(spec)
    hostnames = list(spec.get("hostnames") or [])
    http: List[Dict[str, Any]] = []
    ids: List[str] = []
    grpc = kind == "GRPCRoute"
    for i, rule in enumerate(_list(spec.get("rules"), "spec.rules")):
        matches = _list(rule.get("matches"), f"spec.rules[{i}].matches")
        action = _backends(rule, ref.namespace, f"spec.rules[{i}]")
        if not matches and grpc:  # no default: a route without a match
            http.append(dict(action))
            ids.append(f"{kind} {ref.key} rules[{i}]")
        for j, m in enumerate(matches or [{}]):  # HTTPRoute: the API server's default, PathPrefix /
            where = f"spec.rules[{i}].matches[{j}]"
            if grpc:
                match = grpc_match(m, where)
            else:
                _optional(m, "path", dict, where)
                _optional(m, "method", str, where)
                match = http_match(m, where)
            http.append(dict(action, match=[match]))  # `{}` too: a match of everything
            ids.append(f"{kind} {ref.key} rules[{i}]" + (f".matches[{j}]" if matches else ""))
    if not http:
        return
    http, ids = sort_http_routes(http, ids)
    created = str(meta(route).get("creationTimestamp") or "")
    seen: Set[Tuple[str, str]] = set()
    for pref, siblings, named in _parents_of(ref, spec, parents):
        for parent in named:
            if not _admits(parent, pref, hostnames, ref.namespace, kind):
                continue
            gw = f"{parent.origin.namespace}/{parent.origin.internal_name}"
            for h in hostnames or ["*"]:
                if _isolated_out(parent, siblings, h, parents) or (gw, h) in seen:
                    continue
                seen.add((gw, h))
                name = f"{ref.name}~{gw}/{h}".replace("/", "~")
                yield VirtualService(ref=Ref("VirtualService", ref.namespace, name), hosts=(h,), gateways=(gw,),
                                     route_gateways=(), created=created,
                                     raw={"spec": {"hosts": [h], "gateways": [gw], "http": http}},
                                     origin=f"{kind} {ref.key}", route_ids=tuple(ids))
