"""What external-dns would publish, read from manifests: DNS answers without asking DNS (for
`check -f ... --resolve`), as kubernetes-sigs/external-dns computes its endpoints:

- an Istio Gateway's hosts (`ns/` prefix dropped, `*` skipped) and the names of its
  `external-dns.alpha.kubernetes.io/hostname` annotation point at the targets of its
  `external-dns.alpha.kubernetes.io/target` annotation, else at the load-balancer addresses of
  every Service whose selector holds all of the Gateway's selector (`source/istio_gateway.go`
  targetsFromGateway, gatewaySelectorMatchesServiceSelector, hostNamesFromGateway);
- a Gateway API Gateway's listener hostnames point at its target annotation, else at the
  addresses in its `status.addresses` (`source/gateway.go`);
- a Service's hostname annotation points at its target annotation, else at its own
  load-balancer addresses (`source/service.go`).

A target that is a hostname (a cloud load balancer's) is followed through the other answers
(a hosts file given with it), as a CNAME would be; one that leads nowhere leaves the name
unknown.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from .dns import Answer, normalize

HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
TARGET = "external-dns.alpha.kubernetes.io/target"


def _listed(value: Any) -> List[str]:
    return [normalize(x) for x in str(value or "").split(",") if x.strip()]


def _lb(obj: Mapping[str, Any]) -> List[str]:
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    out = []
    for ing in ((status.get("loadBalancer") or {}).get("ingress") or []):
        if isinstance(ing, dict) and (ing.get("ip") or ing.get("hostname")):
            out.append(normalize(str(ing.get("ip") or ing.get("hostname"))))
    return out


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    a = m.get("annotations")
    return a if isinstance(a, dict) else {}


def endpoints(gateways: Sequence[Mapping[str, Any]], gateway_api: Sequence[Mapping[str, Any]],
              services: Sequence[Mapping[str, Any]]) -> Dict[str, List[str]]:
    """name -> targets (IPs or hostnames)."""
    out: Dict[str, List[str]] = {}

    def add(names: List[str], targets: List[str]) -> None:
        for n in names:
            have = out.setdefault(n, [])
            have += [t for t in targets if t not in have]

    for gw in gateways:
        spec = gw.get("spec") if isinstance(gw.get("spec"), dict) else {}
        hosts = []
        for server in spec.get("servers") or []:
            for h in (server.get("hosts") or []) if isinstance(server, dict) else []:
                h = str(h).split("/", 1)[-1]
                if h and h != "*":
                    hosts.append(normalize(h))
        hosts += _listed(_annotations(gw).get(HOSTNAME))
        targets = _listed(_annotations(gw).get(TARGET))
        selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
        if not targets:
            for svc in services:
                sel = (svc.get("spec") or {}).get("selector") if isinstance(svc.get("spec"), dict) else None
                if isinstance(sel, dict) and all(sel.get(k) == v for k, v in selector.items()):
                    targets += [t for t in _lb(svc) if t not in targets]
        if targets:
            add(hosts, targets)
    for gw in gateway_api:
        spec = gw.get("spec") if isinstance(gw.get("spec"), dict) else {}
        hosts = [normalize(str(x.get("hostname"))) for x in spec.get("listeners") or []
                 if isinstance(x, dict) and x.get("hostname") and "*" not in str(x.get("hostname"))]
        hosts += _listed(_annotations(gw).get(HOSTNAME))
        targets = _listed(_annotations(gw).get(TARGET))
        if not targets:
            status = gw.get("status") if isinstance(gw.get("status"), dict) else {}
            targets = [normalize(str(a.get("value"))) for a in status.get("addresses") or []
                       if isinstance(a, dict) and a.get("value")]
        if targets:
            add(hosts, targets)
    for svc in services:
        names = _listed(_annotations(svc).get(HOSTNAME))
        if names:
            add(names, _listed(_annotations(svc).get(TARGET)) or _lb(svc))
    return out


def answers(found: Mapping[str, List[str]], others: Mapping[str, Answer]) -> Dict[str, Answer]:
    """The endpoints as DNS answers; hostname targets followed through `others` and each other."""
    from .dns import _address

    out: Dict[str, Answer] = {}
    for name in found:
        addrs: List[str] = []
        chain: List[str] = []
        error = ""
        pending, seen = list(found[name]), {name}
        while pending and len(seen) < 32:
            t = pending.pop(0)
            ip = _address(t)
            if ip is not None:
                addrs.append(ip)
                continue
            if t in seen:
                continue
            seen.add(t)
            chain.append(t)
            if t in found:
                pending += found[t]
            elif t in others and others[t].addresses:
                addrs += list(others[t].addresses)
            else:
                error = f"target {t} not resolved offline"
        out[name] = Answer(name, tuple(sorted(set(addrs))), tuple(chain), "" if addrs else error or "no address",
                           source="external-dns")
    return out
