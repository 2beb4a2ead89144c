"""json and yaml printers over the models' to_dict() forms; key order is fixed by to_dict."""
from __future__ import annotations

import json
from typing import Any, Dict, TextIO


def print_json(doc: Dict[str, Any], out: TextIO) -> None:
    # one write: json.dump would hand the stream millions of small pieces
    out.write(json.dumps(doc, indent=2) + "\n")


def print_yaml(doc: Dict[str, Any], out: TextIO) -> None:
    from ..yamldump import dump_to

    dump_to(doc, out)
