"""Command line: the declarative spec, shared flags, and the one error boundary."""
