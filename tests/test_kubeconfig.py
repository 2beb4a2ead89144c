"""kubeconfig semantics against the real kubectl: same context, server, namespace and user."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
import yaml

from conftest import run_cli
from kubectl_gwdup.errors import ConfigError
from kubectl_gwdup.sources import kubeconfig

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


def kubectl(*args: str, env: dict) -> subprocess.CompletedProcess:
    # a HOME of its own: kubectl writes its discovery cache there (~/.kube/cache)
    home = tempfile.mkdtemp(prefix="gwdup-kubectl-home-")
    try:
        return subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=60,
                              env={"PATH": os.environ.get("PATH", ""), "HOME": home, **env})
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def configs(tmp_path, certs, emulator_only):
    """Two kubeconfig files that disagree, relative CA paths, tokens for users alice and bob."""
    emulator_only.tokens.update({"token-a": "alice", "token-b": "bob"})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(certs.ca_cert, tmp_path / "a" / "ca.crt")
    shutil.copy(certs.ca_cert, tmp_path / "b" / "ca.crt")
    url = emulator_only.url
    a = {"apiVersion": "v1", "kind": "Config", "current-context": "ctx-a",
         "clusters": [{"name": "c1", "cluster": {"server": url, "certificate-authority": "ca.crt"}},
                      {"name": "shared", "cluster": {"server": "https://127.0.0.1:1", "certificate-authority": "ca.crt"}}],
         "users": [{"name": "u1", "user": {"token": "token-a"}}],
         "contexts": [{"name": "ctx-a", "context": {"cluster": "c1", "user": "u1", "namespace": "ns-a"}},
                      {"name": "ctx-shared", "context": {"cluster": "shared", "user": "u1"}}]}
    b = {"apiVersion": "v1", "kind": "Config", "current-context": "ctx-b",
         "clusters": [{"name": "c2", "cluster": {"server": url, "certificate-authority": "ca.crt"}},
                      {"name": "shared", "cluster": {"server": url, "certificate-authority": "ca.crt"}}],
         "users": [{"name": "u2", "user": {"token": "token-b"}}],
         "contexts": [{"name": "ctx-b", "context": {"cluster": "c2", "user": "u2", "namespace": "ns-b"}},
                      {"name": "ctx-a", "context": {"cluster": "c2", "user": "u2", "namespace": "shadow"}}]}
    pa, pb = tmp_path / "a" / "config", tmp_path / "b" / "config"
    pa.write_text(yaml.safe_dump(a))
    pb.write_text(yaml.safe_dump(b))
    return str(pa), str(pb)


def ours(paths, **flags) -> kubeconfig.Selection:
    return kubeconfig.select(kubeconfig.load_merged(paths), **flags)


@needs_kubectl
@pytest.mark.parametrize("order", ["ab", "ba"])
@pytest.mark.parametrize("context", [None, "ctx-a", "ctx-b", "ctx-shared"])
def test_context_server_namespace_match_kubectl(configs, order, context) -> None:
    paths = list(configs) if order == "ab" else list(reversed(configs))
    env = {"KUBECONFIG": os.pathsep.join(paths), "GWDUP_RESOLVE": "false"}
    extra = ["--context", context] if context else []
    want_ctx = context or kubectl("config", "current-context", env=env).stdout.strip()
    view = kubectl("config", "view", "--minify", *extra, "-o",
                   "jsonpath={.clusters[0].cluster.server}|{.contexts[0].context.namespace}|{.users[0].name}",
                   env=env)
    assert view.returncode == 0, view.stderr
    server, ns, user = view.stdout.split("|")
    sel = ours(paths, context=context)
    assert (sel.context, sel.server, sel.namespace, sel.user) == (want_ctx, server, ns or "default", user)


def _forbidden_user(text: str) -> str:
    return text.split('User "', 1)[1].split('"', 1)[0]


@needs_kubectl
@pytest.mark.parametrize("flags", [[], ["--user", "u2"], ["--context", "ctx-b", "--user", "u1"],
                                   ["--cluster", "shared"], ["--context", "ctx-shared", "--cluster", "c1"]])
def test_cluster_and_user_overrides_reach_the_same_server_as_kubectl(configs, emulator_only, flags) -> None:
    env = {"KUBECONFIG": os.pathsep.join(configs), "GWDUP_RESOLVE": "false"}
    emulator_only.deny.append(("*", "list", "networking.istio.io", "gateways"))
    try:
        theirs = kubectl("get", "gateways.networking.istio.io", "-A", "--request-timeout", "5s", *flags, env=env)
        mine = run_cli(["check", "--request-timeout", "5s", *flags], env)
    finally:
        emulator_only.deny.pop()
    assert theirs.returncode != 0 and mine.status == 1
    if "Forbidden" in theirs.stderr:
        assert mine.stderr.startswith("Error from server (Forbidden)")
        assert _forbidden_user(mine.stderr) == _forbidden_user(theirs.stderr)
    else:  # both went to the closed port
        assert "127.0.0.1:1" in theirs.stderr and "Unable to connect to the server" in mine.stderr


def test_first_file_setting_current_context_wins(configs) -> None:
    a, b = configs
    assert ours([a, b]).context == "ctx-a" and ours([a, b]).namespace == "ns-a"
    assert ours([b, a]).context == "ctx-b"
    # ctx-a is defined in both files: the first definition wins
    assert ours([b, a], context="ctx-a").namespace == "shadow"


def test_relative_paths_resolve_against_their_file(configs) -> None:
    sel = ours(list(configs))
    assert sel.config["clusters"][0]["cluster"]["certificate-authority"] == os.path.join(
        os.path.dirname(configs[0]), "ca.crt")


def test_missing_files_are_skipped_never_in_cluster(tmp_path, configs) -> None:
    paths, in_cluster = kubeconfig.config_paths(None, {"KUBECONFIG": f"/nonexistent:{configs[0]}"})
    assert paths == [configs[0]] and in_cluster is False
    paths, in_cluster = kubeconfig.config_paths(None, {"KUBECONFIG": "/nonexistent/a:/nonexistent/b",
                                                      "KUBERNETES_SERVICE_HOST": "10.0.0.1",
                                                      "KUBERNETES_SERVICE_PORT": "443"})
    assert paths == [] and in_cluster is False
    result = run_cli(["check"], {"KUBECONFIG": "/nonexistent/a:/nonexistent/b", "KUBERNETES_SERVICE_HOST": "x",
                                 "KUBERNETES_SERVICE_PORT": "443"})
    assert result.status == 1
    assert result.stderr == ("error: no kubeconfig found (KUBECONFIG=/nonexistent/a:/nonexistent/b) "
                             "and not running in a cluster\n")


def test_explicit_kubeconfig_must_exist() -> None:
    with pytest.raises(ConfigError, match="stat /nonexistent/config: no such file"):
        kubeconfig.config_paths("/nonexistent/config", {})


@pytest.mark.parametrize("flags,message", [
    ({"context": "nope"}, 'context "nope" does not exist'),
    ({"user": "nobody"}, 'user "nobody" does not exist'),
    ({"cluster": "nowhere"}, 'no server found for cluster "nowhere"'),
])
def test_bad_names_are_clear_errors(configs, flags, message) -> None:
    with pytest.raises(ConfigError, match=message):
        ours(list(configs), **flags)


def test_in_cluster_config(tmp_path, certs, emulator_only, monkeypatch) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("admin-token")
    (sa / "namespace").write_text("istio-system")
    shutil.copy(certs.ca_cert, sa / "ca.crt")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", str(sa))
    port = emulator_only.url.rsplit(":", 1)[1]
    env = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port,
           "GWDUP_RESOLVE": "false"}
    result = run_cli(["check", "-v", "6"], env)
    assert result.status == 0, result.stderr
    assert f"GET https://127.0.0.1:{port}/apis/networking.istio.io" in result.stderr


@pytest.mark.parametrize("cluster_extra,user,message", [
    ('certificate-authority-data: "!!notbase64"', "token: x", "certificate-authority-data: illegal base64 data"),
    ("", "auth-provider: {name: gcp, config: {}}", "The gcp auth plugin has been removed"),
    ('proxy-url: "::not a url"', "token: x", 'proxy-url "::not a url"'),
    ("", "exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: /nonexistent/plugin}",
     "getting credentials: exec: executable /nonexistent/plugin not found"),
])
def test_kubeconfigs_kubectl_refuses_are_one_line_errors(tmp_path, cluster_extra, user, message) -> None:
    """Refused before any request, as kubectl refuses them: no internal error, no library logs."""
    path = tmp_path / "config"
    extra = f", {cluster_extra}" if cluster_extra else ""
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    f'clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:1"{extra}}}}}]\n'
                    f"users: [{{name: u, user: {{{user}}}}}]\n"
                    "contexts: [{name: c, context: {cluster: c, user: u}}]\n")
    r = run_cli(["check", "--kubeconfig", str(path), "--request-timeout", "2s"], {"HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert r.status == 1 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
