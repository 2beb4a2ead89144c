"""Model: frozen records shared by every stage. No I/O, no third-party imports."""
from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple


MANAGED_BY = {"app.kubernetes.io/managed-by": "kubectl-gwdup"}  # the label on what this tool writes


class Level(enum.IntEnum):
    """Finding severities, ordered so `level >= fail_level` reads naturally."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    @property
    def label(self) -> str:
        return self.name.capitalize()

    def lowered(self) -> "Level":
        return Level(max(self.value - 1, Level.INFO.value))


class Outcome(enum.Enum):
    """What Envoy does with a request that arrived on another server's connection."""

    NOT_FOUND = "NotFound"  # the foreign route table has no virtual host for it: 404
    MISROUTED = "Misrouted"  # a wildcard virtual host answers: 200 from the wrong backend


class TlsMode(enum.Enum):
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"
    PASSTHROUGH = "PASSTHROUGH"
    AUTO_PASSTHROUGH = "AUTO_PASSTHROUGH"

    @property
    def terminates(self) -> bool:
        return self not in (TlsMode.PASSTHROUGH, TlsMode.AUTO_PASSTHROUGH)

    @property
    def client_cert(self) -> bool:
        """A browser sends a client certificate on this server's connections."""
        return self in (TlsMode.MUTUAL, TlsMode.ISTIO_MUTUAL)


class Input(enum.Enum):
    """Kinds of knowledge a rule may read; a missing input makes rules skip or degrade."""

    GATEWAYS = "gateways"
    VIRTUAL_SERVICES = "virtualservices"
    CERTIFICATES = "certificates"
    WORKLOADS = "workloads"
    SERVICES = "services"
    ENVOY_FILTERS = "envoyfilters"


class WorkloadVia(enum.Enum):
    """How the pods behind a Gateway selector were found (most to least precise)."""

    PODS = "pods"
    DEPLOYMENTS = "deployments"
    SELECTOR = "selector"


class CertStatus(enum.Enum):
    LOADED = "loaded"
    MISSING = "missing"  # the API answered 404 for the Secret
    FORBIDDEN = "forbidden"  # Secrets could not be read
    NOT_SUPPLIED = "not-supplied"  # manifests did not include it
    INVALID = "invalid"  # no parseable certificate in the Secret
    FILE = "file"  # serverCertificate path on the gateway pod: opaque
    NO_CA = "no-ca"  # MUTUAL: no ca.crt in the Secret and no <name>-cacert Secret


@dataclass(frozen=True, order=True)
class Ref:
    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


@dataclass(frozen=True, order=True)
class ServerRef:
    """One entry of a Gateway's spec.servers."""

    gateway: Ref
    index: int
    port_number: int
    port_name: str

    def to_dict(self) -> Dict[str, Any]:
        return {"gateway": self.gateway.key, "portName": self.port_name,
                "portNumber": self.port_number, "server": self.index}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ServerRef":
        """The inverse of to_dict, for stages that read findings back."""
        ns, _, name = d["gateway"].partition("/")
        return cls(Ref("Gateway", ns, name), d["server"], d["portNumber"], d["portName"])

    def __str__(self) -> str:
        return f"{self.gateway.key}[{self.index}]"


@dataclass(frozen=True)
class Server:
    ref: ServerRef
    hosts: Tuple[str, ...]  # as written in the Gateway
    protocol: str  # upper-case
    tls_mode: Optional[TlsMode]
    credential_names: Tuple[str, ...]
    server_certificate: Optional[str]
    bind: str
    selector: Tuple[Tuple[str, str], ...]
    created: str
    tls: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def has_tls(self) -> bool:
        return self.tls_mode is not None or bool(self.tls)

    @property
    def http_routed(self) -> bool:
        """istiod builds an HTTP route table for it: HTTPS (or HTTP-over-TLS) terminated here."""
        return (self.protocol in ("HTTPS", "HTTP", "HTTP2", "GRPC") and self.tls_mode is not None
                and self.tls_mode.terminates)

    @property
    def sni_chain(self) -> bool:
        """The server gets its own SNI-matched filter chain on the TLS listener."""
        return self.tls_mode is not None and self.protocol in ("HTTPS", "TLS")

    @property
    def route_name(self) -> str:
        gw = self.ref.gateway
        return f"https.{self.ref.port_number}.{self.ref.port_name}.{gw.name}.{gw.namespace}"


@dataclass(frozen=True)
class Certificate:
    """Public facts of a leaf certificate. Never holds key material.

    Only the SANs are needed to analyse; subject and expiry are parsed from the (public) DER
    when something displays them, which keeps large inventories fast.
    """

    fingerprint: str  # sha256 of the DER, lower-case hex
    sans: Tuple[str, ...]  # DNS SANs, lower-case, sorted
    der: bytes = field(default=b"", repr=False, compare=False)

    def _tbs(self) -> Any:
        from asn1crypto import x509  # only when a printer asks

        return x509.Certificate.load(self.der)["tbs_certificate"]

    @property
    def subject(self) -> str:
        return str(self._tbs()["subject"].human_friendly)

    @property
    def not_after(self) -> str:
        return self._tbs()["validity"]["not_after"].native.strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_dict(self) -> Dict[str, Any]:
        return {"sha256": self.fingerprint, "dnsNames": list(self.sans),
                "subject": self.subject, "notAfter": self.not_after}


@dataclass(frozen=True, order=True)
class Credential:
    """Where a server's certificate comes from: a Secret in the workload namespace, or a file."""

    kind: str  # "secret" | "file"
    namespace: str  # workload namespace ("" when unknown)
    name: str

    def __str__(self) -> str:
        if self.kind == "file":
            return f"file:{self.name}"
        return f"secret/{self.name}" if not self.namespace else f"secret {self.namespace}/{self.name}"


@dataclass(frozen=True, order=True)
class Workload:
    namespace: str  # "" when only the selector is known
    name: str
    via: WorkloadVia = field(compare=False)
    labels: Tuple[Tuple[str, str], ...] = field(compare=False, default=())

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, order=True)
class Listener:
    """One Envoy listener of a workload: istiod merges every server on the same port (and bind)."""

    workload: Workload
    port: int  # the port Envoy binds (Service targetPort)
    bind: str = ""

    def __str__(self) -> str:
        return f"{self.workload.key}:{self.port}"


@dataclass(frozen=True)
class RouteSource:
    """Which configuration answers a virtual host; equal sources mean equal routes.

    `routes` is the virtual host's route list as istiod composes it: the routes of every
    VirtualService bound to the host, in creation order, catch-all routes moved last
    (SortVHostRoutes). Empty for a virtual host istiod creates without routes (a TLS-only
    VirtualService): Envoy answers it 404. Two tables answer a host alike when their lists
    are equal, whichever gateway they are on, so `scope` is shown but not compared.
    """

    origin: str  # "VirtualService ns/name" (several joined by " + ") or "server ns/gw[i]" when assumed
    scope: str = field(default="", compare=False)  # the gateway, when a VirtualService routes per gateway
    routes: Tuple[str, ...] = ()

    @property
    def answers(self) -> bool:
        """A request that reaches this virtual host gets a route, not a 404."""
        return bool(self.routes)


@dataclass(frozen=True)
class VirtualHost:
    domain: str  # lower-case, as Envoy matches it
    source: RouteSource


@dataclass(frozen=True)
class Placement:
    """A server as one listener sees it, with istiod's verdict and its certificate."""

    server: Server
    listener: Listener
    dropped_for: Optional[Tuple[ServerRef, str]] = None  # earlier server and the duplicate host
    credentials: Tuple[Credential, ...] = ()
    certificates: Tuple[Certificate, ...] = ()
    cert_status: Optional[CertStatus] = None
    coverage: Tuple[str, ...] = ()  # SAN patterns a browser would accept on its connections
    coverage_inferred: bool = False  # True: contents not inspected, coverage from server hosts
    vhosts: Tuple[VirtualHost, ...] = ()
    chained: bool = True  # False: a PASSTHROUGH server no TLS route matches gets no filter chain
    sni: Tuple[str, ...] = ()  # a PASSTHROUGH chain's server names: its TLS routes' sniHosts

    @functools.cached_property
    def _sans(self) -> "frozenset[str]":
        return frozenset(s.lower() for s in self.coverage)

    def covers(self, name: str) -> bool:
        """The certificate this server presents is valid for `name` (RFC 6125 as browsers apply
        it: the name itself, or `*.` and its parent for a one-label child), in one set lookup
        or two rather than a scan of the SANs."""
        name = name.lower()
        if name in self._sans:
            return True
        head, dot, rest = name.partition(".")
        return bool(head) and bool(dot) and head != "*" and f"*.{rest}" in self._sans

    @property
    def sni_hosts(self) -> Tuple[str, ...]:
        """The names Envoy matches this chain on: the server's hosts, or for a PASSTHROUGH
        server the sniHosts of the TLS routes that made its chain."""
        return self.sni or self.server.hosts

    @property
    def id(self) -> Tuple[Listener, ServerRef]:
        return (self.listener, self.server.ref)


@dataclass(frozen=True)
class VirtualService:
    ref: Ref
    hosts: Tuple[str, ...]
    gateways: Tuple[str, ...]  # resolved "ns/name" (or "mesh")
    route_gateways: Tuple[str, ...]  # gateways named by http[].match[].gateways
    created: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Mitigation:
    """A 421 EnvoyFilter kubectl-gwdup applied, as the analysis needs to see it."""

    ref: Ref
    selector: Tuple[Tuple[str, str], ...]
    # vhost: route name -> (domain, status of its virtual host: 421, or 404 for one without routes)
    route_domains: Mapping[str, Tuple[Tuple[str, int], ...]] = field(default_factory=dict, hash=False)
    lua: Mapping[int, str] = field(default_factory=dict, hash=False)  # listener port -> chain digest
    http1: Tuple[Tuple[int, str], ...] = ()  # (bound port, SNI) of chains offering only HTTP/1.1

    def applies_to(self, workload: "Workload", root_namespace: str = "istio-system") -> bool:
        labels = dict(workload.labels)
        in_scope = self.ref.namespace in (workload.namespace, root_namespace) or not workload.namespace
        return in_scope and all(labels.get(k) == v for k, v in self.selector)


@dataclass(frozen=True)
class Inventory:
    """Normalized view of everything the analysis needs. Built once, never mutated."""

    servers: Tuple[Server, ...]
    placements: Tuple[Placement, ...]
    virtual_services: Tuple[VirtualService, ...]
    workloads: Tuple[Workload, ...]
    available: frozenset
    notes: Tuple[str, ...] = ()
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    mitigations: Tuple[Mitigation, ...] = ()


@dataclass(frozen=True)
class FindingType:
    """One catalogue entry; the only place a code, level and message template exist."""

    code: str
    name: str
    level: Level
    summary: str
    template: str

    def finding(self, resource: Ref, level: Optional[Level] = None, **params: Any) -> "Finding":
        detail = params.pop("detail", None) or {}
        return Finding(type=self, resource=resource, level=self.level if level is None else level,
                       message=self.template.format(**params), detail=detail)


@dataclass(frozen=True)
class Finding:
    type: FindingType
    resource: Ref
    level: Level
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def code(self) -> str:
        return self.type.code

    def sort_key(self) -> Tuple[Any, ...]:
        return (self.code, self.resource, self.message)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "code": self.code,
            "type": self.type.name,
            "level": self.level.label,
            "resource": str(self.resource),
            "message": self.message,
            "docs": f"README.md#{self.code.lower()}",
        }
        out.update(self.detail)
        return out


@dataclass(frozen=True)
class SkippedRule:
    name: str
    missing: Tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """What `check` produces: findings plus what could not be looked at."""

    findings: Tuple[Finding, ...]
    skipped: Tuple[SkippedRule, ...] = ()
    notes: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        return {
            "apiVersion": "gwdup.kubectl.io/v1alpha1",
            "kind": "CheckReport",
            "findings": [f.to_dict() for f in self.findings],
            "skippedRules": [{"name": s.name, "missingInputs": list(s.missing)} for s in self.skipped],
            "notes": list(self.notes),
        }
