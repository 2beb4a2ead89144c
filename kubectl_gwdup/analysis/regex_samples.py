"""Paths a route's regex matches, so that the requests it takes are among those judged.

A route matched by `safe_regex` takes the paths its pattern matches whole; the classes of
requests (request_classes.py) need one such path, or the route is never exercised and a hazard
through it goes unseen. The pattern is read by Python's own regex parser (`re._parser`, before
3.11 `sre_parse`) and written out the plainest way: literals as they are, `.` as one character
and a class as a few it admits, each branch of an alternative (up to MAX_VARIANTS strings),
each repeat at its minimum, and again with one more turn of each (`/api/.*` gives `/api/` and
`/api/x`). A string is kept only when
the pattern then matches it whole; a pattern outside that reading (back-references,
look-arounds), or one whose plainest match is longer than MAX_LENGTH, gives none, as before.
"""
from __future__ import annotations

import re
from typing import Any, List, Optional

try:  # Python 3.11 on
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.9 and 3.10
    import sre_parse as _sre  # type: ignore[no-redef]


def _name(constant: Any) -> str:
    """An opcode's name (sre_constants' named integers; str() of one is its number before 3.11)."""
    return str(getattr(constant, "name", constant))


_ONE_OF = {"CATEGORY_DIGIT": "0", "CATEGORY_NOT_DIGIT": "x", "CATEGORY_WORD": "x", "CATEGORY_NOT_WORD": "-",
           "CATEGORY_SPACE": " ", "CATEGORY_NOT_SPACE": "x"}


def _ones(items: Any) -> List[str]:
    """Characters of a class `[...]` (an alternative of single characters is one too): each
    literal, a range's first, a category's plain member; a negated class gives a letter, which
    the whole match then confirms or not."""
    out: List[str] = []
    for op, arg in items:
        name = _name(op)
        if name == "NEGATE":
            return ["x"]
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "RANGE":
            out.append(chr(arg[0]))
        elif name == "CATEGORY" and _name(arg) in _ONE_OF:
            out.append(_ONE_OF[_name(arg)])
    return list(dict.fromkeys(out))[:4] or ["x"]


MAX_VARIANTS = 16  # strings written per pattern, at most
MAX_LENGTH = 64  # characters of a string written: a manifest's `x{1000000000}` allocates nothing

def _join(parts: List[List[str]]) -> List[str]:
    out = [""]
    for options in parts:
        out = [a + b for a in out for b in options][:MAX_VARIANTS]
    return out


def _write(tokens: Any, more: int) -> Optional[List[str]]:
    """The strings written for a token list (every branch of an alternative, one each)."""
    parts: List[List[str]] = []
    for op, arg in tokens:
        name = _name(op)
        if name == "LITERAL":
            parts.append([chr(arg)])
        elif name == "NOT_LITERAL":
            parts.append(["x" if chr(arg) != "x" else "y"])
        elif name == "ANY":
            parts.append(["x"])
        elif name == "IN":
            parts.append(_ones(arg))
        elif name == "CATEGORY":
            parts.append([_ONE_OF.get(_name(arg), "x")])
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            inner = _write(sub, more)
            if inner is None:
                return None
            times = min(low + more, high)
            if any(len(v) * times > MAX_LENGTH for v in inner):
                return None
            parts.append([v * times for v in inner])
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            inner = _write(arg[-1] if name == "SUBPATTERN" else arg, more)
            if inner is None:
                return None
            parts.append(inner)
        elif name == "BRANCH":
            options: List[str] = []
            for alternative in arg[1]:
                inner = _write(alternative, more)
                if inner is None:
                    return None
                options += inner
            parts.append(list(dict.fromkeys(options))[:MAX_VARIANTS])
        elif name == "AT":
            continue
        else:
            return None
    written = _join(parts)
    return written if all(len(w) <= MAX_LENGTH for w in written) else None


def samples(pattern: str) -> List[str]:
    """Paths the pattern matches whole: a few, one per branch of each alternative, at the
    repeats' minimum and one more (none when it cannot be read so)."""
    try:
        tokens = _sre.parse(pattern)
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError):
        return []
    out: List[str] = []
    for more in (0, 1):
        try:
            written = _write(tokens, more) or []
        except (OverflowError, RecursionError, MemoryError):
            written = []
        out += [w for w in written if compiled.fullmatch(w) and w not in out]
    return out
