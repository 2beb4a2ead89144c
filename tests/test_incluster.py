"""In-cluster credentials as client-go reads them, and a rotated token used from the next
request (the kubelet's projected token, swapped by the `..data` link), against the emulator."""
from __future__ import annotations

import os
import shutil

import pytest

from kubectl_gwdup.errors import ConfigError
from kubectl_gwdup.sources import incluster, kubeconfig


def _projected(sa, token: str, generation: int) -> None:
    """Write the token as the kubelet's atomic writer does: a new timestamped directory, then
    `..data` swapped to it by a rename (`pkg/volume/util/atomic_writer.go`)."""
    d = sa / f"..2026_12_05_{generation}"
    d.mkdir()
    (d / "token").write_text(token)
    tmp = sa / "..data_tmp"
    os.symlink(d.name, tmp)
    os.replace(tmp, sa / "..data")
    if not (sa / "token").is_symlink():
        os.symlink("..data/token", sa / "token")


def test_a_rotated_token_is_used_from_the_next_request(tmp_path, certs, emulator_only, monkeypatch) -> None:
    from kubectl_gwdup.sources.cluster import KubeCluster

    sa = tmp_path / "sa"
    sa.mkdir()
    shutil.copy(certs.ca_cert, sa / "ca.crt")
    _projected(sa, "sa-token-1", 1)
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", str(sa))
    emulator_only.tokens["sa-token-1"] = "system:serviceaccount:gwdup-system:kubectl-gwdup"
    port = emulator_only.url.rsplit(":", 1)[1]
    cluster = KubeCluster(None, environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port})
    try:
        assert cluster.request("GET", "/api")["versions"] == ["v1"]
        _projected(sa, "sa-token-2", 2)  # rotated; the old token stops working
        emulator_only.tokens["sa-token-2"] = emulator_only.tokens.pop("sa-token-1")
        assert cluster.request("GET", "/api")["versions"] == ["v1"]
        assert cluster.token is not None and cluster.token.reads == 2
        assert cluster.request("GET", "/api")["versions"] == ["v1"]
        assert cluster.token.reads == 2, "an unchanged file is not read again"
    finally:
        cluster.close()
        emulator_only.tokens.pop("sa-token-2", None)


@pytest.mark.parametrize("environ,message", [
    ({}, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "must be defined"),
])
def test_in_cluster_needs_both_variables(tmp_path, environ, message) -> None:
    (tmp_path / "token").write_text("t")
    with pytest.raises(ConfigError, match=message):
        incluster.in_cluster(environ, str(tmp_path))


def test_in_cluster_joins_host_and_port_as_go_does(tmp_path) -> None:
    (tmp_path / "token").write_text("t")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    found = incluster.in_cluster(env, str(tmp_path))
    assert found.host == "https://[fd00::1]:443" and found.ca_file is None
    env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1"
    assert incluster.in_cluster(env, str(tmp_path)).host == "https://10.96.0.1:443"


def test_no_token_file_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        incluster.in_cluster({"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}, str(tmp_path))


def test_a_token_file_gone_mid_rotation_keeps_the_last_token(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("one\n")
    token = incluster.TokenFile(str(path))
    assert token.current() == "one"
    path.unlink()
    assert token.current() == "one"
    path.write_text("two")
    assert token.current() == "two"
