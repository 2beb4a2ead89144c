"""What every write shares: REST paths, kubectl's result names, DeleteOptions, the Writer
protocol, backups' object form, and Ctrl-C deferred while a write is on the wire."""
from __future__ import annotations

import contextlib
import copy
import signal
import threading
from typing import Any, Dict, Optional, Protocol

FIELD_MANAGER = "kubectl-gwdup"
SERVER_SET = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink")


class Writer(Protocol):
    def request(self, method: str, path: str, query: Optional[Dict[str, Any]] = None, body: Any = None,
                content_type: str = "application/json", accept: str = "application/json") -> Dict[str, Any]: ...

    def list(self, path: str, *, label_selector: str = "", field_selector: str = "",
             chunk_size: int = 500, metadata_only: bool = False) -> Any: ...


def object_path(obj: Dict[str, Any], name: bool = True) -> str:
    """The REST path of a namespaced object (or of its collection, name=False)."""
    group_version = obj["apiVersion"]
    base = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
    m = obj["metadata"]
    path = f"{base}/namespaces/{m['namespace']}/{obj['kind'].lower()}s"
    return f"{path}/{m['name']}" if name else path


def resource(obj: Dict[str, Any]) -> str:
    """kubectl's name for an object in result lines: `<kind>.<group>/<name>`."""
    return f"{obj['kind'].lower()}.{obj['apiVersion'].rpartition('/')[0]}/{obj['metadata']['name']}"


def delete_options(dry_run: bool, **preconditions: Optional[str]) -> Dict[str, Any]:
    """The DeleteOptions body of a DELETE. kube-apiserver reads every option of a DELETE that
    has a body from that body and ignores the query string (apiserver
    endpoints/handlers/delete.go), so dryRun must be here: `?dryRun=All` beside a body deletes
    for real."""
    body: Dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                            "preconditions": {k: v for k, v in preconditions.items() if v}}
    if dry_run:
        body["dryRun"] = ["All"]
    return body


def clean(obj: Dict[str, Any]) -> Dict[str, Any]:
    """An object as a backup keeps it: no status, no managedFields."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    out.get("metadata", {}).pop("managedFields", None)
    return out


def fresh(obj: Dict[str, Any]) -> Dict[str, Any]:
    """An object to create again: no server-set metadata (the server sets it anew)."""
    out = clean(obj)
    for k in SERVER_SET:
        out["metadata"].pop(k, None)
    return out


class Interrupts:
    """Ctrl-C while a write is on the wire would leave its outcome unknown; so SIGINT (and the
    SIGTERM and SIGHUP of a closed terminal, a CI job cancelled, a pod evicted) only sets a flag
    during writes, and the run stops (and rolls back) between two of them."""

    SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))

    def __init__(self) -> None:
        self.pending = False

    @contextlib.contextmanager
    def deferred(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in self.SIGNALS}

        def note(signum: int, frame: Any) -> None:
            self.pending = True
        for s in self.SIGNALS:
            signal.signal(s, note)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
