"""Envoy CPU per request with no mitigation, with `--method vhost` and with `--method lua`.

The seed scenario is served by the real Envoy (the test harness's istiod-like translation),
once per variant; each gets the same bounded HTTP/2 load on loopback (ROUNDS x BATCH requests
for the host the connection was opened for, which every request pays for, and the same for a
coalesced host, which gets 421 once mitigated). Envoy's own CPU time (all threads, from
/proc/<pid>/task/*/schedstat) is read around each batch; variants are interleaved round by round, so a change in
machine load hits all three alike. Prints microseconds of Envoy CPU per request and ratios.
"""
from __future__ import annotations

import os
import socket
import ssl
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402

from certfactory import CertFactory  # noqa: E402
from conftest import SCENARIOS, render_scenario  # noqa: E402
from envoy_harness import apply_envoyfilters, serve  # noqa: E402
from kubectl_gwdup.analysis import registry  # noqa: E402
from kubectl_gwdup.inventory import build_inventory  # noqa: E402
from kubectl_gwdup.plans.misdirect421 import Method421, plan_421  # noqa: E402
from kubectl_gwdup.sources.files import load_files  # noqa: E402

ROUNDS, BATCH = int(os.environ.get("ROUNDS", "15")), int(os.environ.get("BATCH", "400"))


def cpu_seconds(pid: int) -> float:
    """CPU time of every Envoy thread, in nanosecond resolution (schedstat), as seconds."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def batch(port: int, sni: str, host: str, ca: str, n: int) -> int:
    """n requests for `host` on one connection opened for `sni`, all streams in flight at once."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=sni)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: n})
    statuses = []
    sent = 0
    while len(statuses) < n:
        while sent < n and conn.open_outbound_streams < 100:
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", "/")],
                              end_stream=True)
            sent += 1
        sock.sendall(conn.data_to_send())
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                statuses.append(dict(ev.headers)[b":status"].decode())
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        sock.sendall(conn.data_to_send())
    sock.close()
    return len(statuses)


def main() -> None:
    import h2.settings  # noqa: F401

    certs = CertFactory(tempfile.mkdtemp())
    work = tempfile.mkdtemp()
    paths = []
    for name in ("_workload.yaml", "seed.yaml"):
        path = os.path.join(work, name)
        with open(os.path.join(SCENARIOS, name)) as f:
            text = render_scenario(certs, f.read())
        if name == "seed.yaml":  # give each Gateway its routes, as a cluster would have them
            text += "".join(f"""---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {gw}-routes, namespace: {ns}}}
spec:
  hosts: [{host}]
  gateways: [{gw}]
  http: [{{route: [{{destination: {{host: backend}}}}]}}]
""" for gw, ns, host in (("gw-a", "team-a", "a.example.com"), ("gw-b", "team-b", "b.example.com"),
                         ("gw-c", "team-c", "c.example.com")))
        open(path, "w").write(text)
        paths.append(path)
    inv = build_inventory(load_files(paths))
    findings = registry.run(inv).findings
    variants = {"none": []}
    for m in Method421:
        variants[m.value] = plan_421(inv, findings, m).objects
    gateways = {k: serve(inv, certs, lambda c, p, objs=objs: apply_envoyfilters(c, inv, objs))
                for k, objs in variants.items()}
    try:
        per: dict = {(k, kind): [] for k in variants for kind in ("own host", "coalesced host")}
        deadline = time.monotonic() + 300  # bounded, whatever the machine does
        for _ in range(ROUNDS):
            for k, gw in gateways.items():
                port = next(iter(gw.ports.values()))
                for kind, host in (("own host", "a.example.com"), ("coalesced host", "b.example.com")):
                    before = cpu_seconds(gw.process.pid)
                    done = batch(port, "a.example.com", host, certs.ca_cert, BATCH)
                    per[(k, kind)].append((cpu_seconds(gw.process.pid) - before) / done)
            if time.monotonic() > deadline:
                break
        print(f"Envoy CPU per request, median of {len(per[('none', 'own host')])} rounds of {BATCH} "
              f"requests (one h2 connection each):")
        print(f"{'variant':<8} {'own host us':>12} {'x none':>7} {'coalesced host us':>18} {'x none':>7}")
        base = {kind: statistics.median(per[("none", kind)]) for kind in ("own host", "coalesced host")}
        for k in variants:
            own = statistics.median(per[(k, "own host")])
            co = statistics.median(per[(k, "coalesced host")])
            print(f"{k:<8} {own * 1e6:>12.1f} {own / base['own host']:>7.2f} "
                  f"{co * 1e6:>18.1f} {co / base['coalesced host']:>7.2f}")
    finally:
        for gw in gateways.values():
            gw.stop()


if __name__ == "__main__":
    main()
