"""Inventory: raw objects -> normalized servers, listeners, certificates, routes. No I/O.

This stage assembles what istiod builds for each gateway proxy, with the rules of
kubectl_gwdup/istiod (one module per istiod function, each citing its source and releases):
- servers are placed on the workloads their Gateway's selector picks (Pods and Deployments
  read together, below), minus the Istio Gateways strict merging holds off, and on the port
  Envoy binds (istiod/ports.py), because servers share a listener per workload and port;
- Gateways are taken in istiod's order and a TLS server repeating a host already on that
  listener is dropped whole (istiod/merge_gateways.py);
- certificates come from the Secrets istiod reads (istiod/credentials.py), looked up in what
  the source read;
- each terminating server's route table is built as istiod builds it (istiod/route_config.py),
  a PASSTHROUGH server's chains from its TLS routes (istiod/tls_routes.py), and a TLS server
  terminated then TCP has a chain only with a route (istiod/tcp_routes.py).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from . import certs as certs_mod
from .errors import InputError
from .gatewayapi import GatewayApiObjects, Translated, translate
from .hosts import bare_host
from .istiod.credentials import CA_SUFFIX, MUTUAL_MODES, client_ca_missing, credentials_for
from .istiod.merge_gateways import ListenerHosts, gateway_order
from .istiod.ports import PortIndex, container_ports
from .istiod.route_config import opaque, service_ports, virtual_hosts
from .istiod.route_merging import merge_route_virtual_services
from .istiod.strict_merging import held_off
from .istiod.tcp_routes import has_tcp_chain
from .istiod.tls_routes import passthrough_sni
from .model import (MANAGED_BY, CertStatus, Certificate, Credential, Input, Inventory, Listener, Mitigation, Placement,
                    Ref, Server, TlsMode, VirtualService, Workload, WorkloadVia)
from .objects import ShapeError, gateway_servers, labels_of, object_ref, selector_matches, virtual_service


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
                 self.gateway_api.http_routes, self.gateway_api.grpc_routes, self.gateway_api.tls_routes,
                 self.gateway_api.reference_grants, self.gateway_api.gateway_classes)
        lists += (self.gateway_api.namespaces or {},)
        return tuple(x for lst in lists for x in (id(lst), len(lst)))


@dataclass(frozen=True)
class Settings:
    scope_gateway_to_namespace: bool = False
    # istiod 1.31 on (PILOT_ENABLE_STRICT_GATEWAY_MERGING): see istiod/strict_merging.py
    strict_gateway_merging: bool = True
    # HTTPRoutes and GRPCRoutes of one listener and hostname merged together: all but 1.26-1.29
    # (istiod/route_merging.py)
    grpc_routes_joined: bool = True
    # a TLSRoute gives a TLS Terminate listener its chain: 1.30 on (istiod/tcp_routes.py)
    tls_routes_terminated: bool = True


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
            self.named_ports.setdefault((ref.namespace, ref.name), {}).update(container_ports(tmpl_spec))
        for pod in raw.pods:
            m = pod.get("metadata") or {}
            ns = str(m.get("namespace") or raw.default_namespace)
            owner = owners[(ns, str(m.get("name", "")))]
            self.named_ports.setdefault(owner, {}).update(container_ports(pod.get("spec")))
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


# --- the build -------------------------------------------------------------------------------

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
    servers.sort(key=gateway_order)
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
                        out.add((c.namespace, c.name + CA_SUFFIX))
    return out


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
    kept_off = held_off(servers, selected_by) if settings.strict_gateway_merging else {}
    for key, names in sorted(kept_off.items()):
        notes.append(f"Istio Gateway(s) {', '.join(sorted(names))} not merged onto {key}, the pods of a managed "
                     "Gateway API Gateway of another namespace (strict gateway merging, Istio 1.31 on)")
    for server in servers:
        selected = [w for w in selected_by[id(server)] if server.ref.label not in kept_off.get(w.key, ())]
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
        claims = ListenerHosts()
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
            if status is CertStatus.LOADED and client_ca_missing(
                    server, creds, raw.secret_cas, raw.secrets_complete and Input.CERTIFICATES in raw.available):
                status = CertStatus.NO_CA
            if server.ref.origin is not None and status in (CertStatus.MISSING, CertStatus.INVALID):
                # istiod programs a Gateway API listener only once its Secret resolves
                # (buildSecretReference): no server, no chain, its hosts go to other chains
                unprogrammed.add(f"listener {server.ref} not programmed: certificateRef "
                                 f"{', '.join(str(c) for c in creds)} {status.value}")
                continue
            dropped = claims.claim(server)
            routed = have_vs if server.ref.origin is None else raw.gateway_api.routes_read
            sni: Optional[Tuple[str, ...]] = ()
            if server.tls_mode is TlsMode.PASSTHROUGH and server.sni_chain and routed:
                sni = passthrough_sni(server, vs_by_gateway.get(server.ref.gateway.key, ()), tls_taken, skipped_tls)
            elif server.sni_chain and not server.http_routed and server.tls_mode.terminates and routed \
                    and not has_tcp_chain(server, vs_by_gateway.get(server.ref.gateway.key, ()),
                                          settings.tls_routes_terminated):
                sni = None  # "listener missed network filter": no chain
                unchained.append(f"{server.ref}: TLS terminated with no TCP route, so istiod builds no filter "
                                 "chain (its names reach other chains, or none)")
            drafts.append(dict(server=server, listener=listener, dropped_for=dropped, chained=sni is not None,
                               sni=sni or (),
                               credentials=creds, certificates=tuple(certs), cert_status=status,
                               vhosts=virtual_hosts(server, vs_by_gateway.get(server.ref.gateway.key, ()), routed,
                                                    known_ports) if server.http_routed else opaque(server)))

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
