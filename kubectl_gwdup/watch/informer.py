"""One kind kept current: list, then watch from the list's resourceVersion, as client-go's
Reflector does (`client-go/tools/cache/reflector.go` ListAndWatch, watchHandler):

- a watch that ends (its timeoutSeconds) or breaks (a closed connection, an API server
  restart) is started again from the last resourceVersion seen, an event's or a bookmark's,
  so nothing between the two watches is missed;
- a 410 Gone / Expired (the history before that version is compacted), as an ERROR event or
  as the answer, means listing again (`isExpiredError`), and the list replaces the store;
- failures back off exponentially (client-go: 800 ms doubling to 30 s), and a success resets it;
- a refusal (RBAC's 403) is kept as the kind's `error`, said once per change of state, and
  retried with the same back-off: permissions granted later take effect without a restart.

Objects go through `transform` on arrival (client-go's SetTransform), so what is kept is only
what the analysis reads: no managedFields, and no Secret byte but the certificate's.
"""
from __future__ import annotations

import random
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Tuple

from ..errors import ApiError, GwdupError

Key = Tuple[str, str]
INITIAL_BACKOFF = 0.8
MAX_BACKOFF = 30.0


class WatchAccess(Protocol):
    def list_versioned(self, path: str, *, label_selector: str = "", field_selector: str = "",
                       chunk_size: int = 500, metadata_only: bool = False) -> Tuple[List[Dict[str, Any]], str]: ...

    def watch(self, path: str, *, resource_version: str, label_selector: str = "", field_selector: str = "",
              metadata_only: bool = False, timeout_seconds: int = 300) -> Iterator[Dict[str, Any]]: ...


def key_of(obj: Dict[str, Any]) -> Key:
    m = obj.get("metadata") or {}
    return (str(m.get("namespace") or ""), str(m.get("name") or ""))


def strip(obj: Dict[str, Any]) -> Dict[str, Any]:
    """What every kind keeps: the object without metadata.managedFields (often its largest part)."""
    m = obj.get("metadata")
    if isinstance(m, dict) and "managedFields" in m:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in m.items() if k != "managedFields"}
    return obj


class Reflector:
    def __init__(self, access: WatchAccess, resource: str, path: str, *, on_change: Callable[[str], None],
                 lock: threading.Lock, label_selector: str = "", field_selector: str = "",
                 metadata_only: bool = False, transform: Callable[[Dict[str, Any]], Dict[str, Any]] = strip,
                 watch_timeout: int = 300, chunk_size: int = 500, log: Callable[[str], None] = lambda _m: None,
                 on_error: Callable[[str, str], None] = lambda _r, _why: None) -> None:
        self.access = access
        self.resource = resource
        self.path = path
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.metadata_only = metadata_only
        self.transform = transform
        self.watch_timeout = watch_timeout
        self.chunk_size = chunk_size
        self.on_change = on_change
        self.on_error = on_error
        self.log = log
        self.lock = lock  # shared by every reflector of an engine: a snapshot reads them all at once
        self.store: Dict[Key, Dict[str, Any]] = {}
        self.resource_version = ""
        self.synced = threading.Event()
        self.error: Optional[ApiError] = None  # the refusal that keeps this kind unread

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        backoff = INITIAL_BACKOFF
        need_list = True
        failures = 0
        while not stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                expired = self._watch(stop)
                if expired:
                    need_list = True
                    continue
                backoff, failures = INITIAL_BACKOFF, 0
                continue
            except ApiError as exc:
                if exc.code == 410:
                    need_list, backoff = True, INITIAL_BACKOFF
                    continue
                self._refused(exc)
                need_list = True
            except GwdupError as exc:  # connection failures: watch again from where it was
                failures += 1
                self.on_error(self.resource, "Unreachable")
                if failures == 1:  # a watch cut once (a restart, an idle cut): at once
                    continue
                self.log(f"{self.resource}: {exc}; trying again in {backoff:.1f}s")
            stop.wait(backoff * (1 + random.random()))  # client-go's jitter factor 1.0
            backoff = min(MAX_BACKOFF, backoff * 2)

    def _refused(self, exc: ApiError) -> None:
        changed = self.error is None or self.error.code != exc.code
        with self.lock:
            self.error = exc
            self.store.clear()
        self.synced.set()  # known: unreadable
        if changed:
            self.log(f"{self.resource}: {exc.render().strip()}")
            self.on_change(self.resource)
        self.on_error(self.resource, exc.reason or str(exc.code))

    def _list(self) -> None:
        items, version = self.access.list_versioned(self.path, label_selector=self.label_selector,
                                                    field_selector=self.field_selector, chunk_size=self.chunk_size,
                                                    metadata_only=self.metadata_only)
        fresh = {key_of(o): self.transform(o) for o in items}
        recovered = self.error is not None
        with self.lock:
            self.store = fresh
            self.resource_version = version
            self.error = None
        if recovered:
            self.log(f"{self.resource}: readable again")
        self.synced.set()
        self.on_change(self.resource)

    def _watch(self, stop: threading.Event) -> bool:
        """Apply one watch's events; True when the server says the version is too old."""
        for event in self.access.watch(self.path, resource_version=self.resource_version,
                                       label_selector=self.label_selector, field_selector=self.field_selector,
                                       metadata_only=self.metadata_only,
                                       timeout_seconds=int(self.watch_timeout * (1 + random.random()))):
            if stop.is_set():
                return False
            kind, obj = event.get("type"), event["object"]
            if kind == "ERROR":
                code = obj.get("code")
                if code == 410 or obj.get("reason") in ("Expired", "Gone"):
                    return True
                raise ApiError(str(obj.get("reason") or "InternalError"), int(code or 500),
                               str(obj.get("message") or "watch error"))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if kind == "BOOKMARK":
                with self.lock:
                    self.resource_version = version or self.resource_version
                continue
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            key = key_of(obj)
            with self.lock:
                if kind == "DELETED":
                    self.store.pop(key, None)
                else:
                    self.store[key] = self.transform(obj)
                self.resource_version = version or self.resource_version
            self.on_change(self.resource)
        return False
