"""Env: the process's streams, environment and terminal facts, replaceable in tests."""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Mapping, Optional, TextIO


class Env:
    """A plain class, not a dataclass: it is on the --help path (see cli/spec.py)."""

    def __init__(self, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None,
                 stdin: Optional[TextIO] = None, environ: Optional[Mapping[str, str]] = None,
                 prog: str = "kubectl gwdup") -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.stdin = stdin or sys.stdin
        self.environ = os.environ if environ is None else environ
        self.prog = prog

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


class Filtered:
    """A stream that passes each write through `rewrite` (None drops it): a command's warnings
    said once though the analysis runs again and again (check --watch), each prefixed with
    the cluster it is about (check across contexts), or none at all (serve)."""

    def __init__(self, stream: TextIO, rewrite: "Callable[[str], Optional[str]]") -> None:
        self.stream = stream
        self.rewrite = rewrite

    def write(self, text: str) -> int:
        out = self.rewrite(text)
        if out:
            self.stream.write(out)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def with_stderr(env: Env, rewrite: "Callable[[str], Optional[str]]") -> Env:
    """The same Env, its stderr filtered."""
    return Env(stdout=env.stdout, stderr=Filtered(env.stderr, rewrite), stdin=env.stdin,  # type: ignore[arg-type]
               environ=env.environ, prog=env.prog)


def once() -> "Callable[[str], Optional[str]]":
    seen: set = set()

    def rewrite(text: str) -> Optional[str]:
        if text in seen:
            return None
        seen.add(text)
        return text
    return rewrite


class PipeSafe:
    """stdout for `kubectl gwdup ... | head`: once the reader has gone, writes are dropped and
    the command finishes, so it exits with its own status (3 when it found hazards), as kubectl
    does, instead of a broken pipe's."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.broken = True
        try:  # the interpreter flushes stdout again at exit: point it at /dev/null first
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass

    def isatty(self) -> bool:
        return _isatty(self.stream)

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


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
