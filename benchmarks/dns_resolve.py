"""DNS resolution at mesh scale: 20,000 names (A and AAAA each) asked of dnsmasq on loopback
by sources/dns.py's Resolver, as `check --resolve --nameserver` asks them; printed: the time,
names per second, queries sent, and the answers' split (a fifth of the names are NXDOMAIN).

    python benchmarks/dns_resolve.py [--names N] [--workers N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from dnsserver import DnsServer  # noqa: E402
from kubectl_gwdup.sources.dns import Resolver  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()
    known = {f"h{i}.team{i % 500}.example.com": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"]
             for i in range(args.names) if i % 5}
    names = [f"h{i}.team{i % 500}.example.com" for i in range(args.names)]
    with DnsServer(known, local=["example.com"]) as server:
        for workers in sorted({1, args.workers}):
            if workers == 1 and args.names > 2000:
                sample = names[:2000]
            else:
                sample = names
            resolver = Resolver([("127.0.0.1", server.port)], timeout=2.0, workers=workers)
            t = time.monotonic()
            answers = resolver.resolve(sample)
            took = time.monotonic() - t
            split = Counter("address" if a.addresses else a.error for a in answers.values())
            print(f"{len(sample)} names, {workers} worker(s): {took:.2f}s, {len(sample) / took:.0f} names/s, "
                  f"{resolver.queries} queries; {dict(split)}")


if __name__ == "__main__":
    main()
