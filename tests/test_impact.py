"""`kubectl gwdup impact` on access logs the real Envoy wrote in Istio's default text and JSON
formats: a browser-like client sends coalesced requests, the emulator's pods/log endpoint (or a
saved file) serves the log, and impact counts exactly what was sent, joined with check."""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Tuple

import pytest
from hypothesis import given, settings, strategies as st

import envoyfilter_patch
from conftest import run_cli
from istiod_translate import Connection, Envoy, Translation, new_workdir
from test_apply421 import scenario_docs_with_keys
from test_live import scenario_docs

from kubectl_gwdup.accesslog import ISTIO_TEXT, Parser, browser_family, host_of

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"
BOUND = 8443  # the port the scenario's gateway binds; the loopback listener stands for it


def envoy_log(docs: List[dict], certs, fmt: str, plan: List[Tuple[str, str, int, str]],
              filters: List[dict] = ()) -> List[str]:
    """Serve the manifests on the real Envoy with Istio's access-log format `fmt`, send `plan`
    ((connection host, request host, count, user agent)), and return the log lines, the
    listener's loopback port written as the port it stands for."""
    log = os.path.join(new_workdir(), "access.log")
    t = Translation(docs, new_workdir(), None, access_log=log, log_format=fmt)
    envoyfilter_patch.apply(t, list(filters))
    with Envoy(t):
        (port,) = t.ports.values()
        for conn_host, request_host, count, agent in plan:
            c = Connection(port, conn_host, certs.ca_cert)
            assert not c.error, c.error
            for _ in range(count):
                c.request(request_host, "/account?token=SECRET-TOKEN", agent)
            c.close()
        expected = sum(n for _, _, n, _ in plan)
        for _ in range(100):  # Envoy flushes its access log on a timer
            if os.path.exists(log) and len(open(log).read().splitlines()) >= expected:
                break
            import time
            time.sleep(0.1)
    lines = open(log).read().splitlines()
    assert len(lines) == expected
    return [re.sub(rf"127\.0\.0\.1:{port}\b", f"10.244.0.7:{BOUND}", line) for line in lines]


PLAN = [("a.example.com", "b.example.com", 3, CHROME), ("a.example.com", "a.example.com", 4, CHROME),
        ("b.example.com", "a.example.com", 2, SAFARI), ("c.example.com", "c.example.com", 1, CHROME)]


def rows(doc: dict) -> Dict[Tuple[str, str], Tuple[int, Dict[str, int], Dict[str, int], bool]]:
    return {(r["connectionHost"], r["requestHost"]): (r["requests"], {k: v for k, v in r["outcomes"].items() if v},
                                                      r["userAgents"], r["predicted"]) for r in doc["rows"]}


@pytest.mark.parametrize("fmt", ["istio-text", "istio-json"])
def test_counts_what_was_sent_from_a_saved_log(fmt, scenario_files, certs, tmp_path) -> None:
    docs = scenario_docs_with_keys("seed_routed", scenario_files, certs)
    lines = envoy_log(docs, certs, fmt, PLAN)
    assert all("SECRET-TOKEN" in line for line in lines)  # the path is in the log ...
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    r = run_cli(["impact", "-f", str(path), *sum((["--manifests", f] for f in scenario_files("seed_routed")), []),
                 "-o", "json"])
    assert r.status == 3, r.stderr
    assert "SECRET-TOKEN" not in r.stdout + r.stderr  # ... and never in impact's output
    doc = json.loads(r.stdout)
    assert rows(doc) == {("a.example.com", "b.example.com"): (3, {"404 no route": 3}, {"Chrome": 3}, True),
                         ("b.example.com", "a.example.com"): (2, {"404 no route": 2}, {"Safari": 2}, True)}
    t = doc["totals"]
    assert (t["lines"], t["requests"], t["coalesced"], t["unparsed"]) == (10, 10, 5, 0)
    assert (t["predictedAndSeen"], t["predictedNotSeen"], t["seenNotPredicted"]) == (1, 0, 0)
    assert [f["seen"] for f in doc["findings"]] == [True]


def test_misrouted_and_421(scenario_files, certs, tmp_path) -> None:
    """The wildcard case answers 200 from the wrong backend; with apply-421's filters, 421."""
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.inventory import build_inventory
    from kubectl_gwdup.plans.misdirect421 import Method421, plan_421
    from kubectl_gwdup.sources.files import load_files

    name = "wildcard_host_misrouted"
    docs = scenario_docs_with_keys(name, scenario_files, certs)
    plan = [("x.example.com", "b.example.com", 4, CHROME), ("b.example.com", "b.example.com", 1, CHROME)]
    manifests = sum((["--manifests", f] for f in scenario_files(name)), [])
    path = tmp_path / "before.log"
    path.write_text("\n".join(envoy_log(docs, certs, "istio-text", plan)) + "\n")
    doc = json.loads(run_cli(["impact", "-f", str(path), *manifests, "-o", "json"]).stdout)
    assert rows(doc) == {("x.example.com", "b.example.com"): (4, {"misrouted": 4}, {"Chrome": 4}, True)}
    inv = build_inventory(load_files(scenario_files(name)))
    filters = plan_421(inv, registry.run(inv).findings, Method421.VHOST).objects
    path = tmp_path / "after.log"
    path.write_text("\n".join(envoy_log(docs, certs, "istio-text", plan, filters)) + "\n")
    r = run_cli(["impact", "-f", str(path), *manifests, "-o", "json"])
    assert r.status == 0  # answered 421: nothing harmful
    assert rows(json.loads(r.stdout)) == {("x.example.com", "b.example.com"): (4, {"421": 4}, {"Chrome": 4}, True)}


@pytest.mark.parametrize("fmt", ["istio-text", "istio-json"])
def test_reads_the_gateway_pods_logs(fmt, cluster, certs, scenario_files, emulator_only) -> None:
    docs = scenario_docs_with_keys("seed_routed", scenario_files, certs)
    lines = envoy_log(docs, certs, fmt, PLAN)
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed_routed")))
    ns = cluster.ns("istio-system")
    emulator_only.set_pod_log(ns, "istio-ingressgateway-7d4f9c6b8-x2x9q", ["gateway starting"] + lines)
    r = run_cli(["impact", "-o", "json", "--tail", "100", "--max-log-bytes", "1000000"], cluster.env)
    assert r.status == 3, r.stderr
    doc = json.loads(r.stdout)
    assert rows(doc) == {("a.example.com", "b.example.com"): (3, {"404 no route": 3}, {"Chrome": 3}, True),
                         ("b.example.com", "a.example.com"): (2, {"404 no route": 2}, {"Safari": 2}, True)}
    assert doc["totals"]["unparsed"] == 1 and "1 of 11 line(s) are not access-log lines" in r.stderr
    (call,) = [q for m, p, q in emulator_only.log if p.endswith("/log")]
    assert call["container"] == ["istio-proxy"] and call["tailLines"] == ["100"] and call["limitBytes"] == ["1000000"]
    table = run_cli(["impact"], cluster.env)
    assert table.stdout.splitlines()[0].split()[:4] == ["FINDING", "CONNECTION", "HOST", "REQUEST"]


def test_tail_and_bytes_bound_what_is_read(cluster, certs, emulator_only) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed_routed")))
    ns = cluster.ns("istio-system")
    line = ('[2026-11-30T10:00:00.000Z] "GET / HTTP/2" 404 NR route_not_found - "-" 0 0 0 - "-" "curl/8.5" "id" '
            '"b.example.com" "-" - - 10.244.0.7:8443 10.0.0.1:1 a.example.com -')
    emulator_only.set_pod_log(ns, "istio-ingressgateway-7d4f9c6b8-x2x9q", [line] * 50)
    doc = json.loads(run_cli(["impact", "-o", "json", "--tail", "7"], cluster.env).stdout)
    assert doc["totals"]["coalesced"] == 7
    doc = json.loads(run_cli(["impact", "-o", "json", "--max-log-bytes", str(3 * (len(line) + 1) + 10)],
                             cluster.env).stdout)
    assert (doc["totals"]["coalesced"], doc["totals"]["unparsed"]) == (3, 1)  # the cut fourth line


def test_logs_off_and_forbidden(cluster, certs, emulator_only) -> None:
    cluster.apply(cluster.isolate(scenario_docs(certs, "seed_routed")))
    r = run_cli(["impact"], cluster.env)
    assert r.status == 0
    assert "1 gateway pod(s) logged nothing" in r.stderr and "kind: Telemetry" in r.stderr
    emulator_only.deny.append(("*", "get", "", "pods/log"))
    r = run_cli(["impact"], cluster.env)
    assert r.status == 1 and r.stderr.startswith("Error from server (Forbidden): pods ")
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("content,note", [
    (b"\x00\x01\xff\xfe" * 5000, "none of 1 line(s) is an access-log line"),
    (b"\x00\x01\n" * 3 + b'[2026-11-30T10:00:00.000Z] "GET / HTTP/2" 200 - via_upstream - "-" 0 0 0 - "-" "-" "-" '
     b'"a.example.com" "-" - - 10.0.0.1:8443 10.0.0.2:1 a.example.com -\n', "3 of 4 line(s) are not access-log lines"),
    (b'[2026-11-30T10:00:00.000Z] "GET / HTTP/2" 404 NR\n' * 3, "none of 3 line(s) is an access-log line"),
    (b'127.0.0.1 - - [30/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8"\n',
     "none of 1 line(s) is an access-log line"),
    (b"", "access logs look off"),
    (b"{" + b"x" * 200000 + b"\n", "none of 1 line(s) is an access-log line"),
])
def test_bad_logs_are_one_note(content, note, scenario_files, tmp_path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(content)
    r = run_cli(["impact", "-f", str(path), *sum((["--manifests", f] for f in scenario_files("seed_routed")), [])])
    assert r.status == 0, r.stderr
    assert note in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--since", "1h", "--since-time", "2026-11-30T10:00:00Z"], "at most one of --since and --since-time"),
    (["--since-time", "yesterday"], 'invalid --since-time "yesterday"'),
    (["--tail", "-2"], "--tail must be -1"),
    (["--log-format", "plain words"], "no %OPERATOR% in it"),
    (["--log-format", "%START_TIME% %RESPONSE_CODE%"], "the log format lacks %REQUESTED_SERVER_NAME%, %REQ(:AUTHORITY)%"),
    (["-f", "x.log", "--tail", "5"], "bound what is read from the pods, not -f files"),
])
def test_usage_errors(args, message) -> None:
    r = run_cli(["impact", *args])
    assert r.status == 2 and message in r.stderr, r.stderr


def test_custom_format(scenario_files, tmp_path) -> None:
    fmt = "%START_TIME% sni=%REQUESTED_SERVER_NAME% host=%REQ(:AUTHORITY)% code=%RESPONSE_CODE% %DOWNSTREAM_LOCAL_ADDRESS%"
    path = tmp_path / "custom.log"
    path.write_text("2026-11-30T10:00:00Z sni=a.example.com host=B.example.com:443 code=404 10.0.0.1:8443\n" * 2)
    r = run_cli(["impact", "-f", str(path), "--log-format", fmt, "-o", "json",
                 *sum((["--manifests", f] for f in scenario_files("seed_routed")), [])])
    doc = json.loads(r.stdout)
    assert [(x["connectionHost"], x["requestHost"], x["outcomes"]["other"]) for x in doc["rows"]] == \
        [("a.example.com", "b.example.com", 2)]  # no flags in this format: a 404 it cannot call "no route"


# --- the parser ----------------------------------------------------------------------------------

_word = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)
_agent = st.from_regex(r"[A-Za-z0-9/.;() _-]{0,60}", fullmatch=True)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(sni=_word, authority=_word, port=st.integers(1, 65535), status=st.integers(100, 599), agent=_agent,
       path=st.text(min_size=1, max_size=40).filter(lambda p: "\n" not in p and '"' not in p).map(lambda p: "/~" + p))
def test_text_format_round_trip(sni, authority, port, status, agent, path) -> None:
    """A line written in Istio's text format with these values reads back as them (the path,
    whatever it holds, is not kept)."""
    values = {"%START_TIME%": "2026-11-30T10:00:00.000Z", "%REQ(:METHOD)%": "GET",
              "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%": path, "%PROTOCOL%": "HTTP/2", "%RESPONSE_CODE%": str(status),
              "%RESPONSE_FLAGS%": "NR", "%RESPONSE_CODE_DETAILS%": "route_not_found", "%REQ(USER-AGENT)%": agent,
              "%REQ(:AUTHORITY)%": f"{authority}:{port}", "%DOWNSTREAM_LOCAL_ADDRESS%": f"10.0.0.1:{port}",
              "%REQUESTED_SERVER_NAME%": sni}
    line = re.sub(r"%[A-Z_]+(?:\([^)%]*\))?%", lambda m: values.get(m.group(0), "-"), ISTIO_TEXT)
    r = Parser.from_flag("text").parse(line)
    assert r is not None
    assert (r.sni, r.authority, r.status, r.port, r.flags) == (sni.rstrip("."), host_of(authority), status, port, "NR")
    assert r.agent == browser_family(agent) and all(path not in str(v) for v in r)  # a Request holds no path


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_not_never_raise(data) -> None:
    for fmt in ("text", "json"):
        for line in data.decode("utf-8", "replace").splitlines():
            Parser.from_flag(fmt).parse(line)


def test_seen_and_not_predicted_is_its_own_row(scenario_files, tmp_path) -> None:
    """c.example.com's certificate is its own: no browser pools it with a.example.com, so check
    predicts nothing; a client that sends it there anyway (curl --connect-to) shows in the log
    as coalesced, and impact reports it apart, as a bug report against the prediction."""
    line = ('[2026-11-30T10:00:00.000Z] "GET / HTTP/2" 404 NR route_not_found - "-" 0 0 0 - "-" "curl/8.5.0" "id" '
            '"c.example.com" "-" - - 10.244.0.7:8443 10.0.0.1:1 a.example.com -\n')
    path = tmp_path / "curl.log"
    path.write_text(line * 2)
    r = run_cli(["impact", "-f", str(path), "-o", "json", *sum((["--manifests", f] for f in scenario_files("seed_routed")), [])])
    doc = json.loads(r.stdout)
    assert rows(doc) == {("a.example.com", "c.example.com"): (2, {"404 no route": 2}, {"curl": 2}, False)}
    assert (doc["totals"]["seenNotPredicted"], doc["totals"]["predictedNotSeen"]) == (2, 1)
    assert "2 request(s) coalesced where check predicted none" in r.stderr
    assert "not predicted" in run_cli(["impact", "-f", str(path), *sum((["--manifests", f] for f in
                                                                        scenario_files("seed_routed")), [])]).stdout


def test_missing_log_file_is_one_error_line(scenario_files) -> None:
    r = run_cli(["impact", "-f", "/nonexistent/gateway.log",
                 *sum((["--manifests", f] for f in scenario_files("seed_routed")), [])])
    assert r.status == 1 and r.stderr == "error: /nonexistent/gateway.log: No such file or directory\n"


def test_gateway_api_listeners(scenario_files, certs, tmp_path) -> None:
    """A Gateway API Gateway's own deployment binds its listener port: the log's listener
    address names 443, and the rows name the listeners."""
    from gatewayapi_translate import istio_view

    docs = scenario_docs_with_keys("gwapi_seed", scenario_files, certs)
    log = os.path.join(new_workdir(), "access.log")
    t = Translation(istio_view(docs), new_workdir(), None, access_log=log, log_format="istio-json")
    with Envoy(t):
        (port,) = t.ports.values()
        c = Connection(port, "a.example.com", certs.ca_cert)
        for _ in range(2):
            c.request("b.example.com", "/", SAFARI)
        c.close()
        import time
        for _ in range(100):
            if os.path.exists(log) and len(open(log).read().splitlines()) >= 2:
                break
            time.sleep(0.1)
    path = tmp_path / "gw.log"
    path.write_text(open(log).read().replace(f"127.0.0.1:{port}", "10.244.3.9:443"))
    r = run_cli(["impact", "-f", str(path), "-o", "json", "--workload", "apps/web-istio",
                 *sum((["--manifests", f] for f in scenario_files("gwapi_seed")), [])])
    assert r.status == 3, r.stderr
    (row,) = json.loads(r.stdout)["rows"]
    assert (row["from"], row["to"], row["outcomes"]["404 no route"], row["userAgents"]) == \
        ("apps/web/https-a", "apps/web/https-b", 2, {"Safari": 2})


def test_namespace_scopes_rows_not_the_join(scenario_files, tmp_path) -> None:
    """-n keeps the rows of findings that involve the namespace; a request on another
    namespace's hazard is not reported as unpredicted."""
    line = ('[2026-11-30T10:00:00.000Z] "GET / HTTP/2" 404 NR route_not_found - "-" 0 0 0 - "-" "curl/8.5.0" "id" '
            '"b.example.com" "-" - - 10.244.0.7:8443 10.0.0.1:1 a.example.com -\n')
    path = tmp_path / "a.log"
    path.write_text(line)
    manifests = sum((["--manifests", f] for f in scenario_files("seed_routed")), [])
    mine = json.loads(run_cli(["impact", "-f", str(path), "-o", "json", "-n", "team-b", *manifests]).stdout)
    assert [(r["requestHost"], r["predicted"]) for r in mine["rows"]] == [("b.example.com", True)]
    other = json.loads(run_cli(["impact", "-f", str(path), "-o", "json", "-n", "team-c", *manifests]).stdout)
    assert other["rows"] == [] and other["totals"]["coalesced"] == 0 and other["totals"]["seenNotPredicted"] == 0
