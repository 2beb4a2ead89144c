"""The watch engine: kinds kept current by watches, the same analysis run again on change."""
from __future__ import annotations
