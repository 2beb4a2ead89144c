"""Execution: the only code that writes to a cluster."""
from __future__ import annotations
