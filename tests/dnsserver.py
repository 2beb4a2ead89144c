"""A real DNS server on loopback for tests: Debian's dnsmasq, configured by the test.

Only the names the test gives exist: no upstream, no /etc/hosts, no /etc/resolv.conf; names
under `local` domains not given are NXDOMAIN (dnsmasq's --local); names under `blackhole`
domains are forwarded to a UDP socket that never answers, so asking them times out.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple


def dnsmasq_binary() -> Optional[str]:
    return shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DnsServer:
    def __init__(self, records: Dict[str, Sequence[str]], cnames: Sequence[Tuple[str, str]] = (),
                 local: Sequence[str] = (), blackhole: Sequence[str] = ()) -> None:
        binary = dnsmasq_binary()
        if binary is None:
            import pytest

            pytest.skip("dnsmasq not installed (make dns)")
        self.dir = tempfile.mkdtemp(prefix="gwdup-dns-")
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # answers nothing
        self.sink.bind(("127.0.0.1", 0))
        lines = ["listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts",
                 "no-negcache", "pid-file=", "user=root" if os.getuid() == 0 else "# not root"]
        for name, addrs in records.items():
            lines.append(f"host-record={name},{','.join(addrs)}")
        for alias, target in cnames:
            lines.append(f"cname={alias},{target}")
        lines += [f"local=/{d}/" for d in local]
        lines += [f"server=/{d}/127.0.0.1#{self.sink.getsockname()[1]}" for d in blackhole]
        conf = os.path.join(self.dir, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        for attempt in range(5):  # dnsmasq binds UDP and TCP: a port free for one may not be for both
            self.port = _free_udp_port()
            self.proc = subprocess.Popen([binary, "--keep-in-foreground", f"--conf-file={conf}", f"--port={self.port}"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                self._wait_ready()
                return
            except RuntimeError as exc:
                if "Address already in use" not in str(exc) or attempt == 4:
                    raise

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 10.0) -> None:
        import dns.message
        import dns.query

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self.proc.stderr.read().decode()[-500:]}")
            try:
                dns.query.udp(dns.message.make_query("ready.invalid", "A"), "127.0.0.1", timeout=0.3, port=self.port)
                return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        raise RuntimeError("dnsmasq did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.sink.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "DnsServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def records_of(pairs: List[Tuple[str, str]]) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for name, addr in pairs:
        out.setdefault(name, []).append(addr)
    return out
