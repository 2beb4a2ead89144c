"""Live source: reads a cluster through ClusterAccess into RawObjects, with fallbacks.

Cost: one paged LIST per kind (pods: one per distinct Gateway selector, metadata only, and one
for every pod istiod deploys for a Gateway API Gateway), then at
most one GET per referenced Secret, or one paged LIST of TLS Secrets in a namespace where many
are referenced. At most PARALLEL requests are in flight. What cannot be read (RBAC) degrades the inventory instead of failing it, and
says so; only Gateways themselves are required.
"""
from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Set, Tuple

from ..errors import ApiError, GwdupError
from ..gatewayapi import GATEWAY_NAME_LABEL, NAMED_SERVICE
from ..inventory import RawObjects, Settings, parse_servers, referenced_secrets
from ..istiod.credentials import CA_KEYS, CERT_KEYS
from ..model import GATEWAY_API_GROUP, MANAGED_BY, CertStatus, Input
from ..objects import ISTIO_GROUP, labels_of

ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")
GATEWAY_API_VERSIONS = ("v1", "v1beta1", "v1alpha2")  # most stable first
# resource -> RawObjects.gateway_api bucket; Gateways first: without them the rest is moot
GATEWAY_API_KINDS = (("gateways", "gateways"), ("listenersets", "listener_sets"), ("httproutes", "http_routes"),
                     ("grpcroutes", "grpc_routes"), ("tlsroutes", "tls_routes"), ("referencegrants", "reference_grants"),
                     ("gatewayclasses", "gateway_classes"))
SECRET_LIST_THRESHOLD = 20  # referenced Secrets in one namespace above which one LIST is cheaper
PARALLEL = 4  # requests in flight at once, as a small client-side budget on the API server


class ClusterAccess(Protocol):
    namespace: str
    requests: int

    def served_versions(self, group: str) -> List[str]: ...

    def list(self, path: str, *, label_selector: str = "", field_selector: str = "",
             chunk_size: int = 500, metadata_only: bool = False) -> Iterator[Dict[str, Any]]: ...

    def get(self, path: str) -> Dict[str, Any]: ...


def istio_version(access: ClusterAccess) -> str:
    served = access.served_versions(ISTIO_GROUP)
    for v in ISTIO_VERSIONS:
        if v in served:
            return v
    raise GwdupError(f"{ISTIO_GROUP} is not served by this cluster (are the Istio CRDs installed?)")


def _forbidden(exc: ApiError) -> bool:
    return exc.code in (401, 403)


def load_cluster(access: ClusterAccess, *, chunk_size: int = 500, settings: Settings = Settings(),
                 progress: Callable[[str], None] = lambda _: None) -> RawObjects:
    raw = RawObjects(source="cluster", strict=False, secrets_complete=True,
                     default_namespace=access.namespace)
    version = istio_version(access)
    base = f"/apis/{ISTIO_GROUP}/{version}"

    def listing(kind: str, path: str, **kw: Any) -> List[Dict[str, Any]]:
        items = []
        for item in access.list(path, chunk_size=chunk_size, **kw):
            items.append(item)
            if len(items) % 1000 == 0:
                progress(f"listed {len(items)} {kind}")
        return items

    # Independent LISTs overlap: a real API server answers them in parallel, and this side
    # decodes one page while the next is on the wire. Results are applied in a fixed order.
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        gateways = pool.submit(listing, "gateways", f"{base}/gateways")
        vss = pool.submit(listing, "virtualservices", f"{base}/virtualservices")
        services = pool.submit(listing, "services", "/api/v1/services")
        # only kubectl-gwdup's own 421 filters matter to the analysis (EnvoyFilter is v1alpha3 only)
        filters = pool.submit(listing, "envoyfilters", f"/apis/{ISTIO_GROUP}/v1alpha3/envoyfilters",
                              label_selector=",".join(f"{k}={v}" for k, v in MANAGED_BY.items()))
        gateway_api = {bucket: pool.submit(listing, resource, path)
                       for resource, bucket, path in gateway_api_paths(access, raw)}
        try:
            raw.gateways = gateways.result()
        except ApiError as exc:
            if exc.code == 404:
                raise GwdupError(f'the server doesn\'t have a resource type "gateways" in {ISTIO_GROUP}/{version}') from None
            raise
        raw.available.add(Input.GATEWAYS)
        _optional(raw, vss, "virtual_services", Input.VIRTUAL_SERVICES, "routes assumed from server hosts")
        _optional(raw, services, "services", Input.SERVICES, "Gateway ports used as listener ports")
        _gateway_api(raw, gateway_api)
        if _uses_namespace_selectors(raw):
            try:
                raw.gateway_api.namespaces = {str((n.get("metadata") or {}).get("name", "")): labels_of(n)
                                              for n in listing("namespaces", "/api/v1/namespaces")}
            except ApiError as exc:
                if not _forbidden(exc):
                    raise
                raw.notes.append(f"namespaces not readable ({exc.reason}): Gateway API namespace selectors "
                                 "not resolved")
        pods, deployments, notes = _load_workloads(raw, listing)
        if not deployments and _named_target_ports(raw.services):
            # pods come without their spec: their Deployments' templates name the container ports
            try:
                deployments = listing("deployments", "/apis/apps/v1/deployments")
            except ApiError as exc:
                if not _forbidden(exc):
                    raise
                notes.append(f"deployments not readable ({exc.reason}): named targetPorts not resolved")
        raw.pods, raw.deployments = pods, deployments
        raw.notes.extend(notes)
        raw.available.add(Input.WORKLOADS)
        _optional(raw, filters, "envoy_filters", Input.ENVOY_FILTERS, "installed 421 mitigations not recognized")
        _load_secrets(access, raw, referenced_secrets(raw, settings), chunk_size, pool)
    return raw


def _optional(raw: RawObjects, future: Any, bucket: str, what: Input, consequence: str) -> None:
    """A kind the analysis can do without: RBAC refusing it (or its CRD missing) is a note."""
    try:
        setattr(raw, bucket, future.result())
        raw.available.add(what)
    except ApiError as exc:
        if not _forbidden(exc) and exc.code != 404:
            raise
        raw.notes.append(f"{what.value} not readable ({exc.reason}): {consequence}")


def gateway_api_paths(access: ClusterAccess, raw: RawObjects) -> List[Tuple[str, str, str]]:
    """(resource, bucket, path) of the Gateway API kinds this cluster serves, each at its most
    stable served version (a kind may be v1 in one release and v1beta1 in an older one), from
    discovery: one GET for the group and one per served version."""
    try:
        offered = access.served_versions(GATEWAY_API_GROUP)
        served = [v for v in GATEWAY_API_VERSIONS if v in offered]
        found: Dict[str, str] = {}
        for v in served:
            doc = access.get(f"/apis/{GATEWAY_API_GROUP}/{v}")
            for r in doc.get("resources") or []:
                found.setdefault(str(r.get("name")), v)
    except ApiError as exc:
        if not _forbidden(exc):
            raise
        raw.notes.append(f"Gateway API discovery not readable ({exc.reason}): Gateway API objects not read")
        return []
    if "gateways" not in found:
        raw.notes.append(f"{GATEWAY_API_GROUP} serves no Gateways" if served else
                         f"{GATEWAY_API_GROUP} is not served (no Gateway API CRDs)")
        raw.notes[-1] += ": Gateway API listeners not read"
        return []
    missing = [r for r, _ in GATEWAY_API_KINDS if r not in found]
    if missing:
        raw.notes.append(f"{GATEWAY_API_GROUP} does not serve {', '.join(missing)}: those were not read")
    return [(r, bucket, f"/apis/{GATEWAY_API_GROUP}/{found[r]}/{r}") for r, bucket in GATEWAY_API_KINDS
            if r in found]


def _gateway_api(raw: RawObjects, futures: Mapping[str, Any]) -> None:
    """Gateway API lists into raw.gateway_api; a kind RBAC refuses is a note, and without
    Gateways the rest is dropped (routes need listeners to bind to)."""
    for bucket, future in futures.items():
        try:
            setattr(raw.gateway_api, bucket, future.result())
        except ApiError as exc:
            if not _forbidden(exc) and exc.code != 404:
                raise
            raw.notes.append(f"Gateway API {bucket.replace('_', '')} not readable ({exc.reason}): not analysed")
            continue
        if bucket == "http_routes":
            raw.gateway_api.routes_read = True


def _uses_namespace_selectors(raw: RawObjects) -> bool:
    """A Gateway or ListenerSet admits routes or ListenerSets by a namespace selector."""
    def selects(spaces: Any) -> bool:
        return isinstance(spaces, dict) and spaces.get("from") == "Selector"

    for obj in list(raw.gateway_api.gateways) + list(raw.gateway_api.listener_sets):
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        if selects((spec.get("allowedListeners") or {}).get("namespaces") if isinstance(spec.get("allowedListeners"), dict) else None):
            return True
        for listener in spec.get("listeners") or []:
            routes = listener.get("allowedRoutes") if isinstance(listener, dict) else None
            if isinstance(routes, dict) and selects(routes.get("namespaces")):
                return True
    return False


def _named_target_ports(services: List[Dict[str, Any]]) -> bool:
    return any(isinstance(p.get("targetPort"), str) for svc in services
               for p in ((svc.get("spec") or {}).get("ports") or []) if isinstance(p, dict))


def _selectors(raw: RawObjects) -> List[str]:
    """Label selectors to list gateway pods by: each Istio Gateway's, each Service a Gateway API
    Gateway names, and one for every pod istiod deployed for a Gateway (label existence, not
    one LIST per Gateway)."""
    out = set()
    for server in parse_servers(raw):
        if server.managed:
            out.add(GATEWAY_NAME_LABEL)
        elif server.ref.origin is None or (server.selector and server.selector[0][0] != NAMED_SERVICE):
            out.add(",".join(f"{k}={v}" for k, v in server.selector))
    return sorted(out)


def _load_workloads(raw: RawObjects, listing: Callable[..., List[Dict[str, Any]]]
                    ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[str]]:
    """(pods, deployments, notes): pods per Gateway selector, else Deployments, else nothing."""
    try:
        pods: List[Dict[str, Any]] = []
        seen: Set[Tuple[str, str]] = set()
        for sel in _selectors(raw):
            for pod in listing("pods", "/api/v1/pods", label_selector=sel, metadata_only=True):
                m = pod.get("metadata") or {}
                key = (m.get("namespace", ""), m.get("name", ""))
                if key not in seen:
                    seen.add(key)
                    pods.append(pod)
        return pods, [], []
    except ApiError as exc:
        if not _forbidden(exc):
            raise
        notes = [f"pods not readable ({exc.reason}): gateway workloads from Deployments"]
    try:
        return [], listing("deployments", "/apis/apps/v1/deployments"), notes
    except ApiError as exc:
        if not _forbidden(exc):
            raise
        return [], [], notes + [f"deployments not readable ({exc.reason}): gateway workloads by selector"]


def certificate_bytes(secret: Mapping[str, Any]) -> Optional[bytes]:
    """The certificate of a Secret read from the API; every other key is dropped here."""
    data = secret.get("data") or {}
    for key in CERT_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return b""
    return None


def _load_secrets(access: ClusterAccess, raw: RawObjects, wanted: Set[Tuple[str, str]], chunk_size: int,
                  pool: ThreadPoolExecutor) -> None:
    by_ns: Dict[str, Set[str]] = defaultdict(set)
    for ns, name in wanted:
        by_ns[ns].add(name)

    def get(key: Tuple[str, str]) -> Optional[Dict[str, Any]]:
        try:
            return access.get(f"/api/v1/namespaces/{key[0]}/secrets/{key[1]}")
        except ApiError as exc:
            if exc.code != 404:
                raise
            return None

    try:
        for ns in sorted(by_ns):
            names = by_ns[ns]
            if len(names) >= SECRET_LIST_THRESHOLD:
                try:
                    for s in access.list(f"/api/v1/namespaces/{ns}/secrets",
                                         field_selector="type=kubernetes.io/tls", chunk_size=chunk_size):
                        name = (s.get("metadata") or {}).get("name", "")
                        if name in names:
                            _keep(raw, ns, name, s)
                except ApiError as exc:
                    if not _forbidden(exc):
                        raise  # a LIST refused by RBAC may still allow GETs below
        missing = sorted(k for k in wanted if k not in raw.secrets)
        for key, secret in zip(missing, pool.map(get, missing)):
            if secret is None:
                raw.secret_status[key] = CertStatus.MISSING
            else:
                _keep(raw, key[0], key[1], secret)
    except ApiError as exc:
        if not _forbidden(exc):
            raise
        raw.secrets.clear()
        raw.secret_status.clear()
        raw.notes.append(f"secrets not readable ({exc.reason}): certificate contents not inspected, "
                         "credentialName identities compared instead")
        return
    raw.available.add(Input.CERTIFICATES)


def _keep(raw: RawObjects, ns: str, name: str, secret: Mapping[str, Any]) -> None:
    if any(k in (secret.get("data") or {}) for k in CA_KEYS):
        raw.secret_cas.add((ns, name))  # that it holds a CA is all we keep of it
    pem = certificate_bytes(secret)
    if pem is None and (ns, name) in raw.secret_cas:
        return  # a <name>-cacert Secret: a CA only
    if pem is None:
        raw.secret_status[(ns, name)] = CertStatus.INVALID
    else:
        raw.secrets[(ns, name)] = pem
