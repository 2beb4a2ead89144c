"""Typed errors and exit statuses. Only cli/main.py turns these into text and a status."""
from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit statuses; documented in --help and the README."""

    OK = 0
    FAILURE = 1  # the command itself failed (server error, forbidden, unreadable input)
    USAGE = 2  # bad flag or combination (argparse uses 2 as well)
    FINDINGS = 3  # problems found: a result, not a failure
    APPLY_ROLLED_BACK = 4
    ROLLBACK_FAILED = 5
    INTERNAL = 70  # sysexits EX_SOFTWARE: a bug in kubectl-gwdup
    INTERRUPTED = 130


class GwdupError(Exception):
    """Base of every error a user may see; carries its exit status."""

    status = ExitStatus.FAILURE

    def render(self) -> str:
        return f"error: {self}"


class UsageError(GwdupError):
    status = ExitStatus.USAGE


class InputError(GwdupError):
    """Unreadable manifest, kubeconfig or flag value pointing at a file."""


class ConfigError(GwdupError):
    """kubeconfig or client configuration problem (no context, unreachable server)."""


class ApiError(GwdupError):
    """An error answered by the Kubernetes API server, client-type free.

    reason is the Status reason (Forbidden, NotFound, Conflict, ...), code the HTTP status.
    """

    def __init__(self, reason: str, code: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason or "Unknown"
        self.code = code
        self.message = message

    def render(self) -> str:
        return f"Error from server ({self.reason}): {self.message}"


class PlanError(GwdupError):
    """A plan that cannot be made within the limits (nothing was written)."""


class ApplyError(GwdupError):
    status = ExitStatus.APPLY_ROLLED_BACK


class RollbackError(GwdupError):
    status = ExitStatus.ROLLBACK_FAILED
