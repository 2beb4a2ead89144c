"""deploy/: what `kubectl apply -f deploy/` installs, validated by what consumes it: a server
dry run by the real kubectl, the serve command's own flag parser for the container's args,
the init container's script run on the built archive, and the zipapp users install serving
/metrics on Python 3.9 and 3.13."""
from __future__ import annotations

import glob
import hashlib
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from watching import ROOT

DEPLOY = os.path.join(ROOT, "deploy")


def docs_of(*patterns: str):
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(DEPLOY, pattern))):
            with open(path) as f:
                out += [d for d in yaml.safe_load_all(f) if d]
    return out


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def test_the_manifests_agree_with_each_other() -> None:
    docs = docs_of("*.yaml", "optional/*.yaml")
    (sa,) = by_kind(docs, "ServiceAccount")
    (deploy,) = by_kind(docs, "Deployment")
    (svc,) = by_kind(docs, "Service")
    (monitor,) = by_kind(docs, "ServiceMonitor")
    pod = deploy["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    for binding in by_kind(docs, "ClusterRoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                        "namespace": sa["metadata"]["namespace"]}]
        assert binding["roleRef"]["name"] in {r["metadata"]["name"] for r in by_kind(docs, "ClusterRole")}
    labels = pod["metadata"]["labels"]
    assert deploy["spec"]["selector"]["matchLabels"] == labels
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert all(svc["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    (serve,) = pod["spec"]["containers"]
    port_names = {p["name"] for p in serve["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        assert serve[probe]["httpGet"] == {"path": path, "port": "http-metrics"}
    sc = serve["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"]
    assert any(m["mountPath"] == "/tmp" for m in serve["volumeMounts"]), "SHIV_ROOT must be writable"
    env = {e["name"]: e.get("value") for e in serve["env"]}
    assert env["SHIV_ROOT"].startswith("/tmp/")


def test_the_container_args_are_serve_flags_this_version_accepts() -> None:
    from kubectl_gwdup.cli.main import parse
    from kubectl_gwdup.commands import serve
    from kubectl_gwdup.env import Env

    (deploy,) = by_kind(docs_of("50-deployment.yaml"), "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    args = parse(container["args"], "kubectl-gwdup")
    opts = serve.Options.from_args(args, Env(environ={}))
    opts.validate()
    assert opts.listen.endswith(":9090") and not (opts.write_conditions or opts.write_events or opts.read_secrets)
    with_writes = parse(container["args"] + ["--write-conditions", "--write-events", "--read-secrets"], "kubectl-gwdup")
    serve.Options.from_args(with_writes, Env(environ={})).validate()


def test_read_only_by_default_and_secrets_only_when_asked() -> None:
    base = [r for d in docs_of("20-clusterrole.yaml") for r in d["rules"]]
    assert {v for r in base for v in r["verbs"]} == {"list", "watch"}
    assert not any("secrets" in r["resources"] for r in base)
    writes = [r for d in docs_of("optional/writes.yaml") if d["kind"] == "ClusterRole" for r in d["rules"]]
    assert {v for r in writes for v in r["verbs"]} == {"patch", "create"}
    assert {res for r in writes for res in r["resources"]} == {"gateways/status", "listenersets/status", "events"}


def test_kubectl_server_dry_run_accepts_deploy(cluster) -> None:
    from test_kubeconfig import KUBECTL, kubectl

    if KUBECTL is None:
        pytest.skip("kubectl not installed")
    env = {k: v for k, v in cluster.env.items() if k != "HOME"}
    code, _ = cluster.call("GET", "/api/v1/namespaces/gwdup-system")
    if code == 404:  # the namespace must exist for a server dry run of what goes in it
        made = kubectl("apply", "--validate=false", "-f", os.path.join(DEPLOY, "00-namespace.yaml"), env=env)
        assert made.returncode == 0, made.stderr
        cluster.namespaces.append("gwdup-system")
    for target in (DEPLOY, os.path.join(DEPLOY, "optional", "writes.yaml"), os.path.join(DEPLOY, "optional", "secrets.yaml")):
        # --validate=false: the emulator serves no /openapi for kubectl's client-side field check
        r = kubectl("apply", "--dry-run=server", "--validate=false", "-f", target, env=env)
        assert r.returncode == 0, r.stderr
        assert "(server dry run)" in r.stdout, r.stdout
    code, body = cluster.call("GET", "/apis/apps/v1/namespaces/gwdup-system/deployments/kubectl-gwdup")
    assert code == 404, "a dry run stores nothing"


def test_kubectl_apply_f_deploy_works_on_a_fresh_cluster(cluster, emulator_only) -> None:
    """One `kubectl apply -f deploy/`: kubectl applies a directory's files in name order, so the
    Namespace must come first. (Emulator only: on a real cluster this would run the pod.)"""
    from test_kubeconfig import KUBECTL, kubectl

    if KUBECTL is None:
        pytest.skip("kubectl not installed")
    assert cluster.call("GET", "/api/v1/namespaces/gwdup-system")[0] == 404
    cluster.namespaces.append("gwdup-system")
    env = {k: v for k, v in cluster.env.items() if k != "HOME"}
    r = kubectl("apply", "--validate=false", "-f", DEPLOY, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "namespace/gwdup-system created", "serviceaccount/kubectl-gwdup created",
        "clusterrole.rbac.authorization.k8s.io/kubectl-gwdup-read created",
        "clusterrolebinding.rbac.authorization.k8s.io/kubectl-gwdup-read created",
        "service/kubectl-gwdup created", "deployment.apps/kubectl-gwdup created"], r.stdout
    for kind in ("clusterroles", "clusterrolebindings"):
        cluster.call("DELETE", f"/apis/rbac.authorization.k8s.io/v1/{kind}/kubectl-gwdup-read")


def _init_script() -> str:
    (deploy,) = by_kind(docs_of("50-deployment.yaml"), "Deployment")
    (init,) = deploy["spec"]["template"]["spec"]["initContainers"]
    assert init["command"] == ["python3", "-c"]
    return init["args"][0]


def test_the_init_container_refuses_the_unfilled_sha256(tmp_path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"not the release")
    (deploy,) = by_kind(docs_of("50-deployment.yaml"), "Deployment")
    (init,) = deploy["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    env.update(GWDUP_ARCHIVE_URL=archive.as_uri(), GWDUP_INSTALL_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", _init_script()], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "refusing it" in r.stderr, r.stderr
    assert not (tmp_path / "kubectl-gwdup").exists()


def test_the_built_deploy_installs_the_released_archive(built, tmp_path) -> None:
    src, _ = built
    archive = src / "dist" / "kubectl-gwdup-any.tar.gz"
    with open(src / "dist" / "deploy" / "50-deployment.yaml") as f:
        (deploy,) = [d for d in yaml.safe_load_all(f) if d and d["kind"] == "Deployment"]
    (init,) = deploy["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["GWDUP_ARCHIVE_SHA256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert env["GWDUP_ARCHIVE_URL"].endswith("/kubectl-gwdup-any.tar.gz")
    env.update(GWDUP_ARCHIVE_URL=archive.as_uri(), GWDUP_INSTALL_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", init["args"][0]], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "verified" in r.stdout, r.stderr
    app = tmp_path / "kubectl-gwdup"
    assert app.read_bytes() == (src / "dist" / "any" / "kubectl-gwdup").read_bytes()


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_the_zipapp_serves_metrics(version, built, tmp_path, certs, emulator_only) -> None:
    """What the Deployment runs: the zipapp's serve, here on each Python, against the emulator."""
    from conftest import interpreter
    from kube import write_kubeconfig

    python = interpreter(version)
    app = str(built[0] / "dist" / "any" / "kubectl-gwdup")
    kc = write_kubeconfig(str(tmp_path / "config"), emulator_only.url, certs.ca_cert, "admin-token")
    env = {"PATH": os.environ.get("PATH", ""), "KUBECONFIG": kc, "HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "shiv")}
    proc = subprocess.Popen([python, app, "serve", "--listen", "127.0.0.1:0"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        line = proc.stderr.readline()
        port = int(re.search(r":(\d+)\s*$", line).group(1))
        from test_serve import get

        deadline = time.monotonic() + 60
        while get(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline and proc.poll() is None, line
            time.sleep(0.1)
        code, text = get(port, "/metrics")
        assert code == 200 and "gwdup_build_info" in text and "gwdup_watched_objects" in text
    finally:
        proc.terminate()  # SIGTERM, as the kubelet stops it
        assert proc.wait(timeout=30) == 0
