"""Where a Gateway server or listener is written in a manifest file: its line, for SARIF.

The objects themselves are read by files.py with libyaml's loader, which keeps no positions;
only `-o sarif` asks for lines, so only then is each file involved composed again (PyYAML's
node graph keeps each node's start), JSON included (it reads as YAML). Standard input cannot be
read twice: its results carry the resource, not a line.
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Tuple

import yaml

Key = Tuple[str, str, str]  # kind, namespace, name


class Place:
    def __init__(self, line: int) -> None:
        self.line = line
        self.servers: Dict[int, int] = {}  # spec.servers index -> line
        self.listeners: Dict[str, int] = {}  # spec.listeners name -> line


def _mapping(node: yaml.Node) -> Dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _scalar(node: Optional[yaml.Node]) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _objects(node: yaml.Node) -> Iterator[yaml.Node]:
    fields = _mapping(node)
    if _scalar(fields.get("kind")).endswith("List") and isinstance(fields.get("items"), yaml.SequenceNode):
        for item in fields["items"].value:
            yield from _objects(item)
    elif fields:
        yield node


def locate(path: str, default_namespace: str) -> Dict[Key, Place]:
    """Every object of the file by (kind, namespace, name), with its servers' and listeners' lines
    (1-based); {} when the file cannot be read again."""
    out: Dict[Key, Place] = {}
    try:
        with open(path, encoding="utf-8") as f:
            documents = list(yaml.compose_all(f, Loader=yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return out
    for doc in documents:
        if doc is None:
            continue
        for node in _objects(doc):
            fields = _mapping(node)
            meta = _mapping(fields.get("metadata"))
            key = (_scalar(fields.get("kind")), _scalar(meta.get("namespace")) or default_namespace,
                   _scalar(meta.get("name")))
            place = Place(node.start_mark.line + 1)
            spec = _mapping(fields.get("spec"))
            servers, listeners = spec.get("servers"), spec.get("listeners")
            if isinstance(servers, yaml.SequenceNode):
                place.servers = {i: s.start_mark.line + 1 for i, s in enumerate(servers.value)}
            if isinstance(listeners, yaml.SequenceNode):
                place.listeners = {_scalar(_mapping(x).get("name")): x.start_mark.line + 1 for x in listeners.value}
            out.setdefault(key, place)
    return out
