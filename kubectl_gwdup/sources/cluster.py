"""Cluster access: the ONLY module that imports `kubernetes`, and only inside functions.

Everything crossing this boundary is a plain dict or an ApiError/ConfigError, so the rest of
the program (and its tests) never meets a client type, and `--help` or `-f` runs never pay
for importing the client. Requests go through ApiClient.call_api with raw JSON bodies: the
client's model deserialization is slow and unnecessary for what we read.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, TextIO
from urllib.parse import urlencode, urlparse

from ..errors import ApiError, ConfigError, GwdupError
from . import kubeconfig

METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class KubeCluster:
    """ClusterAccess over HTTPS with the user's kubeconfig (or in-cluster credentials)."""

    def __init__(self, selection: Optional[kubeconfig.Selection], *, request_timeout: Optional[float] = None,
                 impersonate: Optional[str] = None, impersonate_groups: Sequence[str] = (),
                 verbosity: int = 0, log: TextIO = sys.stderr,
                 environ: Optional[Mapping[str, str]] = None) -> None:
        self.selection = selection
        self.environ = os.environ if environ is None else environ
        self.request_timeout = request_timeout
        self.impersonate = impersonate
        self.impersonate_groups = tuple(impersonate_groups)
        self.verbosity = verbosity
        self.log = log
        self.requests = 0  # counted for benchmarks and -v output
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
                from kubernetes.config.incluster_config import InClusterConfigLoader

                sa = kubeconfig.SERVICE_ACCOUNT_DIR
                InClusterConfigLoader(token_filename=os.path.join(sa, "token"),
                                      cert_filename=os.path.join(sa, "ca.crt"),
                                      environ=self.environ).load_and_set(cfg)
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
        api = client.ApiClient(cfg)
        _verify_as_kubectl(api)
        api.user_agent = "kubectl-gwdup"
        if self.impersonate:
            api.set_default_header("Impersonate-User", self.impersonate)
        if self.impersonate_groups:
            # the generated client keeps headers in a dict; a comma-joined value would be one
            # group, so only a single group can be sent faithfully
            api.set_default_header("Impersonate-Group", self.impersonate_groups[0])
        self._client = api
        return api

    def request(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json") -> Dict[str, Any]:
        from kubernetes.client.rest import ApiException
        import urllib3

        api = self._api()
        params = [(k, v) for k, v in (query or {}).items() if v not in (None, "")]
        url = path + ("?" + urlencode(params) if params else "")
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        self.requests += 1
        start = time.monotonic()
        try:
            resp = api.call_api(path, method, query_params=params, header_params=headers,
                                body=body, auth_settings=["BearerToken"], _preload_content=False,
                                _request_timeout=self.request_timeout, _return_http_data_only=True)
            data = resp.data
            status = resp.status
        except ApiException as exc:
            self._trace(method, url, exc.status, start)
            raise api_error(exc.status, exc.reason, exc.body, method, path) from None
        except urllib3.exceptions.HTTPError as exc:
            self._trace(method, url, 0, start)
            raise ConfigError(f"Unable to connect to the server: {_reason(exc)}") from None
        except OSError as exc:  # DNS, TLS or socket errors below urllib3
            raise ConfigError(f"Unable to connect to the server: {exc}") from None
        self._trace(method, url, status, start)
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            raise ApiError("InternalError", status, f"the server answered {method} {path} with non-JSON") from None

    def stream(self, path: str, query: Optional[Mapping[str, Any]] = None,
               chunk: int = 64 * 1024) -> Iterator[bytes]:
        """GET `path` and yield its body in chunks as it arrives (a pod's log), never whole."""
        from kubernetes.client.rest import ApiException
        import urllib3

        api = self._api()
        params = [(k, v) for k, v in (query or {}).items() if v not in (None, "")]
        url = path + ("?" + urlencode(params) if params else "")
        self.requests += 1
        start = time.monotonic()
        try:
            resp = api.call_api(path, "GET", query_params=params, header_params={"Accept": "*/*"},
                                auth_settings=["BearerToken"], _preload_content=False,
                                _request_timeout=self.request_timeout, _return_http_data_only=True)
        except ApiException as exc:
            self._trace("GET", url, exc.status, start)
            raise api_error(exc.status, exc.reason, exc.body, "GET", path) from None
        except urllib3.exceptions.HTTPError as exc:
            raise ConfigError(f"Unable to connect to the server: {_reason(exc)}") from None
        except OSError as exc:
            raise ConfigError(f"Unable to connect to the server: {exc}") from None
        self._trace("GET", url, resp.status, start)
        try:
            for data in resp.stream(chunk):
                yield data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ConfigError(f"reading {path}: {_reason(exc)}") from None
        finally:
            resp.release_conn()

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
        cont = ""
        while True:
            doc = self.request("GET", path, {"limit": chunk_size or None, "continue": cont,
                                             "labelSelector": label_selector,
                                             "fieldSelector": field_selector},
                               accept=METADATA_ONLY if metadata_only else "application/json")
            for item in doc.get("items") or []:
                yield item
            cont = (doc.get("metadata") or {}).get("continue") or ""
            if not cont:
                return

    def get(self, path: str) -> Dict[str, Any]:
        return self.request("GET", path)


def _verify_as_kubectl(api: Any) -> None:
    """Verify the API server's certificate as kubectl (Go's crypto/x509) does: chain and host
    name, but not Python 3.13's VERIFY_X509_STRICT, which refuses a CA without a keyUsage
    extension (what a plain `openssl req -x509` makes, as some clusters' CAs are). The pools are
    made on first use, so a context set here serves every request; urllib3 still loads the CA
    and client certificate into it and matches the host name."""
    import ssl

    from urllib3.util.ssl_ import create_urllib3_context

    pool = getattr(getattr(api, "rest_client", None), "pool_manager", None)
    kw = getattr(pool, "connection_pool_kw", None)
    if kw is None or kw.get("cert_reqs") not in (ssl.CERT_REQUIRED, "CERT_REQUIRED"):
        return  # insecure-skip-tls-verify: nothing is verified anyway
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    kw["ssl_context"] = context


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


def _reason(exc: Exception) -> str:
    inner = getattr(exc, "reason", None)
    return str(inner or exc)


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
