"""Which Istio Gateways istiod keeps off the pods of a managed Gateway API Gateway.

Mirrors pilot/pkg/model/push_context.go filterStrictGatewayMerging, called from
PushContext.mergeGateways behind PILOT_ENABLE_STRICT_GATEWAY_MERGING (on by default), Istio 1.31
on; earlier releases merge every Gateway that selects a pod (controlplane.py decides): on the
pods of a managed Gateway API Gateway (istiod's own deployment), an Istio Gateway is merged
only when a managed Gateway API Gateway of its own namespace is there too; every Gateway API
Gateway is kept. Pods with no managed Gateway API Gateway are not filtered.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, Mapping, Sequence, Set

from ..model import Server, Workload


def held_off(servers: Sequence[Server], selected_by: Mapping[int, Sequence[Workload]]) -> Dict[str, Set[str]]:
    """workload key -> the Istio Gateways (labels) held off it; `selected_by` maps id(server) to
    the workloads its Gateway selects."""
    managed_ns: Dict[str, Set[str]] = defaultdict(set)
    for server in servers:
        if server.managed:
            for w in selected_by[id(server)]:
                managed_ns[w.key].add(server.ref.gateway.namespace)
    out: Dict[str, Set[str]] = defaultdict(set)
    for server in servers:
        if server.ref.origin is not None:
            continue
        for w in selected_by[id(server)]:
            if w.key in managed_ns and server.ref.gateway.namespace not in managed_ns[w.key]:
                out[w.key].add(server.ref.label)
    return out
