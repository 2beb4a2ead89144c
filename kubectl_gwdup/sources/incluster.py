"""In-cluster credentials, read the way client-go reads them (`client-go/rest/config.go`
InClusterConfig), for `serve` running in a pod with no kubeconfig:

- the API server is https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (joined as
  net.JoinHostPort joins them, so an IPv6 address gets brackets); both variables are required;
- the CA is the service account's `ca.crt`;
- the token is the service account's `token` file, and it is re-read when it changes: the
  kubelet rotates a projected token (about hourly, by swapping the directory's `..data` link)
  and the old one expires. client-go re-reads the file once a minute
  (`client-go/transport/token_source.go` NewCachedFileTokenSource); here every request looks at
  the file's identity (inode, size, mtime), so a rotated token is used from the next request.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from ..errors import ConfigError

@dataclass(frozen=True)
class InCluster:
    host: str
    ca_file: Optional[str]
    token_file: str


def in_cluster(environ: Mapping[str, str], directory: str) -> InCluster:
    """Where the API server is and how to trust and authenticate to it; `directory` is the
    service account's (sources.kubeconfig.SERVICE_ACCOUNT_DIR in a pod)."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                          "KUBERNETES_SERVICE_PORT must be defined")
    token = os.path.join(directory, "token")
    if not os.path.isfile(token):
        raise ConfigError(f"unable to load in-cluster configuration: open {token}: no such file or directory")
    ca = os.path.join(directory, "ca.crt")
    joined = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return InCluster(host=f"https://{joined}:{port}", ca_file=ca if os.path.isfile(ca) else None, token_file=token)


class TokenFile:
    """The bearer token of a file, read again whenever the file is replaced or rewritten."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: Optional[Tuple[int, int, int]] = None
        self._token = ""
        self.reads = 0

    def current(self) -> str:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._token:
                return self._token  # mid-rotation: the old token until the new file is there
            raise ConfigError(f"reading the service account token: {exc.strerror}: {self.path}") from None
        ident = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if ident != self._seen:
                try:
                    with open(self.path, encoding="utf-8") as f:
                        token = f.read().strip()
                except OSError as exc:
                    if self._token:
                        return self._token
                    raise ConfigError(f"reading the service account token: {exc.strerror}: {self.path}") from None
                if token:
                    self._token, self._seen = token, ident
                    self.reads += 1
            return self._token
