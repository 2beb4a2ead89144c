"""Gateway access logs: read from the gateway pods (pods/log, streamed) or from saved files.

Each pod's log is one streamed GET of `pods/log` (container istio-proxy, where Istio's access
log goes), bounded by --since/--since-time, --tail and --max-log-bytes (limitBytes, which the
kubelet applies), a few pods at a time, handed on in chunks as they arrive (split into lines by
kubectl_gwdup/sources/logtally.py, where a line longer than the parser's bound is cut).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..errors import ApiError

CONTAINER = "istio-proxy"  # the gateway container; its stdout is the access log
PARALLEL = 4


def stdin_chunks(stdin: Any) -> Iterator[bytes]:
    """A log on standard input (`--log-file -`), as byte chunks."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:  # a text stream (tests): its text, encoded
        yield from (s.encode("utf-8", "surrogateescape") for s in iter(lambda: stdin.read(65536), ""))
        return
    yield from iter(lambda: buffer.read(65536), b"")


def log_query(since: Optional[int], since_time: str, tail: Optional[int], max_bytes: Optional[int],
              container: Optional[str] = CONTAINER) -> Dict[str, Any]:
    return {"container": container, "sinceSeconds": since, "sinceTime": since_time or None,
            "tailLines": tail, "limitBytes": max_bytes}


def read_pods(access: Any, pods: Sequence[Tuple[str, str]], query: Mapping[str, Any],
              consume: Callable[[Tuple[str, str], Iterator[bytes]], None]) -> List[str]:
    """Stream each pod's log into `consume(pod, chunks)`, a few pods at once. Returns notes:
    a pod without the istio-proxy container is read without naming one; a pod gone since it
    was listed is skipped. Forbidden is raised (one error line for the whole command)."""
    notes: List[str] = []

    def one(pod: Tuple[str, str]) -> Optional[str]:
        ns, name = pod
        path = f"/api/v1/namespaces/{ns}/pods/{name}/log"
        try:
            consume(pod, access.stream(path, query))
            return None
        except ApiError as exc:
            if exc.code == 400 and query.get("container"):  # no istio-proxy container: its only one
                consume(pod, access.stream(path, dict(query, container=None)))
                return None
            if exc.code == 404:
                return f"pod {ns}/{name} is gone: not read"
            raise

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for note in pool.map(one, pods):
            if note:
                notes.append(note)
    return notes
