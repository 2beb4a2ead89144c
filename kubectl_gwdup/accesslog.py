"""Gateway access-log lines -> the few fields `impact` needs. Pure; keeps nothing else.

Istio's two built-in formats (istio/istio `pilot/pkg/model/telemetry_logging.go`:
EnvoyTextLogFormat, the mesh default, and EnvoyJSONLogFormatIstio, `accessLogEncoding: JSON`),
or a custom one in Envoy's `%OPERATOR%` syntax (a text format string, or a JSON object mapping
keys to operators). Of a line only the connection's SNI, the request's authority, the response
code, flags and details, the route name, the start time, the listener address and the user
agent's browser family are kept: a path may carry a token, and is never read.
"""
from __future__ import annotations

import json
import re
from typing import Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple

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
MAX_LINE = 64 * 1024  # a longer line is not an access-log line (and is not kept)


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
    """One log format, compiled once; `parse(line)` is a Request or None (not a line of it)."""

    def __init__(self, text: Optional[str] = None, json_keys: Optional[Mapping[str, str]] = None) -> None:
        self.json_keys = dict(json_keys) if json_keys is not None else None
        self.regex: Optional["re.Pattern[str]"] = None
        have = set(self.json_keys.values()) if self.json_keys is not None else set()
        self.loose: Optional["re.Pattern[str]"] = None
        if text is not None:
            self.regex, have = _compile(text, strict=True)
            self.loose = _compile(text, strict=False)[0]
        self.fields = frozenset(have)
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

    def parse(self, line: str) -> Optional[Request]:
        if len(line) > MAX_LINE:
            return None
        line = line.rstrip("\r\n")
        values: Dict[str, str] = {}
        if self.json_keys is not None:
            if not line.startswith("{"):
                return None
            try:
                doc = json.loads(line)
            except ValueError:
                return None
            if not isinstance(doc, dict):
                return None
            for key, name in self.json_keys.items():
                v = doc.get(key)
                if v is not None:
                    values[name] = str(v)
        else:
            assert self.regex is not None and self.loose is not None
            m = self.regex.match(line) or self.loose.match(line)
            if m is None:
                return None
            values = m.groupdict()
        return _request(values)


def _compile(text: str, strict: bool) -> Tuple["re.Pattern[str]", set]:
    """A text format as a regex with a named group per operator impact reads. Strict: a value
    runs up to the next literal character (Envoy writes `"%REQ(USER-AGENT)%"` with no quote
    inside, and times in brackets), which never backtracks; loose: lazily, for values that do
    hold that character."""
    parts: List[str] = []
    pos = 0
    seen: set = set()
    matches = list(_OPERATOR.finditer(text))
    for i, m in enumerate(matches):
        parts.append(re.escape(text[pos:m.start()]))
        following = text[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)].rstrip("\n")
        value = f"[^{re.escape(following[0])}]*" if strict and following else ".*?" if following else ".*"
        name = OPERATORS.get(m.group(1))
        if name and name not in seen:
            parts.append(f"(?P<{name}>{value})")
            seen.add(name)
        else:
            parts.append(f"(?:{value})")
        pos = m.end()
    parts.append(re.escape(text[pos:].rstrip("\n")))
    return re.compile("^" + "".join(parts) + "$"), seen


def _value(v: Optional[str]) -> str:
    return "" if v is None or v == "-" else v


def host_of(authority: str) -> str:
    """An authority as a host name: lower-case, without port or trailing dot (IPv6 kept)."""
    a = authority.strip().lower()
    if a.startswith("["):
        return a.split("]", 1)[0] + "]"
    return a.rsplit(":", 1)[0].rstrip(".") if ":" in a else a.rstrip(".")


def _request(v: Mapping[str, str]) -> Optional[Request]:
    try:
        status = int(_value(v.get("status")) or 0)
    except ValueError:
        return None
    local = _value(v.get("local"))
    port = 0
    if local:
        tail = local.rsplit(":", 1)[-1]
        port = int(tail) if tail.isdigit() else 0
    return Request(sni=_value(v.get("sni")).lower().rstrip("."), authority=host_of(_value(v.get("authority"))),
                   status=status, flags=_value(v.get("flags")), details=_value(v.get("details")),
                   route=_value(v.get("route")), time=_value(v.get("time")), port=port,
                   agent=browser_family(_value(v.get("agent"))))


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
    """`json` or `text` from the first lines that look like access-log lines, or None."""
    for line in lines:
        s = line.strip()
        if s.startswith("{"):
            return "json"
        if s.startswith("["):
            return "text"
    return None


def parse_lines(parser: Parser, lines: Iterable[str]) -> Iterator[Optional[Request]]:
    for line in lines:
        yield parser.parse(line)
