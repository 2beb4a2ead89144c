"""Which istiod the mesh runs, for the rules that differ by version. Pure: the caller reads.

Read from istiod's Deployments: the image tag of its container (`proxyv2`/`pilot:1.31.1`, a
distroless suffix or a digest after it), else the revision label (`istio.io/rev: 1-31-1`), and
the environment variables that switch a versioned rule off (`PILOT_ENABLE_STRICT_GATEWAY_MERGING`).
With several revisions the oldest decides (what it would do to a Gateway is the riskier
answer to give). `--istio-version` wins over what is read; without either, the newest release
modelled is assumed and said so.

The rules that differ by version (docs/check.md, "Istio versions"):
- strict gateway merging, 1.31 on (PILOT_ENABLE_STRICT_GATEWAY_MERGING, default true): an Istio
  Gateway of a namespace without a managed Gateway API Gateway is not merged onto that managed
  Gateway's pods (pilot/pkg/model/push_context.go, filterStrictGatewayMerging; the 1.31 release notes).
- HTTPRoutes and GRPCRoutes of one listener and hostname merged into one VirtualService, in
  1.24-1.25 and 1.30 on; merged apart in 1.26 (1.26.2) to 1.29, where one namespace's GRPCRoutes
  lose to its HTTPRoutes (kubectl_gwdup/istiod/route_merging.py).
- a TLSRoute gives a Gateway API listener of protocol TLS in Terminate mode its filter chain,
  1.30 on; before, only a VirtualService's `tcp` route does (kubectl_gwdup/istiod/tcp_routes.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

Version = Tuple[int, int]
OLDEST_MODELLED: Version = (1, 24)
NEWEST_MODELLED: Version = (1, 31)
STRICT_GATEWAY_MERGING_SINCE: Version = (1, 31)
STRICT_MERGING_ENV = "PILOT_ENABLE_STRICT_GATEWAY_MERGING"
TLS_ROUTES_TERMINATED_SINCE: Version = (1, 30)  # a TLSRoute behind a TLS Terminate listener (istiod/tcp_routes.py)
GRPC_ROUTES_SPLIT: Tuple[Version, Version] = ((1, 26), (1, 29))  # merged apart from HTTPRoutes, inclusive


def parse_version(text: str) -> Optional[Version]:
    """`1.24.2`, `1.24.2-distroless`, `1-24-2` (revision) -> (1, 24)."""
    m = re.search(r"(\d+)[.-](\d+)(?:[.-]\d+)?", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class ControlPlane:
    version: Optional[Version]  # None: not read and not given
    source: str  # where it was read, or why not
    strict_merging_env: Optional[bool] = None  # PILOT_ENABLE_STRICT_GATEWAY_MERGING as set on istiod

    @property
    def assumed(self) -> Version:
        """The version the rules follow: the one read or given, else the newest modelled."""
        return self.version or NEWEST_MODELLED

    @property
    def strict_gateway_merging(self) -> bool:
        if self.assumed < STRICT_GATEWAY_MERGING_SINCE:
            return False
        return self.strict_merging_env is not False

    @property
    def tls_routes_terminated(self) -> bool:
        return self.assumed >= TLS_ROUTES_TERMINATED_SINCE

    @property
    def grpc_routes_joined(self) -> bool:
        return not GRPC_ROUTES_SPLIT[0] <= self.assumed <= GRPC_ROUTES_SPLIT[1]

    def describe(self) -> str:
        if self.version is None:
            head = f"Istio {NEWEST_MODELLED[0]}.{NEWEST_MODELLED[1]} assumed, the newest modelled ({self.source}; " \
                   "give --istio-version)"
        else:
            head = f"Istio {self.version[0]}.{self.version[1]} ({self.source})"
        if self.strict_merging_env is False and self.assumed >= STRICT_GATEWAY_MERGING_SINCE:
            head += f"; {STRICT_MERGING_ENV}=false"
        return "control plane: " + head


def from_flag(text: str) -> ControlPlane:
    return ControlPlane(parse_version(text), "--istio-version")


def from_deployments(deployments: Iterable[Dict[str, Any]]) -> ControlPlane:
    """istiod's version and switches from the Deployments listed (any, istiod's among them)."""
    found: List[Tuple[Version, str, Optional[bool]]] = []
    for d in deployments:
        meta = d.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get("app") != "istiod" and meta.get("name") != "istiod":
            continue
        ref = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        containers = (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        strict: Optional[bool] = None
        version: Optional[Version] = None
        source = ""
        for c in containers:
            for e in c.get("env") or []:
                if isinstance(e, dict) and e.get("name") == STRICT_MERGING_ENV and "value" in e:
                    strict = str(e["value"]).strip().lower() not in ("false", "0", "f")
            image = str(c.get("image", "")).split("@", 1)[0]
            v = parse_version(image.rpartition(":")[2]) if ":" in image.rpartition("/")[2] else None
            if v and version is None:
                version, source = v, f"image tag of Deployment {ref}"
        rev = labels.get("istio.io/rev") or labels.get("operator.istio.io/version")
        if version is None and rev and parse_version(rev):
            version, source = parse_version(rev), f"revision label of Deployment {ref}"
        if version is not None:
            found.append((version, source, strict))
    if not found:
        return ControlPlane(None, "no istiod Deployment found")
    version, source, strict = min(found, key=lambda f: f[0])
    return ControlPlane(version, source, strict)
