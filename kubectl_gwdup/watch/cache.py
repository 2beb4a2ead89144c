"""The watched kinds as a ClusterAccess: `sources.live.load_cluster` reads them exactly as it
reads the API server, so the watch mode and `check` build one inventory by one code path.

A LIST is answered from the kind's store (label and field selectors applied here as the API
server applies them), a GET of a Secret from the Secrets' store, discovery from what was asked
once at the start. A kind the API server refused is refused again here with its own error, so
every fallback of the one-shot path (a note, a degraded rule) happens the same way.
"""
from __future__ import annotations

import re
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ..errors import ApiError
from ..istiod.credentials import CA_KEYS, CERT_KEYS
from ..selectors import parse_selector
from .informer import Reflector

_PATH = re.compile(r"^(?P<base>/api/v1|/apis/[^/]+/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)"
                   r"(?:/(?P<name>[^/]+))?$")


def not_found(resource: str, name: str) -> ApiError:
    return ApiError("NotFound", 404, f'{resource} "{name}" not found')


class Discovery:
    """Discovery answers (served versions, resource lists), asked once, replayed."""

    def __init__(self) -> None:
        self.versions: Dict[str, Any] = {}  # group -> [versions] or ApiError
        self.documents: Dict[str, Any] = {}  # path -> document or ApiError

    def record(self, access: Any, group: str, resource_lists: bool = False) -> None:
        try:
            self.versions[group] = list(access.served_versions(group))
        except ApiError as exc:
            self.versions[group] = exc
            return
        if resource_lists:
            for v in self.versions[group]:
                path = f"/apis/{group}/{v}"
                try:
                    self.documents[path] = access.get(path)
                except ApiError as exc:
                    self.documents[path] = exc

    @staticmethod
    def _answer(found: Any) -> Any:
        if isinstance(found, ApiError):
            raise found
        return found


def field_value(obj: Mapping[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return "" if cur is None else str(cur)


def field_matches(obj: Mapping[str, Any], selector: str) -> bool:
    """`a.b=v,c!=w` as the API server evaluates a field selector on the fields it supports."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        if (field_value(obj, k.strip().lstrip("=")) == v.strip().lstrip("=")) == neg:
            return False
    return True


def secret_certificate_only(secret: Dict[str, Any]) -> Dict[str, Any]:
    """A Secret as the analysis reads it: its certificate, and whether it holds a CA. The private
    key and every other value are dropped as the event is decoded: never kept, never printed."""
    m = secret.get("metadata") or {}
    data = secret.get("data") if isinstance(secret.get("data"), dict) else {}
    kept = {k: data[k] for k in CERT_KEYS if k in data}
    kept.update({k: "" for k in CA_KEYS if k in data})
    return {"metadata": {k: m.get(k) for k in ("name", "namespace", "resourceVersion", "uid") if k in m},
            "type": secret.get("type"), "data": kept}


def pod_identity(pod: Dict[str, Any]) -> Dict[str, Any]:
    """A Pod as the analysis reads it (metadata only): name, namespace, labels, owners."""
    m = pod.get("metadata") or {}
    return {"metadata": {k: m.get(k) for k in ("name", "namespace", "labels", "ownerReferences", "resourceVersion")
                         if k in m}}


class CachedAccess:
    """ClusterAccess over the reflectors' stores (read under their shared lock)."""

    requests = 0

    def __init__(self, reflectors: Mapping[str, Reflector], discovery: Discovery, namespace: str,
                 lock: threading.Lock, unread: Optional[Mapping[str, ApiError]] = None) -> None:
        self.reflectors = reflectors  # by cluster-wide path
        self.discovery = discovery
        self.namespace = namespace
        self.lock = lock
        self.unread = dict(unread or {})  # path -> why it is not watched (e.g. Secrets not asked for)

    def served_versions(self, group: str) -> List[str]:
        found = self.discovery.versions.get(group)
        if found is None:
            raise ApiError("NotFound", 404, f"/apis/{group}: not discovered")
        return list(Discovery._answer(found))

    def _store(self, path: str) -> Tuple[Reflector, str, str]:
        m = _PATH.match(path)
        if not m:
            raise ApiError("NotFound", 404, "the server could not find the requested resource")
        whole = f"{m.group('base')}/{m.group('res')}"
        if whole in self.unread:
            raise self.unread[whole]
        reflector = self.reflectors.get(whole)
        if reflector is None:
            raise ApiError("NotFound", 404, f"{whole} is not watched")
        if reflector.error is not None:
            raise reflector.error
        return reflector, m.group("ns") or "", m.group("name") or ""

    def get(self, path: str) -> Dict[str, Any]:
        if path in self.discovery.documents:
            return dict(Discovery._answer(self.discovery.documents[path]))
        reflector, ns, name = self._store(path)
        with self.lock:
            obj = reflector.store.get((ns, name))
        if obj is None:
            raise not_found(reflector.resource, name)
        return obj

    def list(self, path: str, *, label_selector: str = "", field_selector: str = "",
             chunk_size: int = 500, metadata_only: bool = False) -> Iterator[Dict[str, Any]]:
        reflector, ns, _ = self._store(path)
        with self.lock:
            items = [o for (ons, _n), o in sorted(reflector.store.items()) if not ns or ons == ns]
        labels = parse_selector(label_selector) if label_selector else None
        for obj in items:
            if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels") or {}):
                continue
            if field_selector and not field_matches(obj, field_selector):
                continue
            yield obj
