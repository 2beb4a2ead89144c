"""The port Envoy binds for a Gateway server: the targetPort of the workload's Service port.

Mirrors pilot/pkg/model/gateway.go resolvePorts, the same from Istio 1.24 to
controlplane.NEWEST_MODELLED: for an Istio Gateway (selected by labels, the "legacy" selection)
the first Service port of the workload whose port is the server's gives its targetPort, a
Service labelled `experimental.istio.io/disable-gateway-port-translation` is skipped, and with
no such port the server port itself is bound; a Gateway API Gateway bound through named
Services has no such fallback (its listener is not programmed). A named targetPort is the
workload's container port of that name, as the endpoints controller resolves it (istiod binds
the endpoints' port).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ..model import Workload

NO_TRANSLATION_LABEL = "experimental.istio.io/disable-gateway-port-translation"


def container_ports(pod_spec: Any) -> Dict[str, int]:
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


class PortIndex:
    """Gateway server port -> the port Envoy binds, through the workload's Service."""

    def __init__(self, services: Sequence[Mapping[str, Any]], default_namespace: str,
                 named_ports: Optional[Mapping[Tuple[str, str], Mapping[str, int]]] = None) -> None:
        self.named_ports = named_ports or {}
        self.by_ns: Dict[str, List[Tuple[Dict[str, str], List[Mapping[str, Any]], bool]]] = defaultdict(list)
        for svc in services:
            m = svc.get("metadata") or {}
            spec = svc.get("spec") or {}
            sel = spec.get("selector") or {}
            if not sel:
                continue
            opted_out = NO_TRANSLATION_LABEL in (m.get("labels") or {})
            self.by_ns[str(m.get("namespace") or default_namespace)].append(
                ({str(k): str(v) for k, v in sel.items()}, list(spec.get("ports") or []), opted_out))
        self.unresolved: Set[str] = set()

    def resolve(self, workload: Workload, port: int, strict: bool = False) -> Optional[int]:
        """The targetPort of the workload's Service port `port`; without one, the port itself, or
        None when `strict` (a Gateway istiod binds through a Service: resolvePorts has no
        fallback there)."""
        labels = dict(workload.labels)
        spaces = [workload.namespace] if workload.namespace else list(self.by_ns)
        for ns in spaces:
            for sel, ports, opted_out in self.by_ns.get(ns, ()):
                if opted_out and not strict:
                    continue  # the legacy selection skips a Service that opts out of translation
                if not all(labels.get(k) == v for k, v in sel.items()):
                    continue
                for p in ports:
                    if p.get("port") == port:
                        target = p.get("targetPort", port)
                        if isinstance(target, int) and not isinstance(target, bool):
                            return target
                        named = self.named_ports.get((workload.namespace, workload.name), {}).get(str(target))
                        if named is not None:
                            return named
                        self.unresolved.add(f"{workload.key}:{port}->{target}")
                        return port
        return None if strict else port
