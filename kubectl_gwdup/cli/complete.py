"""Shell completion in cobra's `__complete` protocol, which kubectl (1.26+) asks plugins for.

kubectl runs `kubectl_complete-gwdup ARGS... CURRENT`; we answer one candidate per line
(`value<TAB>description`) and a last line `:<directive>` (4: no file completion, 0: files).
Cluster look-ups (namespaces) are best effort, one try bounded by COMPLETION_TIMEOUT: completion
never fails, and never holds a shell for longer than a TAB should.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import GwdupError
from . import spec

NO_FILES, FILES = 4, 0
COMPLETION_TIMEOUT = "2s"
VALUES = {"output": ["wide", "json", "yaml"], "fail_level": ["info", "warning", "error", "never"]}


def _flags(command: Optional[spec.Command]) -> Dict[str, spec.Flag]:
    groups = (spec.GENERAL, spec.KUBE, spec.OUTPUT) + (command.groups if command else ())
    return {name: f for g in groups for f in g.flags for name in f.names}


def _takes_value(flag: spec.Flag) -> bool:
    return flag.kwargs.get("action") not in ("store_true",)


def _given(words: Sequence[str], flags: Mapping[str, spec.Flag]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    it = iter(range(len(words)))
    for i in it:
        word = words[i]
        name, eq, value = word.partition("=")
        flag = flags.get(name)
        if flag is None or not _takes_value(flag):
            continue
        if not eq and i + 1 < len(words):
            value = words[i + 1]
            next(it, None)
        out[flag.dest] = value
    return out


def _kube_names(given: Mapping[str, str], environ: Mapping[str, str], section: str) -> List[str]:
    from ..sources import kubeconfig

    try:
        paths, _ = kubeconfig.config_paths(given.get("kubeconfig"), environ)
        return [item["name"] for item in kubeconfig.load_merged(paths)[section]]
    except GwdupError:
        return []


def _namespaces(given: Mapping[str, str], environ: Mapping[str, str]) -> List[str]:
    from .flags import KubeFlags

    flags = KubeFlags(kubeconfig=given.get("kubeconfig"), context=given.get("context"),
                      cluster_name=given.get("cluster"), user=given.get("user"),
                      request_timeout=COMPLETION_TIMEOUT, attempts=1, environ=environ)
    try:
        items = flags.cluster.list("/api/v1/namespaces", metadata_only=True)
        return sorted((i.get("metadata") or {}).get("name", "") for i in items)
    except GwdupError:
        return []
    finally:
        flags.close()


def _values(flag: spec.Flag, given: Mapping[str, str], environ: Mapping[str, str]) -> Tuple[List[str], int]:
    dest = flag.dest
    if dest == "filenames":
        return [], FILES
    if dest in VALUES:
        return VALUES[dest], NO_FILES
    section = {"context": "contexts", "cluster": "clusters", "user": "users"}.get(dest)
    if section:
        return _kube_names(given, environ, section), NO_FILES
    if dest == "namespace":
        return _namespaces(given, environ), NO_FILES
    if dest == "kubeconfig":
        return [], FILES
    return [], NO_FILES


def complete(args: Sequence[str], environ: Mapping[str, str]) -> List[str]:
    words, current = list(args[:-1]), (args[-1] if args else "")
    commands = {c.name: c for c in spec.COMMANDS}
    command = next((commands[w] for w in words if w in commands), None)
    flags = _flags(command)
    given = _given(words, flags)
    lines: List[str] = []
    directive = NO_FILES
    name, eq, partial = current.partition("=")
    if eq and name in flags and _takes_value(flags[name]):
        values, directive = _values(flags[name], given, environ)
        lines = [f"{name}={v}" for v in values if v.startswith(partial)]
    elif words and words[-1] in flags and _takes_value(flags[words[-1]]):
        values, directive = _values(flags[words[-1]], given, environ)
        lines = [v for v in values if v.startswith(current)]
    elif current.startswith("-"):
        for flag in {id(f): f for f in flags.values()}.values():
            if flag.help == spec.HIDDEN:
                continue
            long = next((n for n in flag.names if n.startswith("--")), flag.names[0])
            if long.startswith(current):
                lines.append(f"{long}\t{flag.help.replace('%%', '%')}")  # help text is argparse's %-format
    elif command is None:
        lines = [f"{c.name}\t{c.help}" for c in spec.COMMANDS if c.name.startswith(current)]
    return lines + [f":{directive}"]
