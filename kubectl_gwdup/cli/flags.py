"""Flags shared by every command; the cluster client is built on first use only."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, List, Mapping, Optional, TextIO

from ..errors import ConfigError, UsageError
from ..render.printers import OutputFormat, ReportPrinter, parse_format

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s)?)+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)?")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "": 1.0}


def parse_duration(value: str, flag: str = "--request-timeout") -> Optional[float]:
    """kubectl's durations: `0` (none), `30`, `30s`, `1m30s`, `500ms` -> seconds. The error names
    the flag the value came from."""
    text = (value or "0").strip()
    if not _DURATION.match(text):
        raise UsageError(f'invalid {flag} "{value}": use a duration such as 30s or 1m')
    total = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    return total or None


@dataclass
class KubeFlags:
    kubeconfig: Optional[str] = None
    context: Optional[str] = None
    contexts: List[str] = field(default_factory=list)  # every --context given (check reads them all)
    fleet: bool = False  # the command reads several clusters (check); others take one --context
    cluster_name: Optional[str] = None
    user: Optional[str] = None
    namespace: Optional[str] = None
    all_namespaces: bool = False
    request_timeout: str = "0"
    as_user: Optional[str] = None
    as_group: List[str] = field(default_factory=list)
    chunk_size: int = 500
    verbosity: int = 0
    attempts: Optional[int] = None  # tries of one request; None: the client's default
    environ: Mapping[str, str] = field(default_factory=dict)
    log: Optional[TextIO] = None

    @classmethod
    def from_args(cls, args: Any, environ: Mapping[str, str], log: TextIO) -> "KubeFlags":
        given = args.context if isinstance(args.context, list) else ([args.context] if args.context else [])
        return cls(kubeconfig=args.kubeconfig, context=given[-1] if given else None, contexts=list(given),
                   cluster_name=args.cluster,
                   user=args.user, namespace=args.namespace, all_namespaces=args.all_namespaces,
                   request_timeout=args.request_timeout, as_user=args.as_user,
                   as_group=list(args.as_group or []), chunk_size=args.chunk_size,
                   verbosity=args.verbosity, environ=environ, log=log)

    def validate(self) -> None:
        parse_duration(self.request_timeout)
        if len(set(self.contexts)) > 1 and not self.fleet:
            raise UsageError(f"--context is given {len(self.contexts)} times: only check reads several clusters")
        if self.chunk_size < 0:
            raise UsageError("--chunk-size must be 0 or more")
        if len(self.as_group) > 1:
            raise UsageError("only one --as-group is supported")
        if self.as_group and not self.as_user:
            raise UsageError("requesting groups without a user (--as) is not allowed")

    @property
    def report_namespace(self) -> Optional[str]:
        """The namespace findings are restricted to; None for all."""
        return None if self.all_namespaces else self.namespace

    @cached_property
    def selection(self) -> Any:
        """The kubeconfig selection, or None for in-cluster credentials."""
        from ..sources import kubeconfig

        paths, in_cluster_ok = kubeconfig.config_paths(self.kubeconfig, self.environ)
        if not paths:
            if in_cluster_ok and kubeconfig.in_cluster_possible(self.environ):
                return None
            where = f"KUBECONFIG={self.environ.get('KUBECONFIG')}" if self.environ.get("KUBECONFIG") \
                else "~/.kube/config"
            raise ConfigError(f"no kubeconfig found ({where}) and not running in a cluster")
        merged = kubeconfig.load_merged(paths)
        return kubeconfig.select(merged, context=self.context, cluster=self.cluster_name,
                                 user=self.user, namespace=self.namespace)

    @cached_property
    def cluster(self) -> Any:
        from ..sources.cluster import KubeCluster

        return KubeCluster(self.selection, request_timeout=parse_duration(self.request_timeout),
                           impersonate=self.as_user, impersonate_groups=self.as_group,
                           verbosity=self.verbosity, log=self.log, environ=self.environ, attempts=self.attempts)

    def close(self) -> None:
        """Close the cluster's connections, if a cluster was made (cached_property keeps it in
        __dict__): the commands end with nothing left for interpreter shutdown to free."""
        cluster = self.__dict__.get("cluster")
        if cluster is not None:
            cluster.close()


@dataclass
class OutputFlags:
    output: str = ""
    no_headers: bool = False

    @classmethod
    def from_args(cls, args: Any) -> "OutputFlags":
        return cls(output=args.output or "", no_headers=args.no_headers)

    def validate(self) -> OutputFormat:
        return parse_format(self.output)

    def printer(self, color: bool) -> ReportPrinter:
        return ReportPrinter(self.validate(), self.no_headers, color)
