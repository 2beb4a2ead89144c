"""DNS answers for the hosts a hazard involves: where a browser would connect.

A browser pools a connection for a second host only when that host's DNS answer includes the
address the connection went to (Chrome and Firefox compare the address sets). So every hazard
is only as live as the DNS makes it; this module asks.

- Asked with dnspython, over the system's resolver configuration (/etc/resolv.conf) or the
  `--nameserver`s given; A and AAAA, CNAME chains followed (and kept, for the evidence); each
  query bounded by `timeout` (its whole lifetime, retries included; a name whose A query timed
  out is not asked for AAAA), names asked in parallel (`workers` at once), each name once per
  run.
- Every answer is a stranger's: addresses are parsed as IP addresses (anything else is
  dropped), names are lowercased and stripped of their trailing dot, and what went wrong is one
  short reason (`NXDOMAIN`, `timeout after 2s`, `SERVFAIL`, `no address`), never an exception.
- Offline (`--resolve-from FILE`): a hosts file (`ADDRESS NAME...`, `#` comments), and the
  external-dns annotations of the manifests (sources/external_dns.py); a name neither knows is
  `unknown`, not looked up.
"""
from __future__ import annotations

import ipaddress
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import InputError, UsageError

MAX_CHAIN = 16  # CNAMEs followed at most (dnspython follows the chain inside one answer)


@dataclass(frozen=True)
class Answer:
    """What a name resolves to; `error` is set when it could not be told."""

    name: str
    addresses: Tuple[str, ...] = ()
    chain: Tuple[str, ...] = ()  # the CNAME targets followed, in order
    error: str = ""
    source: str = "dns"  # dns | hosts-file | external-dns

    def to_dict(self) -> Dict[str, object]:
        out: Dict[str, object] = {"addresses": list(self.addresses), "source": self.source}
        if self.chain:
            out["cname"] = list(self.chain)
        if self.error:
            out["error"] = self.error
        return out


def normalize(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _address(text: str) -> Optional[str]:
    try:
        return str(ipaddress.ip_address(text.strip().split("%", 1)[0]))
    except ValueError:
        return None


def parse_nameserver(text: str) -> Tuple[str, int]:
    """`IP`, `IP:PORT` or `[IPv6]:PORT` -> (address, port)."""
    m = re.match(r"^\[([^\]]+)\](?::(\d+))?$", text.strip())
    host, port = (m.group(1), m.group(2)) if m else (text.strip(), None)
    if port is None and host.count(":") == 1:
        host, port = host.split(":")
    addr = _address(host)
    if addr is None or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
        raise UsageError(f'invalid --nameserver "{text}": an IP address, optionally with :PORT')
    return addr, int(port or 53)


def parse_hosts(text: str, origin: str) -> Dict[str, Answer]:
    """A hosts file: `ADDRESS NAME [NAME...]` per line, `#` comments. A name listed on several
    lines gets every address (as getaddrinfo returns them)."""
    found: Dict[str, List[str]] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        addr = _address(parts[0])
        if addr is None or len(parts) < 2:
            raise InputError(f"{origin}:{n}: not `ADDRESS NAME...`: {raw.strip()[:80]!r}")
        for name in parts[1:]:
            found.setdefault(normalize(name), []).append(addr)
    return {name: Answer(name, tuple(sorted(set(addrs))), source="hosts-file") for name, addrs in found.items()}


@dataclass
class Resolver:
    nameservers: Sequence[Tuple[str, int]] = ()
    timeout: float = 2.0
    workers: int = 16
    cache: Dict[str, Answer] = field(default_factory=dict)
    queries: int = 0

    def _client(self) -> object:
        import dns.resolver

        if self.nameservers:
            r = dns.resolver.Resolver(configure=False)
            r.nameservers = [a for a, _ in self.nameservers]
            r.nameserver_ports = {a: p for a, p in self.nameservers}
        else:
            try:
                r = dns.resolver.Resolver()
            except (dns.resolver.NoResolverConfiguration, OSError) as exc:
                raise UsageError(f"no DNS resolver configured ({exc}): give --nameserver") from None
        r.timeout = self.timeout
        r.lifetime = self.timeout
        return r

    def resolve(self, names: Iterable[str]) -> Dict[str, Answer]:
        """Every name's answer (each asked once per run), in parallel, each bounded in time."""
        wanted = sorted({normalize(n) for n in names} - set(self.cache))
        if wanted:
            client = self._client()
            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(wanted)))) as pool:
                for answer in pool.map(lambda n: self._one(client, n), wanted):
                    self.cache[answer.name] = answer
        return {normalize(n): self.cache[normalize(n)] for n in names}

    def _one(self, client: object, name: str) -> Answer:
        import dns.exception
        import dns.name
        import dns.rdatatype
        import dns.resolver

        addresses: List[str] = []
        chain: List[str] = []
        errors: List[str] = []
        for rdtype in ("A", "AAAA"):
            self.queries += 1
            try:
                answer = client.resolve(name, rdtype, search=False, raise_on_no_answer=False,  # type: ignore[attr-defined]
                                        lifetime=self.timeout)
            except dns.resolver.NXDOMAIN:
                return Answer(name, error="NXDOMAIN")
            except dns.resolver.LifetimeTimeout:
                errors.append(f"timeout after {self.timeout:g}s")
                break  # a server silent for A is not asked for AAAA: one bound per name
            except dns.resolver.NoNameservers as exc:
                errors.append("SERVFAIL" if "SERVFAIL" in str(exc) else "no nameserver answered")
                continue
            except (dns.resolver.YXDOMAIN, dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel):
                return Answer(name, error="not a valid DNS name")
            except dns.exception.DNSException as exc:
                errors.append(type(exc).__name__)
                continue
            response = answer.response
            for rrset in response.answer:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    for rd in rrset:
                        target = normalize(rd.target.to_text())
                        if target not in chain and len(chain) < MAX_CHAIN:
                            chain.append(target)
                elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    for rd in rrset:
                        addr = _address(rd.address)
                        if addr is not None:
                            addresses.append(addr)
        if addresses:
            return Answer(name, tuple(sorted(set(addresses))), tuple(chain))
        return Answer(name, (), tuple(chain), errors[0] if errors else "no address")


def merged(*layers: Mapping[str, Answer]) -> Dict[str, Answer]:
    """Answers from several offline sources: the first that knows a name wins."""
    out: Dict[str, Answer] = {}
    for layer in layers:
        for name, answer in layer.items():
            out.setdefault(name, answer)
    return out
