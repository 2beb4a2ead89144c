"""Sources: where objects come from (manifests or a cluster), as plain dicts."""
from __future__ import annotations
