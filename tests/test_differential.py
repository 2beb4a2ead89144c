"""check against the real Envoy, through a translation that does not share its code.

Random inventories (hypothesis, a fixed seed in CI; GWDUP_DIFF_EXAMPLES for more) are written as
raw manifests, translated by tests/istiod_translate.py (which never imports kubectl_gwdup) and
served by the real Envoy. A browser-like client then measures every ordered pair of names on
every listener: a connection opened for A (valid certificate for A, or no connection), then a
request for B on it when the certificate covers B, against B on a connection of its own. The
hazards measured (404 on the shared connection where B's own answers, or another backend's 200)
must be exactly the ones `check` reports, per listener, source filter chain and name.

Drawn: Deployments with and without listed Pods, a second workload without a Service, missing
Secrets, certificates that miss their own host, `*` servers, PASSTHROUGH servers with and
without TLS routes, TLS-only VirtualServices, several VirtualServices per host, creation orders,
route matches (prefixes, exact paths, a header, any case; for HTTPRoutes, PathPrefix with and
without a trailing slash) and backends shared between tables: the outcome is measured per
request class (`probes`), and a request routed to its own backend elsewhere is no hazard.
Hazards are drawn densely: each test asserts that at least half of its draws hold one the real
Envoy shows (the first draws held one in five, one in twelve for Gateway API, so most examples
tested silence).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Set, Tuple

import yaml
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from conftest import SCENARIOS
from istiod_translate import Connection, Envoy, Translation, new_workdir
from kubectl_gwdup.analysis import registry
from kubectl_gwdup.inventory import build_inventory
from kubectl_gwdup.model import Input
from kubectl_gwdup.sources.files import load_files

# the last two bind only VirtualServices of one namespace: ns1's, or the Gateway's own (`./`)
HOSTS = ["a.ex.com", "b.ex.com", "c.ex.com", "a.ex.com", "b.ex.com", "c.ex.com", "*.ex.com", "x.b.ex.com", "*",
         "ns1/c.ex.com", "./b.ex.com"]
VS_HOSTS = ["a.ex.com", "b.ex.com", "c.ex.com", "*.ex.com", "x.b.ex.com"]
SANS = [("a.ex.com", "b.ex.com", "c.ex.com"), ("*.ex.com",), ("a.ex.com", "b.ex.com"), ("a.ex.com",),
        ("b.ex.com", "c.ex.com"), ("*.ex.com", "x.b.ex.com"), ("c.ex.com", "*.b.ex.com")]
PROXIES = [("istio-system", "ingress", 8443), ("edge", "edge", 443)]  # (namespace, name, bound port)
EXTRA = ["zz.ex.com", "zz.b.ex.com"]  # names nobody lists, under the wildcards

# What users write in a VirtualService's `http` (B its backend, B2 a second one), as a list of
# entries: everything to B; only /api; /api to B2 and the rest to B; an exact path and a prefix
# with a trailing slash; a canary header to B2; a catch-all first (istiod never builds what
# follows it); a prefix matched in any case; all but the canary to B2 (withoutHeaders: a request
# without the header is without it). One draw in five routes everything to one backend.
ROUTINGS: Dict[str, List[Tuple[Optional[List[dict]], str]]] = {
    "all": [(None, "B")],
    "api_only": [([{"uri": {"prefix": "/api"}}], "B")],
    "api_then_all": [([{"uri": {"prefix": "/api"}}], "B2"), (None, "B")],
    "exact_and_prefix": [([{"uri": {"exact": "/login"}}, {"uri": {"prefix": "/static/"}}], "B")],
    "canary": [([{"headers": {"x-canary": {"exact": "1"}}}], "B2"), (None, "B")],
    "all_then_api": [(None, "B"), ([{"uri": {"prefix": "/api"}}], "B2")],
    "api_any_case": [([{"uri": {"prefix": "/API"}, "ignoreUriCase": True}], "B")],
    "not_canary": [([{"withoutHeaders": {"x-canary": {"exact": "1"}}}], "B2"), (None, "B")],
}
ROUTING_DRAWS = ["all"] * 2 + [r for r in ROUTINGS if r != "all"]
# B: a short name (the VirtualService's namespace's Service), the same one written in full in
# one namespace, or the VirtualService's own (most often): two tables may send a host to one backend
BACKEND_DRAWS = ["web", "web", "web.ns0.svc.cluster.local", "api"] + ["own"] * 4
# requests that tell the classes of those matches apart (paths at, under and beside each one,
# in another case), each also with the canary header when a draw routes on it
PROBES = {"api_only": ["/api", "/api/x", "/apix", "/Api/x"], "api_then_all": ["/api", "/api/x", "/apix"],
          "exact_and_prefix": ["/login", "/login/x", "/static/a", "/static"], "all_then_api": ["/api/x"],
          "api_any_case": ["/api", "/Api/x", "/apix", "/API"], "api": ["/api", "/api/", "/api/x", "/apix"],
          "api_slash": ["/api", "/api/x", "/apix"], "exact_login": ["/login", "/login/"],
          "api_docs": ["/api", "/api/x", "/api-docs", "/api-docs/x"],
          "api_v2": ["/api/v2", "/api/v2/x", "/api/x", "/api/v2x"], "regex_api": ["/api/x", "/api", "/apix/y"], "grpc_svc": ["/pkg.Svc/Get", "/pkg.Svcx/Get"]}
Probe = Tuple[str, Tuple[Tuple[str, str], ...]]  # path, headers


def probes(docs: List[dict]) -> List[Probe]:
    """The requests to send for every pair of names: `/` and a path nobody routes, and those
    that tell apart the route matches drawn (a draw without matches sends `/` alone)."""
    kinds = {(d["metadata"].get("annotations") or {}).get("gwdup-test/routing") for d in docs}
    paths = ["/"] + sorted({p for k in kinds if k in PROBES for p in PROBES[k]})
    if len(paths) > 1:
        paths.append("/zz-unrouted")
    variants: List[Tuple[Tuple[str, str], ...]] = [()] + (
        [(("x-canary", "1"),), (("x-canary", "2"),)] if kinds & {"canary", "not_canary"} else [])
    return [(p, h) for h in variants for p in paths]


def http_entries(routing: str, backend: str, ns: str, j: int) -> List[dict]:
    host = f"vs{j}.{ns}.svc.cluster.local" if backend == "own" else backend
    targets = {"B": [{"destination": {"host": host}}], "B2": [{"destination": {"host": "api", "port": {"number": 8080}}}]}
    return [dict({"route": targets[b]}, **({"match": m} if m else {})) for m, b in ROUTINGS[routing]]


_sparse = st.fixed_dictionaries({
    "pod_listed": st.booleans(),
    "pod_owned": st.booleans(),  # False: listed without ownerReferences, as in an edited export
    # a second Deployment beside the ingress: none, one of the very same pod labels, or one whose
    # labels hold the ingress's and more (the ingress's selectors pick its pods too)
    "twin": st.sampled_from(["none", "none", "same", "more"]),
    "named_port": st.booleans(),  # the ingress Service's targetPort is the container port's name
    "gateways": st.lists(st.fixed_dictionaries({
        "ns": st.sampled_from(["ns0", "ns1"]), "proxy": st.sampled_from([0, 0, 0, 1]),
        "mode": st.sampled_from(["SIMPLE"] * 5 + ["PASSTHROUGH"]),
        "alt_port": st.sampled_from([False] * 4 + [True]),  # a second server, on port 9443
        "hosts": st.lists(st.sampled_from(HOSTS), min_size=1, max_size=2, unique=True),
        "credential": st.sampled_from([0, 0, 0, 1, 2]),  # one certificate on several servers, mostly
        # its own VirtualService: routes for its hosts, TLS routes only (a 404 on HTTPS servers,
        # the chain of a PASSTHROUGH one), or none
        "routes": st.sampled_from(["http", "http", "http", "tls", "none"]),
        "routing": st.sampled_from(ROUTING_DRAWS), "backend": st.sampled_from(BACKEND_DRAWS)}), min_size=3, max_size=5),
    "secrets": st.lists(st.integers(0, len(SANS) - 1), min_size=3, max_size=3),
    "missing": st.lists(st.booleans(), min_size=3, max_size=3),  # this credential's Secret does not exist
    "vss": st.lists(st.fixed_dictionaries({
        "ns": st.sampled_from(["ns0", "ns1"]),
        "hosts": st.lists(st.sampled_from(VS_HOSTS), min_size=1, max_size=2, unique=True),
        "gateways": st.lists(st.integers(0, 4), min_size=1, max_size=2, unique=True),
        "kind": st.sampled_from(["http", "http", "tls"]),
        "routing": st.sampled_from(ROUTING_DRAWS), "backend": st.sampled_from(BACKEND_DRAWS)}), max_size=4),
    "ages": st.permutations(range(5)),
})

# Hazards drawn densely (at least half the draws hold one; the plain draws above, about one in
# five): each Gateway's first host is one no other Gateway's first host is, a second one now and
# then drawn as before (a repeat, `*`, a wildcard); most Gateways share the first certificate,
# which names several hosts and is always there; another Secret is missing now and then.
OWN = ["a.ex.com", "b.ex.com", "c.ex.com", "x.b.ex.com", "*.ex.com"]


def _dense(drawn: tuple) -> dict:
    spec, order, first_sans, missing, extra, credentials = drawn
    gateways = []
    for i, g in enumerate(spec["gateways"]):
        own = OWN[order[i]]
        more = ["*"] if order[i] == 0 else [h for h in g["hosts"] if h != own]  # `*`: a chain for every name
        gateways.append(dict(g, hosts=[own] + more[:extra[i]], credential=credentials[i]))
    return dict(spec, gateways=gateways, secrets=[first_sans] + spec["secrets"][1:], missing=missing)


inventories = st.tuples(_sparse, st.permutations(range(5)), st.sampled_from([1, 1, 0, 5]),
                        st.lists(st.sampled_from([False] * 4 + [True]), min_size=2, max_size=2).map(
                            lambda m: [False] + m),
                        st.lists(st.sampled_from([0, 0, 0, 1]), min_size=5, max_size=5),
                        st.lists(st.sampled_from([0, 0, 0, 0, 1, 2]), min_size=5, max_size=5)).map(_dense)


def manifests(spec: dict, certs) -> List[dict]:
    docs: List[dict] = []
    for i, (ns, name, _) in enumerate(PROXIES):
        labels = {"istio": name}
        pod_spec = {"containers": [{"name": "istio-proxy", "image": "proxyv2",
                                    "ports": [{"name": "https", "containerPort": 8443}]}]}
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                     "spec": {"selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})
        if i == 0:
            target = "https" if spec["named_port"] else 8443
            docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                         "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "targetPort": target},
                                                                {"name": "https-alt", "port": 9443, "targetPort": 9444}]}})
            if spec["pod_listed"]:
                pod = {"name": f"{name}-5d8f-x1", "namespace": ns, "labels": dict(labels, **{"pod-template-hash": "5d8f"})}
                if spec["pod_owned"]:
                    pod["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-5d8f",
                                               "uid": "u"}]
                docs.append({"apiVersion": "v1", "kind": "Pod", "metadata": pod})
            if spec["twin"] != "none":
                twin = dict(labels, **({"variant": "canary"} if spec["twin"] == "more" else {}))
                docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": f"{name}-canary", "namespace": ns},
                             "spec": {"selector": {"matchLabels": twin},
                                      "template": {"metadata": {"labels": twin}, "spec": pod_spec}}})
        for c, pool in enumerate(spec["secrets"]):
            if not spec["missing"][c]:
                leaf = certs.leaf(*SANS[pool], tag="diff")
                docs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                             "metadata": {"name": f"c{c}", "namespace": ns},
                             "stringData": {"tls.crt": leaf.cert_pem.decode(), "tls.key": leaf.key_pem.decode()}})
    for i, g in enumerate(spec["gateways"]):
        passthrough = g["mode"] == "PASSTHROUGH"
        tls = {"mode": g["mode"]} if passthrough else {"mode": "SIMPLE", "credentialName": f"c{g['credential']}"}
        servers = [{"port": {"number": port, "name": ("tls" if passthrough else "https") + suffix,
                             "protocol": "TLS" if passthrough else "HTTPS"}, "hosts": g["hosts"], "tls": tls}
                   for port, suffix in [(443, "")] + ([(9443, "-alt")] if g.get("alt_port") else [])]
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                     "metadata": {"name": f"g{i}", "namespace": g["ns"],
                                  "creationTimestamp": f"2024-01-0{spec['ages'][i] + 1}T00:00:00Z"},
                     "spec": {"selector": {"istio": PROXIES[g["proxy"]][1]}, "servers": servers}})
    gws = spec["gateways"]
    own = [{"ns": g["ns"], "hosts": list(dict.fromkeys(h.split("/")[-1] for h in g["hosts"] if h != "*")) or ["zz.ex.com"],
            "gateways": [i],
            "kind": g["routes"], "routing": g["routing"], "backend": g["backend"]}
           for i, g in enumerate(gws) if g["routes"] != "none"]
    for j, v in enumerate(own + spec["vss"]):
        refs = [f"{gws[k]['ns']}/g{k}" for k in v["gateways"] if k < len(gws)] or ["mesh"]
        body: Dict[str, object] = {"hosts": v["hosts"], "gateways": refs}
        annotations = {}
        if v["kind"] == "http":
            body["http"] = http_entries(v["routing"], v["backend"], v["ns"], j)
            annotations["gwdup-test/routing"] = v["routing"]
        else:  # TLS routes only: passthrough chains come from these; on HTTPS servers, no route
            sni = [h for h in v["hosts"] if h != "*"]
            body["tls"] = [{"match": [{"sniHosts": sni}],
                            "route": [{"destination": {"host": f"vs{j}.{v['ns']}.svc.cluster.local"}}]}]
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": f"vs{j}", "namespace": v["ns"], "annotations": annotations,
                                  "creationTimestamp": f"2024-02-0{j + 1}T00:00:00Z"}, "spec": body})
    return docs


def names_of(docs: List[dict]) -> List[str]:
    names = set(EXTRA)
    for d in docs:
        if d["kind"] == "Gateway":
            names.update(h.split("/")[-1] for s in d["spec"]["servers"] for h in s["hosts"] if not h.startswith("*"))
    names.update(s for sans in SANS for s in sans if not s.startswith("*"))
    return sorted(names)


Key = Tuple[int, str, str]  # listener port, source filter chain, requested name


Measured = Tuple[Dict[Key, Set[str]], Dict[Tuple[int, str], Set[str]], Dict[Tuple[Key, Probe], str]]


def served(docs: List[dict], certs, envoy_filters: Sequence[dict] = ()) -> Optional[Tuple[Translation, Envoy]]:
    """The manifests translated (with `envoy_filters` applied as istiod applies them), and
    their Envoy to start (`with`); None when Envoy refuses the configuration. A passthrough
    chain's upstream presents a certificate for its routes' names."""
    def upstream(sni: List[str]) -> Tuple[str, str]:
        leaf = certs.leaf(*(sorted(h for h in sni if h != "*") or ["passthrough.invalid"]), tag="upstream")
        return leaf.cert_path, leaf.key_path

    t = Translation(docs, new_workdir(), upstream)
    if envoy_filters:
        import envoyfilter_patch

        envoyfilter_patch.apply(t, envoy_filters)
    try:
        return t, Envoy(t)
    except RuntimeError:
        return None


def loaded(docs: List[dict], tmp: str):
    """The manifests as `-f` reads them, taken as the whole cluster: an absent Secret is
    missing, and no VirtualService or HTTPRoute is one that was not read."""
    path = os.path.join(tmp, "inventory.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f)
    raw = load_files([path])
    raw.secrets_complete = True
    raw.available.update((Input.CERTIFICATES, Input.VIRTUAL_SERVICES))
    raw.gateway_api.routes_read = True
    return raw


def measured(docs: List[dict], certs, names: List[str], requests: Optional[List[Probe]] = None) -> Optional[Measured]:
    """The hazards the real Envoy shows, per (listener port, source chain, name) the outcomes
    that occur over the requests `probes` sends, and the chains each name's own connection
    reached (one per proxy binding that port: Gateway API Gateways each get a deployment, all on
    443); None when Envoy refuses the configuration. A request is judged against the same
    request on the name's own connection: a 404 there too is no loss, the same backend none."""
    serving = served(docs, certs)
    if serving is None:
        return None
    t, envoy = serving
    requests = requests or probes(docs)
    out: Dict[Key, Set[str]] = {}
    per_request: Dict[Tuple[Key, Probe], str] = {}
    chain_of: Dict[Tuple[int, str], Set[str]] = {}
    with envoy:
        for (proxy, bound), port in t.ports.items():
            own: Dict[str, Optional[Dict[Probe, Tuple[int, str]]]] = {}
            conns: Dict[str, Connection] = {}
            for name in names:
                c = Connection(port, name, certs.ca_cert)
                if c.error:
                    own[name] = None  # no valid connection for the name: it fails on its own
                    continue
                answers = {}
                for path, headers in requests:
                    status, _, chain = c.request(name, path, extra=headers)
                    answers[(path, headers)] = (status, c.backend)
                    chain_of.setdefault((bound, name), set()).add(chain)
                own[name] = answers
                conns[name] = c
            for a, c in conns.items():
                for b in names:
                    mine = own[b]
                    if b == a or not c.covers(b) or mine is None:
                        continue
                    for probe in requests:
                        if mine[probe][0] == 404:
                            continue
                        status, _, chain = c.request(b, probe[0], extra=probe[1])
                        if not chain or (status, c.backend) == mine[probe]:
                            # no chain header: the connection went through a PASSTHROUGH chain to a
                            # backend whose certificate the gateway never sees; not judged here
                            continue
                        outcome = "NotFound" if status == 404 else "Misrouted"
                        out.setdefault((bound, chain, b), set()).add(outcome)
                        per_request[((bound, chain, b), probe)] = outcome
                c.close()
    return out, chain_of, per_request


def _covers(pattern: str, name: str) -> bool:
    return pattern == name or (pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:])


def chain_name(ref: dict) -> str:
    """The test translation's name for the filter chain of a server check names: `ns/gw[i]`, or
    for a Gateway API listener, that of the Gateway istiod makes of it (one server)."""
    if "listener" in ref:
        return f"{ref['gateway']}~istio-autogenerated-k8s-gateway~{ref['listener']}[0]"
    return f"{ref['gateway']}[{ref['server']}]"


Claims = Dict[Tuple[Key, Probe], str]


def predicted(docs: List[dict], tmp: str, names: List[str]) -> Tuple[Dict[Key, Set[str]], bool, Claims]:
    """check's findings as the outcomes per (listener port, source chain, name); whether it
    says Envoy rejects a listener (GWD0105); and the requests it names as examples of a class
    an outcome holds for, each with that outcome (the real Envoy must give it them)."""
    report = registry.run(build_inventory(loaded(docs, tmp)))
    out: Dict[Key, Set[str]] = {}
    claims: Claims = {}
    for f in report.findings:
        d = f.detail
        if "outcome" not in d:
            continue
        for src in d["from"]:
            chain = chain_name(src)
            for h in d["hosts"]:
                for n in ([h] if not h.startswith("*") else
                          [n for n in names if _covers(h, n) and n not in d["exceptHosts"]]):
                    out.setdefault((d["listenerPort"], chain, n), set()).add(d["outcome"])
                    for r in d["requests"]:
                        assert r["method"] == "GET" and not r["query"], r  # not drawn here
                        probe = (r["path"], tuple(sorted(r["headers"].items())))
                        claims[((d["listenerPort"], chain, n), probe)] = d["outcome"]
    return out, any(f.code == "GWD0105" for f in report.findings), claims


def compare(docs: List[dict], view: List[dict], certs, names: List[str], served: bool = False) -> Dict[Key, Set[str]]:
    """check on the manifests `docs` against the real Envoy serving `view` (what istiod reads of
    them): the hazards must be the same, per listener port, source chain and name, and so must
    the verdict that Envoy refuses a listener (`served`: it must not). Returns the hazards seen."""
    said, rejected, claims = predicted(docs, new_workdir(), names)
    requests = probes(docs)
    requests += sorted({probe for _, probe in claims} - set(requests))
    result = measured(view, certs, names, requests)
    if result is None:
        assert not served, "Envoy refused the translation"
        assert rejected, "Envoy refused the configuration; check did not say a listener is rejected"
        return {}
    assert not rejected, "check says Envoy rejects a listener; Envoy accepted it"
    seen, chain_of, per_request = result
    # a pattern finding (`*.ex.com`) stands for the names under it; those whose own connection
    # reaches the source chain itself (measured) are not at risk from it
    said = {k: v for k, v in said.items() if k[1] not in chain_of.get((k[0], k[2]), ())}
    assert said == seen
    for (key, probe), outcome in claims.items():
        if key in said:
            assert per_request.get((key, probe)) == outcome, (key, probe, outcome)
    return seen


def test_check_reports_exactly_what_the_real_envoy_does(certs) -> None:
    """Every draw agrees with the real Envoy, and at least half the draws hold a hazard the real
    Envoy shows (else most examples would test nothing but silence)."""
    hazards = []

    @settings(max_examples=int(os.environ.get("GWDUP_DIFF_EXAMPLES", "200")), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inventories)
    def draw(spec) -> None:
        docs = manifests(spec, certs)
        hazards.append(bool(compare(docs, docs, certs, names_of(docs))))

    draw()
    assert sum(hazards) >= len(hazards) / 2, f"{sum(hazards)} of {len(hazards)} draws hold a hazard"


# --- Gateway API -------------------------------------------------------------------------------

GW_HOSTNAMES = ["a.ex.com", "b.ex.com", "*.ex.com", "x.b.ex.com", "*.b.ex.com", None]
# a listener's allowedRoutes namespaces: its own, all, or a selector over the Namespaces drawn
# (routes come from the Gateway's namespace or from `other`, the one labelled team: routes)
NAMESPACE_MODES = ["Same", "Same", "All", "label", "name", "nothing"]
ALLOWED = {"All": {"from": "All"},
           "label": {"from": "Selector", "selector": {"matchLabels": {"team": "routes"}}},
           "name": {"from": "Selector", "selector": {"matchExpressions": [
               {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["istio-system", "apps"]}]}},
           "nothing": {"from": "Selector", "selector": {"matchExpressions": [{"key": "team", "operator": "Exists"},
                                                                              {"key": "tier", "operator": "Exists"}]}}}
ROUTE_HOSTNAMES = ["a.ex.com", "b.ex.com", "c.ex.com", "*.ex.com", "x.b.ex.com"]

_gateway_api_sparse = st.fixed_dictionaries({
    "gateways": st.lists(st.fixed_dictionaries({
        "manual": st.booleans(),  # on the shared ingress Service, or istiod's own deployment
        "listeners": st.lists(st.fixed_dictionaries({
            "hostname": st.sampled_from(GW_HOSTNAMES),
            "credential": st.sampled_from([0, 0, 1, 2]),
            "cross": st.sampled_from([False, False, True]),  # the Secret in namespace certs
            "passthrough": st.sampled_from([False] * 5 + [True]),
            # protocol TLS, mode Terminate: TLSRoutes behind a terminating chain (tls-terminate.yaml)
            "tcp": st.sampled_from([False] * 11 + [True]),
            "namespaces": st.sampled_from(NAMESPACE_MODES)}), min_size=1, max_size=3),
        "class": st.sampled_from(["istio"] * 19 + ["other"])}), min_size=1, max_size=3),
    "secrets": st.lists(st.integers(0, len(SANS) - 1), min_size=3, max_size=3),
    "missing": st.lists(st.sampled_from([False, False, False, True]), min_size=3, max_size=3),
    "grant": st.booleans(),
    "istio_gateway": st.one_of(st.none(), st.lists(st.sampled_from(HOSTS[:7]), min_size=1, max_size=2, unique=True)),
    "routes": st.lists(st.fixed_dictionaries({
        "gateway": st.integers(0, 2), "section": st.one_of(st.none(), st.integers(0, 2)),
        "other_namespace": st.booleans(),
        "hostnames": st.lists(st.sampled_from(ROUTE_HOSTNAMES), max_size=2, unique=True),
        # a PathPrefix (with a trailing slash or not: whole segments either way), an Exact path, or
        # none; the backend its own Service, or one Service of its namespace many routes share
        "match": st.sampled_from([None, None, None, "api", "api_slash", "exact_login", "regex_api"]),
        "shared": st.sampled_from([False, False, True])}), max_size=5),
})

# Densely, as for Istio Gateways (one draw in twelve held a hazard): a Gateway's listeners get
# hostnames no other first listener has, most Gateways have two listeners or share the ingress
# (listeners of one managed Gateway share its pods; two managed Gateways never do), the first
# certificate names several hosts, every Gateway has a route for all its listeners, and an Istio
# Gateway shares the ingress one draw in three (its hosts often repeat a listener's SNI).
GW_OWN = ["a.ex.com", "b.ex.com", "*.ex.com", "c.ex.com", "x.b.ex.com", "*.b.ex.com"]


def _dense_gateway_api(drawn: tuple) -> dict:
    spec, order, first_sans, second, manual, missing, legacy, ls_on, on_managed = drawn
    gateways, k = [], 0
    for i, g in enumerate(spec["gateways"]):
        listeners = list(g["listeners"])
        if len(listeners) == 1 and second[i] is not None:
            listeners.append(dict(second[i]))
        named = []
        for j, lst in enumerate(listeners):
            if lst["hostname"] or k < 2:
                lst = dict(lst, hostname=GW_OWN[order[k % len(GW_OWN)]])
            # mostly one certificate, the second listener's now and then from namespace certs
            own_cert = j == 1 and order[i] % 3 == 0  # now and then, one of its own (which may be missing)
            named.append(dict(lst, credential=lst["credential"] if own_cert else 0, cross=lst["cross"] and j == 1)
                         if j < 2 else lst)
            k += 1
        gateways.append(dict(g, listeners=named, manual=g["manual"] or manual[i]))
    # each Gateway's own route: a path match one time in two (what decides an outcome per request),
    # a GRPCRoute one time in three; and for some, a later route of a longer prefix or a header
    # on the same listeners (istiod puts routes in precedence order, not in the order written)
    routes = list(spec["routes"])
    for i in range(len(gateways)):
        grpc = order[i] % 3 == 2
        match = [None, "api", None, "api_slash", None, "exact_login"][order[i] % 6]
        routes.append({"gateway": i, "section": None, "other_namespace": False, "hostnames": [],
                       "kind": "GRPCRoute" if grpc else "HTTPRoute", "match": ("grpc_svc" if match else None) if grpc
                       else match, "shared": order[i] % 3 == 0})
        if order[i] % 2 == 1:
            routes.append({"gateway": i, "section": None, "other_namespace": False, "hostnames": [],
                           "match": "api_v2" if order[i] % 4 == 1 else "canary", "shared": False})
    listener_set = None
    if ls_on is not None and ls_on < len(gateways):
        # its own hostname, or one time in three its Gateway's first listener's (a conflict: dropped)
        own = gateways[ls_on]["listeners"][0]["hostname"] if order[0] % 3 == 0 else None
        listener_set = {"gateway": ls_on, "hostname": own or GW_OWN[order[5]], "credential": 0}
    return dict(spec, gateways=gateways, secrets=[first_sans] + spec["secrets"][1:], routes=routes, missing=missing,
                istio_gateway=spec["istio_gateway"] if legacy or on_managed else None, listener_set=listener_set,
                legacy_on_managed=on_managed and not gateways[0]["manual"])


_listener = st.fixed_dictionaries({
    "hostname": st.sampled_from(GW_HOSTNAMES), "credential": st.sampled_from([0, 0, 0, 1]),
    "cross": st.sampled_from([False, False, False, True]), "passthrough": st.sampled_from([False] * 7 + [True]),
    "tcp": st.sampled_from([False] * 11 + [True]),
    "namespaces": st.sampled_from(NAMESPACE_MODES)})
gateway_api_inventories = st.tuples(
    _gateway_api_sparse, st.permutations(range(len(GW_OWN))), st.sampled_from([1, 1, 5, 0]),
    st.lists(st.one_of(_listener, _listener, st.none()), min_size=3, max_size=3),
    st.lists(st.sampled_from([False, True]), min_size=3, max_size=3),
    st.lists(st.sampled_from([False] * 4 + [True]), min_size=2, max_size=2).map(lambda m: [False] + m),
    st.sampled_from([False, False, True]),
    st.sampled_from([None, None, 0, 1]),  # a ListenerSet joins that Gateway
    st.sampled_from([False, True])).map(_dense_gateway_api)  # the Istio Gateway on g0's own pods


def gateway_api_manifests(spec: dict, certs) -> List[dict]:
    """Gateway API Gateways (managed, or on the shared ingress Service), an Istio Gateway on
    the same ingress sometimes, Secrets in the listener's namespace or in `certs` (with or
    without a ReferenceGrant), HTTPRoutes from the Gateway's namespace or another."""
    labels = {"istio": "ingress"}
    docs: List[dict] = [{"apiVersion": "v1", "kind": "Namespace",
                         "metadata": dict({"name": ns}, **({"labels": {"team": "routes"}} if ns == "other" else {}))}
                        for ns in ("istio-system", "apps", "certs", "other")]
    docs += [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ingress", "namespace": "istio-system"},
         "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "istio-system"},
         "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}]
    for c, pool in enumerate(spec["secrets"]):
        if spec["missing"][c]:
            continue
        leaf = certs.leaf(*SANS[pool], tag="diff")
        for ns in ("istio-system", "apps", "certs"):
            docs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": f"c{c}", "namespace": ns},
                         "stringData": {"tls.crt": leaf.cert_pem.decode(), "tls.key": leaf.key_pem.decode()}})
    if spec["grant"]:
        docs.append({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                     "metadata": {"name": "secrets", "namespace": "certs"},
                     "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": ns}
                                       for ns in ("istio-system", "apps")],
                              "to": [{"group": "", "kind": "Secret"}]}})
    for i, g in enumerate(spec["gateways"]):
        ns = "istio-system" if g["manual"] else "apps"
        listeners = []
        for j, lst in enumerate(g["listeners"]):
            tcp = lst.get("tcp") and not lst["passthrough"]
            entry: dict = {"name": f"l{j}", "port": 443,
                           "protocol": "TLS" if lst["passthrough"] or tcp else "HTTPS"}
            if lst["hostname"]:
                entry["hostname"] = lst["hostname"]
            if lst["passthrough"]:
                entry["tls"] = {"mode": "Passthrough"}
            else:
                ref = {"name": f"c{lst['credential']}"}
                if lst["cross"]:
                    ref["namespace"] = "certs"
                entry["tls"] = {"mode": "Terminate", "certificateRefs": [ref]}
            if lst["namespaces"] != "Same":
                entry["allowedRoutes"] = {"namespaces": ALLOWED[lst["namespaces"]]}
            listeners.append(entry)
        body: dict = {"gatewayClassName": g.get("class", "istio"), "listeners": listeners}
        ls = spec.get("listener_set")
        if ls and ls["gateway"] == i:
            body["allowedListeners"] = {"namespaces": {"from": "Same"}}
            docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
                         "metadata": {"name": "ls0", "namespace": ns, "creationTimestamp": "2024-01-20T00:00:00Z"},
                         "spec": {"parentRef": {"name": f"g{i}"}, "listeners": [
                             {"name": "s0", "hostname": ls["hostname"], "port": 443, "protocol": "HTTPS",
                              "tls": {"mode": "Terminate", "certificateRefs": [{"name": f"c{ls['credential']}"}]}}]}})
            docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                         "metadata": {"name": "ls0", "namespace": ns, "creationTimestamp": "2024-01-21T00:00:00Z",
                                      "annotations": {"gwdup-test/routing": "all"}},
                         "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "ListenerSet",
                                                  "name": "ls0"}],
                                  "rules": [{"backendRefs": [{"name": "ls0", "port": 80}]}]}})
        if g["manual"]:
            body["addresses"] = [{"type": "Hostname", "value": "ingress"}]
        docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                     "metadata": {"name": f"g{i}", "namespace": ns, "creationTimestamp": f"2024-01-0{i + 1}T00:00:00Z"},
                     "spec": body})
    if spec["istio_gateway"]:
        selector = labels
        if spec.get("legacy_on_managed"):  # g0's own pods, listed as a cluster lists them
            selector = {"gateway.networking.k8s.io/gateway-name": "g0"}
            docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "g0-istio", "namespace": "apps"},
                         "spec": {"selector": {"matchLabels": selector}, "template": {"metadata": {"labels": selector}}}})
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                     "metadata": {"name": "legacy", "namespace": "istio-system", "creationTimestamp": "2023-12-01T00:00:00Z"},
                     "spec": {"selector": selector, "servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                                                               "hosts": spec["istio_gateway"],
                                                               "tls": {"mode": "SIMPLE", "credentialName": "c0"}}]}})
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": "legacy", "namespace": "istio-system"},
                     "spec": {"hosts": [h for h in spec["istio_gateway"] if h != "*"] or ["zz.ex.com"],
                              "gateways": ["legacy"], "http": [{"route": [{"destination": {"host": "legacy"}}]}]}})
    gws = spec["gateways"]
    for k, r in enumerate(spec["routes"]):
        if r["gateway"] >= len(gws):
            continue
        g = gws[r["gateway"]]
        gw_ns = "istio-system" if g["manual"] else "apps"
        ns = "other" if r["other_namespace"] else gw_ns
        ref: dict = {"name": f"g{r['gateway']}", "namespace": gw_ns}
        if r["section"] is not None and r["section"] < len(g["listeners"]):
            ref["sectionName"] = f"l{r['section']}"
        elif k % 3 == 1:
            ref["port"] = 443
        rule: dict = {"backendRefs": [{"name": "shared" if r.get("shared") else f"r{k}", "port": 80}]}
        match = {"api": {"path": {"type": "PathPrefix", "value": "/api"}},
                 "api_slash": {"path": {"type": "PathPrefix", "value": "/api/"}},
                 "exact_login": {"path": {"type": "Exact", "value": "/login"}},
                 "api_v2": {"path": {"type": "PathPrefix", "value": "/api/v2"}},
                 "canary": {"headers": [{"name": "x-canary", "value": "1"}]},
                 "grpc_svc": {"method": {"service": "pkg.Svc"}},
                 "regex_api": {"path": {"type": "RegularExpression", "value": "/api/.*"}}}.get(r.get("match") or "")
        if match:
            rule["matches"] = [match]
        body = {"parentRefs": [ref], "rules": [rule]}
        if r["hostnames"]:
            body["hostnames"] = r["hostnames"]
        kind = r.get("kind", "HTTPRoute")
        docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
                     "metadata": {"name": f"r{k}", "namespace": ns, "creationTimestamp": f"2024-02-{k + 1:02d}T00:00:00Z",
                                  "annotations": {"gwdup-test/routing": r.get("match") or "all"}},
                     "spec": body})
        if any(lst["passthrough"] or lst.get("tcp") for lst in g["listeners"]):
            docs.append({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TLSRoute",
                         "metadata": {"name": f"t{k}", "namespace": ns},
                         "spec": {"parentRefs": [ref], "hostnames": r["hostnames"] or ["c.ex.com"],
                                  "rules": [{"backendRefs": [{"name": f"t{k}", "port": 443}]}]}})
    return docs


def gateway_api_names(docs: List[dict]) -> List[str]:
    names = set(EXTRA) | {s for sans in SANS for s in sans if not s.startswith("*")}
    for d in docs:
        spec = d.get("spec") or {}
        for h in [lst.get("hostname") for lst in spec.get("listeners") or []] + list(spec.get("hostnames") or []) \
                + [h for s in spec.get("servers") or [] for h in s.get("hosts") or []]:
            if h and not h.startswith("*"):
                names.add(h)
    return sorted(names)


def test_check_reports_exactly_what_the_real_envoy_does_gateway_api(certs) -> None:
    """As for Istio Gateways: every draw agrees with the real Envoy, half of them with hazards."""
    from gatewayapi_translate import istio_view

    hazards = []

    @settings(max_examples=int(os.environ.get("GWDUP_DIFF_EXAMPLES", "120")), deadline=None, derandomize=True,
              # each example runs Envoy: shrinking a failure took over five minutes, so a failure is
              # reported as drawn (explicit and generate phases only)
              phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(gateway_api_inventories)
    def draw(spec) -> None:
        docs = gateway_api_manifests(spec, certs)
        hazards.append(bool(compare(docs, istio_view(docs), certs, gateway_api_names(docs))))

    draw()
    assert sum(hazards) >= len(hazards) / 2, f"{sum(hazards)} of {len(hazards)} draws hold a hazard"


REFUSED = {"listener_conflict"}  # Envoy refuses the listener: check must say so (GWD0105)
SCENARIO_NAMES = sorted(f[:-5] for f in os.listdir(SCENARIOS) if f.endswith(".yaml") and not f.startswith("_"))


def certificate_names(docs: List[dict], certs) -> Set[str]:
    """The names the scenario's certificates list (one sample under each wildcard): a browser
    may open a connection for any of them."""
    import base64

    by_pem = certs.by_pem()
    out: Set[str] = set()
    for d in docs:
        if d["kind"] == "Secret":
            for value in (d.get("data") or {}).values():
                leaf = by_pem.get(base64.b64decode(value).decode(errors="replace"))
                for san in leaf.sans if leaf else ():
                    out.add("zz" + san[1:] if san.startswith("*.") else san)
    return out



@pytest.mark.parametrize("name", [n for n in SCENARIO_NAMES if not n.startswith("gwapi_")])
def test_scenarios_agree_with_the_real_envoy(name, certs) -> None:
    """The hand-written scenarios through the independent translation, among them: a Service
    whose targetPorts are names (bound where its pods' container ports say), and its near miss;
    a VirtualService with TLS routes only on an HTTPS server (no virtual host: the wildcard one
    answers); TLS routes repeating an SNI (the repeat skipped: the listener stands); route
    matches that make the outcome per request; and a listener Envoy refuses."""
    from test_live import scenario_docs

    docs = scenario_docs(certs, name)
    names = sorted({h.split("/", 1)[-1].lower() for d in docs if d["kind"] == "Gateway"
                    and d["apiVersion"].startswith("networking.istio.io/") for s in d["spec"]["servers"]
                    for h in s["hosts"] if not h.split("/", 1)[-1].startswith("*")}
                   | {"zz.example.com"} | certificate_names(docs, certs))
    seen = compare(docs, docs, certs, names, served=name not in REFUSED)
    if name == "named_target_port":  # a and b share the 8443 listener, whatever their Service ports
        assert {(port, src, n) for (port, src, n) in seen if n in ("a.example.com", "b.example.com")}, seen
    if name == "tls_only_virtual_service":  # the wildcard's backend answers b: not a 404
        assert [v for (_, _, n), v in seen.items() if n == "b.example.com"] == [{"Misrouted"}], seen
    if name == "route_match_per_path":  # /api misrouted, the rest on the same backend; c's routes as w's
        assert seen == {(8443, "web/gw-w[0]", "b.example.com"): {"Misrouted"}}, seen


@pytest.mark.parametrize("name", [n for n in SCENARIO_NAMES if n.startswith("gwapi_")])
def test_gateway_api_scenarios_agree_with_the_real_envoy(name, certs) -> None:
    """Hand-written Gateway API scenarios through the independent translation: listeners that
    admit routes by namespace selectors (Namespace labels, and the name label the API server
    sets), an Istio Gateway beside a Gateway API one."""
    from gatewayapi_translate import istio_view
    from test_live import scenario_docs

    docs = scenario_docs(certs, name)
    names = sorted(set(gateway_api_names(docs)) | {"zz.example.com"} | certificate_names(docs, certs))
    seen = compare(docs, istio_view(docs), certs, names, served=True)
    if name == "gwapi_namespace_selector":  # both listeners route: a's connection carries b to a 404
        assert [v for (_, _, n), v in seen.items() if n == "b.example.com"] == [{"NotFound"}], seen
    if name == "gwapi_path_prefix_segments":  # /api-docs is no /api: a 404 on the wildcard's routes
        chain = "apps/web~istio-autogenerated-k8s-gateway~wildcard[0]"
        assert seen[(443, chain, "docs.example.com")] == {"NotFound"}, seen
        assert seen[(443, chain, "www.example.com")] == {"Misrouted", "NotFound"}, seen
