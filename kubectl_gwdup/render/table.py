"""kubectl-style tables: upper-case headers, three-space gaps, no borders, left-aligned."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, TextIO

GAP = "   "
COLORS = {"Misrouted": "31", "Error": "31", "NotFound": "33", "Warning": "33", "Dropped": "31",
          "Rejected": "31", "Confirmed-404": "33", "Confirmed-misroute": "31", "Mitigated-421": "32",
          "Mitigated-HTTP/1.1": "32", "Unreachable": "35"}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], no_headers: bool = False,
                 color: bool = False, color_column: Optional[int] = None) -> str:
    import tabulate as _tabulate  # lazy: only table output needs it
    from tabulate import DataRow, TableFormat, tabulate

    _tabulate.MIN_PADDING = 0  # tabulate pads header columns by 2; kubectl's gap is exactly 3

    fmt = TableFormat(lineabove=None, linebelowheader=None, linebetweenrows=None, linebelow=None,
                      headerrow=DataRow("", GAP, ""), datarow=DataRow("", GAP, ""),
                      padding=0, with_header_hide=None)
    body: List[List[str]] = [[str(c) for c in r] for r in rows]
    if color and color_column is not None:
        for r in body:
            code = COLORS.get(r[color_column])
            if code:
                r[color_column] = f"\x1b[{code}m{r[color_column]}\x1b[0m"
    text = tabulate(body, headers=() if no_headers else [h.upper() for h in headers],
                    tablefmt=fmt, disable_numparse=True, stralign="left")
    return "\n".join(line.rstrip() for line in text.splitlines())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO,
                no_headers: bool = False, color: bool = False,
                color_column: Optional[int] = None) -> None:
    if not rows:
        return
    out.write(format_table(headers, rows, no_headers, color, color_column) + "\n")
