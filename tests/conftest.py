"""Shared fixtures: real certificates from openssl, scenario rendering, CLI runner."""
from __future__ import annotations

import glob
import io
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional

import pytest

os.environ.setdefault("GWDUP_RESOLVE", "false")  # subprocesses that inherit it never ask public DNS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from certfactory import CertFactory  # noqa: E402

SCENARIOS = os.path.join(ROOT, "tests", "analysis", "scenarios")
_CERT = re.compile(r'"@cert(?P<rsa>-rsa)? (?P<tag>[\w-]+): (?P<sans>[^"]+)"')
_KEY = re.compile(r'"@key(?P<rsa>-rsa)? (?P<tag>[\w-]+): (?P<sans>[^"]+)"')


def with_keys(docs: List[dict], certs: CertFactory) -> List[dict]:
    """Each test Secret given the key of its certificate (the analysis scenarios may carry
    certificates only; Envoy needs both), in place; returns the documents."""
    import base64

    by_pem = certs.by_pem()  # after the rendering, which makes them
    for d in docs:
        if d.get("kind") != "Secret":
            continue
        plain, data = d.get("stringData") or {}, d.get("data") or {}
        for crt, key in (("tls.crt", "tls.key"), ("cert", "key")):
            if crt in plain and key not in plain and plain[crt] in by_pem:
                plain[key] = by_pem[plain[crt]].key_pem.decode()
            elif crt in data and key not in data:
                leaf = by_pem.get(base64.b64decode(data[crt]).decode(errors="replace"))
                if leaf:
                    data[key] = base64.b64encode(leaf.key_pem).decode()
    return docs


def manifests_of(files: List[str], certs: CertFactory) -> List[dict]:
    """The documents of rendered manifest files, each Secret with its key (with_keys)."""
    import yaml

    docs: List[dict] = []
    for path in files:
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return with_keys(docs, certs)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(str(tmp_path_factory.mktemp("certs")))


def render_scenario(certs: CertFactory, text: str) -> str:
    """Replace `"@cert TAG: SAN SAN"` (or `@cert-rsa`) with the PEM of a certificate made now
    (same TAG, same certificate), and `"@key TAG: SAN SAN"` with its private key: a
    `kubernetes.io/tls` Secret needs both, or a real API server refuses it."""
    def pem(m: "re.Match[str]") -> str:
        leaf = certs.leaf(*m.group("sans").split(), tag=m.group("tag"), rsa=bool(m.group("rsa")))
        return '"' + leaf.cert_pem.decode().replace("\n", "\\n") + '"'
    def key(m: "re.Match[str]") -> str:
        leaf = certs.leaf(*m.group("sans").split(), tag=m.group("tag"), rsa=bool(m.group("rsa")))
        return '"' + leaf.key_pem.decode().replace("\n", "\\n") + '"'
    return _KEY.sub(key, _CERT.sub(pem, text))


@pytest.fixture(scope="session")
def scenario_files(certs: CertFactory, tmp_path_factory: pytest.TempPathFactory):
    """name -> [rendered workload file, rendered scenario file]."""
    out_dir = tmp_path_factory.mktemp("scenarios")
    cache: Dict[str, List[str]] = {}

    def get(name: str, with_workload: bool = True) -> List[str]:
        key = f"{name}:{with_workload}"
        if key not in cache:
            paths = []
            for fname in (["_workload.yaml"] if with_workload else []) + [f"{name}.yaml"]:
                with open(os.path.join(SCENARIOS, fname)) as f:
                    text = render_scenario(certs, f.read())
                dst = out_dir / f"{name}-{fname}"
                dst.write_text(text)
                paths.append(str(dst))
            cache[key] = paths
        return cache[key]
    return get


PYENV = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def interpreter(version: str) -> str:
    found = sorted(glob.glob(os.path.join(PYENV, "versions", f"{version}*", "bin", "python3"))) or \
        sorted(glob.glob(os.path.join(PYENV, "versions", f"{version}*", "bin", "python")))  # 2.7 has no python3
    if not found:
        pytest.skip(f"Python {version} not installed under {PYENV}")
    return found[-1]


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A copy of the working tree, built with build.sh (which writes the filled-in krew manifest
    to dist/ and leaves the tracked template alone)."""
    interpreter("3.9")
    src = tmp_path_factory.mktemp("src")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(src / os.path.dirname(f), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), src / f)
    out = subprocess.run(["bash", "build.sh"], cwd=src, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"})
    assert out.returncode == 0, out.stderr[-3000:]
    return src, out.stdout


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


def run_cli(args: List[str], environ: Optional[Dict[str, str]] = None, stdin: str = "") -> Result:
    from kubectl_gwdup.cli.main import main
    from kubectl_gwdup.env import Env

    out, err = io.StringIO(), io.StringIO()
    env = Env(stdout=out, stderr=err, stdin=io.StringIO(stdin),
              environ=dict(environ if environ is not None else {"HOME": "/nonexistent", "GWDUP_RESOLVE": "false"}))
    status = main(args, env)
    return Result(status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def api_server(certs: CertFactory, tmp_path_factory: pytest.TempPathFactory):
    """(kubeconfig, emulator or None): a real cluster when GWDUP_TEST_KUBECONFIG is set."""
    from kube import REAL, write_kubeconfig
    from emulator.server import Emulator, gateway_api_kinds

    if REAL:
        yield REAL, None
        return
    leaf = certs.leaf("localhost", "IP:127.0.0.1", tag="apiserver")
    emu = Emulator(leaf.cert_path, leaf.key_path, gateway_api=gateway_api_kinds(), client_ca=certs.ca_cert).start()
    path = write_kubeconfig(str(tmp_path_factory.mktemp("kube") / "config"), emu.url, certs.ca_cert, "admin-token")
    yield path, emu
    emu.stop()


@pytest.fixture
def cluster(api_server):
    from kube import TestCluster

    kubeconfig, emu = api_server
    c = TestCluster(kubeconfig, emu)
    if emu is not None:
        emu.log.clear()
    yield c
    c.cleanup()
    if emu is not None:
        emu.deny.clear()
        emu.faults.clear()
        emu.admission.clear()


@pytest.fixture
def emulator_only(api_server):
    if api_server[1] is None:
        pytest.skip("needs the API emulator (fault injection / RBAC setup)")
    return api_server[1]


@pytest.fixture(autouse=True)
def no_system_resolver(monkeypatch):
    """No test asks the machine's resolver (and through it public DNS): DNS tests give their
    loopback server with --nameserver."""
    from kubectl_gwdup.sources import dns

    original = dns.Resolver._client

    def guarded(self):
        assert self.nameservers, "a test asked the system's resolver: give --nameserver or GWDUP_RESOLVE=false"
        return original(self)
    monkeypatch.setattr(dns.Resolver, "_client", guarded)
