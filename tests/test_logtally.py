"""Reading many log lines at once (`Parser.tally`, kubectl_gwdup/sources/logtally.py) counts
exactly what reading them one by one (`Parser.parse`, one anchored regex per line) counts, on any
bytes: a text format read from both ends agrees with the regex on hostile values in every field,
Envoy's own included; blocks of lines, file ranges and worker processes lose and repeat nothing."""
from __future__ import annotations

import os
import random
from collections import Counter
from typing import Dict, List

import pytest
from hypothesis import given, settings, strategies as st

from test_impact import CHROME, SAFARI, TAIL, FAKE_STATUS, PROXY_LINES, base_values, write_line

from kubectl_gwdup.accesslog import MAX_LINE, Parser, Tally
from kubectl_gwdup.sources import logtally

OPERATORS = sorted(base_values("a", "b", 1, 200, "x", "/"))
CUSTOM = [
    # the time after the free text, the user agent between two Envoy fields
    '%REQUESTED_SERVER_NAME% %REQ(:AUTHORITY)% %RESPONSE_CODE% "%REQ(USER-AGENT)%" %START_TIME% %ROUTE_NAME%',
    # a field after the free text that may hold the literal before it ([ in a time): the regex alone
    '%REQUESTED_SERVER_NAME% %REQ(:AUTHORITY)% %RESPONSE_CODE% "%REQ(USER-AGENT)%" [%START_TIME%] %ROUTE_NAME%',
    # two free-text runs: no reading from both ends, the regex alone
    '[%START_TIME%] "%REQ(USER-AGENT)%" %RESPONSE_CODE% "%REQ(X-REQUEST-ID)%" %REQ(:AUTHORITY)% %REQUESTED_SERVER_NAME%',
    # fields that do not end at a literal: no reading from both ends
    '%RESPONSE_CODE%%RESPONSE_FLAGS% "%REQ(USER-AGENT)%" %REQ(:AUTHORITY)% %REQUESTED_SERVER_NAME%',
]

_value = st.one_of(
    st.sampled_from([TAIL, FAKE_STATUS, '"', '" "', "]", "[", "{}", "a b", "-", "", "\t", "\r", " ", CHROME, SAFARI,
                     "a.example.com", "10.0.0.1:443", "200", "NR", '"x" "y"']),
    st.text(st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",)), max_size=30))


def reference(parser: Parser, lines: List[bytes]) -> Tally:
    t = Tally()
    for line in lines:
        t.lines += 1
        parser._add(t, parser.parse(line))
    return t


def same(a: Tally, b: Tally) -> None:
    assert (a.lines, a.unparsed, a.proxy_log) == (b.lines, b.unparsed, b.proxy_log)
    assert a.keys == b.keys


@st.composite
def lines_of(draw, fmt: str) -> List[bytes]:
    out = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["request", "request", "request", "proxy", "bytes"]))
        if kind == "proxy":
            out.append(draw(st.sampled_from(PROXY_LINES)).encode())
        elif kind == "bytes":
            out.append(draw(st.binary(max_size=120)).replace(b"\n", b" "))
        else:
            values = base_values(draw(st.sampled_from(["a.example.com", "b.example.com", ""])),
                                 draw(st.sampled_from(["a.example.com", "b.example.com", "-"])), 443,
                                 draw(st.sampled_from([200, 404, 421])), CHROME, "/")
            for op in draw(st.lists(st.sampled_from(OPERATORS), max_size=4)):
                values[op] = draw(_value)
            text = write_line(fmt, values) if fmt in ("text", "json") else _custom(fmt, values)
            out.append(text.encode("utf-8", "surrogateescape") + draw(st.sampled_from([b"", b"", b"\r"])))
    return out


def _custom(fmt: str, values: Dict[str, str]) -> str:
    import re

    return re.sub(r"%[A-Z_]+(?:\([^)%]*\))?%", lambda m: values.get(m.group(0), "-"), fmt)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(data=st.data(), fmt=st.sampled_from(["text", "json"] + CUSTOM))
def test_tally_counts_what_parse_reads_line_by_line(data, fmt) -> None:
    lines = data.draw(lines_of(fmt))
    flag = fmt
    same(Parser.from_flag(flag).tally(lines), reference(Parser.from_flag(flag), lines))


def test_istios_text_format_is_read_from_both_ends_and_the_others_as_they_can() -> None:
    """The fast reading is what the property above holds to the regex: it must be the one in use."""
    assert Parser.from_flag("text").text.fast is not None
    assert Parser.from_flag(CUSTOM[0]).text.fast is not None
    assert all(Parser.from_flag(fmt).text.fast is None for fmt in CUSTOM[1:])


def test_an_over_long_line_is_unparsed_either_way() -> None:
    values = base_values("a.example.com", "b.example.com", 443, 404, CHROME + "x" * MAX_LINE, "/")
    lines = [write_line("text", values).encode()]
    same(Parser.from_flag("text").tally(lines), reference(Parser.from_flag("text"), lines))
    assert Parser.from_flag("text").tally(lines).unparsed == 1


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.binary(max_size=400).map(lambda b: b.replace(b"\x00", b"\n")), cuts=st.lists(st.integers(0, 400)),
       size=st.integers(1, 64), max_line=st.integers(1, 40))
def test_blocks_are_the_lines_cut_at_the_bound(data, cuts, size, max_line) -> None:
    """However the bytes arrive, the blocks hold the same lines, a line over the bound cut to
    one byte more than it (so it stays unparsed) and nothing longer held."""
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in zip(edges, edges[1:])]
    got = [line for block in logtally.blocks(iter(chunks), size, max_line) for line in block.split(b"\n")]
    want = data.split(b"\n")
    if data.endswith(b"\n"):
        want.pop()
    if not data:
        want = []
    cut = lambda line: line if len(line) <= max_line else line[:max_line + 1]
    assert [cut(line) for line in got] == [cut(line) for line in want]
    # a line that spans chunks is never held longer than the bound + 1
    longest_chunk = max((len(c) for c in chunks), default=0)
    assert all(len(line) <= max(max_line + 1, longest_chunk) for line in got)


def _log(tmp_path, n: int, seed: int) -> str:
    rnd = random.Random(seed)
    path = str(tmp_path / "gw.log")
    with open(path, "wb") as f:
        for i in range(n):
            sni = rnd.choice(["a.example.com", "b.example.com"])
            authority = rnd.choice(["a.example.com", "b.example.com"])
            values = base_values(sni, authority, 443, rnd.choice([200, 404]), rnd.choice([CHROME, SAFARI]), "/")
            values["%START_TIME%"] = f"2026-11-30T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
            line = rnd.choice([write_line("text", values), PROXY_LINES[i % len(PROXY_LINES)], "garbage"])
            f.write(line.encode() + b"\n")
        f.write(b"no line break at the end")
    return path


@pytest.mark.parametrize("seed", [1, 2])
def test_file_ranges_and_worker_processes_count_each_line_once(tmp_path, monkeypatch, seed) -> None:
    path = _log(tmp_path, 3000, seed)
    spec = Parser.from_flag("text").spec
    whole = logtally.tally_range(spec, path, 0, os.path.getsize(path))
    lines = open(path, "rb").read().split(b"\n")
    same(whole, reference(Parser.from_flag("text"), lines))
    size = os.path.getsize(path)
    rnd = random.Random(seed)
    edges = sorted({0, size, *(rnd.randrange(size) for _ in range(20))})
    parts = Tally()
    for a, b in zip(edges, edges[1:]):
        parts.merge(logtally.tally_range(spec, path, a, b))
    same(parts, whole)
    monkeypatch.setattr(logtally, "SMALL", 0)
    monkeypatch.setattr(logtally, "BLOCK", 4096)
    tallier = logtally.Tallier(2)
    try:
        same(tallier.file(spec, path), whole)
        tallier.start()
        streamed = Tally()
        with open(path, "rb") as f:
            tallier.stream(spec, logtally.blocks(iter(lambda: f.read(999), b""), 4096), streamed)
        same(streamed, whole)
    finally:
        tallier.close()
    assert whole.keys and whole.proxy_log and whole.unparsed
    assert sum(Counter(s[3] or {}).total() if hasattr(Counter, "total") else sum((s[3] or {}).values())
               for s in whole.keys.values()) > 0
