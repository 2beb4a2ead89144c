"""Every command against an API server that never answers fails in bounded time, with one
kubectl-style line: a server that accepts TCP and says nothing, one that completes TLS and
never answers HTTP, one that sends half an answer and stalls, and one that hangs up halfway.

Each command runs as its own process (the way users run it), under a hard outer bound, so a
hang fails the test instead of hanging the suite.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import List, Tuple

import pytest

from hostile_servers import Dribble, HalfAnswer, Silent, TLSNoHTTP
from kube import write_kubeconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 1.0  # --request-timeout given to every command below
# dial + handshake + a read per attempt, two attempts, plus the interpreter's start-up
BOUND = 2 * 3 * TIMEOUT + 6
COMMANDS = [
    ["check", "-A"],
    ["merge", "--plan"],
    ["apply-421", "--dry-run=server"],
    ["fix", "--strategy", "421", "--yes"],
    ["impact", "--since", "1h"],
    ["probe"],
]


def run(args: List[str], kubeconfig: str, outer: float) -> Tuple[subprocess.CompletedProcess, float]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "KUBECONFIG": kubeconfig,
           "PYTHONPATH": ROOT, "GWDUP_RESOLVE": "false"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kubectl_gwdup", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=outer)
    return proc, time.monotonic() - start


def assert_one_error_line(proc: subprocess.CompletedProcess, *starts: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(starts), lines[0]
    assert "object at 0x" not in lines[0] and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def server_cert(certs):
    return certs.leaf("localhost", "IP:127.0.0.1", tag="apiserver")


@pytest.mark.parametrize("kind", ["silent", "tls-no-http", "half-answer", "half-answer-close"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_command_gives_up_in_bounded_time(kind, command, certs, server_cert, tmp_path):
    servers = {"silent": lambda: Silent(),
               "tls-no-http": lambda: TLSNoHTTP(server_cert.cert_path, server_cert.key_path),
               "half-answer": lambda: HalfAnswer(server_cert.cert_path, server_cert.key_path),
               "half-answer-close": lambda: HalfAnswer(server_cert.cert_path, server_cert.key_path, close=True)}
    with servers[kind]() as server:
        kubeconfig = write_kubeconfig(str(tmp_path / "config"), server.url, certs.ca_cert, "admin-token")
        proc, took = run(command + ["--request-timeout", f"{TIMEOUT:g}s"], kubeconfig, outer=60)
    assert took < BOUND, (took, proc.stderr)
    assert_one_error_line(proc, "error: Unable to connect to the server: ")


def test_without_the_flag_a_silent_server_fails_within_a_minute(certs, tmp_path):
    """No --request-timeout: kubectl's TLS-handshake bound (10 s), each request tried twice."""
    with Silent() as server:
        kubeconfig = write_kubeconfig(str(tmp_path / "config"), server.url, certs.ca_cert, "admin-token")
        proc, took = run(["check", "-A"], kubeconfig, outer=120)
    assert took < 2 * 10 + 6, took
    assert_one_error_line(proc, "error: Unable to connect to the server: net/http: TLS handshake timeout")


def test_a_dead_port_is_refused_at_once(certs, tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    kubeconfig = write_kubeconfig(str(tmp_path / "config"), f"https://127.0.0.1:{port}", certs.ca_cert, "t")
    proc, took = run(["check", "-A"], kubeconfig, outer=60)
    assert took < 10
    assert_one_error_line(proc, f"error: Unable to connect to the server: dial tcp 127.0.0.1:{port}: connect: "
                                "connection refused")


def test_completion_never_holds_the_shell(certs, tmp_path):
    """TAB on -n against a silent server: no candidates, well within a few seconds."""
    with Silent() as server:
        kubeconfig = write_kubeconfig(str(tmp_path / "config"), server.url, certs.ca_cert, "admin-token")
        proc, took = run(["__complete", "check", "-n", ""], kubeconfig, outer=30)
    assert took < 2 + 3, took
    assert proc.returncode == 0 and proc.stdout.splitlines() == [":4"], proc.stdout


def test_a_dribbling_server_is_cut_off_by_the_request_timeout(certs, server_cert, tmp_path):
    """A server that sends a byte at a time, never silent for a whole read timeout, still
    ends the request at --request-timeout: it bounds the whole answer, as kubectl's does."""
    with Dribble(server_cert.cert_path, server_cert.key_path) as server:
        kubeconfig = write_kubeconfig(str(tmp_path / "config"), server.url, certs.ca_cert, "admin-token")
        proc, took = run(["check", "-A", "--request-timeout", "2s"], kubeconfig, outer=60)
    assert took < 2 + 6, took
    assert_one_error_line(proc, "error: Unable to connect to the server: ")
    assert "within 2s (--request-timeout)" in proc.stderr
