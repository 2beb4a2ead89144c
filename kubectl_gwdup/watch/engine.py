"""The watch engine: every kind `check` reads kept current by a Reflector, and the same
analysis run again when something changed (debounced), for `check --watch` and `serve`.

Changes arrive in bursts (a `kubectl apply -f dir/`, a Helm upgrade, a relist): the analysis
waits until the kinds have been quiet for `debounce` seconds, and never longer than
`max_delay` after the first change, then reads every store at once under their shared lock.
Each evaluation builds its inventory afresh from the stores and keeps nothing of the last one
but its result, so memory follows the size of the mesh, not the number of changes seen.
"""
from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import ApiError
from ..inventory import RawObjects
from ..model import GATEWAY_API_GROUP, MANAGED_BY
from ..objects import ISTIO_GROUP
from ..sources import live
from .cache import CachedAccess, Discovery, pod_identity, secret_certificate_only
from .informer import Reflector, strip

SECRETS_NOT_ASKED = ApiError("NotRequested", 403, "Secrets are read only with --read-secrets")


@dataclass(frozen=True)
class Watched:
    resource: str
    path: str
    label_selector: str = ""
    metadata_only: bool = False
    transform: Callable[[Dict[str, Any]], Dict[str, Any]] = strip


@dataclass
class Evaluation:
    """One analysis of the watched state, and what the engine knew when it ran."""

    result: Any  # what `evaluate` returned
    generation: int  # how many evaluations so far (1: the first, after the initial lists)
    finished: float  # time.time() at the end
    duration: float  # seconds the analysis took
    objects: Dict[str, int] = field(default_factory=dict)  # resource -> objects held


def watched_kinds(access: Any, read_secrets: bool) -> Tuple[List[Watched], Discovery, Dict[str, ApiError]]:
    """What to watch, from discovery (asked here once): every kind `load_cluster` lists."""
    discovery = Discovery()
    discovery.record(access, ISTIO_GROUP)
    discovery.record(access, GATEWAY_API_GROUP, resource_lists=True)
    istio = live.istio_version(access)  # required: without Istio's Gateways there is nothing to watch
    base = f"/apis/{ISTIO_GROUP}/{istio}"
    kinds = [Watched("gateways", f"{base}/gateways"), Watched("virtualservices", f"{base}/virtualservices"),
             Watched("envoyfilters", f"/apis/{ISTIO_GROUP}/v1alpha3/envoyfilters",
                     label_selector=",".join(f"{k}={v}" for k, v in MANAGED_BY.items())),
             Watched("services", "/api/v1/services"), Watched("namespaces", "/api/v1/namespaces"),
             Watched("pods", "/api/v1/pods", metadata_only=True, transform=pod_identity),
             Watched("deployments", "/apis/apps/v1/deployments")]
    replay = CachedAccess({}, discovery, access.namespace, threading.Lock())
    notes_sink = RawObjects(source="cluster")
    for resource, _bucket, path in live.gateway_api_paths(replay, notes_sink):
        kinds.append(Watched(resource, path))
    unread: Dict[str, ApiError] = {}
    if read_secrets:
        kinds.append(Watched("secrets", "/api/v1/secrets", transform=secret_certificate_only))
    else:
        unread["/api/v1/secrets"] = SECRETS_NOT_ASKED
    return kinds, discovery, unread


class Engine:
    def __init__(self, access: Any, evaluate: Callable[[CachedAccess], Any], *, read_secrets: bool = True,
                 debounce: float = 0.2, max_delay: float = 1.0, watch_timeout: int = 300, chunk_size: int = 500,
                 log: Callable[[str], None] = lambda _m: None,
                 on_error: Callable[[str, str], None] = lambda _r, _why: None) -> None:
        self.access = access
        self.evaluate = evaluate
        self.read_secrets = read_secrets
        self.debounce = debounce
        self.max_delay = max_delay
        self.watch_timeout = watch_timeout
        self.chunk_size = chunk_size
        self.log = log
        self.on_error = on_error
        self.lock = threading.Lock()  # the stores'
        self.stop_event = threading.Event()
        self.reflectors: Dict[str, Reflector] = {}
        self.unread: Dict[str, ApiError] = {}
        self.discovery = Discovery()
        self.generation = 0
        self._changes = threading.Condition()
        self._dirty = 0  # changes not yet analysed
        self._first_change = 0.0
        self._last_change = 0.0
        self._threads: List[threading.Thread] = []

    def _changed(self, _resource: str) -> None:
        with self._changes:
            now = time.monotonic()
            if not self._dirty:
                self._first_change = now
            self._dirty += 1
            self._last_change = now
            self._changes.notify_all()

    def start(self) -> None:
        # A one-shot command runs with the cyclic collector off (cli.main.run: its trees are
        # acyclic and it exits soon); a process that runs for days must collect what cycles
        # it makes (an exception's traceback, a thread's frames), or it grows with every change.
        gc.enable()
        kinds, self.discovery, self.unread = watched_kinds(self.access, self.read_secrets)
        for w in kinds:
            self.reflectors[w.path] = Reflector(
                self.access, w.resource, w.path, on_change=self._changed, lock=self.lock,
                label_selector=w.label_selector, metadata_only=w.metadata_only, transform=w.transform,
                watch_timeout=self.watch_timeout, chunk_size=self.chunk_size, log=self.log, on_error=self.on_error)
        for r in self.reflectors.values():
            t = threading.Thread(target=r.run, args=(self.stop_event,), name=f"watch {r.resource}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        with self._changes:
            self._changes.notify_all()

    @property
    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors.values())

    def cached(self) -> CachedAccess:
        return CachedAccess(self.reflectors, self.discovery, self.access.namespace, self.lock, self.unread)

    def next(self, timeout: Optional[float] = None) -> Optional[Evaluation]:
        """The next evaluation: the first once every kind is listed, then one per (debounced)
        burst of changes. None when stopped, or when `timeout` passes with nothing new."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changes:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if self._dirty and self.synced:
                    quiet_at = self._last_change + self.debounce
                    latest = self._first_change + self.max_delay
                    due = min(quiet_at, latest) if self.generation else now  # the first: at once
                    if now >= due:
                        self._dirty = 0
                        break
                    wait = due - now
                else:
                    wait = 0.5 if not self.synced else 3600.0
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wait = min(wait, deadline - now)
                self._changes.wait(wait)
            else:
                return None
        start = time.monotonic()
        result = self.evaluate(self.cached())
        self.generation += 1
        with self.lock:
            objects = {r.resource: len(r.store) for r in self.reflectors.values()}
        return Evaluation(result=result, generation=self.generation, finished=time.time(),
                          duration=time.monotonic() - start, objects=objects)
