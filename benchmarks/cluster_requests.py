"""API cost of `check` against the emulator: 5,000 Gateways in 500 namespaces.

Counts requests by kind, and times `check` side by side with the same paged LISTs done by the
bare kubernetes client (CustomObjectsApi/CoreV1Api), in one run.
"""
from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), HERE]

from certs import make_pem  # noqa: E402
from certfactory import CertFactory  # noqa: E402
from emulator.server import Emulator  # noqa: E402
from kube import write_kubeconfig  # noqa: E402

GATEWAYS, NAMESPACES, SECRETS = 5000, 500, 1000


def namespaces_and_workload(emu: Emulator, namespaces: int) -> None:
    """istio-system with the ingress gateway's Pod and Service (443 -> 8443), and ns-0.. ns-N."""
    emu.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    for n in range(namespaces):
        emu.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}"}})
    emu.put_object({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "istio-ingressgateway-0", "namespace": "istio-system", "labels": {"istio": "ingressgateway"}}})
    emu.put_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-ingressgateway",
                    "namespace": "istio-system"}, "spec": {"selector": {"istio": "ingressgateway"},
                                                           "ports": [{"port": 443, "targetPort": 8443}]}})


def populate(emu: Emulator) -> None:
    import base64

    namespaces_and_workload(emu, NAMESPACES)
    for s in range(SECRETS):
        sans = [f"h{i}.team{i % NAMESPACES}.example.com" for i in range(s * 5, s * 5 + 5)]
        emu.put_object({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                        "metadata": {"name": f"cert-{s}", "namespace": "istio-system"},
                        "data": {"tls.crt": base64.b64encode(make_pem(sans, s)).decode(), "tls.key": ""}})
    for i in range(GATEWAYS):
        ns = f"ns-{i % NAMESPACES}"
        emu.put_object({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                        "metadata": {"name": f"gw-{i}", "namespace": ns},
                        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                            "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                            "hosts": [f"h{i}.team{i % NAMESPACES}.example.com"],
                            "tls": {"mode": "SIMPLE", "credentialName": f"cert-{i // 5}"}}]}})
        emu.put_object({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                        "metadata": {"name": f"vs-{i}", "namespace": ns},
                        "spec": {"hosts": [f"h{i}.team{i % NAMESPACES}.example.com"], "gateways": [f"gw-{i}"]}})


def run_check(kubeconfig: str) -> int:
    from kubectl_gwdup.cli.main import main
    from kubectl_gwdup.env import Env

    return main(["check"], Env(stdout=io.StringIO(), stderr=io.StringIO(),
                                             environ={"KUBECONFIG": kubeconfig, "HOME": "/nonexistent"}))


def bare_lists(kubeconfig: str) -> None:
    """The same reads with the bare client: the floor `check` is compared against."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    for plural in ("gateways", "virtualservices"):
        cont = None
        while True:
            page = custom.list_cluster_custom_object("networking.istio.io", "v1", plural, limit=500, _continue=cont)
            cont = page["metadata"].get("continue")
            if not cont:
                break
    core.list_pod_for_all_namespaces(label_selector="istio=ingressgateway", limit=500)
    core.list_service_for_all_namespaces(limit=500)
    cont = None
    while True:
        page = core.list_namespaced_secret("istio-system", field_selector="type=kubernetes.io/tls",
                                           limit=500, _continue=cont)
        cont = page.metadata._continue
        if not cont:
            break


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def serve(cert: str, key: str) -> None:
    """The API server side, in its own process (as a real API server is): prints its URL,
    then answers until stdin closes; a line on stdin asks for the request log."""
    import json as _json

    emu = Emulator(cert, key).start()
    populate(emu)
    print(emu.url, flush=True)
    for line in sys.stdin:
        print(_json.dumps(emu.log), flush=True)
        emu.log.clear()
    emu.stop()


def main() -> None:
    import json as _json

    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3])
        return
    tmp = tempfile.mkdtemp()
    certs = CertFactory(tmp)
    leaf = certs.leaf("localhost", "IP:127.0.0.1")
    server = subprocess.Popen([sys.executable, __file__, "serve", leaf.cert_path, leaf.key_path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        kc = write_kubeconfig(os.path.join(tmp, "config"), url, certs.ca_cert, "admin-token")
        server.stdin.write("\n")
        server.stdin.flush()
        server.stdout.readline()  # clears the log
        status = run_check(kc)
        server.stdin.write("\n")
        server.stdin.flush()
        log = _json.loads(server.stdout.readline())
        kinds = Counter()
        for method, path, query in log:
            kind = path.rstrip("/").split("/")[-1] if "/secrets/" not in path else "secrets (GET)"
            kinds[f"{method} {kind}" + (" (LIST page)" if "limit" in query else "")] += 1
        print(f"check over {GATEWAYS} Gateways / {NAMESPACES} namespaces / {SECRETS} Secrets: "
              f"exit {status}, {len(log)} requests")
        for k, n in sorted(kinds.items()):
            print(f"  {n:>4}  {k}")
        # interleaved pairs, so a change in machine load hits both sides alike
        pairs = [(timed(lambda: run_check(kc), 1), timed(lambda: bare_lists(kc), 1)) for _ in range(9)]
        check_s = statistics.median(c for c, _ in pairs)
        bare_s = statistics.median(b for _, b in pairs)
        ratio = statistics.median(c / b for c, b in pairs)
        print(f"check: {check_s:.3f} s   bare kubernetes client, same LISTs: {bare_s:.3f} s   "
              f"median ratio of 9 interleaved pairs {ratio:.2f}x")
    finally:
        server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
