"""Test clusters: the API emulator over HTTPS, or a real cluster from GWDUP_TEST_KUBECONFIG.

Scenario tests isolate themselves: every namespace they touch gets a unique prefix and every
gateway selector value a unique suffix, so they can run against a shared real cluster and
delete exactly what they created.
"""
from __future__ import annotations

import copy
import json
import os
import uuid
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml

from emulator.server import Emulator

PLURALS = {"Namespace": "namespaces", "Pod": "pods", "Service": "services", "Secret": "secrets",
           "Deployment": "deployments", "Gateway": "gateways", "VirtualService": "virtualservices",
           "EnvoyFilter": "envoyfilters", "HTTPRoute": "httproutes", "GRPCRoute": "grpcroutes", "TLSRoute": "tlsroutes",
           "ReferenceGrant": "referencegrants", "ListenerSet": "listenersets", "GatewayClass": "gatewayclasses"}
GATEWAY_API = "gateway.networking.k8s.io/"
REAL = os.environ.get("GWDUP_TEST_KUBECONFIG", "")


def write_kubeconfig(path: str, server: str, ca_path: str, token: str, context: str = "emu",
                     namespace: str = "default", client: Any = None) -> str:
    """A kubeconfig for `server`; with `client` (a certfactory Leaf) the user is a client
    certificate embedded as data, as in kubeadm's admin.conf, instead of the token."""
    import base64

    user: Dict[str, str] = {"token": token}
    if client is not None:
        user = {"client-certificate-data": base64.b64encode(client.cert_pem).decode(),
                "client-key-data": base64.b64encode(client.key_pem).decode()}
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
           "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority": ca_path}}],
           "users": [{"name": context, "user": user}],
           "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                       "namespace": namespace}}]}
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    return path


def resource_path(obj: Dict[str, Any], name: bool = False) -> str:
    api = obj["apiVersion"]
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    plural = PLURALS[obj["kind"]]
    ns = (obj.get("metadata") or {}).get("namespace")
    path = f"{base}/namespaces/{ns}/{plural}" if ns and obj["kind"] != "Namespace" else f"{base}/{plural}"
    return path + (f"/{obj['metadata']['name']}" if name else "")


class TestCluster:
    def __init__(self, kubeconfig: str, emulator: Optional[Emulator] = None) -> None:
        self.kubeconfig = kubeconfig
        self.emulator = emulator
        self.prefix = "gwdup-" + uuid.uuid4().hex[:6]
        self.namespaces: List[str] = []
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=kubeconfig)

    @property
    def env(self) -> Dict[str, str]:
        # DNS labels only where a test asks for them, with its own nameserver: never public DNS
        return {"KUBECONFIG": self.kubeconfig, "HOME": "/nonexistent", "GWDUP_RESOLVE": "false"}

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Dict[str, Any]]:
        from kubernetes.client.rest import ApiException

        try:
            resp = self.api.call_api(path, method, body=body, header_params={"Content-Type": "application/json",
                                                                             "Accept": "application/json"},
                                     auth_settings=["BearerToken"], _preload_content=False,
                                     _return_http_data_only=True)
            return resp.status, json.loads(resp.data or b"{}")
        except ApiException as exc:
            return exc.status, json.loads(exc.body or b"{}")

    def isolate(self, docs: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        out = []
        for doc in docs:
            doc = copy.deepcopy(doc)
            m = doc.setdefault("metadata", {})
            if doc["kind"] != "Namespace":
                m["namespace"] = self.ns(m.get("namespace", "default"))
            m.pop("creationTimestamp", None)
            for labels in (m.get("labels"), (doc.get("spec") or {}).get("selector"),
                           (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")):
                if isinstance(labels, dict) and "istio" in labels:
                    labels["istio"] = f"{labels['istio']}-{self.prefix}"
            spec = doc.get("spec") or {}
            # a real API server wants runnable pod specs, and collects pods whose owner is gone
            pause = [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}]
            if doc["kind"] == "Pod":  # named as a gateway's container, whose log is the access log
                pause = [{"name": "istio-proxy", "image": "registry.k8s.io/pause:3.9"}]
                m.pop("ownerReferences", None)
                doc.setdefault("spec", {}).setdefault("containers", pause)
            if doc["kind"] == "Deployment":
                doc["spec"]["template"].setdefault("spec", {}).setdefault("containers", pause)
            if doc["kind"] == "Gateway":
                for s in spec.get("servers") or []:
                    s["hosts"] = [self._host(h) for h in s.get("hosts") or []]
            if doc["apiVersion"].startswith(GATEWAY_API):
                self._isolate_gateway_api(doc)
            if doc["kind"] == "VirtualService" and spec.get("gateways"):
                spec["gateways"] = [f"{self.ns(g.split('/')[0])}/{g.split('/')[1]}" if "/" in g else g
                                    for g in spec["gateways"]]
            out.append(doc)
        return out

    def _isolate_gateway_api(self, doc: Dict[str, Any]) -> None:
        """Namespaces named inside Gateway API specs get the prefix too."""
        spec = doc.get("spec") or {}
        refs = list(spec.get("parentRefs") or []) + ([spec["parentRef"]] if "parentRef" in spec else [])
        refs += list(spec.get("from") or [])
        for listener in spec.get("listeners") or []:
            refs += list((listener.get("tls") or {}).get("certificateRefs") or [])
        for ref in refs:
            if ref.get("namespace"):
                ref["namespace"] = self.ns(ref["namespace"])

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def _host(self, h: str) -> str:
        if "/" in h and h.split("/")[0] not in (".", "*"):
            ns, host = h.split("/", 1)
            return f"{self.ns(ns)}/{host}"
        return h

    def strip(self, text: str) -> str:
        return text.replace(self.prefix + "-", "")

    def apply(self, docs: Iterable[Dict[str, Any]]) -> None:
        for doc in docs:
            ns = doc["metadata"].get("namespace")
            if ns and ns not in self.namespaces:
                code, body = self.call("POST", "/api/v1/namespaces",
                                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                assert code in (201, 409), body
                self.namespaces.append(ns)
            code, body = self.call("POST", resource_path(doc), doc)
            if code == 404 and doc["apiVersion"].startswith(GATEWAY_API):
                import pytest  # a real cluster may lack the experimental Gateway API kinds

                pytest.skip(f"{doc['kind']} {doc['apiVersion']} is not served by this cluster")
            assert code == 201, body

    def cleanup(self, wait: float = 120.0) -> None:
        """Delete what the test made, and wait until it is gone: a real API server deletes a
        namespace's objects after answering (the namespace is Terminating meanwhile), and the
        next test must not read them."""
        import time

        for ns in self.namespaces:
            self.call("DELETE", f"/api/v1/namespaces/{ns}")
        deadline = time.monotonic() + wait
        for ns in self.namespaces:
            while time.monotonic() < deadline and self.call("GET", f"/api/v1/namespaces/{ns}")[0] != 404:
                time.sleep(0.5)
        self.namespaces.clear()
