"""Envoy CPU per request with no mitigation and with each apply-421 method (vhost, lua, http1).

The seed scenario with its routes is served by the real Envoy (tests/istiod_translate.py, the
plans applied by tests/envoyfilter_patch.py), once per variant; each gets the same bounded load
on loopback (ROUNDS x BATCH requests for the host the connection was opened for, which every
request pays for, and the same for a coalesced host, which gets 421 once mitigated; http1
answers its own host over HTTP/1.1 and has no coalesced requests at all). Envoy's own CPU time (all threads, from
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
import h2.settings  # noqa: E402

from certfactory import CertFactory  # noqa: E402
from conftest import SCENARIOS, render_scenario  # noqa: E402
import envoyfilter_patch  # noqa: E402
import yaml  # noqa: E402
from istiod_translate import Envoy, Translation, new_workdir  # noqa: E402
from kubectl_gwdup.analysis import registry  # noqa: E402
from kubectl_gwdup.inventory import build_inventory  # noqa: E402
from kubectl_gwdup.model import Input  # noqa: E402
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


def batch_http1(port: int, sni: str, host: str, ca: str, n: int) -> int:
    """n HTTP/1.1 requests for `host`, one after the other (as browsers send them; Envoy does
    not pipeline), on one keep-alive connection opened for `sni`: what the http1 method leaves
    browsers with."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["http/1.1"])
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=sni)
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    done = 0
    for _ in range(n):
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return done
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return done
            body += chunk
        done += 1
    sock.close()
    return done


def main() -> None:
    certs = CertFactory(tempfile.mkdtemp())
    docs = []
    for name in ("_workload.yaml", "seed_routed.yaml"):
        with open(os.path.join(SCENARIOS, name)) as f:
            docs += [d for d in yaml.safe_load_all(render_scenario(certs, f.read())) if d]
    path = os.path.join(tempfile.mkdtemp(), "manifests.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f)
    raw = load_files([path])
    raw.available.update((Input.CERTIFICATES, Input.VIRTUAL_SERVICES))
    inv = build_inventory(raw)
    findings = registry.run(inv).findings
    variants = {"none": []}
    for m in Method421:
        variants[m.value] = plan_421(inv, findings, m).objects
    envoys = {}
    for k, objs in variants.items():
        t = Translation(docs, new_workdir(), None)
        envoyfilter_patch.apply(t, objs)
        envoys[k] = (Envoy(t), next(iter(t.ports.values())))
    try:
        per: dict = {(k, kind): [] for k in variants for kind in ("own host", "coalesced host")}
        deadline = time.monotonic() + 300  # bounded, whatever the machine does
        for _ in range(ROUNDS):
            for k, (envoy, port) in envoys.items():
                pid = envoy.proc.pid
                for kind, host in (("own host", "a.example.com"), ("coalesced host", "b.example.com")):
                    if k == "http1" and kind == "coalesced host":
                        continue  # HTTP/1.1 connections are never pooled for another host
                    send = batch_http1 if k == "http1" else batch
                    before = cpu_seconds(pid)
                    done = send(port, "a.example.com", host, certs.ca_cert, BATCH)
                    per[(k, kind)].append((cpu_seconds(pid) - before) / done)
            if time.monotonic() > deadline:
                break
        print(f"Envoy CPU per request, median of {len(per[('none', 'own host')])} rounds of {BATCH} "
              f"requests (one connection each; h2, HTTP/1.1 for http1):")
        print(f"{'variant':<8} {'own host us':>12} {'x none':>7} {'coalesced host us':>18} {'x none':>7}")
        base = {kind: statistics.median(per[("none", kind)]) for kind in ("own host", "coalesced host")}
        for k in variants:
            own = statistics.median(per[(k, "own host")])
            line = f"{k:<8} {own * 1e6:>12.1f} {own / base['own host']:>7.2f} "
            if per[(k, "coalesced host")]:
                co = statistics.median(per[(k, "coalesced host")])
                line += f"{co * 1e6:>18.1f} {co / base['coalesced host']:>7.2f}"
            else:
                line += f"{'never pooled':>18} {'-':>7}"
            print(line)
    finally:
        for envoy, _ in envoys.values():
            envoy.stop()


if __name__ == "__main__":
    main()
