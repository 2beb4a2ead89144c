"""Commands: Options.from_args -> validate -> run (called so by cli/main.py). Wiring only."""
from __future__ import annotations
