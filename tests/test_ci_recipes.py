"""The README's CI recipes, run: the helm pipeline and each `run:` step of the GitHub Actions
workflow in a shell (a stand-in `helm` prints examples/; `pip install` is the one step left out,
the console script of this checkout being on PATH), and the pre-commit hook as
`.pre-commit-hooks.yaml` declares it, read by pre-commit's own manifest loader."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Dict, List

import yaml

from conftest import ROOT

EXAMPLES = os.path.join(ROOT, "examples")
SECTION = "## In CI and before a commit"


def _blocks() -> List[str]:
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [b.split("\n", 1)[1] for b in section.split("```")[1::2]]


def _env(tmp_path) -> Dict[str, str]:
    """PATH with a `helm` that renders examples/ and this checkout's kubectl-gwdup."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    helm = bin_dir / "helm"
    files = " ".join(shlex.quote(os.path.join(EXAMPLES, f)) for f in sorted(os.listdir(EXAMPLES)))
    helm.write_text(f"#!/bin/sh\nfor f in {files}; do cat \"$f\"; echo '---'; done\n")
    helm.chmod(0o755)
    scripts = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=f"{bin_dir}:{scripts}:{os.environ.get('PATH', '')}", HOME=str(tmp_path))


def test_the_helm_pipeline(tmp_path) -> None:
    pipeline = _blocks()[0].strip()
    assert pipeline.startswith("helm template") and "| kubectl gwdup check -f -" in pipeline
    # `kubectl gwdup` is kubectl running the plugin; here the plugin itself runs
    r = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline.replace("kubectl gwdup", "kubectl-gwdup")],
                       env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert r.stdout.startswith("GATEWAYS") and "Misrouted" in r.stdout


def test_the_github_actions_workflow(tmp_path) -> None:
    workflow = yaml.safe_load(_blocks()[2])
    steps = workflow["jobs"]["check"]["steps"]
    assert workflow["permissions"]["security-events"] == "write"
    upload = [s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif")]
    assert len(upload) == 1 and upload[0]["if"] == "always()"
    env = _env(tmp_path)
    statuses = []
    for step in steps:
        if "run" not in step or step["run"].startswith("pip install"):
            continue
        r = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
        statuses.append(r.returncode)
    assert statuses == [0, 3]  # helm renders; check finds the examples' hazards and fails the job
    sarif = json.loads((tmp_path / upload[0]["with"]["sarif_file"]).read_text())
    assert sarif["version"] == "2.1.0" and len(sarif["runs"][0]["results"]) == 3
    assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "rendered.yaml"


def test_the_pre_commit_hook(tmp_path) -> None:
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(os.path.join(ROOT, ".pre-commit-hooks.yaml"))
    config = yaml.safe_load(_blocks()[1])
    (repo,) = config["repos"]
    (wanted,) = repo["hooks"]
    assert wanted["id"] == hook["id"] and hook["language"] == "python" and hook["pass_filenames"] is False
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for f in os.listdir(EXAMPLES):
        (deploy / f).write_text(open(os.path.join(EXAMPLES, f)).read())
    env = _env(tmp_path)
    for args in (wanted.get("args", hook["args"]), hook["args"]):  # the README's, and the default
        r = subprocess.run(shlex.split(hook["entry"]) + list(args), env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 3 and "Misrouted" in r.stdout, r.stderr
    # the merged example alone, with its workload, is clean: the hook passes
    for f in os.listdir(EXAMPLES):
        if f not in ("00-ingress.yaml", "40-merged.yaml"):
            (deploy / f).unlink()
    r = subprocess.run(shlex.split(hook["entry"]) + list(hook["args"]), env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
