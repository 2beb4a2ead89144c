"""Env: the process's streams, environment and terminal facts, replaceable in tests."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Mapping, TextIO


@dataclass
class Env:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    prog: str = "kubectl gwdup"

    @property
    def stdout_tty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_tty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def color(self) -> bool:
        """Colour only on a terminal, never with NO_COLOR set (no-color.org)."""
        return self.stdout_tty and "NO_COLOR" not in self.environ and self.environ.get("TERM") != "dumb"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def program_name(argv0: str) -> str:
    """`kubectl gwdup` when kubectl runs us as its plugin (argv[0] is kubectl-gwdup)."""
    base = os.path.basename(argv0 or "")
    if base.startswith("kubectl-gwdup") or base in ("__main__.py", "-m", ""):
        return "kubectl gwdup"
    return base
