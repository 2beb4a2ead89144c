"""apply-421's three methods on the real Envoy, through a translation that does not share its code.

Random inventories (those of tests/test_differential.py; a fixed seed in CI,
GWDUP_MITIGATION_EXAMPLES for more) are written as raw manifests, planned by kubectl-gwdup,
and then served twice by the real Envoy through tests/istiod_translate.py: as they are, and
with the planned EnvoyFilters applied by tests/envoyfilter_patch.py (istiod's patch rules,
read from istio/istio). A browser-like client measures every name on its own connection and
every name the certificate covers on every other name's connection. Required:

- traffic on its own connection is untouched (same answer, never 421);
- reuse inside one filter chain is untouched;
- vhost and lua: a request for a name another chain serves, on a connection a finding names,
  answers 421 (or what it answered before, when that was already that name's own answer);
  on any other connection it is unchanged. A name no chain serves keeps its answer (vhost may
  answer 421 where the connection's certificate has a wildcard covering the name: a new
  connection for it fails the handshake either way);
- http1: the chains a finding names negotiate HTTP/1.1 and answer their own names over it, the
  others still negotiate h2;
- `check` on the manifests plus the plan calls a finding mitigated only when every pair it
  describes was measured as answered (421, or never pooled).
"""
from __future__ import annotations

import os
import socket
import ssl
from typing import Dict, List, Optional, Set, Tuple

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis.control import _current_build_context

import envoyfilter_patch
from istiod_translate import Connection, Envoy, Translation, new_workdir
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.model import Input
from kubectl_gwdup.plans.misdirect421 import Method421, plan_421
from kubectl_gwdup.sources.files import load_files
from test_differential import _covers, chain_name, inventories, manifests, names_of

Answer = Tuple[int, str, str]  # status, body, chain header
Observed = Tuple[Dict[Tuple[int, str], Optional[Answer]], Dict[Tuple[int, str, str], Answer]]
SANS: Dict[Tuple[int, str], Tuple[str, ...]] = {}  # (bound port, name) -> SANs its connection showed


def _upstream(certs):
    def pem(sni: List[str]) -> Tuple[str, str]:
        leaf = certs.leaf(*(sorted(h for h in sni if h != "*") or ["passthrough.invalid"]), tag="upstream")
        return leaf.cert_path, leaf.key_path
    return pem


def observe(t: Translation, names: List[str], cafile: str) -> Observed:
    """Every name on its own connection, and every name the certificate covers on every other
    name's connection, per bound port. Proxies that bind one port (a second Deployment whose
    labels the same Gateways select) must answer alike: their answers are one observation."""
    own: Dict[Tuple[int, str], Optional[Answer]] = {}
    pairs: Dict[Tuple[int, str, str], Answer] = {}
    differ: List[Tuple[Tuple, object, object]] = []

    def keep(store: Dict, key: Tuple, value: object) -> None:
        if key in store and store[key] != value:
            differ.append((key, store[key], value))
        store[key] = value
    with Envoy(t):
        for (_, bound), port in t.ports.items():
            conns: Dict[str, Connection] = {}
            for name in names:
                c = Connection(port, name, cafile)
                if c.error:
                    keep(own, (bound, name), None)
                    continue
                keep(own, (bound, name), c.request(name))
                SANS[(bound, name)] = c.sans
                conns[name] = c
            for a, c in conns.items():
                for b in names:
                    if b != a and c.covers(b):
                        keep(pairs, (bound, a, b), c.request(b))
                c.close()
    assert not differ, f"proxies on one port answer differently: {differ[:3]}"
    return own, pairs


def chain_exists(t: Translation, bound: int, name: str) -> bool:
    """Envoy has a filter chain for the name on that listener (exact, `*.suffix` at any depth, or
    one without server names), whether or not its handshake succeeds."""
    for _, port, listener in t.served:
        if port != bound:
            continue
        for chain in listener["filter_chains"]:
            names = (chain.get("filter_chain_match") or {}).get("server_names")
            if not names or any(n == name or (n.startswith("*.") and name.endswith(n[1:])) for n in names):
                return True
    return False


def negotiated(port: int, sni: str, cafile: str) -> Tuple[str, int]:
    """(ALPN protocol chosen when a browser offers h2 and http/1.1, status of an HTTP/1.1 GET)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname=sni) as s:
        proto = s.selected_alpn_protocol() or ""
        if proto != "http/1.1":
            return proto, 0
        s.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head and len(head) < 4096:
            chunk = s.recv(1024)
            if not chunk:
                break
            head += chunk
        return proto, int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0


def plan_and_check(docs: List[dict], method: Method421) -> Tuple[List[dict], list, list, List[str]]:
    """(EnvoyFilters, findings before, findings with them installed), the manifests taken as the
    whole cluster (as read live)."""
    tmp = new_workdir()
    path = os.path.join(tmp, "inventory.yaml")

    def analyze(extra: List[dict]):
        with open(path, "w") as f:
            yaml.safe_dump_all(docs + extra, f)
        raw = load_files([path])
        raw.secrets_complete = True
        raw.available.update((Input.CERTIFICATES, Input.VIRTUAL_SERVICES))
        inv = build_inventory(raw)
        return inv, registry.run(inv).findings

    inv, before = analyze([])
    plan = plan_421(inv, before, method, istio_version=(1, 24))
    return plan.objects, before, analyze(plan.objects)[1] if plan.objects else before, plan.notes


def sources(findings) -> Set[Tuple[int, str]]:
    return {(f.detail["listenerPort"], chain_name(s))
            for f in findings if "outcome" in f.detail for s in f.detail["from"]}


def unmitigated_pairs(findings, names: List[str]) -> Set[Tuple[int, str, str]]:
    out = set()
    for f in findings:
        d = f.detail
        if "outcome" not in d or d.get("mitigation"):
            continue
        for s in d["from"]:
            for h in d["hosts"]:
                for n in [h] if not h.startswith("*") else [n for n in names if _covers(h, n)]:
                    out.add((d["listenerPort"], chain_name(s), n))
    return out


@settings(max_examples=int(os.environ.get("GWDUP_MITIGATION_EXAMPLES", "40")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(inventories)
def test_every_method_answers_exactly_the_hazards_on_the_real_envoy(certs, spec) -> None:
    docs = manifests(spec, certs)
    judge_methods(docs, names_of(docs), certs)


def judge_methods(docs: List[dict], names: List[str], certs, methods=tuple(Method421),
                  view=lambda docs: docs) -> Dict[Method421, int]:
    """Measure the manifests as they are and with each method's plan; assert the rules of the
    module docstring. Returns the number of pairs answered 421 per method. `view`: what the
    test translation reads of the manifests (for Gateway API ones, what istiod derives)."""
    base = Translation(view(docs), new_workdir(), _upstream(certs))
    try:
        own0, pairs0 = observe(base, names, certs.ca_cert)
    except RuntimeError:
        return {}  # Envoy refuses the listener: test_differential checks check says so
    chain_of = {k: v[2] for k, v in own0.items() if v is not None}
    answered: Dict[Method421, int] = {}
    for method in methods:
        objects, before, after, notes = plan_and_check(docs, method)
        affected = sources(before)
        left = [f for f in after if "outcome" in f.detail and not f.detail.get("mitigation")]
        # every hazard is answered by default, but what the plan says it left out
        assert not left or notes, f"{method.value}: unmitigated without a note: {[f.message for f in left]}"
        if _current_build_context.value is not None:
            event(f"{method.value}: {len(objects)} objects, {len(left)} findings left open")
        t = Translation(view(docs), new_workdir(), _upstream(certs))
        envoyfilter_patch.apply(t, objects)
        if method is Method421.HTTP1:
            answered[method] = _judge_http1(t, names, certs, own0, affected, after)
            continue
        own1, pairs1 = observe(t, names, certs.ca_cert)
        assert own1 == own0, f"{method.value}: direct traffic changed"
        # a chain terminated here and proxied as TCP has no HTTP layer for a 421: its plan makes it
        # offer HTTP/1.1 only, and a browser pools on no such connection (measured, then set aside)
        h1 = {(f.detail["listenerPort"], chain_name(s)) for f in after
              if (f.detail.get("mitigation") or {}).get("method") == "http1" for s in f.detail["from"]}
        if h1:
            with Envoy(t):
                for (_, bound), port in t.ports.items():
                    for name in names:
                        ans = own0.get((bound, name))
                        if ans and (bound, ans[2]) in h1:
                            assert negotiated(port, name, certs.ca_cert)[0] == "http/1.1", (method.value, name)
        judged = {k: v for k, v in pairs0.items() if (k[0], chain_of.get((k[0], k[1]))) not in h1}
        assert not [k for k, v in own1.items() if v and v[0] == 421]
        open_pairs = unmitigated_pairs(after, names)
        wrong = []
        for (bound, a, b), was in judged.items():
            now = pairs1[(bound, a, b)]
            source = chain_of[(bound, a)]
            mine = own0.get((bound, b))
            if not source:
                continue  # a PASSTHROUGH connection: the gateway never sees its requests
            if mine is None and chain_exists(base, bound, b):
                ok = now == was or now[0] == 421  # b's own chain fails its handshake: either way
            elif mine is None:  # no chain serves b
                under_wildcard = any(s.startswith("*.") and _covers(s, b) for s in SANS[(bound, a)])
                allowed = {was[:2]} | ({(421, "Misdirected Request\n")}
                                       if method is Method421.VHOST and under_wildcard else set())
                ok = now[:2] in allowed
            elif mine[2] == source:
                ok = now == was
            elif (bound, source) not in affected:  # the Lua filter guards its whole listener
                ok = now == was or (method is Method421.LUA and bool(objects) and now[0] == 421)
            elif was[:2] != mine[:2] and mine[0] != 404:  # a hazard (b's own 404 misses nothing)
                ok = now[0] == 421 or ((bound, source, b) in open_pairs and now == was)
            else:
                ok = now[0] == 421 or now == was
            if not ok:
                wrong.append((bound, a, b, was[:2], now[:2]))
        assert not wrong, f"{method.value}: {wrong[:5]}"
        # check's verdict agrees with what was measured
        for (bound, a, b), was in judged.items():
            source, mine = chain_of[(bound, a)], own0.get((bound, b))
            if source and mine is not None and mine[2] != source and was[:2] != mine[:2] and mine[0] != 404 \
                    and pairs1[(bound, a, b)][0] != 421:
                assert (bound, source, b) in open_pairs, f"{method.value}: check calls {a} -> {b} mitigated"
        answered[method] = sum(1 for v in pairs1.values() if v[0] == 421)
    return answered


def _judge_http1(t: Translation, names: List[str], certs, own0, affected, after) -> int:
    patched = {(bound, name) for (bound, name), ans in own0.items() if ans and (bound, ans[2]) in affected}
    mitigated = {(f.detail["listenerPort"], chain_name(s)) for f in after
                 if f.detail.get("mitigation") for s in f.detail["from"]}
    restricted = 0
    with Envoy(t):
        for (_, bound), port in t.ports.items():
            for name in names:
                ans = own0.get((bound, name))
                if ans is None or not ans[2]:
                    continue
                proto, status = negotiated(port, name, certs.ca_cert)
                if (bound, ans[2]) in mitigated:
                    assert proto == "http/1.1" and status == ans[0], (name, proto, status, ans)
                    restricted += 1
                elif (bound, name) not in patched:
                    assert proto == "h2", (name, proto)
    return restricted
