"""Run inside a built zipapp (`SHIV_INTERPRETER=1 python dist/kubectl-gwdup tests/zipapp_fuzz.py
SEED N FILE...`): mutated manifests through the zipapp's own modules, on whatever interpreter
runs it. Prints one JSON object: how many inputs ended with each exit status, and the inputs
whose handling broke a rule (exit 70, a traceback, a status 1/2 without one `error:` line).

Mutations, seeded: a byte flipped, a line dropped or repeated, truncation, a value's type
swapped (scalar/list/mapping), indentation shifted, binary bytes, and nesting thousands of
levels deep in YAML and JSON. The pure-Python YAML loader, which some platforms fall back to,
recurses once per level: that is where exit 70 used to come from.
"""
from __future__ import annotations

import io
import json
import os
import random
import sys
import tempfile

from kubectl_gwdup.cli.main import main
from kubectl_gwdup.env import Env


def mutate(rng: random.Random, text: str) -> bytes:
    lines = text.splitlines(keepends=True) or ["\n"]
    kind = rng.randrange(9)
    if kind == 0 and text:
        i = rng.randrange(len(text))
        return (text[:i] + chr(rng.randrange(32, 127)) + text[i + 1:]).encode()
    if kind == 1:
        del lines[rng.randrange(len(lines))]
    elif kind == 2:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif kind == 3:
        return text[:rng.randrange(len(text) + 1)].encode()
    elif kind == 4:
        i = rng.randrange(len(lines))
        head, sep, _ = lines[i].partition(":")
        if sep:
            lines[i] = head + sep + rng.choice([" [1, 2]\n", " {a: b}\n", " 7\n", " ~\n", " 'x'\n", " [\n"])
    elif kind == 5:
        i = rng.randrange(len(lines))
        lines[i] = " " * rng.randrange(1, 5) + lines[i]
    elif kind == 6:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    elif kind == 7:
        depth = rng.choice([200, 1000, 5000])
        return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "[" * depth + "]" * depth
                + "\n").encode()
    else:
        depth = rng.choice([200, 1000, 5000])
        return ('{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "ConfigMap", '
                '"metadata": {"name": "deep"}, "data": ' + "[" * depth + "]" * depth + "}]}").encode()
    return "".join(lines).encode()


def run(path: str) -> tuple:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdout=out, stderr=err, stdin=io.StringIO(""), environ={"HOME": tempfile.gettempdir()})
    try:
        status = main(["check", "-f", path, "-o", "json"], env)
    except SystemExit as exc:  # argparse paths
        status = exc.code if isinstance(exc.code, int) else 1
    return status, err.getvalue()


def broken(status: int, err: str) -> str:
    if status == 70 or "Traceback" in err:
        return "internal error"
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    if status in (1, 2) and len(lines) != 1:
        return f"{len(lines)} error lines"
    if status not in (0, 1, 2, 3):
        return f"exit {status}"
    return ""


def fuzz(seed: int, n: int, sources: list) -> dict:
    rng = random.Random(seed)
    texts = [open(p, encoding="utf-8").read() for p in sources]
    work = tempfile.mkdtemp(prefix="gwdup-fuzz-")
    statuses: dict = {}
    bad = []
    for i in range(n):
        data = mutate(rng, rng.choice(texts))
        path = os.path.join(work, f"m{i}.yaml")
        with open(path, "wb") as f:
            f.write(data)
        status, err = run(path)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        why = broken(status, err)
        if why:
            bad.append({"input": data[:200].decode("utf-8", "replace"), "why": why, "stderr": err[-500:]})
    return {"python": sys.version.split()[0], "statuses": statuses, "bad": bad[:10], "badCount": len(bad)}


if __name__ == "__main__":
    seed, n, *files = sys.argv[1:]
    print(json.dumps(fuzz(int(seed), int(n), files)))
