"""Packaging: the shiv zipapp on Python 3.9 and 3.13, the krew manifest and archive, installed
the way krew installs it and run through the real kubectl."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest
import yaml

from conftest import ROOT, interpreter

KUBECTL = shutil.which("kubectl")

def run_zipapp(python: str, zipapp: str, *args: str, root: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([python, zipapp, *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"], "HOME": root, "SHIV_ROOT": root, **kw.pop("env", {})}, **kw)


PLATFORMS = {"linux-amd64": "x86_64-linux-gnu", "linux-arm64": "aarch64-linux-gnu", "darwin-amd64": "darwin",
             "darwin-arm64": "darwin", "any": None}
CPYTHONS = ("39", "310", "311", "312", "313")


def test_archives_are_small_and_carry_libyaml_for_every_cpython(built) -> None:
    src, stdout = built
    for name, abi in PLATFORMS.items():
        archive = src / "dist" / f"kubectl-gwdup-{name}.tar.gz"
        assert archive.stat().st_size < 10 * 1024 * 1024, name
        sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        assert f"dist/kubectl-gwdup-{name}.tar.gz" in stdout and f"sha256 {sha}" in stdout
        app = src / "dist" / name / "kubectl-gwdup"
        assert app.read_bytes().startswith(b"#!/usr/bin/env python3\n") and os.access(app, os.X_OK)
        compiled = sorted(n.split("site-packages/", 1)[1] for n in zipfile.ZipFile(app).namelist()
                          if n.endswith((".so", ".pyd", ".dylib")))
        # only PyYAML's libyaml binding, once per CPython, tagged with its ABI; nothing on "any"
        assert compiled == ([] if abi is None else sorted(f"yaml/_yaml.cpython-{v}-{abi}.so" for v in CPYTHONS)), name


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.8"])
def test_zipapp_on_an_older_python_says_which_it_needs(version, built, tmp_path) -> None:
    """shiv's bootstrap and the plugin are 3.9+ code: on an older python3 the archive's own
    first lines stop it with one error line, never a SyntaxError from inside."""
    python = interpreter(version)
    r = run_zipapp(python, str(built[0] / "dist" / "kubectl-gwdup"), "check", "-f", "x", root=str(tmp_path))
    assert r.returncode == 1 and r.stdout == "", r.stderr
    assert r.stderr.splitlines() == [f"error: kubectl-gwdup needs Python 3.9 or newer; {python} is Python "
                                     f"{r.stderr.split()[-1]}"]
    assert r.stderr.split()[-1].startswith(version)


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_zipapp_runs_on(version, built, tmp_path) -> None:
    python = interpreter(version)
    app = str(built[0] / "dist" / "kubectl-gwdup")
    r = run_zipapp(python, app, "--version", root=str(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith("kubectl-gwdup 0.")
    if platform.system() == "Linux" and platform.machine() in ("x86_64", "aarch64"):
        assert r.stdout.rstrip().endswith("YAML parser: libyaml)"), r.stdout  # this platform's build
    r = run_zipapp(python, app, "check", "-f", os.path.join(ROOT, "examples"), "-o", "json", root=str(tmp_path))
    assert r.returncode == 3, r.stderr
    ours = subprocess.run([sys.executable, "-m", "kubectl_gwdup", "check", "-f", "examples", "-o", "json"],
                          cwd=ROOT, capture_output=True, text=True)
    assert r.stdout == ours.stdout
    # impact on a saved Istio-format log, as the zipapp reads it on this interpreter
    log = tmp_path / "gateway.log"
    log.write_text('[2026-11-30T10:00:00.000Z] "GET / HTTP/2" 404 NR route_not_found - "-" 0 0 0 - "-" "curl/8.5.0" '
                   '"id" "api.example.net" "-" - - 10.244.0.7:443 10.0.0.1:1 docs.example.net -\n')
    r = run_zipapp(python, app, "impact", "--log-file", str(log), "--manifests", os.path.join(ROOT, "examples"),
                   "--workload", "portal/portal-istio", "-o", "json", root=str(tmp_path))
    assert r.returncode == 3, r.stderr
    assert json.loads(r.stdout)["totals"]["outcomes"]["404 no route"] == 1
    pure = run_zipapp(python, str(built[0] / "dist" / "any" / "kubectl-gwdup"), "--version", root=str(tmp_path))
    assert pure.stdout.rstrip().endswith("YAML parser: pure-Python)"), pure.stdout


@pytest.mark.parametrize("version", ["3.9", "3.13"])
@pytest.mark.parametrize("build", ["this platform", "any"])
def test_fuzzed_manifests_never_end_in_an_internal_error(version, build, built, tmp_path) -> None:
    """tests/zipapp_fuzz.py runs inside the zipapp (its own modules, this interpreter, libyaml or
    the pure-Python loader): 300 mutated manifests, deep nesting included, each ends with exit
    0, 3, or one `error:` line and exit 1 or 2."""
    python = interpreter(version)
    app = str(built[0] / "dist" / ("any" if build == "any" else "") / "kubectl-gwdup")
    sources = sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))) + [
        os.path.join(ROOT, "tests", "analysis", "scenarios", "wildcard_host_misrouted.yaml")]
    r = run_zipapp(python, app, os.path.join(ROOT, "tests", "zipapp_fuzz.py"), "20261130", "300", *sources,
                   root=str(tmp_path), env={"SHIV_INTERPRETER": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert summary["python"].startswith(version) and summary["badCount"] == 0, summary["bad"]
    assert set(summary["statuses"]) <= {"0", "1", "2", "3"} and summary["statuses"].get("1"), summary


def test_reproducible(built, tmp_path) -> None:
    src, _ = built
    first = {name: (src / "dist" / f"kubectl-gwdup-{name}.tar.gz").read_bytes() for name in PLATFORMS}
    out = subprocess.run(["bash", "build.sh"], cwd=src, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"})
    assert out.returncode == 0, out.stderr[-2000:]
    for name, data in first.items():
        assert (src / "dist" / f"kubectl-gwdup-{name}.tar.gz").read_bytes() == data, name


def test_old_extractions_do_not_pile_up(built, tmp_path) -> None:
    app = str(built[0] / "dist" / "kubectl-gwdup")
    root = tmp_path / "shiv"
    old, newer = root / "kubectl-gwdup_0ld", root / "kubectl-gwdup_n3wer"
    for d in (old, newer):
        (d / "site-packages").mkdir(parents=True)
    (root / ".kubectl-gwdup_0ld_lock").touch()
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    os.utime(newer, (time.time() + 86400, time.time() + 86400))
    r = run_zipapp(sys.executable, app, "--version", root=str(root))
    assert r.returncode == 0, r.stderr
    left = sorted(p.name for p in root.iterdir())
    assert "kubectl-gwdup_0ld" not in left and ".kubectl-gwdup_0ld_lock" not in left
    assert "kubectl-gwdup_n3wer" in left
    assert len([n for n in left if n.startswith("kubectl-gwdup_")]) == 2  # current + newer


# --- krew -------------------------------------------------------------------------------------

SEMVER = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def validate_manifest(path: str) -> dict:
    """krew's structural rules for a plugin manifest."""
    doc = yaml.safe_load(open(path))
    name = os.path.splitext(os.path.basename(path))[0]
    assert doc["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert doc["kind"] == "Plugin"
    assert re.match(r"^[\w-]+$", name) and doc["metadata"]["name"] == name
    spec = doc["spec"]
    assert spec["shortDescription"] and not re.search(r"[\r\n]", spec["shortDescription"])
    assert SEMVER.match(spec["version"])
    assert re.match(r"^https://[^\s/]+(/\S*)?$", spec.get("homepage", "")), "krew wants a homepage URL"
    from kubectl_gwdup import HOMEPAGE

    assert spec["homepage"] == HOMEPAGE  # what SARIF's rules link to
    assert "python3" in spec["caveats"]
    assert spec["platforms"]
    for p in spec["platforms"]:
        assert p["uri"] and p["bin"]
        assert re.match(r"^[a-f0-9]{64}$", p["sha256"])
        sel = p["selector"]
        assert sel.get("matchLabels") or sel.get("matchExpressions")
        assert set(sel.get("matchLabels", {})) <= {"os", "arch"}
        assert all(e["key"] in ("os", "arch") and e["operator"] in ("In", "NotIn", "Exists", "DoesNotExist")
                   for e in sel.get("matchExpressions", []))
        assert p["files"] and all(f["from"] and f["to"] for f in p["files"])
        assert "LICENSE" in [f["from"] for f in p["files"]]
    for os_name in ("linux", "darwin", "windows"):
        for arch in ("amd64", "arm64", "386", "arm", "ppc64le", "s390x"):
            matching = [p for p in spec["platforms"] if selects(p["selector"], {"os": os_name, "arch": arch})]
            assert len(matching) <= 1, f"overlapping selectors for {os_name}/{arch}"
            if os_name != "windows":
                assert matching, f"no archive for {os_name}/{arch}"
    return doc


def selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (what krew matches os and arch with)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        value, values = labels.get(e["key"]), e.get("values") or []
        if (e["operator"] == "In" and value not in values) or (e["operator"] == "NotIn" and value in values) \
                or (e["operator"] == "Exists" and value is None) or (e["operator"] == "DoesNotExist" and value is not None):
            return False
    return True


def test_repository_manifest_is_valid() -> None:
    validate_manifest(os.path.join(ROOT, "krew", "gwdup.yaml"))


def krew_install(manifest: dict, dist: str, krew_root: str, labels: dict) -> str:
    """What `kubectl krew install --manifest=...` does, step by step, for a machine with these
    os and arch labels: the first platform whose selector matches, its archive, checked."""
    entry = next(p for p in manifest["spec"]["platforms"] if selects(p["selector"], labels))
    archive = os.path.join(dist, entry["uri"].rsplit("/", 1)[1])
    data = open(archive, "rb").read()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], "archive checksum mismatch"
    work = os.path.join(krew_root, "tmp")
    with tarfile.open(archive) as tar:
        tar.extractall(work)
    store = os.path.join(krew_root, "store", manifest["metadata"]["name"], manifest["spec"]["version"])
    os.makedirs(store)
    for op in entry["files"]:
        for match in glob.glob(os.path.join(work, op["from"])):
            shutil.move(match, os.path.join(store, op["to"], os.path.basename(match)))
    binary = os.path.join(store, entry["bin"])
    assert os.access(binary, os.X_OK), "bin must keep its executable mode"
    bindir = os.path.join(krew_root, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.symlink(binary, os.path.join(bindir, "kubectl-" + manifest["metadata"]["name"]))
    return bindir


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_installs_like_krew_and_runs_through_kubectl(built, tmp_path) -> None:
    src, _ = built
    assert (src / "krew" / "gwdup.yaml").read_text() == open(os.path.join(ROOT, "krew", "gwdup.yaml")).read()
    manifest = validate_manifest(str(src / "dist" / "gwdup.yaml"))
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    bindir = krew_install(manifest, str(src / "dist"), str(tmp_path / "krew"),
                          {"os": platform.system().lower(), "arch": arch})
    store = os.path.dirname(os.path.realpath(os.path.join(bindir, "kubectl-gwdup")))
    os.symlink(os.path.join(store, "kubectl_complete-gwdup"), os.path.join(bindir, "kubectl_complete-gwdup"))
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "shiv")}
    listed = subprocess.run([KUBECTL, "plugin", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert os.path.join(bindir, "kubectl-gwdup") in listed.stdout
    assert "warning" not in (listed.stdout + listed.stderr).lower()
    helped = subprocess.run([KUBECTL, "gwdup", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: kubectl gwdup")
    checked = subprocess.run([KUBECTL, "gwdup", "check", "-f", os.path.join(ROOT, "examples")],
                             capture_output=True, text=True, env=env, timeout=60)
    assert checked.returncode == 3 and "Misrouted" in checked.stdout
    completed = subprocess.run([KUBECTL, "__complete", "gwdup", "ch"], capture_output=True, text=True,
                               env=env, timeout=60)
    assert completed.stdout.splitlines()[:2] == ["check\tfind HTTP/2 connection-coalescing hazards", ":4"]


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_zipapp_reaches_a_cluster_whose_ca_has_no_key_usage(version, built, tmp_path, certs, emulator_only) -> None:
    """The test CA is a plain `openssl req -x509` one, without keyUsage, as some clusters' are.
    kubectl connects; Python 3.13's default VERIFY_X509_STRICT would refuse it. The zipapp, on
    each Python, reaches the emulator over TLS through a kubeconfig, and still refuses a server
    whose certificate names another host."""
    from kube import write_kubeconfig

    ca = subprocess.run(["openssl", "x509", "-in", certs.ca_cert, "-noout", "-ext", "keyUsage"],
                        capture_output=True, text=True)
    assert "Key Usage" not in ca.stdout  # the premise: no keyUsage extension on the CA
    python = interpreter(version)
    app = str(built[0] / "dist" / "kubectl-gwdup")
    kc = write_kubeconfig(str(tmp_path / "config"), emulator_only.url, certs.ca_cert, "admin-token")
    r = run_zipapp(python, app, "check", root=str(tmp_path), env={"KUBECONFIG": kc, "GWDUP_RESOLVE": "false"})
    assert r.returncode == 0 and "no hazards found" in r.stderr, r.stderr
    other = certs.leaf("elsewhere.example", tag="elsewhere")
    from emulator.server import Emulator

    emu = Emulator(other.cert_path, other.key_path).start()
    try:
        wrong = write_kubeconfig(str(tmp_path / "wrong"), emu.url, certs.ca_cert, "admin-token")
        r = run_zipapp(python, app, "check", root=str(tmp_path), env={"KUBECONFIG": wrong, "GWDUP_RESOLVE": "false"})
        assert r.returncode == 1 and "Unable to connect to the server" in r.stderr, r.stderr
        assert "match" in r.stderr or "hostname" in r.stderr or "IP address" in r.stderr, r.stderr
    finally:
        emu.stop()


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_the_parser_property_tests_pass_inside_the_zipapp(version, built, tmp_path) -> None:
    """tests/test_parsers.py (hypothesis: any manifest text gives objects or one InputError) run
    by pytest inside the zipapp's environment, so its modules and its YAML loader are the ones
    tested, on each interpreter. pytest and hypothesis come from PyPI into a temp directory."""
    python = interpreter(version)
    deps = tmp_path / "deps"
    got = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(deps),
                          "pytest", "hypothesis"], capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stderr[-2000:]
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(os.path.join(ROOT, "tests", "test_parsers.py"), suite / "test_parsers.py")
    (suite / "test_where.py").write_text(
        "import kubectl_gwdup, yaml\n"
        "def test_the_zipapp_modules_are_tested():\n"
        "    assert '.shiv' in kubectl_gwdup.__file__ or 'shiv' in kubectl_gwdup.__file__, kubectl_gwdup.__file__\n"
        "    assert 'shiv' in yaml.__file__, yaml.__file__\n")
    app = str(built[0] / "dist" / "kubectl-gwdup")
    r = run_zipapp(python, app, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not certificate_facts",
                   str(suite), root=str(tmp_path / "shiv"), cwd=str(suite),
                   env={"SHIV_INTERPRETER": "1", "PYTHONPATH": str(deps)})
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert " passed" in r.stdout and "failed" not in r.stdout
