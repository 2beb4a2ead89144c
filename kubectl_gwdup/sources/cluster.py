"""Cluster access: the ONLY module that imports `kubernetes`, and only inside functions.

Everything crossing this boundary is a plain dict or an ApiError/ConfigError, so the rest of
the program (and its tests) never meets a client type, and `--help` or `-f` runs never pay
for importing the client. Requests go through ApiClient.call_api with raw JSON bodies: the
client's model deserialization is slow and unnecessary for what we read.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, TextIO, Tuple
from urllib.parse import urlencode, urlparse

from ..errors import ApiError, ConfigError, GwdupError
from . import incluster, kubeconfig

METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
# a watch's events are single objects: client-go's metadata client asks for PartialObjectMetadata
# (`client-go/metadata/metadata.go` Watch)
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
WATCH_SLACK = 30.0  # a watch's read bound beyond its timeoutSeconds: the server ends it first
MAX_EVENT_BYTES = 16 * 1024 * 1024  # one watch event; etcd's largest object is ~1.5 MiB

# Bounds on every request, as kubectl's client (client-go) sets them: a 30 s dial
# (`client-go/transport/cache.go`, net.Dialer Timeout) and a 10 s TLS handshake
# (`apimachinery/pkg/util/net/http.go` SetTransportDefaults). kubectl reads an answer without
# a bound unless --request-timeout is given; we do not: a server silent for IDLE_TIMEOUT in
# the middle of an answer is taken for dead, so no command ever waits forever.
DIAL_TIMEOUT = 30.0
TLS_HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
HANDSHAKE_TIMED_OUT = "TLS handshake timeout"
ATTEMPTS = 2  # a request is tried at most twice: a second time only when it cannot have been served


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `request` is --request-timeout (None: not given): it bounds each phase of a
    request (dial, handshake, every read) and the whole answer of a request() call."""

    request: Optional[float] = None

    @property
    def dial(self) -> float:
        return min(DIAL_TIMEOUT, self.request or DIAL_TIMEOUT)

    @property
    def handshake(self) -> float:
        return min(TLS_HANDSHAKE_TIMEOUT, self.request or TLS_HANDSHAKE_TIMEOUT)

    @property
    def idle(self) -> float:
        return self.request or IDLE_TIMEOUT

    def pair(self) -> Tuple[float, float]:
        """(connect, read), the one form of a timeout the kubernetes client passes on to
        urllib3 (a float it drops silently: no timeout at all)."""
        return (self.dial, self.idle)


class KubeCluster:
    """ClusterAccess over HTTPS with the user's kubeconfig (or in-cluster credentials)."""

    def __init__(self, selection: Optional[kubeconfig.Selection], *, request_timeout: Optional[float] = None,
                 impersonate: Optional[str] = None, impersonate_groups: Sequence[str] = (),
                 verbosity: int = 0, log: TextIO = sys.stderr,
                 environ: Optional[Mapping[str, str]] = None, attempts: Optional[int] = None) -> None:
        self.selection = selection
        self.environ = os.environ if environ is None else environ
        self.timeouts = Timeouts(request_timeout)
        self.attempts = attempts or ATTEMPTS
        self.impersonate = impersonate
        self.impersonate_groups = tuple(impersonate_groups)
        self.verbosity = verbosity
        self.log = log
        self.requests = 0  # counted for benchmarks and -v output
        self.token: Optional[incluster.TokenFile] = None  # in a pod: the service account's token
        self._client: Any = None

    @property
    def namespace(self) -> str:
        return self.selection.namespace if self.selection else kubeconfig.in_cluster_namespace()

    @property
    def server(self) -> str:
        if self._client is not None:
            return str(self._client.configuration.host)
        return self.selection.server if self.selection else "in-cluster"

    def _api(self) -> Any:
        if self._client is not None:
            return self._client
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        cfg = client.Configuration()
        if self.selection is not None:
            _check_selection(self.selection.config, self.environ)
        try:
            if self.selection is None:
                found = incluster.in_cluster(self.environ, kubeconfig.SERVICE_ACCOUNT_DIR)
                token = incluster.TokenFile(found.token_file)
                cfg.host = found.host
                cfg.ssl_ca_cert = found.ca_file
                cfg.api_key = {"authorization": token.current()}
                cfg.api_key_prefix = {"authorization": "Bearer"}

                def refresh(c: Any) -> None:  # the client calls it before every request
                    c.api_key["authorization"] = token.current()
                cfg.refresh_api_key_hook = refresh
                self.token = token
            else:
                loader = config.kube_config.KubeConfigLoader(
                    config_dict=json.loads(json.dumps(self.selection.config)),
                    active_context="gwdup", config_base_path="")
                loader.load_and_set(cfg)
                proxy = self.selection.config["clusters"][0]["cluster"].get("proxy-url")
                cfg.proxy = proxy or _env_proxy(cfg.host)
        except ConfigException as exc:
            raise ConfigError(f"invalid kubeconfig: {exc}") from None
        except (OSError, ValueError) as exc:  # ValueError: binascii.Error on bad base64 data
            raise ConfigError(f"invalid kubeconfig: {exc}") from None
        cfg.retries = _retries(self.attempts)
        api = client.ApiClient(cfg)
        _own_tls_per_connection(api, self.timeouts)
        api.user_agent = "kubectl-gwdup"
        if self.impersonate:
            api.set_default_header("Impersonate-User", self.impersonate)
        if self.impersonate_groups:
            # the generated client keeps headers in a dict; a comma-joined value would be one
            # group, so only a single group can be sent faithfully
            api.set_default_header("Impersonate-Group", self.impersonate_groups[0])
        self._client = api
        return api

    def close(self) -> None:
        """Close every pooled connection now, while the interpreter is whole: sockets and TLS
        objects left to the collector at exit are freed in no set order, OpenSSL's among them."""
        if self._client is not None:
            self._client.rest_client.pool_manager.clear()
            self._client.close()
            self._client = None

    def _send(self, method: str, path: str, query: Optional[Mapping[str, Any]], headers: Dict[str, str],
              body: Any = None, read_timeout: Optional[float] = None) -> Any:
        """One request, its answer's head read; the body is left on the wire for the caller.
        Every failure below HTTP becomes one ConfigError in kubectl's words."""
        from kubernetes.client.rest import ApiException
        import urllib3

        api = self._api()
        params = [(k, v) for k, v in (query or {}).items() if v not in (None, "")]
        url = path + ("?" + urlencode(params) if params else "")
        self.requests += 1
        start = time.monotonic()
        try:
            resp = api.call_api(path, method, query_params=params, header_params=headers,
                                body=body, auth_settings=["BearerToken"], _preload_content=False,
                                _request_timeout=(self.timeouts.dial, read_timeout) if read_timeout
                                else self.timeouts.pair(), _return_http_data_only=True)
        except ApiException as exc:
            self._trace(method, url, exc.status, start)
            raise api_error(exc.status, exc.reason, exc.body, method, path) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # OSError: DNS, TLS, sockets
            self._trace(method, url, 0, start)
            raise ConfigError(f"Unable to connect to the server: {self._describe(exc)}") from None
        self._trace(method, url, resp.status, start)
        return resp

    def request(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json") -> Dict[str, Any]:
        """The answer as JSON. With --request-timeout the whole answer must arrive within it
        (as kubectl's): a server that dribbles bytes is cut off as surely as a silent one."""
        import urllib3

        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        deadline = time.monotonic() + self.timeouts.request if self.timeouts.request else None
        resp = self._send(method, path, query, headers, body)
        parts = []
        try:
            # read1: what has arrived, so the deadline is looked at between small reads
            for data in iter(lambda: resp.read1(256 * 1024), b""):
                parts.append(data)
                if deadline is not None and time.monotonic() > deadline:
                    raise ConfigError(f"Unable to connect to the server: {self.server} did not finish "
                                      f"answering {method} {path} within {self.timeouts.request:g}s "
                                      "(--request-timeout)")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ConfigError(f"Unable to connect to the server: {self._describe(exc)}") from None
        finally:
            resp.release_conn()
        data = b"".join(parts)
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            raise ApiError("InternalError", resp.status,
                           f"the server answered {method} {path} with non-JSON") from None

    def stream(self, path: str, query: Optional[Mapping[str, Any]] = None,
               chunk: int = 64 * 1024) -> Iterator[bytes]:
        """GET `path` and yield its body in chunks as it arrives (a pod's log), never whole.
        A stream is bounded by the server's silence (the idle timeout), not by its length:
        --max-log-bytes bounds that."""
        import urllib3

        resp = self._send("GET", path, query, {"Accept": "*/*"})
        try:
            for data in resp.stream(chunk):
                yield data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ConfigError(f"reading {path}: {self._describe(exc)}") from None
        finally:
            resp.release_conn()

    def watch(self, path: str, *, resource_version: str, label_selector: str = "", field_selector: str = "",
              metadata_only: bool = False, timeout_seconds: int = 300) -> Iterator[Dict[str, Any]]:
        """The events of a watch from `resource_version`, each a {"type", "object"} dict, until
        the server ends it (timeoutSeconds) or breaks it (a ConfigError). Bookmarks are asked
        for, as client-go's reflector asks. A watch is bounded by the server's silence for
        longer than its own timeout, and each event by MAX_EVENT_BYTES."""
        import urllib3

        query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(int(timeout_seconds)), "labelSelector": label_selector,
                 "fieldSelector": field_selector}
        resp = self._send("GET", path, query, {"Accept": METADATA_WATCH if metadata_only else "application/json"},
                          read_timeout=timeout_seconds + WATCH_SLACK)
        pending = b""
        try:
            for data in iter(lambda: resp.read1(256 * 1024), b""):
                pending += data
                *lines, pending = pending.split(b"\n")
                if len(pending) > MAX_EVENT_BYTES:
                    raise ConfigError(f"watching {path}: an event larger than {MAX_EVENT_BYTES} bytes")
                for line in lines:
                    if line.strip():
                        try:
                            event = json.loads(line)
                        except ValueError:
                            raise ConfigError(f"watching {path}: the server sent something that is not an event") from None
                        if isinstance(event, dict) and isinstance(event.get("object"), dict):
                            yield event
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ConfigError(f"watching {path}: {self._describe(exc)}") from None
        finally:
            resp.release_conn()

    def _describe(self, exc: BaseException) -> str:
        """A transport failure in a line, as kubectl words its own (`dial tcp ...: i/o
        timeout`, `net/http: TLS handshake timeout`), instead of urllib3's object reprs."""
        import urllib3

        errors = urllib3.exceptions
        inner = getattr(exc, "reason", None) if isinstance(exc, errors.MaxRetryError) else exc
        inner = inner or exc
        where = urlparse(self.server).netloc or self.server
        if isinstance(inner, errors.NewConnectionError):  # a subclass of ConnectTimeoutError
            cause = inner.__cause__ or inner.__context__
            detail = getattr(cause, "strerror", None) or str(cause or "").split("] ")[-1] or "failed"
            return f"dial tcp {where}: connect: {detail.lower()}"
        if isinstance(inner, errors.ConnectTimeoutError) and HANDSHAKE_TIMED_OUT in inner.args:
            return f"net/http: TLS handshake timeout (after {self.timeouts.handshake:g}s, {where})"
        if isinstance(inner, errors.ConnectTimeoutError):
            return f"dial tcp {where}: i/o timeout (after {self.timeouts.dial:g}s)"
        if isinstance(inner, (errors.ReadTimeoutError, socket.timeout)):
            return f"{where} sent nothing for {self.timeouts.idle:g}s (the server is not answering)"
        if isinstance(inner, errors.SSLError):
            return f"tls: {_first(inner)}"
        if isinstance(inner, errors.ProtocolError):
            return f"{where} broke off its answer ({_first(inner)})"
        return _first(inner)

    def _trace(self, method: str, url: str, status: int, start: float) -> None:
        if self.verbosity >= 6:
            ms = int((time.monotonic() - start) * 1000)
            host = self.server
            self.log.write(f"{method} {host}{url} {status or 'failed'} in {ms} milliseconds\n")

    # -- ClusterAccess ------------------------------------------------------------------------

    def served_versions(self, group: str) -> List[str]:
        try:
            doc = self.request("GET", f"/apis/{group}")
        except ApiError as exc:
            if exc.code == 404:
                return []
            raise
        return [v.get("version", "") for v in doc.get("versions") or []]

    def list(self, path: str, *, label_selector: str = "", field_selector: str = "",
             chunk_size: int = 500, metadata_only: bool = False) -> Iterator[Dict[str, Any]]:
        for page in self._pages(path, label_selector, field_selector, chunk_size, metadata_only):
            yield from page.get("items") or []

    def list_versioned(self, path: str, *, label_selector: str = "", field_selector: str = "",
                       chunk_size: int = 500, metadata_only: bool = False) -> Tuple[List[Dict[str, Any]], str]:
        """Every item and the list's resourceVersion, the one a watch goes on from: the first
        page's (a continue token keeps the snapshot it was taken at)."""
        items: List[Dict[str, Any]] = []
        version = ""
        for page in self._pages(path, label_selector, field_selector, chunk_size, metadata_only):
            version = version or str((page.get("metadata") or {}).get("resourceVersion") or "")
            items += page.get("items") or []
        return items, version

    def _pages(self, path: str, label_selector: str, field_selector: str, chunk_size: int,
               metadata_only: bool) -> Iterator[Dict[str, Any]]:
        cont = ""
        while True:
            doc = self.request("GET", path, {"limit": chunk_size or None, "continue": cont,
                                             "labelSelector": label_selector,
                                             "fieldSelector": field_selector},
                               accept=METADATA_ONLY if metadata_only else "application/json")
            yield doc
            cont = (doc.get("metadata") or {}).get("continue") or ""
            if not cont:
                return

    def get(self, path: str) -> Dict[str, Any]:
        return self.request("GET", path)


def _retries(attempts: int) -> Any:
    """At most `attempts` tries of a request, the later ones only where the first cannot have
    been served: a failed dial, or a GET that got no answer. A write is never sent twice."""
    from urllib3.util.retry import Retry

    again = max(0, attempts - 1)
    return Retry(total=again, connect=again, read=again, status=0, redirect=0, other=0,
                 allowed_methods=frozenset({"GET"}), raise_on_status=False, backoff_factor=0)


def _own_tls_per_connection(api: Any, timeouts: Timeouts) -> None:
    """Give every connection to the API server a TLS context of its own, verified as kubectl
    (Go's crypto/x509) verifies: chain and host name, without Python 3.13's VERIFY_X509_STRICT,
    which refuses a CA without a keyUsage extension (what a plain `openssl req -x509` makes, as
    some clusters' CAs are).

    One context shared by the pool is what crashed the process: urllib3 loads the CA and the
    client certificate into the context it is given and sets its ALPN list each time it opens
    a connection, so threads opening connections at once (the parallel LISTs) rewrote an
    OpenSSL SSL_CTX that another thread was handshaking with: a use after free, a segfault in
    libcrypto. A context made for one connection is only ever touched by that connection's
    thread. The connection also bounds its TLS handshake, which urllib3 leaves to the dial's
    timeout."""
    import ssl

    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError
    from urllib3.util.ssl_ import create_urllib3_context

    pool = getattr(getattr(api, "rest_client", None), "pool_manager", None)
    kw = getattr(pool, "connection_pool_kw", None)
    if kw is None:
        return
    verify = kw.get("cert_reqs") in (ssl.CERT_REQUIRED, "CERT_REQUIRED")
    kw.pop("ssl_context", None)

    class KubeHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            sock.settimeout(timeouts.handshake)
            return sock

        def connect(self) -> None:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
            if verify:
                context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
            self.ssl_context = context
            try:
                super().connect()
            except socket.timeout as exc:  # the dial raises its own ConnectTimeoutError
                raise ConnectTimeoutError(self, HANDSHAKE_TIMED_OUT) from exc

    class KubeHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = KubeHTTPSConnection

    pool.pool_classes_by_scheme = {"http": HTTPConnectionPool, "https": KubeHTTPSConnectionPool}


REMOVED_AUTH_PROVIDERS = {
    "gcp": 'The gcp auth plugin has been removed. Please use the "gke-gcloud-auth-plugin" kubectl/client-go '
           "credential plugin instead.",
    "azure": 'The azure auth plugin has been removed. Please use the "kubelogin" kubectl/client-go credential '
             "plugin instead."}


def _check_selection(config: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """What kubectl refuses before any request, refused the same way (the client library would
    fail later with an internal error, or log and go on without credentials)."""
    import base64
    import binascii
    import shutil

    cluster = (config.get("clusters") or [{}])[0].get("cluster") or {}
    user = (config.get("users") or [{}])[0].get("user") or {}
    for key, where in (("certificate-authority-data", cluster), ("client-certificate-data", user),
                       ("client-key-data", user)):
        value = where.get(key)
        if value is not None:
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"invalid kubeconfig: {key}: illegal base64 data") from None
    proxy = cluster.get("proxy-url")
    if proxy:
        parsed = urlparse(str(proxy))
        if parsed.scheme not in ("http", "https", "socks5") or not parsed.hostname:
            raise ConfigError(f'invalid kubeconfig: proxy-url "{proxy}": unsupported scheme or no host '
                              "(http, https or socks5 and a host)")
    provider = (user.get("auth-provider") or {}).get("name")
    if provider in REMOVED_AUTH_PROVIDERS:
        raise ConfigError(REMOVED_AUTH_PROVIDERS[provider])
    command = (user.get("exec") or {}).get("command")
    if command and not shutil.which(str(command), path=environ.get("PATH", os.defpath)):
        raise ConfigError(f"getting credentials: exec: executable {command} not found")


def _env_proxy(host: str) -> Optional[str]:
    parsed = urlparse(host)
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    name = parsed.hostname or ""
    for entry in (e.strip() for e in no_proxy.split(",")):
        if entry and (entry == "*" or name == entry or name.endswith("." + entry.lstrip("."))):
            return None
    key = "HTTPS_PROXY" if parsed.scheme == "https" else "HTTP_PROXY"
    return os.environ.get(key) or os.environ.get(key.lower()) or None


def _first(exc: BaseException) -> str:
    """An exception's own words, without the object reprs urllib3 puts before them."""
    args = [a for a in getattr(exc, "args", ()) if isinstance(a, str)]
    return (args[-1] if args else str(exc)) or type(exc).__name__


def api_error(code: int, reason: str, body: Any, method: str, path: str) -> GwdupError:
    """An ApiException's parts -> ApiError with the server's Status message."""
    message, status_reason = "", ""
    try:
        status = json.loads(body) if body else {}
        message = status.get("message", "")
        status_reason = status.get("reason", "")
    except (ValueError, AttributeError):
        message = body.decode() if isinstance(body, bytes) else str(body or "")
    if code == 401:
        return ConfigError("You must be logged in to the server (Unauthorized)")
    reason = status_reason or reason or "Unknown"
    return ApiError(reason, code, message or f"{method} {path}: {code} {reason}")
