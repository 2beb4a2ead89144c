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
              filters: List[dict] = (), extra: List[Tuple[str, str]] = ()) -> List[str]:
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
                c.request(request_host, "/account?token=SECRET-TOKEN", agent, extra)
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
    r = run_cli(["impact", "--log-file", str(path), *sum((["--manifests", f] for f in scenario_files("seed_routed")), []),
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
    doc = json.loads(run_cli(["impact", "--log-file", str(path), *manifests, "-o", "json"]).stdout)
    assert rows(doc) == {("x.example.com", "b.example.com"): (4, {"misrouted": 4}, {"Chrome": 4}, True)}
    inv = build_inventory(load_files(scenario_files(name)))
    filters = plan_421(inv, registry.run(inv).findings, Method421.VHOST).objects
    path = tmp_path / "after.log"
    path.write_text("\n".join(envoy_log(docs, certs, "istio-text", plan, filters)) + "\n")
    r = run_cli(["impact", "--log-file", str(path), *manifests, "-o", "json"])
    assert r.status == 0  # answered 421: nothing harmful
    assert rows(json.loads(r.stdout)) == {("x.example.com", "b.example.com"): (4, {"421": 4}, {"Chrome": 4}, True)}


@pytest.mark.parametrize("fmt", ["istio-text", "istio-json"])
def test_what_clients_send_never_changes_the_count(fmt, scenario_files, certs, tmp_path) -> None:
    """On a gateway mitigated by 421, through the real Envoy: a direct request whose User-Agent
    imitates the tail of a misrouted coalesced line is not counted as one (the exit status stays
    0), a coalesced request whose User-Agent holds quotes is counted, and so are requests with
    hostile X-Forwarded-For and X-Request-ID headers."""
    from kubectl_gwdup.analysis import registry
    from kubectl_gwdup.inventory import build_inventory
    from kubectl_gwdup.plans.misdirect421 import Method421, plan_421
    from kubectl_gwdup.sources.files import load_files

    name = "wildcard_host_misrouted"
    docs = scenario_docs_with_keys(name, scenario_files, certs)
    manifests = sum((["--manifests", f] for f in scenario_files(name)), [])
    inv = build_inventory(load_files(scenario_files(name)))
    filters = plan_421(inv, registry.run(inv).findings, Method421.VHOST).objects
    fake_tail = (f'{CHROME}" "0b6a9a4e" "b.example.com" "10.1.1.1:8080" outbound|8080||b.default.svc.cluster.local '
                 f'10.244.0.7:41000 10.244.0.7:{BOUND} 10.0.0.2:5000 x.example.com -')
    quoted = CHROME + ' "quoted" " " {"x": "y"}'
    plan = [("x.example.com", "x.example.com", 3, fake_tail), ("x.example.com", "b.example.com", 2, quoted),
            ("b.example.com", "b.example.com", 1, CHROME)]
    hostile_headers = [("x-forwarded-for", f'1.2.3.4" "{SAFARI}'), ("x-request-id", '" "b.example.com" "x')]
    for extra in ([], hostile_headers):
        path = tmp_path / "mitigated.log"
        path.write_text("\n".join(envoy_log(docs, certs, fmt, plan, filters, extra)) + "\n")
        r = run_cli(["impact", "--log-file", str(path), *manifests, "-o", "json"])
        assert r.status == 0, r.stderr
        doc = json.loads(r.stdout)
        assert rows(doc) == {("x.example.com", "b.example.com"): (2, {"421": 2}, {"Chrome": 2}, True)}, extra
        t = doc["totals"]
        assert (t["lines"], t["requests"], t["unparsed"], t["proxyLog"]) == (6, 6, 0, 0)


def test_requests_without_a_host_are_never_coalesced(scenario_files, tmp_path) -> None:
    """HTTP/1.0 without Host: Envoy logs the authority as `-` (JSON: null). On a listener with a
    `*` server that is no request for another host, whatever its SNI."""
    files = scenario_files("catch_all_host")
    lines = []
    for fmt in ("text", "json"):
        values = base_values("b.example.com", "-", 443, 404, CHROME, "/")
        values["%REQ(:AUTHORITY)%"] = "-" if fmt == "text" else None
        values["%DOWNSTREAM_LOCAL_ADDRESS%"] = "10.0.0.1:8443"
        lines.append(write_line(fmt, values))
    for fmt, line in zip(("istio-text", "istio-json"), lines):
        path = tmp_path / f"{fmt}.log"
        path.write_text(line + "\n")
        r = run_cli(["impact", "--log-file", str(path), *sum((["--manifests", f] for f in files), []), "-o", "json"])
        assert r.status == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["rows"] == [] and doc["totals"]["withoutAuthority"] == 1, doc["totals"]


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
    r = run_cli(["impact", "--log-file", str(path), *sum((["--manifests", f] for f in scenario_files("seed_routed")), [])])
    assert r.status == 0, r.stderr
    assert note in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--since", "1h", "--since-time", "2026-11-30T10:00:00Z"], "at most one of --since and --since-time"),
    (["--since-time", "yesterday"], 'invalid --since-time "yesterday"'),
    (["--tail", "-2"], "--tail must be -1"),
    (["--log-format", "plain words"], "no %OPERATOR% in it"),
    (["--log-format", "%START_TIME% %RESPONSE_CODE%"], "the log format lacks %REQUESTED_SERVER_NAME%, %REQ(:AUTHORITY)%"),
    (["--log-file", "x.log", "--tail", "5"], "bound what is read from the pods, not --log-file files"),
])
def test_usage_errors(args, message) -> None:
    r = run_cli(["impact", *args])
    assert r.status == 2 and message in r.stderr, r.stderr


def test_custom_format(scenario_files, tmp_path) -> None:
    fmt = "%START_TIME% sni=%REQUESTED_SERVER_NAME% host=%REQ(:AUTHORITY)% code=%RESPONSE_CODE% %DOWNSTREAM_LOCAL_ADDRESS%"
    path = tmp_path / "custom.log"
    path.write_text("2026-11-30T10:00:00Z sni=a.example.com host=B.example.com:443 code=404 10.0.0.1:8443\n" * 2)
    r = run_cli(["impact", "--log-file", str(path), "--log-format", fmt, "-o", "json",
                 *sum((["--manifests", f] for f in scenario_files("seed_routed")), [])])
    doc = json.loads(r.stdout)
    assert [(x["connectionHost"], x["requestHost"], x["outcomes"]["other"]) for x in doc["rows"]] == \
        [("a.example.com", "b.example.com", 2)]  # no flags in this format: a 404 it cannot call "no route"


# --- the parser ----------------------------------------------------------------------------------

_word = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)
_agent = st.from_regex(r"[A-Za-z0-9/.;() _-]{0,60}", fullmatch=True)
# what the HTTP/1 and HTTP/2 codecs let through in a path: visible characters, no white space
_path = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x10FFFF, blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
                max_size=40).filter(lambda p: not any(c.isspace() for c in p)).map(lambda p: "/~" + p)

# Istio's JSON format (EnvoyJSONLogFormatIstio): every key, as Envoy writes it (null when unset)
ISTIO_JSON_KEYS = {"start_time": "%START_TIME%", "route_name": "%ROUTE_NAME%", "method": "%REQ(:METHOD)%",
                   "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "protocol": "%PROTOCOL%",
                   "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
                   "response_code_details": "%RESPONSE_CODE_DETAILS%",
                   "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
                   "bytes_received": "%BYTES_RECEIVED%", "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
                   "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
                   "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%", "user_agent": "%REQ(USER-AGENT)%",
                   "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
                   "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
                   "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
                   "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
                   "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
                   "requested_server_name": "%REQUESTED_SERVER_NAME%",
                   "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%"}


def write_line(fmt: str, values: Dict[str, str]) -> str:
    """A line as Envoy writes it: the text format with each operator's value put in as it is
    (Envoy escapes nothing there, `-` when unset), or Istio's JSON object."""
    if fmt == "json":
        return json.dumps({k: values.get(op) for k, op in ISTIO_JSON_KEYS.items()})
    return re.sub(r"%[A-Z_]+(?:\([^)%]*\))?%", lambda m: values.get(m.group(0), "-").replace("\\", "\\\\"), ISTIO_TEXT)


def base_values(sni: str, authority: str, port: int, status: int, agent: str, path: str) -> Dict[str, str]:
    return {"%START_TIME%": "2026-11-30T10:00:00.000Z", "%REQ(:METHOD)%": "GET",
            "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%": path, "%PROTOCOL%": "HTTP/2", "%RESPONSE_CODE%": str(status),
            "%RESPONSE_FLAGS%": "NR", "%RESPONSE_CODE_DETAILS%": "route_not_found", "%REQ(USER-AGENT)%": agent,
            "%REQ(:AUTHORITY)%": f"{authority}:{port}", "%DOWNSTREAM_LOCAL_ADDRESS%": f"10.0.0.1:{port}",
            "%REQUESTED_SERVER_NAME%": sni, "%REQ(X-FORWARDED-FOR)%": "203.0.113.7",
            "%REQ(X-REQUEST-ID)%": "0b6a9a4e-2f0c-4c4e-9a55-0c8a3a7d1f2e", "%UPSTREAM_HOST%": "10.1.2.3:8080",
            "%UPSTREAM_CLUSTER_RAW%": "outbound|8080||backend.shop.svc.cluster.local",
            "%UPSTREAM_LOCAL_ADDRESS%": "10.0.0.1:40000", "%DOWNSTREAM_REMOTE_ADDRESS%": "198.51.100.2:51000",
            "%ROUTE_NAME%": "-", "%BYTES_RECEIVED%": "0", "%BYTES_SENT%": "0", "%DURATION%": "1",
            "%UPSTREAM_TRANSPORT_FAILURE_REASON%": "-"}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(sni=_word, authority=_word, port=st.integers(1, 65535), status=st.integers(100, 599), agent=_agent, path=_path)
def test_text_format_round_trip(sni, authority, port, status, agent, path) -> None:
    """A line written in Istio's text format with these values reads back as them (the path,
    whatever it holds, is not kept)."""
    r = Parser.from_flag("text").parse(write_line("text", base_values(sni, authority, port, status, agent, path)))
    assert r is not None
    assert (r.sni, r.authority, r.status, r.port, r.flags) == (sni.rstrip("."), host_of(authority), status, port, "NR")
    assert r.agent == browser_family(agent) and all(path not in str(v) for v in r)  # a Request holds no path


# values a client can choose: quotes, braces, spaces, the tail of another line, what a non-UTF-8
# byte becomes once read, and up to 64 KiB
TAIL = ('" "evil.example.com" "10.9.9.9:80" outbound|80||x 10.0.0.9:1 10.0.0.1:8443 192.0.2.1:1 '
        'a.example.com https.443.https.gw.ns')
FAKE_STATUS = '" 200 - via_upstream - "-" 0 0 0 - "'
_hostile = st.one_of(
    st.sampled_from([TAIL, FAKE_STATUS, '"', '" "', "{}", '{"a":"b"}', "a b c", "\ufffd\ufffd", "-", "",
                     CHROME + TAIL, TAIL + CHROME]),
    st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=80),
    st.integers(1, 64 * 1024).map(lambda n: ('" "x' * (n // 4 + 1))[:n]))
# the path: what the codecs let through (no white space), quotes and another line's tail included
_hostile_path = st.one_of(_path, st.sampled_from(["/" + TAIL.replace(" ", ""), '/"', '/{"}', "/" + "\"" * 1000]))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(fmt=st.sampled_from(["text", "json"]), sni=_word, authority=_word, port=st.integers(1, 65535),
       status=st.integers(100, 599), agent=st.sampled_from([CHROME, SAFARI, "curl/8.5.0"]),
       field=st.sampled_from(["%REQ(USER-AGENT)%", "%REQ(X-FORWARDED-FOR)%", "%REQ(X-REQUEST-ID)%", "path"]),
       value=_hostile, path=_hostile_path)
def test_no_client_chosen_value_moves_a_counted_field(fmt, sni, authority, port, status, agent, field, value,
                                                      path) -> None:
    """The same request, its client-chosen fields plain or hostile, reads as the same request:
    every field impact counts by, in both of Istio's formats. The browser family is read from
    the user agent itself (hostile there, it is whatever that text says), and stays exact beside
    a hostile X-Forwarded-For or request id unless that value holds the `" "` separator."""
    plain = base_values(sni, authority, port, status, agent, "/")
    hostile = dict(plain)
    if field == "path":
        hostile["%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"] = path
    else:
        hostile[field] = value
    parser = Parser.from_flag(fmt)
    want, got = parser.parse(write_line(fmt, plain)), parser.parse(write_line(fmt, hostile))
    assert want is not None and got is not None, write_line(fmt, hostile)[:300]
    counted = lambda r: (r.sni, r.authority, r.status, r.port, r.flags, r.details, r.route)
    assert counted(got) == counted(want)
    if field == "%REQ(USER-AGENT)%":
        assert got.agent == browser_family(value if value != "-" else "")
    elif fmt == "json" or field == "path" or '" "' not in value:
        assert got.agent == want.agent


PROXY_LINES = [
    '2026-11-30T10:00:00.123456Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod.istio-system.svc:15012',
    '2026-11-30T10:00:00.123456Z\twarning\tenvoy config external/envoy/source/common/config/grpc_stream.h:191\t'
    'StreamAggregatedResources gRPC config stream closed since 1800s ago: 13, \tthread=14',
    '{"level":"info","time":"2026-11-30T10:00:00.123456Z","scope":"xdsproxy","msg":"connected to upstream XDS server"}',
    '{"level":"error","time":"2026-11-30T10:00:00Z","msg":"cannot read certificate", "authority": "x"}',
    '[2026-11-30 10:00:00.123][14][warning][config] [source/common/config/grpc_stream.h:191] stream closed',
]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_istio_proxys_own_logging_is_counted_apart(fmt) -> None:
    from kubectl_gwdup.accesslog import PROXY_LOG, detect

    parser = Parser.from_flag(fmt)
    assert [parser.parse(line) for line in PROXY_LINES] == [PROXY_LOG] * len(PROXY_LINES)
    request = write_line(fmt, base_values("a.example.com", "b.example.com", 443, 404, CHROME, "/"))
    assert detect(PROXY_LINES + [request]) == fmt  # the proxy's JSON lines do not make a text log JSON
    assert parser.parse(request) not in (None, PROXY_LOG)
    assert parser.parse("GET / HTTP/1.1 200") is None  # other output stays unparsed


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
    r = run_cli(["impact", "--log-file", str(path), "-o", "json", *sum((["--manifests", f] for f in scenario_files("seed_routed")), [])])
    doc = json.loads(r.stdout)
    assert rows(doc) == {("a.example.com", "c.example.com"): (2, {"404 no route": 2}, {"curl": 2}, False)}
    assert (doc["totals"]["seenNotPredicted"], doc["totals"]["predictedNotSeen"]) == (2, 1)
    assert "2 request(s) coalesced where check predicted none" in r.stderr
    assert "not predicted" in run_cli(["impact", "--log-file", str(path), *sum((["--manifests", f] for f in
                                                                        scenario_files("seed_routed")), [])]).stdout


def test_missing_log_file_is_one_error_line(scenario_files) -> None:
    r = run_cli(["impact", "--log-file", "/nonexistent/gateway.log",
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
    r = run_cli(["impact", "--log-file", str(path), "-o", "json", "--workload", "apps/web-istio",
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
    mine = json.loads(run_cli(["impact", "--log-file", str(path), "-o", "json", "-n", "team-b", *manifests]).stdout)
    assert [(r["requestHost"], r["predicted"]) for r in mine["rows"]] == [("b.example.com", True)]
    other = json.loads(run_cli(["impact", "--log-file", str(path), "-o", "json", "-n", "team-c", *manifests]).stdout)
    assert other["rows"] == [] and other["totals"]["coalesced"] == 0 and other["totals"]["seenNotPredicted"] == 0


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_parsers_memo_keeps_each_lines_time_and_stays_bounded(fmt) -> None:
    """What a parser remembers of repeated fields never carries one line's time into another,
    and a log whose every line is new (a stranger's unique User-Agents, 60 KiB ones too) keeps
    it within its bounds."""
    from kubectl_gwdup.accesslog import MEMO_LINE, MEMO_SIZE

    parser = Parser.from_flag(fmt)
    values = base_values("a.example.com", "b.example.com", 443, 404, CHROME, "/")
    for t in ("2026-11-30T10:00:00.000Z", "2026-11-30T11:00:00.000Z"):
        r = parser.parse(write_line(fmt, dict(values, **{"%START_TIME%": t})))
        assert r.time == t and r.authority == "b.example.com" and r.agent == "Chrome"
    for i in range(MEMO_SIZE + 10):
        parser.parse(write_line(fmt, dict(values, **{"%REQ(USER-AGENT)%": f"agent-{i}"})))
        assert len(parser._memo) <= MEMO_SIZE
    parser._memo.clear()
    big = parser.parse(write_line(fmt, dict(values, **{"%REQ(USER-AGENT)%": CHROME + "x" * 60 * 1024})))
    assert big.agent == "Chrome" and parser._memo == {}  # a line over MEMO_LINE is read, not remembered
    assert MEMO_LINE < 60 * 1024


def test_dash_f_still_reads_logs_with_a_warning(scenario_files, tmp_path, capsys) -> None:
    """-f names manifests in every other command; impact's logs have --log-file, and -f keeps
    working for them with a deprecation warning."""
    path = tmp_path / "empty.log"
    path.write_text("")
    manifests = sum((["--manifests", f] for f in scenario_files("seed_routed")), [])
    new = run_cli(["impact", "--log-file", str(path), *manifests, "-o", "json"])
    old = run_cli(["impact", "-f", str(path), *manifests, "-o", "json"])
    assert new.status == old.status == 0 and new.stdout == old.stdout
    assert "deprecated" not in new.stderr
    assert old.stderr.startswith("warning: impact -f is deprecated, use --log-file")
    run_cli(["impact", "--help"])  # argparse prints help to the process's stdout
    shown = capsys.readouterr().out
    assert "--log-file FILE" in shown and "--filename" not in shown


def test_the_join_follows_the_istio_release(scenario_files, tmp_path) -> None:
    """impact models the mesh as check does, release by release: up to Istio 1.30 the Istio
    Gateway of another namespace is merged onto the managed Gateway API pods, so b arriving on
    a's connection is the predicted hazard; from 1.31 it is not there, and nothing coalesced."""
    line = ('[2026-11-30T10:00:00.000Z] "GET / HTTP/2" 404 NR route_not_found - "-" 0 0 0 - "-" "curl/8.5.0" "id" '
            '"b.example.com" "-" - - 10.244.0.7:443 10.0.0.1:1 a.example.com -\n')
    path = tmp_path / "web.log"
    path.write_text(line)
    manifests = sum((["--manifests", f] for f in scenario_files("gwapi_strict_merging", with_workload=False)), [])
    old = run_cli(["impact", "--log-file", str(path), "-o", "json", "--workload", "apps/web-istio",
                   "--istio-version", "1.30", *manifests])
    assert [(r["requestHost"], r["predicted"]) for r in json.loads(old.stdout)["rows"]] == [("b.example.com", True)], \
        old.stderr
    new = run_cli(["impact", "--log-file", str(path), "-o", "json", "--workload", "apps/web-istio",
                   "--istio-version", "1.31", *manifests])
    assert json.loads(new.stdout)["rows"] == [] and "control plane: Istio 1.31 (--istio-version)" in new.stderr
