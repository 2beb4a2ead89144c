"""The arrows point one way: who may import what, and what start-up must not load."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PKG = os.path.join(ROOT, "kubectl_gwdup")
PURE = ("analysis", "plans", "istiod", "model.py", "hosts.py", "catalogue.py", "objects.py")
IO_MODULES = {"kubernetes", "urllib3", "socket", "subprocess", "ssl", "http", "requests", "h2"}
IO_PACKAGES = ("sources", "execute", "cli", "commands", "netprobe", "watch", "serve")


def modules():
    for root, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                yield os.path.relpath(path, PKG), ast.parse(open(path).read())


def imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


def test_only_the_cluster_module_imports_kubernetes() -> None:
    for rel, tree in modules():
        for name, _ in imports(tree):
            if name.split(".")[0] == "kubernetes":
                assert rel == os.path.join("sources", "cluster.py"), rel


def test_pure_layers_import_no_io() -> None:
    for rel, tree in modules():
        if not rel.startswith(PURE):
            continue
        for name, level in imports(tree):
            top = name.split(".")[0]
            assert top not in IO_MODULES, f"{rel} imports {name}"
            if level:
                assert not top.startswith(IO_PACKAGES), f"{rel} imports .{name}"


def test_every_module_has_a_docstring_and_future_annotations() -> None:
    for rel, tree in modules():
        assert ast.get_docstring(tree), rel
        assert any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body), rel


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["check", "-f", os.path.join(ROOT, "examples")]])
def test_start_up_does_not_load_the_client(args) -> None:
    code = ("import sys\nfrom kubectl_gwdup.cli.main import main\n"
            f"status = main({args!r})\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'urllib3', 'tabulate'))\n"
            "print('LOADED', loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    line = [l for l in out.stdout.splitlines() if l.startswith("LOADED")][0]
    loaded = eval(line[len("LOADED "):])
    assert not any(m.startswith(("kubernetes", "urllib3")) for m in loaded), loaded
    if "--help" in args:
        assert "tabulate" not in loaded


def test_each_istiod_module_cites_its_source_and_releases() -> None:
    """kubectl_gwdup/istiod is the model of istiod, one module per function it mirrors: each
    names the istio/istio file it follows and the releases it holds for, so that a new release
    is a reviewable diff of this package."""
    for rel, tree in modules():
        if not rel.startswith("istiod" + os.sep) or rel.endswith("__init__.py"):
            continue
        doc = ast.get_docstring(tree) or ""
        assert "pilot/pkg/" in doc, f"{rel} names no istiod source"
        assert "1.24" in doc or "Istio 1." in doc, f"{rel} names no release"
        name = os.path.basename(rel)[:-3]
        assert f"`{name}`" in ast.get_docstring(ast.parse(open(os.path.join(PKG, "istiod", "__init__.py")).read())), \
            f"kubectl_gwdup/istiod/__init__.py does not list {name}"
