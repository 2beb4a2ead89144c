"""Commands: Options -> complete -> validate -> run. Wiring only; the stages do the work."""
from __future__ import annotations
