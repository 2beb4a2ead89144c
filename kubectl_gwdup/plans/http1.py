"""The http1 method: the affected filter chains offer only HTTP/1.1 in ALPN. Pure.

Browsers pool connections for other hosts only over HTTP/2 (and HTTP/3), so a chain that
negotiates HTTP/1.1 never carries a coalesced request: no 421 is needed, which is what
clients that do not retry on 421 (Safari) require. Envoy Gateway does the same for listeners
with overlapping certificates. The price: those hosts lose HTTP/2.

istiod merges a FILTER_CHAIN patch whose transport socket has the chain's own name into the
existing TLS context with list-appending proto merge (listener_patch.go
mergeTransportSocketListener), which would keep `h2` first in the ALPN list. A transport
socket with another name is merged as a plain message instead, so its typed config replaces
the chain's: the patch therefore carries the whole DownstreamTlsContext istiod builds for the
server (listener.go BuildListenerTLSContext, authentication.go
ApplyCredentialSDSToServerCommonTLSContext): the credential over SDS from istiod, the client
CA for MUTUAL, the server's TLS versions, cipher suites and curves, with ALPN `http/1.1`.
Mesh-wide `tlsDefaults` are not read from the cluster; a chain that needs them is better
served by the vhost method.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ..hosts import safe_host, strip_namespace
from ..model import Placement, TlsMode

TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
SOCKET_NAME = "gwdup.tls-http1"  # not istiod's name: see the module docstring
SDS_ADS = {"ads": {}, "resourceApiVersion": "V3"}
CA_SUFFIX = "-cacert"


def resource_name(credential: str) -> str:
    """credentials.ToResourceName: `kubernetes://` unless the name has its own scheme."""
    return credential if "://" in credential else "kubernetes://" + credential


def _version(value: Any) -> Optional[str]:
    """Istio's `TLSV1_2` -> Envoy's `TLSv1_2`."""
    text = str(value or "").upper()
    return "TLSv" + text[4:] if text.startswith("TLSV") else None


def chain_patch(p: Placement) -> Tuple[Optional[Dict[str, Any]], str]:
    """The FILTER_CHAIN patch for p's chain, or None and why it cannot have one."""
    # istiod matches filterChain.sni against the server names as spelled (filterChainMatch,
    # slices.Contains): the host with its namespace stripped, case kept
    names = sorted(strip_namespace(h) for h in p.sni_hosts if safe_host(h) is not None)
    if not names or "*" in names:  # istiod gives a chain with a `*` host no server names at all
        return None, "its filter chain matches no server name, so no patch can select it"
    server = p.server
    mode = server.tls_mode
    if mode not in (TlsMode.SIMPLE, TlsMode.MUTUAL, TlsMode.OPTIONAL_MUTUAL):
        return None, f"TLS mode {mode.value if mode else 'none'} is not rebuilt here"
    if not server.credential_names:
        return None, "its certificate is a file on the gateway, not a credentialName"
    if any(c.startswith("sds://") for c in server.credential_names):
        return None, "its certificate comes from an external SDS provider"
    tls = dict(server.tls)
    common: Dict[str, Any] = {
        "alpnProtocols": ["http/1.1"],
        "tlsCertificateSdsSecretConfigs": [{"name": resource_name(c), "sdsConfig": SDS_ADS}
                                           for c in server.credential_names]}
    if mode in (TlsMode.MUTUAL, TlsMode.OPTIONAL_MUTUAL):
        ca = tls.get("caCertCredentialName") or server.credential_names[0] + CA_SUFFIX
        default: Dict[str, Any] = {}
        if tls.get("subjectAltNames"):
            default["matchSubjectAltNames"] = [{"exact": s} for s in tls["subjectAltNames"]]
        common["combinedValidationContext"] = {
            "defaultValidationContext": default,
            "validationContextSdsSecretConfig": {"name": resource_name(ca), "sdsConfig": SDS_ADS}}
    params: Dict[str, Any] = {}
    for field_name, envoy_name in (("minProtocolVersion", "tlsMinimumProtocolVersion"),
                                   ("maxProtocolVersion", "tlsMaximumProtocolVersion")):
        v = _version(tls.get(field_name))
        if v:
            params[envoy_name] = v
    for field_name in ("cipherSuites", "ecdhCurves"):
        if tls.get(field_name):
            params[field_name] = [str(x) for x in tls[field_name]]
    if params:
        common["tlsParams"] = params
    context = {"@type": TLS_TYPE, "commonTlsContext": common,
               "requireClientCertificate": mode is TlsMode.MUTUAL}
    return {
        "applyTo": "FILTER_CHAIN",
        "match": {"context": "GATEWAY", "listener": {
            "portNumber": p.listener.port, "filterChain": {"sni": names[0]}}},
        "patch": {"operation": "MERGE", "value": {"transportSocket": {
            "name": SOCKET_NAME, "typedConfig": context}}}}, ""

