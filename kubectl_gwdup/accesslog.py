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
import operator
import re
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

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
_PROXY_TEXT = re.compile(rb"^(?:\d{4}-\d\d-\d\dT[\d:.]+Z?\t(?:trace|debug|info|warn|warning|error|critical|fatal|off)\t"
                         rb"|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]\[\d+\]\[)")
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


class Tally:
    """What a run of log lines comes to: how many lines, how many unparsed or istio-proxy's own
    logging, and per kept request (sni, authority, status, flags, details, route, port) how many
    requests; for a request whose SNI and authority differ (the only kind that can have ridden
    another host's connection) also the first and last time and the browser families. Plain data:
    it crosses process boundaries, and tallies of a log's parts merge into the tally of the whole."""

    __slots__ = ("lines", "unparsed", "proxy_log", "keys")

    def __init__(self) -> None:
        self.lines = self.unparsed = self.proxy_log = 0
        # kept request -> [count, first time, last time, Counter of browser families or None]
        self.keys: Dict[Tuple[Any, ...], List[Any]] = {}

    def add(self, kept: Tuple[Any, ...], time: str, agent: str) -> None:
        stat = self.keys.get(kept)
        if stat is None:
            stat = self.keys[kept] = _new_stat(kept)
        stat[0] += 1
        if stat[3] is not None:
            _seen(stat, time, agent)

    def merge(self, other: "Tally") -> None:
        self.lines += other.lines
        self.unparsed += other.unparsed
        self.proxy_log += other.proxy_log
        for kept, (count, first, last, agents) in other.keys.items():
            stat = self.keys.get(kept)
            if stat is None:
                self.keys[kept] = [count, first, last, Counter(agents) if agents is not None else None]
                continue
            stat[0] += count
            if agents is not None:
                _widen(stat, first)
                _widen(stat, last)
                stat[3].update(agents)

    def __getstate__(self) -> Tuple[Any, ...]:
        return self.lines, self.unparsed, self.proxy_log, self.keys

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        self.lines, self.unparsed, self.proxy_log, self.keys = state


def _new_stat(kept: Tuple[Any, ...]) -> List[Any]:
    """A kept request's tally: the browser families are counted only when its SNI and authority
    differ (the only requests that can have ridden another host's connection)."""
    detailed = bool(kept[0]) and bool(kept[1]) and kept[0] != kept[1]
    return [0, "", "", Counter() if detailed else None]


def _widen(stat: List[Any], time: str) -> None:
    """The first and last time seen, with this one."""
    if time:
        if not stat[1] or time < stat[1]:
            stat[1] = time
        if time > stat[2]:
            stat[2] = time


def _seen(stat: List[Any], time: str, agent: str) -> None:
    _widen(stat, time)
    stat[3][agent] += 1


def _remember(memo: Dict[Any, Any], key: Any, value: Any) -> None:
    """Into a bounded memo (strangers choose the keys): full, it starts afresh."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value


class Parser:
    """One log format, compiled once. `parse(line)` reads one line: a Request, PROXY_LOG (a line
    of istio-proxy's own logging), or None (not a line of it). `tally(lines)` reads many into a
    Tally, with the same reading line by line (tests hold the two to it), faster: a text format
    is read from both ends at once where its fields allow it (see _TextFormat)."""

    def __init__(self, text: Optional[str] = None, json_keys: Optional[Mapping[str, str]] = None) -> None:
        # what rebuilds this parser (in a worker process), and names it: hashable
        self.spec = ("text", text) if text is not None else ("json", tuple(sorted((json_keys or {}).items())))
        self.json_keys = dict(json_keys) if json_keys is not None else None
        self.text: Optional[_TextFormat] = None
        have = set(self.json_keys.values()) if self.json_keys is not None else set()
        if text is not None:
            self.text = _TextFormat(text)
            have = set(self.text.fields) | set(self.text.spans)
        self.fields = frozenset(have)
        # a line's fields, but its time, as read -> as kept: a gateway's log repeats a few hosts,
        # codes and user agents, so each is worked out once. Strangers choose those values, so
        # the memo is bounded in entries and only takes lines of MEMO_LINE bytes or fewer: at
        # most MEMO_SIZE * MEMO_LINE bytes, however hostile the log
        self._memo: Dict[Tuple[Any, ...], Optional[Tuple[Any, ...]]] = {}
        self._families: Dict[Any, str] = {}
        self._raw: Dict[Tuple[bytes, ...], Optional[Tuple[Any, ...]]] = {}  # the same, for `tally`
        # the JSON keys every access-log line of this format has (Envoy writes each, null when unset)
        self.json_required = frozenset(k for k, name in (json_keys or {}).items() if name in REQUIRED)
        missing = [f for f in REQUIRED if f not in self.fields]
        if missing:
            ops = {v: k for k, v in OPERATORS.items()}
            raise LogFormatError("the log format lacks " + ", ".join(f"%{ops[f]}%" for f in missing))

    @classmethod
    def from_spec(cls, spec: Tuple[str, Any]) -> "Parser":
        """The parser of another parser's `spec` (how a worker process rebuilds it)."""
        kind, value = spec
        return cls(value) if kind == "text" else cls(json_keys=dict(value))

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

    def parse(self, line: "str | bytes") -> "Optional[Request] | NotAccessLog":
        """One line, read the reference way (one anchored regex, or one JSON document)."""
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        if len(line) > MAX_LINE:
            return None
        line = line.rstrip(b"\r\n")
        if self.json_keys is not None:
            return self._json(line)
        assert self.text is not None
        values = self.text.read(line)
        if values is None:
            return PROXY_LOG if _PROXY_TEXT.match(line) or _proxy_json(line) else None
        return self._request(values, len(line) <= MEMO_LINE)

    def tally(self, lines: Iterable[bytes]) -> Tally:
        """Lines (bytes, without their line break) into a Tally: as `parse` reads each, counted."""
        t = Tally()
        fast = self.text.fast if self.text is not None else None
        if fast is None:
            for line in lines:
                t.lines += 1
                self._add(t, self.parse(line))
            return t
        head, tail, head_key, tail_key, extra = fast.head.match, fast.tail.match, fast.head_key, fast.tail_key, fast.extra
        memo, keys = self._raw, t.keys
        n = 0
        for line in lines:
            n += 1
            if line[-1:] == b"\r":
                line = line.rstrip(b"\r")
            m = head(line)
            if m is not None and len(line) <= MAX_LINE:
                r = tail(line[::-1])
                if r is not None and m.end() + r.end() <= len(line):
                    raw = (head_key(m), tail_key(r))
                    kept = memo.get(raw, _UNSEEN)
                    if kept is _UNSEEN:
                        kept = _kept(fast.values(raw))
                        if len(line) <= MEMO_LINE:
                            _remember(memo, raw, kept)
                    if kept is None:
                        t.unparsed += 1
                        continue
                    stat = keys.get(kept)
                    if stat is None:
                        stat = keys[kept] = _new_stat(kept)
                    stat[0] += 1
                    if stat[3] is not None:
                        time, agent = extra(line, m, r)
                        _seen(stat, time.decode("utf-8", "replace") if time not in (b"", b"-") else "",
                              self._family(agent))
                    continue
            # not read from both ends: the reference reading decides (it agrees where both read)
            self._add(t, self.parse(line))
        t.lines += n
        return t

    def _add(self, t: Tally, r: "Optional[Request] | NotAccessLog") -> None:
        if r is None:
            t.unparsed += 1
        elif isinstance(r, NotAccessLog):
            t.proxy_log += 1
        else:
            t.add((r.sni, r.authority, r.status, r.flags, r.details, r.route, r.port), r.time, r.agent)

    def _family(self, agent: "str | bytes") -> str:
        """The browser family of a user agent, remembered (bounded as the memo is)."""
        family = self._families.get(agent)
        if family is None:
            text = agent.decode("utf-8", "replace") if isinstance(agent, bytes) else agent
            family = browser_family(_value(text))
            if len(agent) <= MEMO_LINE:
                _remember(self._families, agent, family)
        return family

    def _json(self, line: bytes) -> "Optional[Request] | NotAccessLog":
        if not line.startswith(b"{"):
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
                kept = _kept(values)
                _remember(self._memo, key, kept)
        if kept is None:
            return None
        sni, authority, status, flags, details, route, port = kept
        return Request(sni, authority, status, flags, details, route, _value(values.get("time")), port,
                       self._family(values.get("agent") or ""))


def _proxy_json(line: bytes) -> bool:
    if not line.startswith(b"{"):
        return False
    try:
        return _proxy_doc(json.loads(line))
    except ValueError:
        return False


def _proxy_doc(doc: object) -> bool:
    """A JSON line of istio's pkg/log (level, time, scope, msg), not of the access log."""
    return isinstance(doc, dict) and all(k in doc for k in _PROXY_JSON_KEYS)


class _Fast(NamedTuple):
    """A text format read from both ends: `head` matches up to the free-text span, `tail`
    matches the reversed line up to it; `*_key` give the memo key's values, `extra` a line's
    time and user agent (bytes)."""
    head: "re.Pattern[bytes]"
    tail: "re.Pattern[bytes]"
    head_names: Tuple[str, ...]
    tail_names: Tuple[str, ...]
    head_key: Callable[[Any], Any]
    tail_key: Callable[[Any], Any]
    extra: Callable[[bytes, Any, Any], Tuple[bytes, bytes]]

    def values(self, raw: Tuple[Any, Any]) -> Dict[str, str]:
        """A memo key as the fields it holds, decoded."""
        out: Dict[str, str] = {}
        for names, got, reverse in ((self.head_names, raw[0], False), (self.tail_names, raw[1], True)):
            if len(names) == 1:
                got = (got,)
            for name, v in zip(names, got or ()):
                out[name] = (v[::-1] if reverse else v).decode("utf-8", "replace")
        return out


class _TextFormat:
    """A text format as one anchored regex over a line's bytes, each value matched by who writes
    it (see the module's docstring). Consecutive free-text operators form one span; a field
    impact reads from inside a span is cut out of it by its separators, from the span's own ends.

    Bytes, not text: Envoy writes bytes, and its codecs' rules (no white space in a path or an
    authority) are about ASCII bytes; a field is decoded (UTF-8, errors replaced) once read.

    The same reading, faster (`fast`), where the format allows: with one span, and every field
    before it ending at a literal character its value cannot hold and every field after it
    starting after one, the part before the span has one match from the left and the part after
    it one from the right, so the greedy span is what lies between; the reversed line is matched
    from its start for the part after."""

    def __init__(self, text: str) -> None:
        text = text.rstrip("\n")
        matches = list(_OPERATOR.finditer(text))
        # the format as elements: ("lit", bytes) | ("field", op, class, name) | ("span", group, ops, seps)
        elements: List[Tuple[Any, ...]] = []
        self.fields: Dict[str, str] = {}  # impact's name -> regex group (the same name)
        self.spans: Dict[str, Tuple[str, List[bytes], int]] = {}  # name -> (group, separators, index)
        pos, i, n = 0, 0, 0
        while i < len(matches):
            m = matches[i]
            if text[pos:m.start()]:
                elements.append(("lit", text[pos:m.start()].encode()))
            if _free(m.group(1)):
                run, seps = [m], []
                while (i + 1 < len(matches) and _free(matches[i + 1].group(1))
                       and not _OPERATOR.search(text[run[-1].end():matches[i + 1].start()])):
                    seps.append(text[run[-1].end():matches[i + 1].start()].encode())
                    run.append(matches[i + 1])
                    i += 1
                group = f"span{n}"  # no impact name: groupdict() gives fields by their names
                n += 1
                elements.append(("span", group))
                for k, op in enumerate(run):
                    name = OPERATORS.get(op.group(1))
                    if name and name not in self.fields and name not in self.spans:
                        self.spans[name] = (group, seps, k)
                pos = run[-1].end()
            else:
                following = text[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)].encode()
                stop = re.escape(following[:1]).decode("latin-1") if following else ""
                op = m.group(1)
                if op in _CODEC:
                    value = f"[^\\s{stop}]*" if op not in _NO_QUOTE else f'[^\\s"{stop}]*'
                else:  # Envoy's: up to the next literal, or (last) a name without white space
                    value = f"[^{stop}]*" if stop else "\\S*"
                name = OPERATORS.get(op)
                if not name or name in self.fields or name in self.spans:
                    name = None
                else:
                    self.fields[name] = name
                elements.append(("field", op, value.encode("latin-1"), name))
                pos = m.end()
            i += 1
        if text[pos:]:
            elements.append(("lit", text[pos:].encode()))
        self.regex = re.compile(b"^" + b"".join(_piece(e) for e in elements) + b"$")
        self.fast = self._fast(elements)

    def read(self, line: bytes) -> Optional[Dict[str, str]]:
        m = self.regex.match(line)
        if m is None:
            return None
        raw = m.groupdict()
        out = {k: v.decode("utf-8", "replace") for k, v in raw.items() if not k.startswith("span")}
        for name, (group, seps, k) in self.spans.items():
            out[name] = _cut(raw[group], seps, k).decode("utf-8", "replace")
        return out

    def _fast(self, elements: List[Tuple[Any, ...]]) -> Optional[_Fast]:
        spans = [k for k, e in enumerate(elements) if e[0] == "span"]
        if len(spans) != 1:
            return None
        s = spans[0]
        before, after = elements[:s], elements[s + 1:]
        # before: each field followed by a literal whose first byte it cannot hold, a literal last
        for k, e in enumerate(before):
            if e[0] == "field":
                nxt = before[k + 1] if k + 1 < len(before) else None
                if nxt is None or nxt[0] != "lit" or re.fullmatch(e[2], nxt[1][:1]):
                    return None
        if not before or before[-1][0] != "lit":
            return None
        # after: each field preceded by a literal whose last byte it cannot hold, a literal first
        for k, e in enumerate(after):
            if e[0] == "field":
                prev = after[k - 1] if k > 0 else None
                if prev is None or prev[0] != "lit" or re.fullmatch(e[2], prev[1][-1:]):
                    return None
        if not after or after[0][0] != "lit":
            return None
        head = re.compile(b"".join(_piece(e) for e in before))
        tail = re.compile(b"".join(_piece(("lit", e[1][::-1])) if e[0] == "lit" else _piece(e)
                                   for e in reversed(after)))
        head_names = tuple(e[3] for e in before if e[0] == "field" and e[3] in _MEMO_KEY)
        tail_names = tuple(e[3] for e in after if e[0] == "field" and e[3] in _MEMO_KEY)
        span_names = tuple(name for name in _MEMO_KEY if name in self.spans)
        if span_names:  # a counted field inside the free text: no fast reading of it
            return None

        def getter(names: Tuple[str, ...]) -> Callable[[Any], Any]:
            # the memo key's part from one match, as the match holds it (the tail's reversed):
            # one call into C per line; `_values` makes it a tuple of values once per new key
            return operator.methodcaller("group", *names) if names else (lambda m: None)

        head_has = {e[3] for e in before if e[0] == "field"}
        tail_has = {e[3] for e in after if e[0] == "field"}

        def one(name: str) -> Callable[[bytes, Any, Any], bytes]:
            if name in head_has:
                return lambda line, m, r: m.group(name)
            if name in tail_has:
                return lambda line, m, r: r.group(name)[::-1]
            if name in self.spans:
                _, seps, k = self.spans[name]
                return lambda line, m, r: _cut(line[m.end():len(line) - r.end()], seps, k)
            return lambda line, m, r: b""

        time_of, agent_of = one("time"), one("agent")
        return _Fast(head, tail, head_names, tail_names, getter(head_names), getter(tail_names),
                     lambda line, m, r: (time_of(line, m, r), agent_of(line, m, r)))


def _piece(e: Tuple[Any, ...]) -> bytes:
    if e[0] == "lit":
        return re.escape(e[1])
    if e[0] == "span":
        return b"(?P<" + e[1].encode() + b">.*)"
    if e[3]:
        return b"(?P<" + e[3].encode() + b">" + e[2] + b")"
    return b"(?:" + e[2] + b")"


def _free(op: str) -> bool:
    return op.startswith(("REQ(", "RESP(", "TRAILER(")) and op not in _CODEC and op not in _ENVOY_HEADERS


def _cut(span: bytes, seps: List[bytes], k: int) -> bytes:
    """Operator k of a free-text span: the operators before it end at their separators' first
    occurrence, those after it begin at their separators' last; exact unless a neighbour's
    own value holds the separator."""
    for sep in seps[:k]:
        _, found, span = span.partition(sep)
        if not found:
            return b""
    for sep in reversed(seps[k:]):
        span, found, _ = span.rpartition(sep)
        if not found:
            return b""
    return span


def _value(v: Optional[str]) -> str:
    return "" if v is None or v == "-" else v


def host_of(authority: str) -> str:
    """An authority as a host name: lower-case, without port or trailing dot (IPv6 kept)."""
    a = authority.strip().lower()
    if a.startswith("["):
        return a.split("]", 1)[0] + "]"
    return a.rsplit(":", 1)[0].rstrip(".") if ":" in a else a.rstrip(".")


_MEMO_KEY = ("sni", "authority", "status", "flags", "details", "route", "local")  # all but time and agent
MEMO_SIZE = 4096
MEMO_LINE = 2048
_UNSEEN = object()


def _kept(v: Mapping[str, str]) -> Optional[Tuple[Any, ...]]:
    """What a Request keeps of a line's fields but its time and user agent, in Request's order
    (None: not a request: its code is no number)."""
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
            _value(v.get("flags")), _value(v.get("details")), _value(v.get("route")), port)


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


def detect(lines: Iterable["str | bytes"]) -> Optional[str]:
    """`json` or `text` from the first lines that look like access-log lines (istio-proxy's own
    logging, JSON or not, tells nothing), or None."""
    for line in lines:
        s = (line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line).strip()
        if _PROXY_TEXT.match(s) or _proxy_json(s):
            continue
        if s.startswith(b"{"):
            return "json"
        if s.startswith(b"["):
            return "text"
    return None
