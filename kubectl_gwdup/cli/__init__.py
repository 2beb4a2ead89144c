"""Command line: the declarative spec, shared flags, and the one error boundary."""
from __future__ import annotations
