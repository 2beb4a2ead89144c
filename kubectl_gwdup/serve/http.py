"""`serve`'s HTTP endpoints: /metrics (Prometheus text), /healthz (liveness) and /readyz
(readiness), as a Kubernetes component serves them.

- /healthz is 200 while the serving loop is alive (it ticks at least once a second; a loop
  stuck for LIVENESS_SECONDS fails it, and the kubelet restarts the pod). A refused kind, an
  unreachable API server or an error of the analysis never fail it: restarting would not fix
  them, and a crash loop would hide the log line that says what is wrong.
- /readyz is 200 once an analysis of the whole watched state has succeeded and the last one
  did; else 503 with the reason, one line.
Requests are answered by a small thread pool; a client that sends nothing is dropped after
CLIENT_TIMEOUT seconds, so scrapers cannot hold threads.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Tuple

LIVENESS_SECONDS = 120.0
CLIENT_TIMEOUT = 10.0


class Health:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.beat = time.monotonic()
        self.ready_reason: Optional[str] = "no analysis yet"

    def tick(self) -> None:
        with self.lock:
            self.beat = time.monotonic()

    def set_ready(self, reason: Optional[str]) -> None:
        """None: ready; else why not."""
        with self.lock:
            self.ready_reason = reason

    def live(self) -> Tuple[bool, str]:
        with self.lock:
            stale = time.monotonic() - self.beat
        return (stale < LIVENESS_SECONDS, "ok" if stale < LIVENESS_SECONDS else f"serving loop stuck for {stale:.0f}s")

    def ready(self) -> Tuple[bool, str]:
        with self.lock:
            reason = self.ready_reason
        return (reason is None, "ok" if reason is None else reason)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a scraper that hung up: nothing to report


def parse_listen(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        from ..errors import UsageError

        raise UsageError(f'invalid --listen "{text}": use HOST:PORT or :PORT, e.g. :9090')
    return host.strip("[]") or "0.0.0.0", int(port)


def start(listen: str, metrics: Callable[[], Tuple[bytes, str]], health: Health) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = CLIENT_TIMEOUT

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, ctype = metrics()
                self._send(200, body, ctype)
            elif path in ("/healthz", "/livez"):
                ok, why = health.live()
                self._send(200 if ok else 500, (why + "\n").encode())
            elif path == "/readyz":
                ok, why = health.ready()
                self._send(200 if ok else 503, (why + "\n").encode())
            else:
                self._send(404, b"404 page not found\n")

        do_HEAD = do_GET

    host, port = parse_listen(listen)
    server = _Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
