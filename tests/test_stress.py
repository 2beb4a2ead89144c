"""The plugin never dies by a signal, and a merge that dies anyway can be mended.

A `merge --apply` on a real kube-apiserver once ended in SIGSEGV inside libcrypto: urllib3
loads the CA and the client certificate into the TLS context it is handed, and sets its ALPN
list, every time it opens a connection, and one context was shared by the threads that run the
parallel LISTs. The first test pins the cause (every connection has a context of its own, never
touched once a handshake used it); the second runs every live command over and over, as the
pip install and as the zipapp on Python 3.9 and 3.13, and counts exits by a signal (none is
allowed). GWDUP_STRESS_RUNS sets the rounds (CI runs 3; the README gives the long run).
The last tests kill a merge at each of its writes, and check that the next run says so and
that --restore mends the cluster.

The users are client certificates embedded in the kubeconfig, as kubeadm's admin.conf has them,
so a client certificate is loaded for every connection as it was on the crashing cluster.
"""
from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from typing import Any, Dict, List

import pytest

from conftest import ROOT, interpreter, run_cli
from kube import write_kubeconfig
from test_fix import two_groups
from test_merge import planned_writes, snapshot

RUNS = int(os.environ.get("GWDUP_STRESS_RUNS", "3"))


def client_kubeconfig(cluster, certs, tmp_path) -> str:
    """The emulator's admin as a client certificate; a real cluster's kubeconfig as it is."""
    if cluster.emulator is None:
        return cluster.kubeconfig
    admin = certs.leaf("admin", tag="client-admin", usage="clientAuth")
    return write_kubeconfig(str(tmp_path / "client-config"), cluster.emulator.url, certs.ca_cert, "",
                            client=admin)


def test_every_connection_has_a_tls_context_of_its_own(cluster, certs, tmp_path, monkeypatch) -> None:
    two_groups(cluster, certs)
    used: Dict[int, int] = {}
    keep: List[ssl.SSLContext] = []  # held, so no id is reused by a later context
    touched_after_use: List[str] = []
    wrap = ssl.SSLContext.wrap_socket

    def wrap_socket(self, *args: Any, **kw: Any):
        if not kw.get("server_side"):
            keep.append(self)
            used[id(self)] = used.get(id(self), 0) + 1
        return wrap(self, *args, **kw)

    def guard(name: str):
        original = getattr(ssl.SSLContext, name)

        def call(self, *args: Any, **kw: Any):
            if id(self) in used:
                touched_after_use.append(name)
            return original(self, *args, **kw)
        return call

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", wrap_socket)
    for name in ("load_cert_chain", "load_verify_locations", "set_alpn_protocols", "set_ciphers"):
        monkeypatch.setattr(ssl.SSLContext, name, guard(name))
    env = {"KUBECONFIG": client_kubeconfig(cluster, certs, tmp_path), "HOME": "/nonexistent", "GWDUP_RESOLVE": "false"}
    for args in (["check", "-A"], ["merge", "--plan"], ["apply-421", "--dry-run=server"]):
        r = run_cli(args, env)
        assert r.status in (0, 3), (args, r.stderr)
    assert len(used) >= 2, used  # several connections were opened, so sharing was possible
    assert set(used.values()) == {1}, "a TLS context served more than one connection"
    assert touched_after_use == [], touched_after_use


def commands(cluster) -> List[List[str]]:
    scope = ["-n", cluster.ns("shop")]
    return [["check", "-A"], ["merge", "--plan", *scope], ["apply-421", "--dry-run=server"],
            ["impact", "--since", "1h"]]


@pytest.mark.parametrize("install", ["pip", "zipapp-3.9", "zipapp-3.13"])
def test_live_commands_never_die_by_a_signal(install, cluster, certs, tmp_path, request) -> None:
    if install == "pip":
        argv = [sys.executable, "-m", "kubectl_gwdup"]
    else:
        python = interpreter(install.split("-")[1])
        argv = [python, str(request.getfixturevalue("built")[0] / "dist" / "kubectl-gwdup")]
    two_groups(cluster, certs)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "shiv"),
           "PYTHONPATH": ROOT, "KUBECONFIG": client_kubeconfig(cluster, certs, tmp_path), "NO_COLOR": "1",
           "GWDUP_RESOLVE": "false"}
    scope = ["-n", cluster.ns("shop")]
    statuses: Dict[str, List[int]] = {}

    def run(name: str, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(argv + list(args), env=env, cwd=str(tmp_path), capture_output=True,
                              text=True, timeout=180)
        statuses.setdefault(name, []).append(proc.returncode)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    for i in range(RUNS):
        for args in commands(cluster):
            run(args[0] + " " + args[1], *args)
        if cluster.emulator is not None and i % 2 == 1:
            # a validating webhook denies the merge's first real write: the run rolls back
            cluster.emulator.deny_admission("PUT", r"/gateways/", times=1)
            run("merge --apply (denied)", "merge", "--apply", "--yes", "--backup-dir", "b", *scope)
            cluster.emulator.admission.clear()
            continue
        applied = run("merge --apply", "merge", "--apply", "--yes", "--backup-dir", "b", *scope)
        if applied.returncode == 0:
            backup = next(l.split()[-1] for l in applied.stderr.splitlines() if l.startswith("backup written to "))
            run("merge --restore", "merge", "--restore", os.path.join(str(tmp_path), backup), "--yes")
    by_signal = {name: [rc for rc in rcs if rc < 0] for name, rcs in statuses.items()}
    assert not any(by_signal.values()), (by_signal, statuses)
    assert set(statuses["check -A"]) == {3}
    assert set(statuses["merge --plan"]) == {0} and set(statuses["apply-421 --dry-run=server"]) == {0}
    assert set(statuses["merge --apply"]) == {0} and set(statuses.get("merge --restore", [0])) == {0}
    assert set(statuses.get("merge --apply (denied)", [4])) == {4}
    assert set(statuses["impact --since"]) <= {0, 3}


def _kill_at(cluster, tmp_path, write, sig) -> subprocess.CompletedProcess:
    """`merge --apply` as a process, sent `sig` when its write number `write` reaches the server
    (which then stores it, as a real one does with a request it has whole)."""
    method, path, skip = write
    holder: Dict[str, subprocess.Popen] = {}
    cluster.emulator.inject(method, path, 0, times=1, writes_only=True, skip=skip,
                            action=lambda: holder["proc"].send_signal(sig), delay=0.3)
    env = {**os.environ, **cluster.env, "PYTHONPATH": ROOT, "NO_COLOR": "1"}
    holder["proc"] = subprocess.Popen([sys.executable, "-m", "kubectl_gwdup", "merge", "--apply", "--yes",
                                       "--backup-dir", str(tmp_path)], env=env, cwd=ROOT, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = holder["proc"].communicate(timeout=120)
    cluster.emulator.faults.clear()
    return subprocess.CompletedProcess(holder["proc"].args, holder["proc"].returncode, out, err)


def test_a_merge_killed_at_any_write_is_named_by_the_next_run_and_mended_by_restore(
        cluster, certs, tmp_path, emulator_only) -> None:
    two_groups(cluster, certs)
    start = snapshot(cluster)
    writes = planned_writes(cluster)
    assert len(writes) == 8
    for i, write in enumerate(writes):
        where = tmp_path / str(i)
        killed = _kill_at(cluster, where, write, signal.SIGKILL)
        assert killed.returncode == -signal.SIGKILL, (i, killed.stderr)
        backups = sorted(p for p in os.listdir(where) if p.endswith(".yaml"))
        assert len(backups) == 1, backups  # the backup was on disk before the first write
        backup = str(where / backups[0])
        nxt = run_cli(["merge", "--plan", "--backup-dir", str(where)], cluster.env)
        assert f"warning: a merge that started from backup {backup} never finished" in nxt.stderr, nxt.stderr
        assert f"kubectl gwdup merge --restore {backup}" in nxt.stderr
        restored = run_cli(["merge", "--restore", backup, "--yes"], cluster.env)
        assert restored.status == 0, restored.stderr
        assert snapshot(cluster) == start, i
        again = run_cli(["merge", "--plan", "--backup-dir", str(where)], cluster.env)
        assert "never finished" not in again.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_merge_told_to_stop_rolls_back_and_leaves_no_journal(sig, cluster, certs, tmp_path, emulator_only) -> None:
    """SIGTERM (a cancelled CI job, an evicted pod), SIGHUP (a closed terminal) and Ctrl-C are
    held while a write is on the wire, then the run stops and rolls back whole."""
    two_groups(cluster, certs)
    start = snapshot(cluster)
    writes = planned_writes(cluster)
    stopped = _kill_at(cluster, tmp_path, writes[3], sig)
    assert stopped.returncode == 4, stopped.stderr
    assert "the cluster is as before" in stopped.stderr and "interrupted" in stopped.stderr
    assert snapshot(cluster) == start
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".journal")]
