"""Servers on 127.0.0.1 that fail the way dead or broken API servers do in the field.

- `Silent`: accepts TCP and never says a word (a dead load balancer, a black-holed VPN).
- `TLSNoHTTP`: completes the TLS handshake, reads the request, never answers it.
- `HalfAnswer`: answers a status line, headers and part of the body its Content-Length
  promises, then stalls (or, with close=True, hangs up).
- `Dribble`: answers its head, then a byte of body every 0.1 s: never silent for a whole read
  timeout, never done.

Each serves until stop() (or the test's end), holds every accepted socket open so the client
sees silence rather than a reset, and accepts a bounded number of connections.
"""
from __future__ import annotations

import socket
import ssl
import threading
from typing import List, Optional

MAX_CONNECTIONS = 64  # a bound on the accept loop: the commands under test retry at most twice


class _Server:
    def __init__(self, cert: Optional[str] = None, key: Optional[str] = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.context: Optional[ssl.SSLContext] = None
        if cert:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(cert, key)
        self.held: List[socket.socket] = []
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        for s in self.held:
            try:
                s.close()
            except OSError:
                pass
        self.sock.close()

    def _serve(self) -> None:
        while not self.stopping.is_set() and self.accepted < MAX_CONNECTIONS:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)
            threading.Thread(target=self._handle_safely, args=(conn,), daemon=True).start()

    def _handle_safely(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except (OSError, ssl.SSLError):
            pass  # the client gave up: that is what these servers wait for

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _tls(self, conn: socket.socket) -> ssl.SSLSocket:
        assert self.context is not None
        conn.settimeout(30)
        tls = self.context.wrap_socket(conn, server_side=True)
        self.held.append(tls)
        return tls

    def _read_request(self, tls: ssl.SSLSocket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536 and not self.stopping.is_set():
            chunk = tls.recv(4096)
            if not chunk:
                return
            data += chunk

    def _wait(self) -> None:
        self.stopping.wait(120)


class Silent(_Server):
    def handle(self, conn: socket.socket) -> None:
        self._wait()


class TLSNoHTTP(_Server):
    def handle(self, conn: socket.socket) -> None:
        tls = self._tls(conn)
        self._read_request(tls)
        self._wait()


class HalfAnswer(_Server):
    def __init__(self, cert: str, key: str, close: bool = False) -> None:
        super().__init__(cert, key)
        self.close = close

    def handle(self, conn: socket.socket) -> None:
        tls = self._tls(conn)
        self._read_request(tls)
        body = b'{"kind":"APIGroup","apiVersion":"v1","name":"networking.istio.io","versions":['
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 4096\r\n\r\n" + body)
        if self.close:
            tls.close()
            return
        self._wait()


class Dribble(_Server):
    def handle(self, conn: socket.socket) -> None:
        tls = self._tls(conn)
        self._read_request(tls)
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(400):  # a byte every 0.1 s for at most 40 s
            if self.stopping.wait(0.1):
                return
            tls.sendall(b" ")
