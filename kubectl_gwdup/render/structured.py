"""json and yaml printers over the models' to_dict() forms; key order is fixed by to_dict."""
from __future__ import annotations

import json
from typing import Any, Dict, TextIO


def print_json(doc: Dict[str, Any], out: TextIO) -> None:
    # one write: json.dump would hand the stream millions of small pieces
    out.write(json.dumps(doc, indent=2) + "\n")


def print_yaml(doc: Dict[str, Any], out: TextIO) -> None:
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc, valid-type]
        """Multi-line strings (inline Lua, for one) as literal blocks, readable in a GitOps diff."""

    def text(dumper: Any, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    out.write(yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100))
