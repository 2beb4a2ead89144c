"""`serve`: the watch engine behind an HTTP server (/metrics, /healthz, /readyz) and optional writes."""
from __future__ import annotations
