"""Probe planning: findings -> the (from host, coalesced host) pairs worth confirming. Pure.

A pair is what a browser does: it holds a connection opened for `from_host` (a host of a
server in the finding's `from`) and sends `to_host` on it. Host patterns are probed only with a
name the user gives (--sample-host), never an invented one: a made-up name could resolve
somewhere real. The plan stays within a request budget and says what it left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .analysis.chains import ChainIndex, live_chains
from .hosts import bare_host, cert_covers, is_wildcard, suffix_match
from .model import Finding, Inventory, ServerRef

EXPECTED = {"NotFound": "Confirmed-404", "Misrouted": "Confirmed-misroute"}
REQUESTS_PER_PAIR = 4  # from host, coalesced host, then the coalesced host twice on its own


@dataclass(frozen=True)
class Pair:
    from_host: str
    to_host: str
    port: int  # the Gateway server port a client connects to (Service port)
    workload: str
    expected: str  # Confirmed-404 | Confirmed-misroute | (given by hand) ""
    finding: str = ""  # code and resource, for the report


@dataclass
class Plan:
    pairs: List[Pair] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _samples(pattern: str, samples: Sequence[str], certificate_style: bool) -> List[str]:
    return [s.lower() for s in samples if pattern == "*" or (
        cert_covers(pattern, s) if certificate_style else suffix_match(pattern, s))]


def _from_host(servers: Dict[ServerRef, Sequence[str]], refs: Sequence[ServerRef], samples: Sequence[str],
               avoid: str, chains: ChainIndex) -> Optional[str]:
    """A name whose SNI really selects one of `refs` (a browser's connection for that server)."""
    for ref in refs:
        for h in servers.get(ref, ()):
            h = bare_host(h)
            for name in (_samples(h, samples, False) if is_wildcard(h) else [h]):
                chain = chains.lookup(name)
                # and whose certificate covers it: no browser holds a connection that failed
                # verification (and probe takes one that does for the wrong endpoint)
                if (name != avoid and chain is not None and chain.server.ref == ref
                        and (not chain.coverage or any(cert_covers(c, name) for c in chain.coverage))):
                    return name
    return None


def plan_probes(findings: Sequence[Finding], inventory: Inventory, samples: Sequence[str] = (),
                max_requests: int = 100) -> Plan:
    servers = {s.ref: s.hosts for s in inventory.servers}
    by_listener: Dict[Tuple[str, int], List] = {}
    for p in inventory.placements:
        by_listener.setdefault((p.listener.workload.key, p.listener.port), []).append(p)
    chain_index = {k: ChainIndex(live_chains(v)) for k, v in by_listener.items()}
    plan = Plan()
    seen = set()
    skipped: List[str] = []
    for f in findings:
        d = f.detail
        if "outcome" not in d:
            continue
        refs = [r for r in (ServerRef.from_dict(x) for x in d["from"]) if r in servers]
        chains = chain_index[(d["workload"], d["listenerPort"])]
        to_refs = {ServerRef.from_dict(x) for x in d["to"]}
        for host in d["hosts"]:
            to_host = next(iter(_samples(host, samples, True)), None) if host.startswith("*") else host
            if to_host is None or to_host in d.get("exceptHosts", ()):
                skipped.append(host)
                continue
            # a source whose own chain serves the host is not at risk from it
            own = [r for r in refs if r in to_refs and any(
                bare_host(h) == to_host or (is_wildcard(bare_host(h)) and suffix_match(bare_host(h), to_host))
                for h in servers[r])]
            candidates = [r for r in refs if r not in own] or refs
            from_host = _from_host(servers, candidates, samples, to_host, chains)
            if from_host is None:
                # the sample must stand for the source, not the target: a hint that only named
                # the target would send the user round in a circle
                patterns = sorted({bare_host(h) for r in candidates for h in servers[r] if is_wildcard(bare_host(h))})
                skipped.append(f"{host} (no concrete host on the source servers: give a name under "
                               f"{', '.join(patterns) or 'their hosts'} other than {to_host})")
                continue
            key = (from_host, to_host, d["workload"])
            if key in seen:
                continue
            seen.add(key)
            plan.pairs.append(Pair(from_host, to_host, d["from"][0]["portNumber"], d["workload"],
                                   EXPECTED[d["outcome"]], f"{f.code} {f.resource}"))
    if skipped:
        plan.notes.append("not probed, give --sample-host NAME for patterns: " + ", ".join(sorted(set(skipped))[:10]))
    return _within(plan, max_requests)


def manual(hosts: Sequence[str], port: int, max_requests: int) -> Plan:
    """--host A --host B ...: every ordered pair of the given hosts."""
    plan = Plan([Pair(a.lower(), b.lower(), port, "", "") for a in hosts for b in hosts if a.lower() != b.lower()])
    return _within(plan, max_requests)


def _within(plan: Plan, max_requests: int) -> Plan:
    limit = max(max_requests // REQUESTS_PER_PAIR, 0)
    if len(plan.pairs) > limit:
        plan.notes.append(f"{len(plan.pairs) - limit} pair(s) not probed: --max-requests {max_requests} "
                          f"allows {limit} pair(s) of up to {REQUESTS_PER_PAIR} requests")
        plan.pairs = plan.pairs[:limit]
    return plan


def service_address(services: Sequence[dict], inventory: Inventory, workload_key: str) -> Optional[str]:
    """Where clients reach a gateway workload: its Service's LoadBalancer ingress IP or
    hostname, else the first externalIP."""
    workload = next((w for w in inventory.workloads if w.key == workload_key), None)
    if workload is None:
        return None
    labels = dict(workload.labels)
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        sel = spec.get("selector") or {}
        if workload.namespace and meta.get("namespace") != workload.namespace:
            continue
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            continue
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ing.get("ip") or ing.get("hostname"):
                return ing.get("ip") or ing.get("hostname")
        if spec.get("externalIPs"):
            return spec["externalIPs"][0]
    return None


def parse_address(text: str, default_port: Optional[int] = None) -> Tuple[str, Optional[int]]:
    """HOST, HOST:PORT, [IPv6]:PORT or a bare IPv6 literal -> (host, port or default)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
        raise ValueError(f'invalid address "{text}": use HOST, HOST:PORT or [IPv6]:PORT')
    return host, int(port) if port else default_port


def parse_resolve(text: str) -> Tuple[str, int, str]:
    """curl's --resolve HOST:PORT:ADDR -> (host, port, address)."""
    host, _, rest = text.partition(":")
    port, _, addr = rest.partition(":")
    addr = addr[1:-1] if addr.startswith("[") and addr.endswith("]") else addr
    if not host or not port.isdigit() or not addr:
        raise ValueError(f'invalid --resolve "{text}": use HOST:PORT:ADDRESS')
    return host.lower(), int(port), addr
