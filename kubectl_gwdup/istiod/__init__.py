"""The model of istiod: what it builds for a gateway proxy from the objects it reads.

One module per istiod function it mirrors, each citing its source in istio/istio and the Istio
releases it holds for, so that a new istiod release is a reviewable diff of this package:

- `route`: pilot/pkg/networking/core/route/route.go (the Envoy routes of a VirtualService's
  `http` for one gateway server, their matches and the cluster each one sends to).

Pure: no I/O, and nothing here imports the cluster client.
"""
from __future__ import annotations
