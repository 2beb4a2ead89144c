"""The model of istiod: what it builds for a gateway proxy from the objects it reads.

One module per istiod function it mirrors, each citing its source in istio/istio and the Istio
releases it holds for, so that a new istiod release is a reviewable diff of this package
(kubectl_gwdup/controlplane.py says which release a mesh runs; the rules that differ by
release take it from there):

- `merge_gateways`: pilot/pkg/model/gateway.go mergeGateways, CheckDuplicates (the order of
  Gateways, and TLS servers dropped for a repeated host).
- `strict_merging`: pilot/pkg/model/push_context.go filterStrictGatewayMerging (1.31 on).
- `ports`: pilot/pkg/model/gateway.go resolvePorts (the port a server binds).
- `credentials`: pilot/pkg/credentials/kube/secrets.go and model/credentials (the Secrets and
  keys a terminating server reads).
- `route_config`: pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig (the
  virtual hosts of a server's route table).
- `route`: pilot/pkg/networking/core/route/route.go (the Envoy routes of a VirtualService's
  `http` for one gateway server, their matches and the cluster each one sends to).
- `tls_routes`: gateway.go buildGatewayNetworkFiltersFromTLSRoutes (PASSTHROUGH chains).
- `l4_match`: gateway.go pickMatchingGatewayHosts and l4SingleMatch (which VirtualServices and
  matches the chains from `tls` and `tcp` routes read).
- `tcp_routes`: gateway.go buildGatewayNetworkFiltersFromTCPRoutes (whether a TLS server
  terminated then TCP gets a chain; TLSRoutes count from 1.30).
- `route_conversion`: pilot/pkg/config/kube/gateway/conversion.go convertHTTPRoute,
  convertGRPCRoute (a Gateway API match as an Istio match).
- `route_merging`: pilot/pkg/config/kube/gateway route_collections.go mergeHTTPRoutes and
  conversion.go sortHTTPRoutes (one table per listener and hostname, in precedence order;
  HTTPRoutes and GRPCRoutes merged apart in 1.26 to 1.29).

The rest of the Gateway API controller (listeners, namespaces, ReferenceGrants, parentRefs) is
kubectl_gwdup/gatewayapi.py, which cites the functions it follows.

Pure: no I/O, and nothing here imports the cluster client.
"""
from __future__ import annotations
