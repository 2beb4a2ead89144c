"""EnvoyFilters applied to a tests/istiod_translate.py translation the way istiod applies them,
written from istio/istio's source without importing kubectl_gwdup.

What it follows (paths in istio/istio):
- pilot/pkg/model/push_context.go initEnvoyFilters / EnvoyFilters: a proxy gets the
  EnvoyFilters of the root namespace (istio-system) and of its own namespace whose
  workloadSelector labels its labels satisfy; applied in creation order, then name;
- pilot/pkg/networking/core/envoyfilter/rc_patch.go patchVirtualHostsAdd and
  routeConfigurationMatch: VIRTUAL_HOST ADD appends the value to the route configuration whose
  name equals match.routeConfiguration.name (portNumber: a gateway route name starting with
  `https.<port>.`);
- listener_patch.go patchHTTPFilters / insertBefore: HTTP_FILTER INSERT_BEFORE puts the filter
  before the named sub-filter in every HTTP connection manager of the listener bound on
  match.listener.portNumber;
- listener_patch.go patchFilterChain / filterChainMatch / mergeTransportSocketListener:
  FILTER_CHAIN MERGE on the chains whose server_names hold match.listener.filterChain.sni;
  a transport socket of another name than the chain's is merged as a plain message, so its
  typed config replaces the chain's (one with the same name would append lists instead);
- SDS: istiod serves `kubernetes://<name>` as the Secret <name> of the proxy's namespace
  (tls.crt, tls.key) and `kubernetes://<name>-cacert` as its ca.crt (or the Secret
  `<name>-cacert`), `kubernetes-gateway://<ns>/<name>` as the Secret of that namespace; a
  static bootstrap has no ADS, so those references are written as the
  files SDS would deliver.
"""
from __future__ import annotations

import base64
import copy
import os
from typing import Any, Dict, List, Optional, Sequence

from istiod_translate import Translation

HCM_NAME = "envoy.filters.network.http_connection_manager"


def _meta(o: Dict[str, Any]) -> Dict[str, Any]:
    return o.get("metadata") or {}


def _selects(ef: Dict[str, Any], namespace: str, labels: Dict[str, str], root: str) -> bool:
    if _meta(ef).get("namespace", "default") not in (namespace, root):
        return False
    selector = ((ef.get("spec") or {}).get("workloadSelector") or {}).get("labels") or {}
    return all(labels.get(k) == str(v) for k, v in selector.items())


def _hcms(listener: Dict[str, Any]):
    for chain in listener["filter_chains"]:
        for flt in chain.get("filters", []):
            if flt["name"] == HCM_NAME:
                yield chain, flt["typed_config"]


def _route_matches(route_config: Dict[str, Any], match: Dict[str, Any]) -> bool:
    rc = match.get("routeConfiguration") or {}
    name = route_config.get("name", "")
    if rc.get("name") and rc["name"] != name:
        return False
    port = rc.get("portNumber")
    return not port or name.startswith(f"https.{port}.") or name.startswith(f"http.{port}")


def _secret_bytes(secret: Dict[str, Any], key: str) -> Optional[bytes]:
    plain = secret.get("stringData") or {}
    if key in plain:
        return plain[key].encode()
    data = secret.get("data") or {}
    return base64.b64decode(data[key]) if key in data else None


def _sds_files(t: Translation, namespace: str, name: str, ca: bool) -> Optional[Dict[str, Any]]:
    """What SDS delivers for a resource name, as static file references."""
    if name.startswith("kubernetes-gateway://"):  # a Gateway API certificateRef: its own namespace
        namespace, _, name = name[len("kubernetes-gateway://"):].partition("/")
    name = name.split("://", 1)[1] if "://" in name else name
    stem = os.path.join(t.workdir, f"sds-{namespace}-{name}")
    if ca:
        base = name[:-len("-cacert")] if name.endswith("-cacert") else name
        for secret, key in ((t.secrets.get((namespace, base)), "ca.crt"), (t.secrets.get((namespace, name)), "ca.crt"),
                            (t.secrets.get((namespace, name)), "tls.crt")):
            value = _secret_bytes(secret, key) if secret else None
            if value:
                with open(stem + ".ca", "wb") as f:
                    f.write(value)
                return {"trusted_ca": {"filename": stem + ".ca"}}
        return None
    secret = t.secrets.get((namespace, name))
    if secret is None:
        return None
    crt, key = _secret_bytes(secret, "tls.crt"), _secret_bytes(secret, "tls.key")
    if not crt or not key:
        return None
    for suffix, value in ((".crt", crt), (".key", key)):
        with open(stem + suffix, "wb") as f:
            f.write(value)
    return {"certificate_chain": {"filename": stem + ".crt"}, "private_key": {"filename": stem + ".key"}}


def _resolve_sds(t: Translation, namespace: str, typed: Dict[str, Any]) -> Dict[str, Any]:
    typed = copy.deepcopy(typed)
    common = typed.get("commonTlsContext") or typed.setdefault("common_tls_context", {})
    sds = common.pop("tlsCertificateSdsSecretConfigs", None) or common.pop("tls_certificate_sds_secret_configs", [])
    common["tlsCertificates"] = [c for c in (_sds_files(t, namespace, s["name"], False) for s in sds) if c]
    combined = common.pop("combinedValidationContext", None) or common.pop("combined_validation_context", None)
    if combined:
        ref = combined.get("validationContextSdsSecretConfig") or combined.get("validation_context_sds_secret_config")
        ca = _sds_files(t, namespace, ref["name"], True) if ref else None
        context = dict(combined.get("defaultValidationContext") or combined.get("default_validation_context") or {})
        if ca:
            context.update(ca)
        common["validationContext"] = context
    return typed


def apply(t: Translation, envoy_filters: Sequence[Dict[str, Any]], root: str = "istio-system") -> None:
    ordered = sorted(envoy_filters, key=lambda e: (_meta(e).get("creationTimestamp") or "", _meta(e).get("name", "")))
    for proxy, port, listener in t.served:
        labels = dict(proxy.labels)
        for ef in ordered:
            if not _selects(ef, proxy.namespace, labels, root):
                continue
            for cp in (ef.get("spec") or {}).get("configPatches") or []:
                _apply_patch(t, proxy.namespace, port, listener, cp)


def _apply_patch(t: Translation, namespace: str, port: int, listener: Dict[str, Any], cp: Dict[str, Any]) -> None:
    match, patch = cp.get("match") or {}, cp.get("patch") or {}
    if match.get("context") not in (None, "ANY", "GATEWAY"):
        return
    lmatch = match.get("listener") or {}
    if lmatch.get("portNumber") and lmatch["portNumber"] != port and cp["applyTo"] != "VIRTUAL_HOST":
        return
    if cp["applyTo"] == "VIRTUAL_HOST" and patch.get("operation") == "ADD":
        for _, hcm in _hcms(listener):
            if _route_matches(hcm["route_config"], match):
                hcm["route_config"]["virtual_hosts"].append(copy.deepcopy(patch["value"]))
    elif cp["applyTo"] == "HTTP_FILTER" and patch.get("operation") == "INSERT_BEFORE":
        sub = (((lmatch.get("filterChain") or {}).get("filter") or {}).get("subFilter") or {}).get("name")
        for _, hcm in _hcms(listener):
            filters: List[Dict[str, Any]] = hcm["http_filters"]
            at = next((i for i, f in enumerate(filters) if f["name"] == sub), None)
            if at is not None:
                filters.insert(at, copy.deepcopy(patch["value"]))
    elif cp["applyTo"] == "FILTER_CHAIN" and patch.get("operation") == "MERGE":
        sni = (lmatch.get("filterChain") or {}).get("sni")
        value = patch.get("value") or {}
        socket = value.get("transportSocket") or value.get("transport_socket")
        for chain in listener["filter_chains"]:
            names = (chain.get("filter_chain_match") or {}).get("server_names") or []
            if sni and sni not in names or not socket or "transport_socket" not in chain:
                continue
            if socket.get("name") == chain["transport_socket"].get("name"):
                raise NotImplementedError("a same-name transport socket merge appends lists: not emulated")
            typed = socket.get("typedConfig") or socket.get("typed_config")
            chain["transport_socket"] = {"name": socket["name"], "typed_config": _resolve_sds(t, namespace, typed)}
    else:
        raise NotImplementedError(f"{cp['applyTo']} {patch.get('operation')}")
