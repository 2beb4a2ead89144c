"""Plans: pure functions from an inventory and its findings to the objects a fix writes."""
from __future__ import annotations
