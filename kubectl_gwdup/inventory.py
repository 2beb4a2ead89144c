"""Inventory: raw objects -> normalized servers, listeners, certificates, routes. No I/O.

This stage re-does, for our purpose, what istiod does when it merges Gateways for a proxy:
- servers are placed on the workloads their Gateway's selector picks, and on the port Envoy
  binds (the Service targetPort), because servers share a listener per workload and port;
- Gateways are taken in istiod's order (creationTimestamp, name, namespace) and a TLS server
  repeating a host already on that listener is dropped whole, as istiod drops it;
- certificates come from the Secret named by credentialName in the *workload's* namespace;
- each HTTPS server's route table holds the VirtualService hosts bound to its Gateway.
"""
from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from . import certs as certs_mod
from .errors import InputError
from .gatewayapi import SECRET_PREFIX, GatewayApiObjects, Translated, translate
from .hosts import HostSet, bare_host, istio_intersection, names_for_namespace
from .istiod.route import CLUSTER_DOMAIN, Route, build_http_routes
from .istiod.route_merging import merge_route_virtual_services
from .istiod.tcp_routes import has_tcp_chain
from .model import (MANAGED_BY, CertStatus, Certificate, Credential, Input, Inventory, Listener, Mitigation, Placement,
                    Ref, RouteSource, Server, TlsMode, VirtualHost, VirtualService, Workload, WorkloadVia)
from .objects import (ShapeError, gateway_servers, labels_of, object_ref, resolve_gateway_name,
                      sanitized_hosts, selector_matches, virtual_service)

CERT_KEYS = ("tls.crt", "cert")  # istio reads kubernetes.io/tls Secrets and generic ones
CA_KEYS = ("ca.crt", "cacert")  # a MUTUAL server's client CA: in its Secret, or in <name>-cacert


@dataclass
class RawObjects:
    """What a source read, as plain dicts. Secrets hold certificate bytes only, never keys."""

    gateways: List[Mapping[str, Any]] = field(default_factory=list)
    virtual_services: List[Mapping[str, Any]] = field(default_factory=list)
    pods: List[Mapping[str, Any]] = field(default_factory=list)
    deployments: List[Mapping[str, Any]] = field(default_factory=list)
    services: List[Mapping[str, Any]] = field(default_factory=list)
    envoy_filters: List[Mapping[str, Any]] = field(default_factory=list)
    secrets: Dict[Tuple[str, str], bytes] = field(default_factory=dict)  # (ns, name) -> PEM
    secret_status: Dict[Tuple[str, str], CertStatus] = field(default_factory=dict)
    available: Set[Input] = field(default_factory=set)
    origin: Dict[int, str] = field(default_factory=dict)  # id(obj) -> file, for error lines
    secrets_complete: bool = False  # True: a Secret absent from `secrets` does not exist
    secret_cas: Set[Tuple[str, str]] = field(default_factory=set)  # Secrets holding a CA (ca.crt, cacert)
    default_namespace: str = "default"
    notes: List[str] = field(default_factory=list)
    source: str = ""
    strict: bool = True  # files: a bad object is an error; cluster: a note, object skipped
    gateway_api: GatewayApiObjects = field(default_factory=GatewayApiObjects)
    _servers: Optional[Tuple[Tuple[int, ...], List[Server], Translated]] = field(default=None, repr=False,
                                                                                  compare=False)

    def _inputs(self) -> Tuple[int, ...]:
        """What the servers are made of: each input list, by identity and length (the sources
        only append, and only before the first build)."""
        lists = (self.gateways, self.services, self.gateway_api.gateways, self.gateway_api.listener_sets,
                 self.gateway_api.http_routes, self.gateway_api.grpc_routes, self.gateway_api.tls_routes, self.gateway_api.reference_grants,
                 self.gateway_api.gateway_classes)
        lists += (self.gateway_api.namespaces or {},)
        return tuple(x for lst in lists for x in (id(lst), len(lst)))


@dataclass(frozen=True)
class Settings:
    scope_gateway_to_namespace: bool = False
    # istiod 1.31 on (PILOT_ENABLE_STRICT_GATEWAY_MERGING): see _strict_merging
    strict_gateway_merging: bool = True
    # HTTPRoutes and GRPCRoutes of one listener and hostname merged together: all but 1.26-1.29
    # (istiod/route_merging.py)
    grpc_routes_joined: bool = True
    # a TLSRoute gives a TLS Terminate listener its chain: 1.30 on (istiod/tcp_routes.py)
    tls_routes_terminated: bool = True


def secret_from_manifest(obj: Mapping[str, Any]) -> Optional[bytes]:
    """The certificate bytes of a Secret manifest (data is base64, stringData plain)."""
    data = obj.get("data") or {}
    string_data = obj.get("stringData") or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        raise ShapeError("data: must be a mapping")
    for key in CERT_KEYS:
        if isinstance(string_data.get(key), str):
            return string_data[key].encode()
        if isinstance(data.get(key), str):
            try:
                return base64.b64decode(data[key], validate=True)
            except (binascii.Error, ValueError):
                raise ShapeError(f"data.{key}: not valid base64") from None
    return None


# --- workloads -------------------------------------------------------------------------------

def _pod_workload_name(pod: Mapping[str, Any]) -> str:
    m = pod.get("metadata") or {}
    owners = m.get("ownerReferences") or []
    labels = m.get("labels") or {}
    if owners:
        owner = owners[0]
        name = str(owner.get("name", ""))
        h = labels.get("pod-template-hash")
        if owner.get("kind") == "ReplicaSet" and h and name.endswith("-" + h):
            return name[: -len(h) - 1]  # the Deployment
        return name
    return str(m.get("name", ""))


def _container_ports(pod_spec: Any) -> Dict[str, int]:
    """name -> containerPort of a pod spec's containers (what a named targetPort names; the
    endpoints controller resolves it the same way, container by container)."""
    out: Dict[str, int] = {}
    containers = (pod_spec or {}).get("containers") if isinstance(pod_spec, dict) else None
    for c in containers if isinstance(containers, list) else ():
        for p in (c.get("ports") if isinstance(c, dict) else None) or ():
            if isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("containerPort"), int) \
                    and not isinstance(p.get("containerPort"), bool):
                out.setdefault(p["name"], p["containerPort"])
    return out


def pod_workloads(raw: "RawObjects") -> Dict[Tuple[str, str], Tuple[str, str]]:
    """(namespace, pod name) -> (namespace, name) of its workload: its Deployment (through its
    ReplicaSet), or its owner, or, for a Pod listed without ownerReferences (an edited export),
    the listed Deployment of its namespace whose pod template has exactly its labels (istiod
    configures a proxy by its labels, so such a Pod is that Deployment's to every Gateway and
    EnvoyFilter), or else itself."""
    templates: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], str] = {}
    for d in raw.deployments:
        ref = object_ref(d, raw.default_namespace)
        labels = tuple(sorted(labels_of(((d.get("spec") or {}).get("template") or {})).items()))
        templates.setdefault((ref.namespace, labels), ref.name)  # several: the first listed
    out = {}
    for pod in raw.pods:
        m = pod.get("metadata") or {}
        ns = str(m.get("namespace") or raw.default_namespace)
        name = _pod_workload_name(pod)
        if not m.get("ownerReferences"):
            labels = tuple(sorted((k, v) for k, v in labels_of(pod).items() if k != "pod-template-hash"))
            name = templates.get((ns, labels), name)
        out[(ns, str(m.get("name", "")))] = (ns, name)
    return out


def _selector_workload(selector: Tuple[Tuple[str, str], ...]) -> Workload:
    text = ",".join(f"{k}={v}" for k, v in selector) or "<all>"
    return Workload("", f"selector {text}", WorkloadVia.SELECTOR, selector)


class WorkloadIndex:
    """Which workloads a selector picks, with the most precise evidence available.

    A workload is named by its owner: a Pod made by a Deployment's ReplicaSet is that
    Deployment, and a listed Deployment whose Pods are not listed is a workload all the same
    (its pods exist or are coming), so Pods and Deployments are read together, never one
    instead of the other."""

    def __init__(self, raw: RawObjects, settings: Settings) -> None:
        self.settings = settings
        found: Dict[Tuple[str, str], Tuple[Workload, Dict[str, str]]] = {}
        for d in raw.deployments:
            tmpl = ((d.get("spec") or {}).get("template") or {})
            labels = labels_of(tmpl)
            ref = object_ref(d, raw.default_namespace)
            found[(ref.namespace, ref.name)] = (
                Workload(ref.namespace, ref.name, WorkloadVia.DEPLOYMENTS, tuple(sorted(labels.items()))), labels)
        owners = pod_workloads(raw)
        for pod in raw.pods:
            labels = {k: v for k, v in labels_of(pod).items() if k != "pod-template-hash"}
            ns = str((pod.get("metadata") or {}).get("namespace") or raw.default_namespace)
            key = owners[(ns, str((pod.get("metadata") or {}).get("name", "")))]
            if key in found and found[key][0].via is WorkloadVia.DEPLOYMENTS:
                w, known = found[key]  # the Deployment's own pods: one workload, seen running
                found[key] = (Workload(w.namespace, w.name, WorkloadVia.PODS, w.labels), known)
            elif key not in found:
                found[key] = (Workload(ns, key[1], WorkloadVia.PODS, tuple(sorted(labels.items()))), labels)
        self.candidates: List[Tuple[Workload, Dict[str, str]]] = [found[k] for k in sorted(found)]
        # named container ports, for a Service whose targetPort is a name: a Pod's own spec, else
        # its Deployment's template (live, Pods are listed without their spec)
        self.named_ports: Dict[Tuple[str, str], Dict[str, int]] = {}
        for d in raw.deployments:
            ref = object_ref(d, raw.default_namespace)
            tmpl_spec = ((d.get("spec") or {}).get("template") or {}).get("spec")
            self.named_ports.setdefault((ref.namespace, ref.name), {}).update(_container_ports(tmpl_spec))
        for pod in raw.pods:
            m = pod.get("metadata") or {}
            ns = str(m.get("namespace") or raw.default_namespace)
            owner = owners[(ns, str(m.get("name", "")))]
            self.named_ports.setdefault(owner, {}).update(_container_ports(pod.get("spec")))
        self.via = (WorkloadVia.PODS if raw.pods else WorkloadVia.DEPLOYMENTS if raw.deployments
                    else WorkloadVia.SELECTOR)
        self._cache: Dict[Tuple[Any, ...], Tuple[Workload, ...]] = {}

    def select(self, selector: Tuple[Tuple[str, str], ...], namespace: str,
               only: str = "") -> Tuple[Workload, ...]:
        """Workloads the selector picks: in `only` when set (a Gateway API listener's), else in
        the Gateway's namespace when istiod is told to scope Gateways, else anywhere."""
        scope = only or (namespace if self.settings.scope_gateway_to_namespace else None)
        key = (selector, scope)
        if key not in self._cache:
            if self.via is WorkloadVia.SELECTOR:
                found: Tuple[Workload, ...] = (_selector_workload(selector),)
            else:
                found = tuple(sorted({w for w, labels in self.candidates
                                      if selector_matches(selector, labels)
                                      and (scope is None or w.namespace == scope)}))
            self._cache[key] = found
        return self._cache[key]

    def of(self, server: Server) -> Tuple[Workload, ...]:
        """The workloads serving a server. A managed Gateway API Gateway's are the pods istiod
        deploys for it (`<name>-istio`, one per Gateway name and namespace): they exist, or are
        about to, whatever was listed, and without listed workloads they are named so."""
        found = self.select(server.selector, server.ref.gateway.namespace, server.workload_namespace)
        if server.managed and (not found or self.via is WorkloadVia.SELECTOR):
            owner = server.selector[0][1]
            found = (Workload(server.workload_namespace, f"{owner}-istio", WorkloadVia.MANAGED, server.selector),)
        return found


class PortIndex:
    """Gateway server port -> the port Envoy binds, through the workload's Service."""

    def __init__(self, services: Sequence[Mapping[str, Any]], default_namespace: str,
                 named_ports: Optional[Mapping[Tuple[str, str], Mapping[str, int]]] = None) -> None:
        self.named_ports = named_ports or {}
        self.by_ns: Dict[str, List[Tuple[Dict[str, str], List[Mapping[str, Any]]]]] = defaultdict(list)
        for svc in services:
            m = svc.get("metadata") or {}
            spec = svc.get("spec") or {}
            sel = spec.get("selector") or {}
            if not sel:
                continue
            self.by_ns[str(m.get("namespace") or default_namespace)].append(
                ({str(k): str(v) for k, v in sel.items()}, list(spec.get("ports") or [])))
        self.unresolved: Set[str] = set()

    def resolve(self, workload: Workload, port: int, strict: bool = False) -> Optional[int]:
        """The targetPort of the workload's Service port `port`; without one, the port itself, or
        None when `strict` (a Gateway istiod binds through a Service: resolvePorts has no
        fallback there)."""
        labels = dict(workload.labels)
        spaces = [workload.namespace] if workload.namespace else list(self.by_ns)
        for ns in spaces:
            for sel, ports in self.by_ns.get(ns, ()):
                if not all(labels.get(k) == v for k, v in sel.items()):
                    continue
                for p in ports:
                    if p.get("port") == port:
                        target = p.get("targetPort", port)
                        if isinstance(target, int) and not isinstance(target, bool):
                            return target
                        # a name: the workload's container port of that name (istiod binds the
                        # endpoints' port, which the endpoints controller resolves so)
                        named = self.named_ports.get((workload.namespace, workload.name), {}).get(str(target))
                        if named is not None:
                            return named
                        self.unresolved.add(f"{workload.key}:{port}->{target}")
                        return port
        return None if strict else port


# --- the build -------------------------------------------------------------------------------

def _gateway_order(server: Server) -> Tuple[str, str, str]:
    gw = server.ref.gateway
    return (server.created, gw.name, gw.namespace)


def _parse(raw: RawObjects) -> Tuple[List[Server], Translated]:
    """Every server in istiod's order, the Gateway API listeners' among them, and what istiod
    makes of the Gateway API routes. Memoized on `raw`'s inputs: the live source needs the
    servers twice (Secrets to fetch, then the build)."""
    key = raw._inputs()
    if raw._servers is not None and raw._servers[0] == key:
        return raw._servers[1], raw._servers[2]
    servers: List[Server] = []
    for obj in raw.gateways:
        try:
            servers.extend(gateway_servers(obj, raw.default_namespace))
        except ShapeError as exc:
            _shape_problem(raw, obj, "Gateway", exc)
    translated = translate(raw.gateway_api, raw.services, Input.SERVICES in raw.available,
                           raw.default_namespace, raw.strict) if raw.gateway_api else Translated()
    servers.extend(translated.servers)
    # istiod merges Gateways oldest first; within one Gateway it keeps spec order
    servers.sort(key=lambda s: (_gateway_order(s), s.ref.index))
    raw._servers = (key, servers, translated)
    return servers, translated


def parse_servers(raw: RawObjects) -> List[Server]:
    return _parse(raw)[0]


def parse_virtual_services(raw: RawObjects, settings: Settings = Settings()) -> Tuple[List[VirtualService], List[str]]:
    """Every VirtualService istiod routes with, in creation order: the Istio ones read, the
    TLSRoutes', and the HTTPRoutes' and GRPCRoutes' merged per listener and hostname; and notes
    on what the merge dropped."""
    translated = _parse(raw)[1]
    merged, notes = merge_route_virtual_services(translated.http_route_virtual_services,
                                                 translated.grpc_route_virtual_services, settings.grpc_routes_joined)
    out = list(translated.virtual_services) + merged
    for obj in raw.virtual_services:
        try:
            out.append(virtual_service(obj, raw.default_namespace))
        except ShapeError as exc:
            _shape_problem(raw, obj, "VirtualService", exc)
    out.sort(key=lambda v: (v.created, v.ref.name, v.ref.namespace))
    return out, notes


def _shape_problem(raw: RawObjects, obj: Mapping[str, Any], kind: str, exc: ShapeError) -> None:
    m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = f"{m.get('namespace') or raw.default_namespace}/{m.get('name', '?')}"
    where = raw.origin.get(id(obj))
    if raw.strict:
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}{kind} {name}: {exc}")
    raw.notes.append(f"skipped {kind} {name}: {exc}")


def credentials_for(server: Server, workload: Workload) -> Tuple[Credential, ...]:
    if server.tls_mode is None or not server.tls_mode.terminates:
        return ()
    if server.credential_names:
        out = []
        for name in server.credential_names:
            ns = workload.namespace
            if name.startswith(SECRET_PREFIX):
                ref = name[len(SECRET_PREFIX):]
                ns, _, name = ref.rpartition("/")
                ns = ns or workload.namespace
            out.append(Credential("secret", ns, name))
        return tuple(out)
    if server.server_certificate:
        return (Credential("file", workload.key, server.server_certificate),)
    return ()


def referenced_secrets(raw: RawObjects, settings: Settings = Settings()) -> Set[Tuple[str, str]]:
    """(namespace, name) of every Secret a terminating server reads, for fetching."""
    workloads = WorkloadIndex(raw, settings)
    out: Set[Tuple[str, str]] = set()
    for server in parse_servers(raw):
        for w in workloads.of(server):
            for c in credentials_for(server, w):
                if c.kind == "secret" and c.namespace:
                    out.add((c.namespace, c.name))
                    if server.tls_mode in MUTUAL_MODES:
                        out.add((c.namespace, c.name + "-cacert"))
    return out


MUTUAL_MODES = (TlsMode.MUTUAL, TlsMode.OPTIONAL_MUTUAL)


def _client_ca_missing(raw: RawObjects, server: Server, creds: Tuple[Credential, ...]) -> bool:
    """A MUTUAL server reads its client CA from `ca.crt` in its Secret or from the Secret
    `<name>-cacert` (istio's credential fetcher); with neither, the CA never arrives and Envoy
    ends every handshake on the chain. Only said when every Secret was read."""
    if server.tls_mode not in MUTUAL_MODES or server.tls.get("caCertificates") or not raw.secrets_complete \
            or Input.CERTIFICATES not in raw.available:
        return False
    secrets = [c for c in creds if c.kind == "secret" and c.namespace]
    return bool(secrets) and not any((c.namespace, c.name) in raw.secret_cas
                                     or (c.namespace, c.name + "-cacert") in raw.secret_cas for c in secrets)


class _CertLookup:
    def __init__(self, raw: RawObjects) -> None:
        self.raw = raw
        self._by_name: Optional[Dict[str, List[Tuple[str, str]]]] = None

    @property
    def by_name(self) -> Dict[str, List[Tuple[str, str]]]:
        """Secrets by name, built only when a workload's namespace is unknown (most builds
        never need it, and a merge plan builds many small inventories)."""
        if self._by_name is None:
            self._by_name = defaultdict(list)
            for key in self.raw.secrets:
                self._by_name[key[1]].append(key)
        return self._by_name

    def get(self, cred: Credential) -> Tuple[Optional[Certificate], CertStatus]:
        if cred.kind == "file":
            return None, CertStatus.FILE
        key = (cred.namespace, cred.name)
        if not cred.namespace:  # workload namespace unknown: accept a unique Secret of that name
            keys = self.by_name.get(cred.name, [])
            if len(keys) != 1:
                return None, CertStatus.NOT_SUPPLIED
            key = keys[0]
        if key in self.raw.secret_status:
            return None, self.raw.secret_status[key]
        pem = self.raw.secrets.get(key)
        if pem is None:
            if Input.CERTIFICATES not in self.raw.available:
                return None, CertStatus.FORBIDDEN if self.raw.secrets_complete else CertStatus.NOT_SUPPLIED
            return None, CertStatus.MISSING if self.raw.secrets_complete else CertStatus.NOT_SUPPLIED
        try:
            return certs_mod.parse_pem(pem), CertStatus.LOADED
        except certs_mod.CertificateError:
            return None, CertStatus.INVALID


def _wildcard_san(host: str) -> Optional[str]:
    """The SAN a certificate needs for a server host (None for ``*``, which no cert can hold)."""
    h = bare_host(host)
    if h == "*":
        return None
    return h


def service_ports(services: Sequence[Mapping[str, Any]], default_namespace: str) -> Dict[str, Tuple[int, ...]]:
    """Each Service's ports by its name in the mesh (`name.ns.svc.cluster.local`): a route's
    destination without a port goes to a Service's only port (GetDestinationCluster)."""
    out: Dict[str, Tuple[int, ...]] = {}
    for svc in services:
        m = svc.get("metadata") if isinstance(svc.get("metadata"), dict) else {}
        spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
        ports = tuple(p.get("port") for p in (spec.get("ports") or []) if isinstance(p, dict)
                      and isinstance(p.get("port"), int))
        if m.get("name"):
            out[f"{m['name']}.{m.get('namespace') or default_namespace}.svc.{CLUSTER_DOMAIN}"] = ports
    return out


def _vhosts(server: Server, vs_by_gateway: Mapping[str, List[VirtualService]],
            have_vs: bool, known_ports: Mapping[str, Tuple[int, ...]]) -> Tuple[VirtualHost, ...]:
    """The virtual hosts istiod puts in this server's route table (buildGatewayHTTPRouteConfig):
    for each VirtualService bound to the Gateway, in creation order, the server hosts its
    namespace may bind (NamesForNamespace) intersected with its hosts (Names.Intersection) give
    the domains, and its routes (kubectl_gwdup/istiod/route.py) are appended to each; then
    catch-all routes move last (SortVHostRoutes)."""
    gw_key = server.ref.gateway.key
    if not have_vs:
        origin = f"server {server.ref}"
        src = RouteSource(origin, routes=(Route(origin, backend=origin),))
        return tuple(VirtualHost(h, src) for h in dict.fromkeys(bare_host(x) for x in server.hosts))
    hosts = sanitized_hosts(server)
    routes: Dict[str, List[Route]] = {}
    bound: Dict[str, List[VirtualService]] = {}
    # NamesForNamespace, indexed once: bare hosts bind every namespace, `ns/h` only ns
    scoped: Dict[str, List[str]] = defaultdict(list)
    for h in hosts:
        ns, slash, name = h.partition("/")
        scoped[ns if slash else ""].append(name if slash else h)
    index = {ns: HostSet(hs) for ns, hs in scoped.items()}
    everyone = index.get("")
    for vs in vs_by_gateway.get(gw_key, ()):  # already in creation order
        mine = index.get(vs.ref.namespace)
        domains = list(dict.fromkeys((everyone.intersect(vs.hosts) if everyone else [])
                                     + (mine.intersect(vs.hosts) if mine and vs.ref.namespace else [])))
        if not domains:
            continue
        built = build_http_routes(vs, gw_key, server.ref.port_number, known_ports)
        if not built:  # BuildHTTPRoutesForVirtualService fails ("no routes matched"): no virtual host from it
            continue
        for d in domains:
            d = d.lower()  # istiod matches case-sensitively, then lower-cases the domain
            routes.setdefault(d, []).extend(built)
            bound.setdefault(d, []).append(vs)
    out = []
    for d, composed in routes.items():
        # catch-all routes last, and nothing after the first of them: it takes every request
        ordered = tuple([r for r in composed if not r.catch_all] + [r for r in composed if r.catch_all][:1])
        vss = bound[d]
        first = (dict.fromkeys(_route_owner(r.id) for r in ordered)
                 or dict.fromkeys(v.origin or str(v.ref) for v in vss))
        scope = gw_key if any(gw_key in v.route_gateways for v in vss) else ""
        out.append(VirtualHost(d, RouteSource(" + ".join(first), scope, ordered)))
    return tuple(out)


def _route_owner(route_id: str) -> str:
    """`VirtualService ns/name http[0].match[1]` -> `VirtualService ns/name` (HTTPRoute: `rules[`)."""
    for mark in (" http[", " rules["):
        if mark in route_id:
            return route_id.split(mark, 1)[0]
    return route_id


def parse_mitigations(raw: RawObjects) -> List[Mitigation]:
    """Our 421 EnvoyFilters (by label): the route tables and listeners they guard."""
    from .analysis.chains import LUA_DIGEST_PREFIX

    out = []
    for obj in raw.envoy_filters:
        m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        if any((m.get("labels") or {}).get(k) != v for k, v in MANAGED_BY.items()):
            continue
        try:
            ref = object_ref(obj, raw.default_namespace)
            spec = obj.get("spec") or {}
            selector = tuple(sorted(((spec.get("workloadSelector") or {}).get("labels") or {}).items()))
            routes: Dict[str, Tuple[Tuple[str, int], ...]] = {}
            lua: Dict[int, str] = {}
            patches = spec.get("configPatches") or []
            for cp in patches:
                match, value = cp.get("match") or {}, (cp.get("patch") or {}).get("value") or {}
                if cp.get("applyTo") == "VIRTUAL_HOST":
                    name = (match.get("routeConfiguration") or {}).get("name", "")
                    status = _vhost_status(value)
                    routes[name] = routes.get(name, ()) + tuple((str(d).lower(), status)
                                                                for d in value.get("domains") or ())
                elif cp.get("applyTo") == "HTTP_FILTER":
                    typed = value.get("typedConfig") or value.get("typed_config") or {}
                    code = typed.get("inlineCode") or (typed.get("defaultSourceCode") or {}).get("inlineString") or ""
                    digest = code.split(LUA_DIGEST_PREFIX, 1)[1].split()[0] if LUA_DIGEST_PREFIX in code else ""
                    lua[int((match.get("listener") or {}).get("portNumber") or 0)] = digest
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            raw.notes.append(f"skipped EnvoyFilter {m.get('namespace')}/{m.get('name')}: {exc}")
            continue
        out.append(Mitigation(Ref("EnvoyFilter", ref.namespace, ref.name), selector, routes, lua,
                              tuple(http1_chains(patches))))
    return out


def http1_chains(patches: Sequence[Mapping[str, Any]]) -> List[Tuple[int, str]]:
    """(bound port, SNI) of the filter chains these patches leave with ALPN `http/1.1` only."""
    out = []
    for cp in patches:
        if cp.get("applyTo") != "FILTER_CHAIN":
            continue
        value = (cp.get("patch") or {}).get("value") or {}
        socket = value.get("transportSocket") or value.get("transport_socket") or {}
        typed = socket.get("typedConfig") or socket.get("typed_config") or {}
        common = typed.get("commonTlsContext") or typed.get("common_tls_context") or {}
        if list(common.get("alpnProtocols") or common.get("alpn_protocols") or []) != ["http/1.1"]:
            continue
        listener = (cp.get("match") or {}).get("listener") or {}
        sni = (listener.get("filterChain") or {}).get("sni")
        if sni:
            out.append((int(listener.get("portNumber") or 0), str(sni)))  # istiod compares it as spelled
    return out


def _vhost_status(value: Mapping[str, Any]) -> int:
    """What a patched virtual host answers: its direct response (421), or 404 with no routes."""
    routes = value.get("routes") or []
    if not routes:
        return 404
    statuses = {((r.get("directResponse") or r.get("direct_response") or {}).get("status")) for r in routes}
    return 421 if statuses == {421} else 0


def _tls_route_sni(server: Server, vs_by_gateway: Mapping[str, List[VirtualService]], taken: Set[str],
                   skipped: List[str]) -> Optional[Tuple[str, ...]]:
    """A PASSTHROUGH server's filter chains come from the TLS routes of the VirtualServices bound
    to its Gateway whose hosts match the server's (buildGatewayNetworkFiltersFromTLSRoutes,
    pickMatchingGatewayHosts, l4SingleMatch), matched on each route's sniHosts: the names those
    chains are matched on, or None when there is no such route (istiod builds no chain, and the
    server's hosts reach whatever other chain matches them).

    A match repeating an SNI name that an earlier match on the same listener took (`taken`, in
    istiod's order: servers, then VirtualServices by creation, then routes and matches) is
    skipped whole (model.CheckDuplicates; istiod warns "skipping VirtualService ... duplicate SNI
    host names"), so Envoy never sees two chains for one name from TLS routes: the listener
    stands, and the first route keeps the name. Each skip is said in `skipped`."""
    gw_key = server.ref.gateway.key
    hosts = sanitized_hosts(server)
    names: List[str] = []
    found = False
    for vs in vs_by_gateway.get(gw_key, ()):
        if not istio_intersection(names_for_namespace(hosts, vs.ref.namespace), vs.hosts):
            continue
        spec = vs.raw.get("spec") if isinstance(vs.raw.get("spec"), dict) else {}
        for i, route in enumerate(spec.get("tls") or []):
            if not isinstance(route, dict) or not route.get("route"):
                continue
            for j, match in enumerate(route.get("match") or []):
                if not isinstance(match, dict):
                    continue
                gws = match.get("gateways") or []
                if gws and gw_key not in {resolve_gateway_name(str(g), vs.ref.namespace) for g in gws}:
                    continue
                if match.get("port") not in (None, 0, server.ref.port_number):
                    continue
                sni = [str(h) for h in match.get("sniHosts") or ["*"]]
                repeated = [h for h in sni if h in taken]
                if repeated:
                    skipped.append(f"TLS route {vs.ref.namespace}/{vs.ref.name} tls[{i}].match[{j}] skipped on "
                                   f"{server.ref}: SNI {', '.join(repeated)} already routed on that listener "
                                   "(istiod keeps the first)")
                    continue
                taken.update(sni)
                found = True
                names += sni
    return tuple(dict.fromkeys(names)) if found else None


def _strict_merging(servers: Sequence[Server], selected_by: Mapping[int, Sequence[Workload]]) -> Dict[str, Set[str]]:
    """istiod 1.31 on (pilot/pkg/model/gateway.go filterStrictGatewayMerging, behind
    PILOT_ENABLE_STRICT_GATEWAY_MERGING, on by default): on the pods of a managed Gateway API
    Gateway (istiod's own deployment), an Istio Gateway is merged only when a managed Gateway
    API Gateway of its own namespace is there too; every Gateway API Gateway is kept. Pods with
    no managed Gateway API Gateway are not filtered. Returns workload -> the Istio Gateways
    (labels) held off it."""
    managed_ns: Dict[str, Set[str]] = defaultdict(set)
    for server in servers:
        if server.managed:
            for w in selected_by[id(server)]:
                managed_ns[w.key].add(server.ref.gateway.namespace)
    out: Dict[str, Set[str]] = defaultdict(set)
    for server in servers:
        if server.ref.origin is not None:
            continue
        for w in selected_by[id(server)]:
            if w.key in managed_ns and server.ref.gateway.namespace not in managed_ns[w.key]:
                out[w.key].add(server.ref.label)
    return out


def _opaque(server: Server) -> Tuple[VirtualHost, ...]:
    """A chain that is not HTTP-routed here (PASSTHROUGH, TLS to TCP) sends every request
    that reaches it to its upstream, whatever the host: one catch-all source stands for that."""
    origin = f"upstream of {server.ref}"
    return (VirtualHost("*", RouteSource(origin, routes=(Route(origin, backend=origin),))),) if server.sni_chain else ()


def build_inventory(raw: RawObjects, settings: Settings = Settings()) -> Inventory:
    servers = parse_servers(raw)
    vss, merge_notes = parse_virtual_services(raw, settings)
    workloads = WorkloadIndex(raw, settings)
    ports = PortIndex(raw.services, raw.default_namespace, workloads.named_ports)
    known_ports = service_ports(raw.services, raw.default_namespace)
    have_vs = Input.VIRTUAL_SERVICES in raw.available
    vs_by_gateway: Dict[str, List[VirtualService]] = defaultdict(list)
    for vs in vss:
        for gw in vs.gateways:
            vs_by_gateway[gw].append(vs)

    notes = list(raw.notes) + _parse(raw)[1].notes + merge_notes
    by_listener: Dict[Listener, List[Server]] = defaultdict(list)
    unbound: List[str] = []
    portless: Set[str] = set()
    selected_by = {id(server): workloads.of(server) for server in servers}
    held_off = _strict_merging(servers, selected_by) if settings.strict_gateway_merging else {}
    for key, names in sorted(held_off.items()):
        notes.append(f"Istio Gateway(s) {', '.join(sorted(names))} not merged onto {key}, the pods of a managed "
                     "Gateway API Gateway of another namespace (strict gateway merging, Istio 1.31 on)")
    for server in servers:
        selected = [w for w in selected_by[id(server)] if server.ref.label not in held_off.get(w.key, ())]
        if not selected_by[id(server)]:
            unbound.append(server.ref.label)
        # a Gateway API Gateway on named Services binds only their ports (istiod's own
        # deployments get a Service port per listener, listed or not)
        strict = server.ref.origin is not None and Input.SERVICES in raw.available and not server.managed
        for w in selected:
            bound = ports.resolve(w, server.ref.port_number, strict)
            if bound is None:
                portless.add(f"{server.ref.label}:{server.ref.port_number}")
                continue
            by_listener[Listener(w, bound, server.bind)].append(server)
    if unbound:
        names = sorted(set(unbound))
        notes.append(f"{len(names)} Gateway(s) select no gateway {workloads.via.value} and were not "
                     f"placed: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
    if portless:
        notes.append("Gateway API listeners on a port their Service does not expose, not programmed: "
                      + ", ".join(sorted(portless)))
    for item in sorted(ports.unresolved):
        notes.append(f"named targetPort not resolved (no container port of that name read), server port used: "
                     f"{item}")

    lookup = _CertLookup(raw)
    unprogrammed: Set[str] = set()
    drafts: List[Dict[str, Any]] = []
    skipped_tls: List[str] = []
    unchained: List[str] = []
    for listener, members in by_listener.items():
        known: Dict[str, Server] = {}
        tls_taken: Set[str] = set()  # SNI names TLS routes took on this listener
        for server in members:  # already in istiod's order
            creds = credentials_for(server, listener.workload)
            certs: List[Certificate] = []
            status: Optional[CertStatus] = None
            for c in creds:
                cert, st = lookup.get(c)
                status = st if status in (None, CertStatus.LOADED) else status
                if cert is not None:
                    certs.append(cert)
            if status is CertStatus.LOADED and _client_ca_missing(raw, server, creds):
                status = CertStatus.NO_CA
            if server.ref.origin is not None and status in (CertStatus.MISSING, CertStatus.INVALID):
                # istiod programs a Gateway API listener only once its Secret resolves
                # (buildSecretReference): no server, no chain, its hosts go to other chains
                unprogrammed.add(f"listener {server.ref} not programmed: certificateRef "
                                 f"{', '.join(str(c) for c in creds)} {status.value}")
                continue
            dropped = None
            if server.has_tls:
                hosts = sanitized_hosts(server)
                dup = next((h for h in hosts if h in known), None)
                if dup is not None:
                    dropped = (known[dup].ref, dup)
                else:
                    for h in hosts:
                        known[h] = server
            routed = have_vs if server.ref.origin is None else raw.gateway_api.routes_read
            sni: Optional[Tuple[str, ...]] = ()
            if server.tls_mode is TlsMode.PASSTHROUGH and server.sni_chain and routed:
                sni = _tls_route_sni(server, vs_by_gateway, tls_taken, skipped_tls)
            elif server.sni_chain and not server.http_routed and server.tls_mode.terminates and routed \
                    and not has_tcp_chain(server, vs_by_gateway.get(server.ref.gateway.key, ()),
                                          settings.tls_routes_terminated):
                sni = None  # "listener missed network filter": no chain
                unchained.append(f"{server.ref}: TLS terminated with no TCP route, so istiod builds no filter "
                                 "chain (its names reach other chains, or none)")
            drafts.append(dict(server=server, listener=listener, dropped_for=dropped, chained=sni is not None,
                               sni=sni or (),
                               credentials=creds, certificates=tuple(certs), cert_status=status,
                               vhosts=_vhosts(server, vs_by_gateway, routed, known_ports) if server.http_routed
                               else _opaque(server)))

    # Without the certificate, its coverage is inferred: whatever it is, it must be valid for the
    # hosts of every server presenting it on that workload, or those servers would fail anyway.
    inferred: Dict[Tuple[Workload, Tuple[Credential, ...]], Set[str]] = defaultdict(set)
    for d in drafts:
        if d["credentials"] and d["cert_status"] is not CertStatus.LOADED:
            for h in d["server"].hosts:
                san = _wildcard_san(h)
                if san:
                    inferred[(d["listener"].workload, d["credentials"])].add(san)

    placements = []
    for d in drafts:
        status = d["cert_status"]
        if status is CertStatus.LOADED:
            coverage = tuple(sorted({s for c in d["certificates"] for s in c.sans}))
            is_inferred = False
        elif status in (None, CertStatus.MISSING, CertStatus.INVALID, CertStatus.NO_CA):
            coverage, is_inferred = (), False  # no certificate: no connection to reuse
        else:
            coverage = tuple(sorted(inferred[(d["listener"].workload, d["credentials"])]))
            is_inferred = True
        placements.append(Placement(coverage=coverage, coverage_inferred=is_inferred, **d))

    notes += sorted(unprogrammed)
    notes += skipped_tls
    notes += sorted(set(unchained))
    if any(p.coverage_inferred for p in placements):
        reasons = sorted({p.cert_status.value for p in placements if p.coverage_inferred})
        notes.append("certificate contents not inspected for some servers (" + ", ".join(reasons)
                     + "): coverage assumed from the hosts of the servers sharing a credential")
    if not have_vs and any(s.ref.origin is None for s in servers):
        notes.append("no VirtualServices read: each server is assumed to route its own hosts")
    if not raw.gateway_api.routes_read and any(s.ref.origin is not None for s in servers):
        notes.append("no HTTPRoutes read: each Gateway API listener is assumed to route its own hostname")
    available = set(raw.available)
    return Inventory(
        servers=tuple(servers), placements=tuple(placements), virtual_services=tuple(vss),
        workloads=tuple(sorted({p.listener.workload for p in placements})),
        available=frozenset(available), notes=tuple(notes), source=raw.source,
        raw={"workload_via": workloads.via.value}, mitigations=tuple(parse_mitigations(raw)))
