"""Gateway access logs: read from the gateway pods (pods/log, streamed) or from saved files.

Each pod's log is one streamed GET of `pods/log` (container istio-proxy, where Istio's access
log goes), bounded by --since/--since-time, --tail and --max-log-bytes (limitBytes, which the
kubelet applies), a few pods at a time. Lines are split as they arrive and handed on one by one;
none is kept, and a line longer than the parser's bound is cut and counted as unparsed.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..accesslog import MAX_LINE
from ..errors import ApiError

CONTAINER = "istio-proxy"  # the gateway container; its stdout is the access log
PARALLEL = 4


def lines_of(chunks: Iterable[bytes], max_line: int = MAX_LINE) -> Iterator[str]:
    """Text lines from byte chunks, without holding more than one line (at most `max_line`
    bytes of it): a longer line is yielded cut (it will not parse), bytes that are not UTF-8
    are replaced (a binary log then fails to parse line by line, and says so in the counts)."""
    pending = b""
    overflow = False
    for chunk in chunks:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                if not overflow:
                    pending += chunk[start:]
                    if len(pending) > max_line:
                        pending, overflow = pending[:max_line + 1], True
                break
            if overflow:
                yield pending.decode("utf-8", "replace")
            else:
                yield (pending + chunk[start:nl]).decode("utf-8", "replace")
            pending, overflow = b"", False
            start = nl + 1
    if pending:
        yield pending.decode("utf-8", "replace")


def file_lines(path: str, stdin: Any) -> Iterator[str]:
    """Lines of a saved log (`-` for stdin), read in chunks."""
    if path == "-":
        buffer = getattr(stdin, "buffer", None)
        if buffer is None:
            yield from lines_of(s.encode() for s in iter(lambda: stdin.read(65536), ""))
            return
        yield from lines_of(iter(lambda: buffer.read(65536), b""))
        return
    with open(path, "rb") as f:
        yield from lines_of(iter(lambda: f.read(65536), b""))


def log_query(since: Optional[int], since_time: str, tail: Optional[int], max_bytes: Optional[int],
              container: Optional[str] = CONTAINER) -> Dict[str, Any]:
    return {"container": container, "sinceSeconds": since, "sinceTime": since_time or None,
            "tailLines": tail, "limitBytes": max_bytes}


def read_pods(access: Any, pods: Sequence[Tuple[str, str]], query: Mapping[str, Any],
              consume: Callable[[Tuple[str, str], Iterator[str]], None]) -> List[str]:
    """Stream each pod's log into `consume(pod, lines)`, a few pods at once. Returns notes:
    a pod without the istio-proxy container is read without naming one; a pod gone since it
    was listed is skipped. Forbidden is raised (one error line for the whole command)."""
    notes: List[str] = []

    def one(pod: Tuple[str, str]) -> Optional[str]:
        ns, name = pod
        path = f"/api/v1/namespaces/{ns}/pods/{name}/log"
        try:
            consume(pod, lines_of(access.stream(path, query)))
            return None
        except ApiError as exc:
            if exc.code == 400 and query.get("container"):  # no istio-proxy container: its only one
                consume(pod, lines_of(access.stream(path, dict(query, container=None))))
                return None
            if exc.code == 404:
                return f"pod {ns}/{name} is gone: not read"
            raise

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for note in pool.map(one, pods):
            if note:
                notes.append(note)
    return notes
