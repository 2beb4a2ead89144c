"""The command line: exit statuses, kubectl-style errors, scoping flags, output formats."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from conftest import ROOT, run_cli

EXAMPLES = os.path.join(ROOT, "examples")


def test_examples_exit_3_with_a_table() -> None:
    r = run_cli(["check", "-f", EXAMPLES])
    assert r.status == 3
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["GATEWAYS", "PORT", "HOSTS", "OUTCOME", "CERTIFICATE"]
    assert "Misrouted" in r.stdout and "NotFound" in r.stdout
    assert r.stderr.strip().endswith("in 6 Gateway(s), 8 server(s)")
    assert any(line.startswith("portal/portal/api,portal/portal/docs ") for line in lines)
    # each Gateway once, and a 120-column terminal holds the table and what goes with it
    assert any(line.startswith("drawdb/drawdb-gateway + 1 more... ") for line in lines)
    assert max(len(line) for line in (r.stdout + r.stderr).splitlines()) <= 120
    wide = run_cli(["check", "-f", EXAMPLES, "-o", "wide"]).stdout.splitlines()
    assert wide[0].split()[:6] == ["GATEWAY", "PORT", "HOSTS", "TO", "OUTCOME", "CERTIFICATE"]


def test_the_readme_shows_what_check_prints_on_the_examples() -> None:
    """The README's first `check` block is the command's real output on examples/."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("$ kubectl gwdup check -f examples/\n", 1)[1].split("$ echo $?", 1)[0]
    r = run_cli(["check", "-f", EXAMPLES])
    assert block.splitlines() == r.stdout.splitlines() + r.stderr.splitlines()


def test_table_layout_is_kubectls() -> None:
    from kubectl_gwdup.render.table import format_table

    text = format_table(["name", "port"], [["a", "443"], ["longer-name", "8443"]])
    assert text.splitlines() == ["NAME          PORT", "a             443", "longer-name   8443"]
    assert format_table(["name"], [["a"]], no_headers=True) == "a"


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_structured_output_has_stable_keys(fmt: str) -> None:
    r = run_cli(["check", "-f", EXAMPLES, "-o", fmt])
    doc = json.loads(r.stdout) if fmt == "json" else yaml.safe_load(r.stdout)
    assert doc["apiVersion"] and doc["kind"] == "CheckReport"
    for f in doc["findings"]:
        assert list(f)[:6] == ["code", "type", "level", "resource", "message", "docs"]
        assert {"from", "to", "hosts", "outcome"} <= set(f)
        assert all({"gateway", "portName", "portNumber"} <= set(s) for s in f["from"] + f["to"])


def test_wide_adds_evidence_columns() -> None:
    r = run_cli(["check", "-f", EXAMPLES, "-o", "wide"])
    header = r.stdout.splitlines()[0]
    for col in ("WORKLOAD", "LISTENER", "PORT NAMES", "EVIDENCE"):
        assert col in header
    assert "SANs *.shop.example.org" in r.stdout


def test_no_headers() -> None:
    r = run_cli(["check", "-f", EXAMPLES, "--no-headers"])
    assert not r.stdout.startswith("GATEWAY")


def test_wide_without_headers_is_one_table_a_script_can_read() -> None:
    """-o wide adds the listener conditions as a second table; without headers its rows would
    read as findings, so stdout is the findings' rows alone (the conditions stay in -o json)."""
    wide = run_cli(["check", "-f", EXAMPLES, "-o", "wide"])
    assert "OVERLAPPINGTLSCONFIG" in wide.stdout  # the premise: the examples have conditions
    bare = run_cli(["check", "-f", EXAMPLES, "-o", "wide", "--no-headers"])
    findings = json.loads(run_cli(["check", "-f", EXAMPLES, "-o", "json"]).stdout)["findings"]
    lines = bare.stdout.splitlines()
    assert len(lines) == len(findings) and all(line.strip() for line in lines)
    assert all(f["code"] in line for f, line in zip(findings, lines))


def test_namespace_restricts_findings_not_analysis() -> None:
    r = run_cli(["check", "-f", EXAMPLES, "-n", "payments", "-o", "json"])
    (f,) = json.loads(r.stdout)["findings"]
    assert f["code"] == "GWD0102"  # reported because its `to` is in payments
    r = run_cli(["check", "-f", EXAMPLES, "-n", "intranet"])
    assert r.status == 0 and r.stdout == ""
    r = run_cli(["check", "-f", EXAMPLES, "-n", "intranet", "-A", "-o", "json"])
    assert len(json.loads(r.stdout)["findings"]) == 3
    r = run_cli(["check", "-f", EXAMPLES, "-n", "portal", "-o", "json"])
    assert [f["from"][0]["listener"] for f in json.loads(r.stdout)["findings"]] == ["api"]


def test_flags_before_the_subcommand() -> None:
    r = run_cli(["-o", "json", "-n", "shop", "check", "-f", EXAMPLES])
    assert r.status == 3 and len(json.loads(r.stdout)["findings"]) == 1


def test_label_selector_on_gateways(tmp_path) -> None:
    doc = yaml.safe_load_all(open(os.path.join(EXAMPLES, "30-wildcard.yaml")))
    docs = list(doc)
    docs[0]["metadata"]["labels"] = {"team": "shop"}
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    base = ["check", "-f", os.path.join(EXAMPLES, "20-secrets.yaml"), "-f", str(path), "-o", "json"]
    assert len(json.loads(run_cli(base + ["-l", "team=shop"]).stdout)["findings"]) == 1
    assert len(json.loads(run_cli(base + ["-l", "team!=shop"]).stdout)["findings"]) == 1  # checkout has no label
    assert json.loads(run_cli(base + ["-l", "team in (web)"]).stdout)["findings"] == []
    r = run_cli(base + ["-l", "team=(("])
    assert r.status == 2 and r.stderr.startswith("error: unable to parse requirement")


@pytest.mark.parametrize("level,status", [("info", 3), ("warning", 3), ("error", 3), ("never", 0)])
def test_fail_level(level: str, status: int) -> None:
    assert run_cli(["check", "-f", EXAMPLES, "--fail-level", level]).status == status


def test_fail_level_error_ignores_warnings() -> None:
    seed = os.path.join(EXAMPLES, "10-seed.yaml")
    secrets = os.path.join(EXAMPLES, "20-secrets.yaml")
    assert run_cli(["check", "-f", seed, "-f", secrets, "--fail-level", "error"]).status == 0
    assert run_cli(["check", "-f", seed, "-f", secrets]).status == 3


def test_stdin(tmp_path) -> None:
    text = "".join(open(os.path.join(EXAMPLES, f)).read() + "\n---\n" for f in sorted(os.listdir(EXAMPLES))
                   if f.endswith(".yaml"))
    r = run_cli(["check", "-f", "-", "-o", "json"], stdin=text)
    assert r.status == 3 and len(json.loads(r.stdout)["findings"]) == 3


def test_recursive(tmp_path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    for f in os.listdir(EXAMPLES):
        if f.endswith(".yaml"):
            (deep / f).write_text(open(os.path.join(EXAMPLES, f)).read())
    flat = run_cli(["check", "-f", str(tmp_path)])  # one level only, as kubectl: nothing there
    assert flat.status == 1 and flat.stderr == f"error: {tmp_path}: no objects found (-R reads subdirectories too)\n"
    assert run_cli(["check", "-f", str(tmp_path), "-R"]).status == 3


@pytest.mark.parametrize("stdin,message", [(None, "standard input is closed"), ("", "<stdin>: no objects found"),
                                           ("\udcff\udcfe", "not UTF-8 text")])
def test_nothing_read_is_an_error_not_a_clean_bill(tmp_path, stdin, message) -> None:
    from kubectl_gwdup.cli.main import main
    from kubectl_gwdup.env import Env
    import io

    err, source = io.StringIO(), io.StringIO(stdin or "")
    if stdin is None:
        source.close()  # `-f - <&-`
    status = main(["check", "-f", "-"], Env(stdout=io.StringIO(), stderr=err, stdin=source,
                                            environ={"HOME": "/nonexistent"}))
    assert status == 1 and message in err.getvalue() and "internal" not in err.getvalue()
    (tmp_path / "empty.yaml").write_text("# nothing\n---\n")
    r = run_cli(["check", "-f", str(tmp_path / "empty.yaml")])
    assert r.status == 1 and "no objects found" in r.stderr


def test_the_same_object_twice_counts_once(tmp_path) -> None:
    text = open(os.path.join(EXAMPLES, "10-seed.yaml")).read()
    (tmp_path / "twice.yaml").write_text(text + "\n---\n" + text)
    once = run_cli(["check", "-f", os.path.join(EXAMPLES, "10-seed.yaml"), "-o", "json"])
    twice = run_cli(["check", "-f", str(tmp_path / "twice.yaml"), "-o", "json"])
    assert json.loads(twice.stdout)["findings"] == json.loads(once.stdout)["findings"]
    assert "GWD0103" not in twice.stdout


def test_a_certificate_that_is_not_pem_is_an_error(tmp_path) -> None:
    import base64

    (tmp_path / "s.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\n"
                                     f"data: {{tls.crt: {base64.b64encode(b'LS0tLS1CRUdJTg==').decode()}}}\n")
    r = run_cli(["check", "-f", str(tmp_path / "s.yaml")])
    assert r.status == 1 and "tls.crt holds no PEM certificate" in r.stderr


@pytest.mark.parametrize("content,message", [
    ("a: [1, 2\n", "invalid YAML (line 2, column 1)"),
    ("- just\n- a list\n", "expected a Kubernetes object (a mapping), got list"),
    ("kind: Gateway\n", "object is missing apiVersion or kind"),
    ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n"
     "  - port: {number: https}\n    hosts: [a]\n", "Gateway default/g: spec.servers[0].port.number: must be an integer"),
    ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n"
     "  - port: {number: 443}\n    hosts: []\n", "spec.servers[0].hosts: at least one host is required"),
    ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n"
     "  - port: {number: 443}\n    hosts: [a]\n    tls: {mode: SIMPEL}\n", "unknown TLS mode 'SIMPEL'"),
    ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: '!!!'}\n", "data.tls.crt: not valid base64"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: a}\n",
     "VirtualService default/v: spec.hosts: must be a list of strings"),
])
def test_bad_manifests_are_one_line_errors(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    r = run_cli(["check", "-f", str(path)])
    assert r.status == 1
    assert r.stderr.startswith(f"error: {path}: ") and message in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_unknown_kinds_are_ignored(tmp_path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")
    assert run_cli(["check", "-f", str(path)]).status == 0


def test_missing_path() -> None:
    r = run_cli(["check", "-f", "/nonexistent/dir"])
    assert (r.status, r.stderr) == (1, 'error: the path "/nonexistent/dir" does not exist\n')


@pytest.mark.parametrize("args,message", [
    (["check", "-o", "jsn"], 'unable to match a printer suitable for the output format "jsn", allowed formats are: wide, json, yaml'),
    (["check", "--bogus"], "unrecognized arguments: --bogus"),
    (["check", "--fail-level", "loud"], 'invalid --fail-level "loud"'),
    (["check", "--request-timeout", "soon"], 'invalid --request-timeout "soon"'),
    (["check", "-R"], "-R/--recursive needs -f"),
    (["check", "--as-group", "g"], "requesting groups without a user (--as) is not allowed"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_usage_errors_exit_2(args, message) -> None:
    r = run_cli(args)
    assert r.status == 2 and r.stderr.startswith("error: ") and message in r.stderr


def test_help_and_version(capsys) -> None:
    r = run_cli(["check", "--help"])
    assert r.status == 0
    out = capsys.readouterr().out
    assert "usage: kubectl gwdup check" in out and "examples:" in out and "exit status:" in out
    r = run_cli(["--version"])
    assert r.status == 0 and capsys.readouterr().out.startswith("kubectl-gwdup ")


def test_internal_errors_are_one_line_with_a_hint(monkeypatch) -> None:
    from kubectl_gwdup.analysis import registry

    def boom(*a, **k):
        raise RuntimeError("kaboom")
    monkeypatch.setattr(registry, "run", boom)
    r = run_cli(["check", "-f", EXAMPLES])
    assert r.status == 70
    assert r.stderr == "error: internal error: RuntimeError: kaboom (run again with --traceback and report it)\n"
    with pytest.raises(RuntimeError):
        run_cli(["check", "-f", EXAMPLES, "--traceback"])


def test_interrupt_is_130(monkeypatch) -> None:
    from kubectl_gwdup.analysis import registry

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(registry, "run", interrupted)
    assert run_cli(["check", "-f", EXAMPLES]).status == 130


def test_color_only_on_a_tty_without_no_color() -> None:
    import io
    from kubectl_gwdup.env import Env

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    assert Env(stdout=Tty(), environ={}).color is True
    assert Env(stdout=Tty(), environ={"NO_COLOR": ""}).color is False
    assert Env(stdout=io.StringIO(), environ={}).color is False


def test_program_name() -> None:
    from kubectl_gwdup.env import program_name

    assert program_name("/home/u/.krew/bin/kubectl-gwdup") == "kubectl gwdup"
    assert program_name("/usr/local/bin/kubectl-gwdup") == "kubectl gwdup"


def test_progress_line_only_on_a_terminal_after_a_moment() -> None:
    import io
    from kubectl_gwdup.commands.check import _progress
    from kubectl_gwdup.env import Env

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    quiet = Env(stderr=io.StringIO())
    show = _progress(quiet, delay=0)
    show("listed 1000 gateways")
    assert quiet.stderr.getvalue() == ""
    tty = Env(stderr=Tty())
    early = _progress(tty, delay=60)
    early("listed 1000 gateways")
    assert tty.stderr.getvalue() == ""
    show = _progress(tty, delay=0)
    show("listed 1000 gateways")
    show("")
    assert tty.stderr.getvalue() == "\r\x1b[Klisted 1000 gateways...\r\x1b[K"


def test_table_rows_for_every_finding_kind(scenario_files) -> None:
    from kubectl_gwdup.render.findings import row

    from kubectl_gwdup.analysis import registry as reg
    from kubectl_gwdup.inventory import build_inventory
    from kubectl_gwdup.sources.files import load_files

    dropped = reg.run(build_inventory(load_files(scenario_files("dropped_server")))).findings
    (d,) = [f for f in dropped if f.code == "GWD0103"]
    assert row(d, False) == ["web/gw-new,web/gw-old", "443", "a.example.com,only.example.com", "Dropped", "-"]
    assert row(d, True)[:6] == ["web/gw-new", "443", "a.example.com,only.example.com", "web/gw-old", "Dropped", "-"]
    assert row(d, True)[6:8] == ["Error", "GWD0103"] and "duplicate host a.example.com" in row(d, True)[-1]
    rejected = reg.run(build_inventory(load_files(scenario_files("listener_conflict")))).findings
    (r,) = rejected
    assert row(r, False)[:4] == ["web/gw-lower,web/gw-upper", "443", "shop.example.com", "Rejected"]
    r = run_cli(["check", *sum((["-f", f] for f in scenario_files("listener_conflict")), [])])
    assert r.status == 3 and "Rejected" in r.stdout and "1 ListenerRejected" in r.stderr


def test_a_closed_pipe_keeps_the_status(tmp_path) -> None:
    """`check | head` with hazards exits 3, as kubectl keeps its status; nothing on stderr."""
    import subprocess
    import sys

    big = tmp_path / "many.yaml"
    docs = []
    for i in range(2000):  # output well past a pipe buffer, so writes fail while the command runs
        for g in ("a", "b"):
            docs.append(f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw-{g}-{i}, namespace: t{i}}}\n"
                        "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
                        f"  - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: [{g}.t{i}.example.com]\n"
                        f"    tls: {{mode: SIMPLE, credentialName: c{i}}}\n")
    big.write_text("---\n".join(docs))
    proc = subprocess.Popen(f"{sys.executable} -m kubectl_gwdup check -f {big} -o wide 2>&1 | head -1; "
                            "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT, "HOME": str(tmp_path)})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and out.startswith("GATEWAY") and out.count("\n") == 1 and err == ""


def test_errors_name_what_the_user_gave(tmp_path) -> None:
    """probe --timeout blames --timeout; --kubeconfig DIR says what kubectl says; an IPv6
    address prints in brackets."""
    r = run_cli(["probe", "-f", os.path.join(EXAMPLES, "10-seed.yaml"), "--timeout", "abc"])
    assert (r.status, r.stderr) == (2, 'error: invalid --timeout "abc": use a duration such as 30s or 1m\n')
    r = run_cli(["check", "--kubeconfig", str(tmp_path)])
    assert (r.status, r.stderr) == (1, f'error: error loading config file "{tmp_path}": read {tmp_path}: is a directory\n')
    r = run_cli(["probe", "-f", EXAMPLES, "--address", "[::1]:1", "--timeout", "2s"])
    assert "[::1]:1" in r.stdout and "::1:1 " not in r.stdout


@pytest.mark.parametrize("args", [["merge", "--plan", "-o", "wide"], ["merge", "--plan", "--no-headers"],
                                  ["apply-421", "--dry-run=client", "-o", "wide"],
                                  ["apply-421", "--dry-run=client", "--no-headers"]])
def test_table_flags_are_refused_where_there_is_no_table(args) -> None:
    r = run_cli([*args, "-f", EXAMPLES])
    assert r.status == 2 and "go with check and probe" in r.stderr


def test_help_shows_examples_and_defaults() -> None:
    import contextlib
    import io
    from kubectl_gwdup.cli.main import build_parser

    for argv in ([], ["merge"], ["probe"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            build_parser("kubectl gwdup").parse_args([*argv, "--help"])
        assert "examples:" in out.getvalue()
    assert "(default 500)" in out.getvalue()  # --chunk-size, shown on every command


def test_prefer_cert_is_validated_before_any_work() -> None:
    r = run_cli(["merge", "--plan", "--prefer-cert", "Bad_Name!", "-f", "/nonexistent/never-read"])
    assert r.status == 2 and '--prefer-cert "Bad_Name!": not a Secret name' in r.stderr


def test_secrets_absent_from_a_full_export_are_absent(scenario_files, tmp_path) -> None:
    """Manifests that carry Secrets (a full export) say a Secret they lack does not exist: its
    server's handshakes fail (GWD0104), and the report says which reading was made;
    --secrets=absent-are-unknown assumes it exists, as for manifests without any Secret."""
    import json

    import yaml

    docs = [d for p in scenario_files("seed") for d in yaml.safe_load_all(open(p)) if d]
    export = tmp_path / "export.yaml"
    export.write_text(yaml.safe_dump_all([d for d in docs if not (d["kind"] == "Secret"
                                                                  and d["metadata"]["name"] == "c-cert")]))
    got = run_cli(["check", "-f", str(export), "-o", "json"])
    codes = {f["code"] for f in json.loads(got.stdout)["findings"]}
    assert "GWD0104" in codes and "taken as absent" in got.stderr, got.stderr
    assumed = run_cli(["check", "-f", str(export), "-o", "json", "--secrets", "absent-are-unknown"])
    assert "GWD0104" not in {f["code"] for f in json.loads(assumed.stdout)["findings"]}
    assert "assumed to exist" in assumed.stderr
    chart = tmp_path / "chart.yaml"  # no Secret at all: nothing is said absent
    chart.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"]))
    plain = run_cli(["check", "-f", str(chart), "-o", "json"])
    assert "GWD0104" not in {f["code"] for f in json.loads(plain.stdout)["findings"]}
    bad = run_cli(["check", "-f", str(chart), "--secrets", "maybe"])
    assert bad.status == 2 and bad.stderr.startswith('error: invalid --secrets "maybe"')
    live = run_cli(["check", "--secrets", "complete"])
    assert live.status == 2 and "--secrets goes with manifests" in live.stderr


def test_strict_gateway_merging_follows_the_istio_version(scenario_files) -> None:
    """An Istio Gateway of another namespace on a managed Gateway API Gateway's pods is merged
    there up to Istio 1.30 (a hazard) and held off from 1.31 (a note); the version used is said,
    from --istio-version or, without it, the newest modelled."""
    import json

    files = sum((["-f", p] for p in scenario_files("gwapi_strict_merging", with_workload=False)), [])
    old = run_cli(["check", *files, "-o", "json", "--istio-version", "1.30"])
    assert old.status == 3 and "control plane: Istio 1.30 (--istio-version)" in old.stderr, old.stderr
    assert {f["code"] for f in json.loads(old.stdout)["findings"]} == {"GWD0101"}
    new = run_cli(["check", *files, "-o", "json", "--istio-version", "1.31"])
    assert new.status == 0 and json.loads(new.stdout)["findings"] == [], new.stderr
    assert "not merged onto apps/web-istio" in new.stderr
    default = run_cli(["check", *files, "-o", "json"])
    assert json.loads(default.stdout)["findings"] == [] and "Istio 1.31 assumed, the newest modelled" in default.stderr
