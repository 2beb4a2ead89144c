"""Analysis: pure rules over an Inventory. No I/O, no globals."""
from __future__ import annotations
