"""YAML as people read it in a review: no anchors or aliases, multi-line strings as blocks.

Every YAML the plugin writes (printed documents, plans, plan files, backups) goes through
`dump`. PyYAML writes `&id001` / `*id001` wherever one object appears twice in a document
(a spec the plan shares between two steps, a TLS block two servers keep), which a GitOps diff
shows as a reference to read elsewhere, and which some tools refuse; so aliases are off. The
dumper is built once, on first use, from the C emitter when PyYAML has it.
"""
from __future__ import annotations

from typing import Any, Optional

_DUMPER: Optional[type] = None


def _dumper() -> type:
    global _DUMPER
    if _DUMPER is None:
        import yaml

        base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

        class Dumper(base):  # type: ignore[misc, valid-type]
            def ignore_aliases(self, data: Any) -> bool:
                return True

        def text(dumper: Any, value: str) -> Any:  # inline Lua, for one, as a literal block
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

        Dumper.add_representer(str, text)
        _DUMPER = Dumper
    return _DUMPER


def dump(doc: Any) -> str:
    import yaml

    return yaml.dump(doc, Dumper=_dumper(), sort_keys=False, default_flow_style=False, width=100)


def dump_to(doc: Any, out: Any) -> None:
    """`dump(doc)` written to `out`, a list's items one at a time: the same document, without
    the whole document's node graph in memory at once (apply-421's plan for 10,000 Gateways is
    9.5 MB of YAML; dumped whole, PyYAML holds 130 MB of nodes for it). A piece that ends in a
    block scalar keeping its final line breaks (`|+`) ends with the document-end marker `...`;
    inside the document that would end it, so it is dropped there (the next key at column 0
    ends the scalar just as well)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list) or not doc["items"]:
        out.write(dump(doc))
        return
    def pieces() -> Any:
        for key, value in doc.items():
            if key != "items":
                yield dump({key: value})
                continue
            yield "items:\n"
            for item in value:  # a one-item sequence: its text as the item stands under `items:`
                yield dump([item])

    held = None  # each piece is written once the next one shows it is not the last
    for piece in pieces():
        if held is not None:
            out.write(_open(held))
        held = piece
    if held is not None:
        out.write(held)


def _open(piece: str) -> str:
    """A piece without its document-end marker: more of the document follows it."""
    return piece[:-4] if piece.endswith("\n...\n") else piece
