"""kubectl-gwdup: find and fix HTTP/2 connection-coalescing outages of Istio ingress gateways."""
from __future__ import annotations

__version__ = "0.1.0"
HOMEPAGE = "https://example.invalid/kubectl-gwdup"  # the krew manifest's homepage too (tests/test_packaging.py)
