"""Whether DNS makes a hazard live: each hazard labelled `live`, `latent` or `unknown`. Pure.

A browser sends host B on a connection opened for host A only when B's DNS answer includes the
address that connection went to (Chrome and Firefox compare the address sets: a CDN or a
second load balancer in front of one of them keeps them apart). So, for a hazard (connections
of the source servers carrying the finding's hosts):

- `live`: a source host and a carried host share an address; the shared addresses are the
  evidence, and whether one of them is the gateway Service's own load-balancer address;
- `latent`: every name has an answer and no two share an address. The certificate and the
  routes would pool them: the day DNS points them at one address, the hazard is an outage.
  Latent hazards stay in the report, at their level: a DNS change must not be the outage;
- `unknown`: some name has no answer (NXDOMAIN, a timeout, not in the offline sources), or only
  wildcard patterns are known on a side (no name to ask); the reason says which.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Set, Tuple

from ..hosts import bare_host, is_wildcard
from ..model import Finding, Inventory, Report, ServerRef

LIVE, LATENT, UNKNOWN = "live", "latent", "unknown"


def _concrete(hosts: Iterable[str]) -> List[str]:
    out = []
    for h in hosts:
        name = bare_host(h).lower().rstrip(".")
        if name and name != "*" and not is_wildcard(name) and name not in out:
            out.append(name)
    return out


def _server_hosts(inventory: Inventory) -> Dict[Tuple[str, int, int], Tuple[str, ...]]:
    """(gateway, server index, port) -> hosts, and the same for listeners (index -1)."""
    out: Dict[Tuple[str, int, int], Tuple[str, ...]] = {}
    for s in inventory.servers:
        out[_key(s.ref)] = s.hosts
    return out


def _key(ref: ServerRef) -> Tuple[str, int, int]:
    o = ref.origin
    if o is not None:
        return (f"{o.namespace}/{o.name}/{o.listener}", -1, ref.port_number)
    return (ref.gateway.key, ref.index, ref.port_number)


def _ref_key(d: Mapping[str, Any]) -> Tuple[str, int, int]:
    if "listener" in d:
        return (f"{d['gateway']}/{d['listener']}", -1, int(d.get("portNumber") or 0))
    return (str(d["gateway"]), int(d.get("server") or 0), int(d.get("portNumber") or 0))


def gateway_targets(services: Sequence[Mapping[str, Any]], inventory: Inventory) -> Dict[str, Tuple[str, ...]]:
    """workload key -> the load-balancer addresses (IPs and hostnames) of the Services that
    select its pods (`status.loadBalancer.ingress`): where DNS should send its hosts."""
    out: Dict[str, List[str]] = {}
    for w in inventory.workloads:
        labels = dict(w.labels)
        for svc in services:
            spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
            sel = spec.get("selector")
            m = svc.get("metadata") or {}
            if not isinstance(sel, dict) or not sel or (w.namespace and m.get("namespace") not in (None, w.namespace)):
                continue
            if any(labels.get(k) != v for k, v in sel.items()):
                continue
            status = svc.get("status") if isinstance(svc.get("status"), dict) else {}
            for ing in ((status.get("loadBalancer") or {}).get("ingress") or []):
                if isinstance(ing, dict):
                    target = str(ing.get("ip") or ing.get("hostname") or "").lower()
                    if target and target not in out.setdefault(w.key, []):
                        out[w.key].append(target)
    return {k: tuple(v) for k, v in out.items()}


def names(report: Report, inventory: Inventory, targets: Mapping[str, Sequence[str]]) -> Set[str]:
    """Every name a label needs an answer for."""
    hosts = _server_hosts(inventory)
    out: Set[str] = set()
    for f in report.findings:
        d = f.detail
        if "outcome" not in d:
            continue
        out.update(_concrete(d.get("hosts") or ()))
        for ref in d.get("from") or ():
            out.update(_concrete(hosts.get(_ref_key(ref), ())))
        for t in targets.get(str(d.get("workload") or ""), ()):
            if not _is_ip(t):
                out.add(t.rstrip("."))
    return out


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def label(report: Report, inventory: Inventory, answers: Mapping[str, Any],
          targets: Mapping[str, Sequence[str]]) -> Report:
    """The report with `dns` in each hazard's detail. `answers`: name -> sources.dns.Answer."""
    hosts = _server_hosts(inventory)
    out = []
    for f in report.findings:
        if "outcome" not in f.detail:
            out.append(f)
            continue
        out.append(_labelled(f, hosts, answers, targets))
    return replace(report, findings=tuple(out))


def _addresses(name: str, answers: Mapping[str, Any]) -> Tuple[Set[str], str]:
    a = answers.get(name)
    if a is None:
        return set(), "not resolved"
    return set(a.addresses), a.error


def _labelled(f: Finding, hosts: Mapping[Tuple[str, int, int], Tuple[str, ...]], answers: Mapping[str, Any],
              targets: Mapping[str, Sequence[str]]) -> Finding:
    d = f.detail
    carried = _concrete(d.get("hosts") or ())
    sources: List[str] = []
    for ref in d.get("from") or ():
        for h in _concrete(hosts.get(_ref_key(ref), ())):
            if h not in sources:
                sources.append(h)
    gateway: Set[str] = set()
    for t in targets.get(str(d.get("workload") or ""), ()):
        if _is_ip(t):
            gateway.add(t)
        else:
            gateway |= _addresses(t.rstrip("."), answers)[0]
    shown = {n: sorted(_addresses(n, answers)[0]) for n in sources + carried}
    dns: Dict[str, Any] = {}
    shared: Dict[str, Tuple[str, str]] = {}
    errors: List[str] = []
    for a in sources:
        addrs_a, err_a = _addresses(a, answers)
        if err_a and not addrs_a:
            errors.append(f"{a}: {err_a}")
        for b in carried:
            if b == a:
                continue
            addrs_b, err_b = _addresses(b, answers)
            if err_b and not addrs_b:
                errors.append(f"{b}: {err_b}")
            for ip in sorted(addrs_a & addrs_b):
                shared.setdefault(ip, (a, b))
    if shared:
        ips = sorted(shared)
        dns = {"state": LIVE, "sharedAddresses": ips, "pair": list(shared[ips[0]]),
               "gatewayAddress": bool(gateway & set(ips))}
        if gateway and not gateway & set(ips):
            dns["why"] = f"{', '.join(ips)} is not the gateway Service's address: a proxy in front of both pools them"
    elif not sources or not carried:
        side = "connections' hosts" if not sources else "carried hosts"
        dns = {"state": UNKNOWN, "why": f"only wildcard patterns among the {side}: no name to ask"}
    elif errors:
        dns = {"state": UNKNOWN, "why": "; ".join(dict.fromkeys(errors))}
    else:
        dns = {"state": LATENT, "why": "no address shared: DNS keeps the hosts apart today"}
    dns["answers"] = shown
    chains = {n: list(answers[n].chain) for n in sources + carried if n in answers and answers[n].chain}
    if chains:
        dns["cnames"] = chains
    if gateway:
        dns["gatewayAddresses"] = sorted(gateway)
    return replace(f, detail={**d, "dns": dns})
