"""json and yaml printers over the models' to_dict() forms; key order is fixed by to_dict."""
from __future__ import annotations

import json
from typing import Any, Dict, TextIO


def print_json(doc: Dict[str, Any], out: TextIO) -> None:
    json.dump(doc, out, indent=2)
    out.write("\n")


def print_yaml(doc: Dict[str, Any], out: TextIO) -> None:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    yaml.dump(doc, out, Dumper=dumper, sort_keys=False, default_flow_style=False)
