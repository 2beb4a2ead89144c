"""Objects: raw Kubernetes/Istio dicts -> typed records, with shape checks. No I/O.

Shape errors name the field (`spec.servers[1].port.number: must be an integer`), so a bad
manifest gets one clear line instead of a traceback from deep inside the analysis.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .model import Ref, Server, ServerRef, TlsMode, VirtualService

ISTIO_GROUP = "networking.istio.io"


class ShapeError(ValueError):
    """An object does not have the shape its kind requires."""


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        raise ShapeError("metadata: must be a mapping")
    if not isinstance(m.get("name"), str) or not m["name"]:
        raise ShapeError("metadata.name: required")
    return m


def object_ref(obj: Mapping[str, Any], default_namespace: str = "default") -> Ref:
    m = meta(obj)
    ns = m.get("namespace") or default_namespace
    if not isinstance(ns, str):
        raise ShapeError("metadata.namespace: must be a string")
    return Ref(str(obj.get("kind", "")), ns, m["name"])


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: must be a mapping")
    return value


def _strings(value: Any, where: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ShapeError(f"{where}: must be a list of strings")
    return tuple(value)


def _labels(value: Any, where: str) -> Tuple[Tuple[str, str], ...]:
    m = _mapping(value, where)
    out = []
    for k, v in m.items():
        if not isinstance(k, str) or not isinstance(v, (str, int, bool)) or v is None:
            raise ShapeError(f"{where}: labels must map strings to strings")
        out.append((k, str(v).lower() if isinstance(v, bool) else str(v)))
    return tuple(sorted(out))


def _port_number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{where}: must be an integer")
    if not 0 < value < 65536:
        raise ShapeError(f"{where}: {value} is not a valid port")
    return value


def parse_tls_mode(tls: Mapping[str, Any], where: str) -> TlsMode:
    mode = tls.get("mode", "PASSTHROUGH")  # proto default: PASSTHROUGH is enum value 0
    try:
        return TlsMode(str(mode).upper())
    except ValueError:
        allowed = ", ".join(m.value for m in TlsMode)
        raise ShapeError(f"{where}.mode: unknown TLS mode {mode!r} (one of {allowed})") from None


def gateway_servers(obj: Mapping[str, Any], default_namespace: str = "default") -> List[Server]:
    """Every spec.servers entry of an Istio Gateway, in spec order."""
    ref = object_ref(obj, default_namespace)
    ref = Ref("Gateway", ref.namespace, ref.name)
    spec = _mapping(obj.get("spec"), "spec")
    selector = _labels(spec.get("selector"), "spec.selector")
    servers = spec.get("servers") or []
    if not isinstance(servers, list):
        raise ShapeError("spec.servers: must be a list")
    created = str(meta(obj).get("creationTimestamp") or "")
    out = []
    for i, raw in enumerate(servers):
        where = f"spec.servers[{i}]"
        raw = _mapping(raw, where)
        port = _mapping(raw.get("port"), f"{where}.port")
        number = _port_number(port.get("number"), f"{where}.port.number")
        name = port.get("name") or ""
        if not isinstance(name, str):
            raise ShapeError(f"{where}.port.name: must be a string")
        protocol = str(port.get("protocol") or "").upper()
        hosts = _strings(raw.get("hosts"), f"{where}.hosts")
        if not hosts:
            raise ShapeError(f"{where}.hosts: at least one host is required")
        tls_raw = raw.get("tls")
        tls = _mapping(tls_raw, f"{where}.tls")
        mode: Optional[TlsMode] = None
        if tls_raw is not None:
            mode = parse_tls_mode(tls, f"{where}.tls")
        names: Tuple[str, ...] = ()
        if tls.get("credentialNames") is not None:
            names = _strings(tls.get("credentialNames"), f"{where}.tls.credentialNames")
        elif tls.get("credentialName"):
            if not isinstance(tls["credentialName"], str):
                raise ShapeError(f"{where}.tls.credentialName: must be a string")
            names = (tls["credentialName"],)
        server_cert = tls.get("serverCertificate") or None
        bind = raw.get("bind") or ""
        out.append(Server(
            ref=ServerRef(ref, i, number, name), hosts=hosts, protocol=protocol, tls_mode=mode,
            credential_names=names, server_certificate=server_cert, bind=str(bind),
            selector=selector, created=created, tls=dict(tls)))
    return out


def sanitized_hosts(server: Server) -> Tuple[str, ...]:
    """Hosts as istiod compares them for duplicates: ``./h`` -> ``ns/h``, ``*/h`` -> ``h``."""
    out = []
    for h in server.hosts:
        if "/" in h:
            ns, _, host = h.partition("/")
            if ns == ".":
                h = f"{server.ref.gateway.namespace}/{host}"
            elif ns == "*":
                if host == "*":
                    return ("*",)
                h = host
        out.append(h)
    return tuple(out)


def resolve_gateway_name(name: str, namespace: str) -> str:
    """VirtualService gateway reference -> ``ns/name`` (``mesh`` stays as it is)."""
    if name == "mesh" or "/" in name:
        return name
    return f"{namespace}/{name}"


def virtual_service(obj: Mapping[str, Any], default_namespace: str = "default") -> VirtualService:
    ref = object_ref(obj, default_namespace)
    ref = Ref("VirtualService", ref.namespace, ref.name)
    spec = _mapping(obj.get("spec"), "spec")
    hosts = _strings(spec.get("hosts"), "spec.hosts")
    gateways = _strings(spec.get("gateways"), "spec.gateways") or ("mesh",)
    route_gws: List[str] = []
    for kind in ("http", "tls", "tcp"):
        routes = spec.get(kind) or []
        if not isinstance(routes, list):
            raise ShapeError(f"spec.{kind}: must be a list")
        for j, route in enumerate(routes):
            route = _mapping(route, f"spec.{kind}[{j}]")
            for k, match in enumerate(route.get("match") or []):
                match = _mapping(match, f"spec.{kind}[{j}].match[{k}]")
                route_gws.extend(_strings(match.get("gateways"), f"spec.{kind}[{j}].match[{k}].gateways"))
    return VirtualService(
        ref=ref, hosts=hosts,
        gateways=tuple(dict.fromkeys(resolve_gateway_name(g, ref.namespace) for g in gateways)),
        route_gateways=tuple(dict.fromkeys(resolve_gateway_name(g, ref.namespace) for g in route_gws)),
        created=str(meta(obj).get("creationTimestamp") or ""), raw=obj)


def selector_matches(selector: Sequence[Tuple[str, str]], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector)


def label_selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions: In, NotIn, Exists, DoesNotExist)
    against labels, as apimachinery's LabelSelectorAsSelector reads it: `{}` selects every
    object, a missing or malformed selector none, and an unknown operator nothing."""
    if not isinstance(selector, dict):
        return False
    match = selector.get("matchLabels") or {}
    if not isinstance(match, dict) or any(labels.get(str(k)) != str(v) for k, v in match.items()):
        return False
    for e in selector.get("matchExpressions") or []:
        if not isinstance(e, dict):
            return False
        key, op, values = str(e.get("key", "")), e.get("operator"), [str(v) for v in e.get("values") or []]
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            return False
        if not ok:
            return False
    return True


def labels_of(obj: Mapping[str, Any]) -> Dict[str, str]:
    m = obj.get("metadata") or {}
    labels = m.get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _check_labels(value: Any, where: str) -> None:
    if value is not None:
        _labels(value, where)


def check_workload_object(obj: Mapping[str, Any]) -> None:
    """Shape of the Pods, Deployments and Services the inventory reads (fields it touches)."""
    kind = obj.get("kind")
    m = meta(obj)
    _check_labels(m.get("labels"), "metadata.labels")
    spec = _mapping(obj.get("spec"), "spec")
    if kind == "Pod":
        owners = m.get("ownerReferences")
        if owners is not None and (not isinstance(owners, list) or not all(isinstance(o, dict) for o in owners)):
            raise ShapeError("metadata.ownerReferences: must be a list of mappings")
    elif kind == "Deployment":
        tmpl = _mapping(spec.get("template"), "spec.template")
        _check_labels(_mapping(tmpl.get("metadata"), "spec.template.metadata").get("labels"),
                      "spec.template.metadata.labels")
    elif kind == "Service":
        _check_labels(spec.get("selector"), "spec.selector")
        ports = spec.get("ports") or []
        if not isinstance(ports, list):
            raise ShapeError("spec.ports: must be a list")
        for i, p in enumerate(ports):
            p = _mapping(p, f"spec.ports[{i}]")
            if p.get("port") is not None:
                _port_number(p.get("port"), f"spec.ports[{i}].port")
            target = p.get("targetPort")
            if target is not None and not isinstance(target, (int, str)):
                raise ShapeError(f"spec.ports[{i}].targetPort: must be a number or a name")
