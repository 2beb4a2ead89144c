"""Rendering: model objects -> text on a stream. Knows nothing of how they were made."""
from __future__ import annotations
