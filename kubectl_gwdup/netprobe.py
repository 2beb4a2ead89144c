"""netprobe: do what a browser does, over real TLS and HTTP/2, to confirm a coalescing hazard.

One connection is opened with SNI = a host of the `from` server (ALPN h2) and that host is
requested; then the coalesced host is requested on the same connection, as a browser would
when the certificate covers it; then the coalesced host on a connection of its own, twice, to
know what its own answer is and whether that answer is stable. Only GET or HEAD, no body.
Returns model-free records; the caller classifies and renders them.
"""
from __future__ import annotations

import enum
import hashlib
import socket
import ssl
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .errors import GwdupError
from .hosts import cert_covers


def host_port(address: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets as in a URL (`[::1]:443`)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class ProbeResult(enum.Enum):
    CONFIRMED_404 = "Confirmed-404"
    CONFIRMED_MISROUTE = "Confirmed-misroute"
    MITIGATED_421 = "Mitigated-421"
    MITIGATED_HTTP1 = "Mitigated-HTTP/1.1"  # the connection speaks HTTP/1.1: browsers never pool it
    OK = "Ok"
    NOT_COALESCED = "NotCoalesced"  # the certificate does not cover the host: no browser reuses it
    UNREACHABLE = "Unreachable"

    @property
    def verdict(self) -> str:
        """What probe prints: the documented verdicts only. A connection whose certificate does
        not cover the other host is never reused for it, which for the user is Ok."""
        return ProbeResult.OK.value if self is ProbeResult.NOT_COALESCED else self.value


class ProbeError(Exception):
    """Connection-level failure: refused, TLS, no h2, timeout. Reported per pair."""


class WrongEndpoint(ProbeError, GwdupError):
    """The endpoint presented a certificate that does not cover the host it was asked for: not
    the gateway serving that host (a wrong --address, a stale DNS answer). Never a verdict."""


class Http1Only(ProbeError):
    """The server chose HTTP/1.1 over h2 (apply-421 --mitigation http1 does that on purpose)."""


@dataclass(frozen=True)
class Answer:
    status: int
    digest: str  # sha256 of the body: compared, never printed
    size: int
    headers: Tuple[Tuple[str, str], ...] = ()


@dataclass
class Connection:
    """One TLS connection speaking HTTP/2, as a browser holds it."""

    address: str
    port: int
    sni: str
    context: ssl.SSLContext
    timeout: float
    sock: Optional[ssl.SSLSocket] = None
    peer_sans: Tuple[str, ...] = ()
    requests: int = 0
    _h2: object = field(default=None, repr=False)

    def open(self) -> "Connection":
        import h2.config
        import h2.connection

        try:
            raw = socket.create_connection((self.address, self.port), timeout=self.timeout)
        except OSError as exc:
            raise ProbeError(f"connect {host_port(self.address, self.port)}: {exc.strerror or exc}") from None
        try:
            self.sock = self.context.wrap_socket(raw, server_hostname=self.sni)
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            raise ProbeError(f"TLS handshake with SNI {self.sni}: {getattr(exc, 'reason', None) or exc}") from None
        alpn = self.sock.selected_alpn_protocol()
        if alpn == "http/1.1":
            self.close()
            raise Http1Only(f"the connection for {self.sni} speaks HTTP/1.1 (ALPN): browsers never reuse it "
                            "for another host")
        if alpn != "h2":
            self.close()
            raise ProbeError(f"no HTTP/2 (ALPN {alpn or 'none'}) for SNI {self.sni}")
        der = self.sock.getpeercert(binary_form=True)
        self.peer_sans = _dns_sans(der) if der else ()
        if not self.covers(self.sni):
            where = host_port(self.address, self.port)
            self.close()
            raise WrongEndpoint(f"{where} is not the gateway for {self.sni}: the certificate it presented covers "
                                f"{', '.join(self.peer_sans[:5]) or 'no DNS name'}, not {self.sni} (check --address "
                                "or --resolve)")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        self.sock.sendall(conn.data_to_send())
        self._h2 = conn
        return self

    def covers(self, host: str) -> bool:
        """Would a browser reuse this connection for host? (certificate DNS SANs only)"""
        return any(cert_covers(s, host) for s in self.peer_sans)

    def request(self, host: str, path: str = "/", method: str = "GET") -> Answer:
        import h2.events

        conn = self._h2
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", method), (":scheme", "https"), (":authority", host),
                                   (":path", path), ("user-agent", "kubectl-gwdup-probe"),
                                   ("accept", "*/*")], end_stream=True)
        self.sock.sendall(conn.data_to_send())
        self.requests += 1
        status, headers, body = 0, [], b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    raise ProbeError("connection closed by the gateway")
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                        for k, v in event.headers:
                            if k == ":status":
                                status = int(v)
                            else:
                                headers.append((k, v))
                    elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, stream)
                    elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                        raise ProbeError(f"stream reset by the gateway (error {event.error_code})")
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        raise ProbeError(f"connection terminated by the gateway (GOAWAY {event.error_code})")
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                        self.sock.sendall(conn.data_to_send())
                        return Answer(status, hashlib.sha256(body).hexdigest(), len(body), tuple(headers))
                out = conn.data_to_send()
                if out:
                    self.sock.sendall(out)
        except socket.timeout:
            raise ProbeError(f"timed out waiting for {host}") from None
        except OSError as exc:
            raise ProbeError(f"{exc.strerror or exc}") from None

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None


def _dns_sans(der: bytes) -> Tuple[str, ...]:
    import base64

    from .certs import parse_pem

    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    return parse_pem(pem).sans


def client_context(cafile: Optional[str] = None, insecure: bool = False) -> ssl.SSLContext:
    """TLS as a browser: h2 (or HTTP/1.1) via ALPN; verify the chain unless --insecure.

    Host-name checking is ours (covers()), because the point is to present a certificate for one
    host and ask for another.
    """
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    if insecure:
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])  # as browsers offer it, so an HTTP/1.1-only chain shows
    return ctx


@dataclass(frozen=True)
class PairReport:
    from_host: str
    to_host: str
    result: ProbeResult
    detail: str
    first: Optional[Answer] = None
    coalesced: Optional[Answer] = None
    direct: Optional[Answer] = None
    requests: int = 0


def probe_pair(address: str, port: int, from_host: str, to_host: str, context: ssl.SSLContext, *,
               timeout: float = 5.0, path: str = "/", method: str = "GET", budget: int = 4,
               direct_address: Optional[str] = None) -> PairReport:
    """Confirm one (from, to) pair with at most `budget` requests: from host and coalesced
    host on one connection, then the coalesced host on its own (twice, to see it is stable)."""
    used = 0
    shared = Connection(address, port, from_host, context, timeout)
    try:
        shared.open()
        first = shared.request(from_host, path, method)
        used += 1
        if not shared.covers(to_host):
            return PairReport(from_host, to_host, ProbeResult.NOT_COALESCED,
                              f"certificate for {from_host} does not cover {to_host}", first, requests=used)
        coalesced = shared.request(to_host, path, method)
        used += 1
    except Http1Only as exc:
        return PairReport(from_host, to_host, ProbeResult.MITIGATED_HTTP1, str(exc), requests=used)
    except WrongEndpoint:
        raise
    except ProbeError as exc:
        return PairReport(from_host, to_host, ProbeResult.UNREACHABLE, str(exc), requests=used + shared.requests)
    finally:
        shared.close()
    if coalesced.status == 421:
        return PairReport(from_host, to_host, ProbeResult.MITIGATED_421,
                          "421 Misdirected Request: a browser retries on a new connection", first, coalesced,
                          requests=used)
    directs: List[Answer] = []
    try:
        for _ in range(2 if budget - used >= 2 else 1):
            own = Connection(direct_address or address, port, to_host, context, timeout)
            try:
                own.open()
                directs.append(own.request(to_host, path, method))
                used += 1
            finally:
                own.close()
    except WrongEndpoint:
        raise
    except ProbeError as exc:
        return PairReport(from_host, to_host, ProbeResult.UNREACHABLE,
                          f"{to_host} on its own connection: {exc}", first, coalesced, requests=used)
    direct = directs[0]
    stable = all(d.digest == direct.digest and d.status == direct.status for d in directs)
    if coalesced.status == direct.status and (coalesced.digest == direct.digest or not stable):
        note = "" if stable else " (its own answer varies, so bodies were not compared)"
        return PairReport(from_host, to_host, ProbeResult.OK,
                          f"answered as on its own connection ({direct.status}){note}",
                          first, coalesced, direct, used)
    if coalesced.status == 404 and direct.status != 404:
        return PairReport(from_host, to_host, ProbeResult.CONFIRMED_404,
                          f"404 on the shared connection, {direct.status} on its own", first, coalesced, direct, used)
    return PairReport(from_host, to_host, ProbeResult.CONFIRMED_MISROUTE,
                      f"{coalesced.status} from another backend on the shared connection "
                      f"({direct.status} on its own)", first, coalesced, direct, used)
