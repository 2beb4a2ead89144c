"""Gateway access-log lines -> the few fields `impact` needs. Pure; keeps nothing else.

Istio's two built-in formats (istio/istio `pilot/pkg/model/telemetry_logging.go`:
EnvoyTextLogFormat, the mesh default, and EnvoyJSONLogFormatIstio, `accessLogEncoding: JSON`),
or a custom one in Envoy's `%OPERATOR%` syntax (a text format string, or a JSON object mapping
keys to operators). Of a line only the connection's SNI, the request's authority, the response
code, flags and details, the route name, the start time, the listener address and the user
agent's browser family are kept: a path may carry a token, and is never read.

A log line is written by strangers: Envoy escapes nothing in a text format, so a User-Agent may
hold quotes, or the tail of another line. Each value is therefore matched by who writes it:
what Envoy writes (codes, flags, addresses, names) runs up to the next literal character; what
the client sends but the HTTP codecs refuse white space in (method, path, authority, which a
valid host name also keeps free of quotes) never spans white space; and a run of free text (user
agent, X-Forwarded-For, request id: any character but a line break) is one greedy span whose
ends are fixed by the Envoy-written fields around it. In Istio's format every field `impact`
counts lies outside that span, so no client-chosen value can move it; only the browser family
is read from inside the span, from its own position. A line that fits no reading is counted as
unparsed, never read a second, looser way.

istio-proxy's own logging (istio's pkg/log, text or JSON, and Envoy's) shares the container's
output: those lines are recognised and counted apart, not as requests.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple

# the operators impact reads, and what it calls them
OPERATORS = {"REQUESTED_SERVER_NAME": "sni", "REQ(:AUTHORITY)": "authority", "RESPONSE_CODE": "status",
             "RESPONSE_FLAGS": "flags", "RESPONSE_CODE_DETAILS": "details", "ROUTE_NAME": "route",
             "START_TIME": "time", "DOWNSTREAM_LOCAL_ADDRESS": "local", "REQ(USER-AGENT)": "agent"}
REQUIRED = ("sni", "authority", "status")

# EnvoyTextLogFormat, as istiod configures it (the format is data this module must read)
ISTIO_TEXT = ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
              '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% '
              '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
              '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
              '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
              '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% '
              '%REQUESTED_SERVER_NAME% %ROUTE_NAME%')
# EnvoyJSONLogFormatIstio's keys for those operators
ISTIO_JSON = {"requested_server_name": "sni", "authority": "authority", "response_code": "status",
              "response_flags": "flags", "response_code_details": "details", "route_name": "route",
              "start_time": "time", "downstream_local_address": "local", "user_agent": "agent"}

_OPERATOR = re.compile(r"%([A-Z_]+(?:\([^)%]*\))?)(?::\d+)?%")
# a longer line is not an access-log line (and is not kept); Envoy takes at most 60 KiB of request
# headers (max_request_headers_kb), so one logged header value fits whole
MAX_LINE = 256 * 1024
# request headers the HTTP/1 and HTTP/2 codecs keep free of white space (nghttp2's
# check_method/check_path/check_authority, and the HTTP/1 request line); the authority has no
# quote either. Every other REQ()/RESP() header is free text.
_CODEC = {"REQ(:METHOD)", "REQ(:PATH)", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)", "REQ(:AUTHORITY)", "REQ(HOST)"}
_NO_QUOTE = {"REQ(:AUTHORITY)", "REQ(HOST)"}
# headers the gateway's own router writes (a number of milliseconds), not the client
_ENVOY_HEADERS = {"RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)"}
# istio-proxy's own log lines: istio's pkg/log (text: time, tab, level, tab) and Envoy's, as
# istio-agent starts it (`--log-format %Y-%m-%dT%T.%fZ\t%l\tenvoy ...`) or by default ([time][...])
_PROXY_TEXT = re.compile(r"^(?:\d{4}-\d\d-\d\dT[\d:.]+Z?\t(?:trace|debug|info|warn|warning|error|critical|fatal|off)\t"
                         r"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]\[\d+\]\[)")
_PROXY_JSON_KEYS = ("level", "msg")


class NotAccessLog:
    """What `parse` answers for a line of istio-proxy's own logging: not a request, not noise."""

    __slots__ = ()


PROXY_LOG = NotAccessLog()


class LogFormatError(ValueError):
    """A --log-format that cannot be read, or that lacks what impact needs."""


class Request(NamedTuple):
    sni: str  # lower-case, "" without SNI
    authority: str  # lower-case, port and trailing dot removed
    status: int
    flags: str
    details: str
    route: str
    time: str
    port: int  # the listener's port, 0 when the line does not say
    agent: str  # browser family only


class Parser:
    """One log format, compiled once; `parse(line)` is a Request, PROXY_LOG (a line of
    istio-proxy's own logging), or None (not a line of it)."""

    def __init__(self, text: Optional[str] = None, json_keys: Optional[Mapping[str, str]] = None) -> None:
        self.json_keys = dict(json_keys) if json_keys is not None else None
        self.text: Optional[_TextFormat] = None
        have = set(self.json_keys.values()) if self.json_keys is not None else set()
        if text is not None:
            self.text = _TextFormat(text)
            have = set(self.text.fields) | set(self.text.spans)
        self.fields = frozenset(have)
        # a line's fields, but its time, as read -> as kept: a gateway's log repeats a few hosts,
        # codes and user agents, so each is worked out once. Strangers choose those values, so
        # the memo is bounded in entries and only takes lines of MEMO_LINE characters or fewer:
        # at most MEMO_SIZE * MEMO_LINE characters, however hostile the log
        self._memo: Dict[Tuple[Optional[str], ...], Optional[Tuple[Any, ...]]] = {}
        # the JSON keys every access-log line of this format has (Envoy writes each, null when unset)
        self.json_required = frozenset(k for k, name in (json_keys or {}).items() if name in REQUIRED)
        missing = [f for f in REQUIRED if f not in self.fields]
        if missing:
            ops = {v: k for k, v in OPERATORS.items()}
            raise LogFormatError("the log format lacks " + ", ".join(f"%{ops[f]}%" for f in missing))

    @classmethod
    def from_flag(cls, value: str) -> "Parser":
        """--log-format: `text` (Istio's default), `json` (Istio's JSON keys), a text format
        string, or a JSON object of key -> operator."""
        if value in ("", "text", "istio"):
            return cls(ISTIO_TEXT)
        if value == "json":
            return cls(json_keys=ISTIO_JSON)
        if value.lstrip().startswith("{"):
            try:
                doc = json.loads(value)
            except ValueError as exc:
                raise LogFormatError(f"--log-format: not a JSON object: {exc}") from None
            keys = {}
            for key, op in (doc.items() if isinstance(doc, dict) else ()):
                m = _OPERATOR.fullmatch(str(op).strip())
                if m and m.group(1) in OPERATORS:
                    keys[str(key)] = OPERATORS[m.group(1)]
            return cls(json_keys=keys)
        if not _OPERATOR.search(value):
            raise LogFormatError("--log-format: no %OPERATOR% in it (or give text, json)")
        return cls(value)

    def parse(self, line: str) -> "Optional[Request] | NotAccessLog":
        if len(line) > MAX_LINE:
            return None
        line = line.rstrip("\r\n")
        if self.json_keys is not None:
            return self._json(line)
        assert self.text is not None
        values = self.text.read(line)
        if values is None:
            return PROXY_LOG if _PROXY_TEXT.match(line) or _proxy_json(line) else None
        return self._request(values, len(line) <= MEMO_LINE)

    def _json(self, line: str) -> "Optional[Request] | NotAccessLog":
        if not line.startswith("{"):
            return PROXY_LOG if _PROXY_TEXT.match(line) else None
        try:
            doc = json.loads(line)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        if not self.json_required <= doc.keys():
            return PROXY_LOG if _proxy_doc(doc) else None
        values: Dict[str, str] = {}
        for key, name in self.json_keys.items():  # type: ignore[union-attr]
            v = doc.get(key)
            if v is not None:
                values[name] = str(v)
        return self._request(values, len(line) <= MEMO_LINE)

    def _request(self, values: Mapping[str, str], memo: bool) -> Optional[Request]:
        if not memo:
            kept = _kept(values)
        else:
            key = tuple(values.get(name) for name in _MEMO_KEY)
            kept = self._memo.get(key, _UNSEEN)
            if kept is _UNSEEN:
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()
                kept = self._memo[key] = _kept(values)
        if kept is None:
            return None
        sni, authority, status, flags, details, route, port, agent = kept
        return Request(sni, authority, status, flags, details, route, _value(values.get("time")), port, agent)


def _proxy_json(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return _proxy_doc(json.loads(line))
    except ValueError:
        return False


def _proxy_doc(doc: object) -> bool:
    """A JSON line of istio's pkg/log (level, time, scope, msg), not of the access log."""
    return isinstance(doc, dict) and all(k in doc for k in _PROXY_JSON_KEYS)


class _TextFormat:
    """A text format as one anchored regex, each value matched by who writes it (see the
    module's docstring). Consecutive free-text operators form one span; a field impact reads
    from inside a span is cut out of it by its separators, from the span's own ends."""

    def __init__(self, text: str) -> None:
        text = text.rstrip("\n")
        matches = list(_OPERATOR.finditer(text))
        parts: List[str] = []
        self.fields: Dict[str, str] = {}  # impact's name -> regex group (the same name)
        self.spans: Dict[str, Tuple[str, List[str], int]] = {}  # name -> (group, separators, index)
        pos, i, n = 0, 0, 0
        while i < len(matches):
            m = matches[i]
            parts.append(re.escape(text[pos:m.start()]))
            if _free(m.group(1)):
                run, seps = [m], []
                while (i + 1 < len(matches) and _free(matches[i + 1].group(1))
                       and not _OPERATOR.search(text[run[-1].end():matches[i + 1].start()])):
                    seps.append(text[run[-1].end():matches[i + 1].start()])
                    run.append(matches[i + 1])
                    i += 1
                group = f"span{n}"  # no impact name: groupdict() gives fields by their names
                n += 1
                parts.append(f"(?P<{group}>.*)")
                for k, op in enumerate(run):
                    name = OPERATORS.get(op.group(1))
                    if name and name not in self.fields and name not in self.spans:
                        self.spans[name] = (group, seps, k)
                pos = run[-1].end()
            else:
                following = text[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)]
                stop = re.escape(following[0]) if following else ""
                op = m.group(1)
                if op in _CODEC:
                    value = f"[^\\s{stop}]*" if op not in _NO_QUOTE else f'[^\\s"{stop}]*'
                else:  # Envoy's: up to the next literal, or (last) a name without white space
                    value = f"[^{stop}]*" if stop else "\\S*"
                name = OPERATORS.get(op)
                if name and name not in self.fields and name not in self.spans:
                    self.fields[name] = name
                    parts.append(f"(?P<{name}>{value})")
                else:
                    parts.append(f"(?:{value})")
                pos = m.end()
            i += 1
        parts.append(re.escape(text[pos:]))
        self.regex = re.compile("^" + "".join(parts) + "$")

    def read(self, line: str) -> Optional[Dict[str, str]]:
        m = self.regex.match(line)
        if m is None:
            return None
        out = m.groupdict()
        for name, (group, seps, k) in self.spans.items():
            out[name] = _cut(out[group], seps, k)
        return out


def _free(op: str) -> bool:
    return op.startswith(("REQ(", "RESP(", "TRAILER(")) and op not in _CODEC and op not in _ENVOY_HEADERS


def _cut(span: str, seps: List[str], k: int) -> str:
    """Operator k of a free-text span: the operators before it end at their separators' first
    occurrence, those after it begin at their separators' last; exact unless a neighbour's
    own value holds the separator."""
    for sep in seps[:k]:
        _, found, span = span.partition(sep)
        if not found:
            return ""
    for sep in reversed(seps[k:]):
        span, found, _ = span.rpartition(sep)
        if not found:
            return ""
    return span


def _value(v: Optional[str]) -> str:
    return "" if v is None or v == "-" else v


def host_of(authority: str) -> str:
    """An authority as a host name: lower-case, without port or trailing dot (IPv6 kept)."""
    a = authority.strip().lower()
    if a.startswith("["):
        return a.split("]", 1)[0] + "]"
    return a.rsplit(":", 1)[0].rstrip(".") if ":" in a else a.rstrip(".")


_MEMO_KEY = ("sni", "authority", "status", "flags", "details", "route", "local", "agent")  # all but time
MEMO_SIZE = 4096
MEMO_LINE = 2048
_UNSEEN = object()


def _kept(v: Mapping[str, str]) -> Optional[Tuple[Any, ...]]:
    """What a Request keeps of a line's fields but its time, in Request's order (None: not a
    request: its code is no number)."""
    try:
        status = int(_value(v.get("status")) or 0)
    except ValueError:
        return None
    local = _value(v.get("local"))
    port = 0
    if local:
        tail = local.rsplit(":", 1)[-1]
        port = int(tail) if tail.isdigit() else 0
    return (_value(v.get("sni")).lower().rstrip("."), host_of(_value(v.get("authority"))), status,
            _value(v.get("flags")), _value(v.get("details")), _value(v.get("route")), port,
            browser_family(_value(v.get("agent"))))


_FAMILIES: Tuple[Tuple[str, "re.Pattern[str]"], ...] = tuple((name, re.compile(p)) for name, p in (
    ("Edge", r"Edg(?:e|A|iOS)?/"), ("Opera", r"OPR/"), ("Chrome", r"(?:Chrome|Chromium|CriOS)/"),
    ("Firefox", r"(?:Firefox|FxiOS)/"), ("Safari", r"Version/[\d.]+.*Safari/"), ("curl", r"^curl/"),
    ("Go", r"^Go-http-client/"), ("Python", r"^python-"),
))


def browser_family(agent: str) -> str:
    """A user agent's family (Chrome, Safari, ...), or `other`; `-` without one."""
    if not agent:
        return "-"
    for name, pattern in _FAMILIES:
        if pattern.search(agent):
            return name
    return "other"


def detect(lines: Iterable[str]) -> Optional[str]:
    """`json` or `text` from the first lines that look like access-log lines (istio-proxy's own
    logging, JSON or not, tells nothing), or None."""
    for line in lines:
        s = line.strip()
        if _PROXY_TEXT.match(s) or _proxy_json(s):
            continue
        if s.startswith("{"):
            return "json"
        if s.startswith("["):
            return "text"
    return None


def parse_lines(parser: Parser, lines: Iterable[str]) -> "Iterator[Optional[Request] | NotAccessLog]":
    for line in lines:
        yield parser.parse(line)
