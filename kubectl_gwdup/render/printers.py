"""Output format name -> printer. An unknown format is an error listing the allowed ones."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO

from ..errors import UsageError
from ..model import Report
from . import findings, sarif, structured, table


class OutputFormat(enum.Enum):
    TABLE = ""
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    SARIF = "sarif"  # check only


def parse_format(value: str) -> OutputFormat:
    try:
        return OutputFormat(value or "")
    except ValueError:
        allowed = ", ".join(f.value for f in OutputFormat if f.value)
        raise UsageError(f'unable to match a printer suitable for the output format "{value}", '
                         f"allowed formats are: {allowed}") from None


@dataclass(frozen=True)
class ReportPrinter:
    fmt: OutputFormat
    no_headers: bool = False
    color: bool = False

    @property
    def wide(self) -> bool:
        return self.fmt is OutputFormat.WIDE

    def emit(self, doc: Dict[str, Any], headers: Sequence[str], rows: Callable[[bool], List[List[str]]],
             out: TextIO, color_column: Optional[int] = None) -> None:
        """One document: structured as it is, or a table from `rows(wide)`."""
        if self.fmt is OutputFormat.SARIF:
            raise UsageError("-o sarif is check's output format")
        if self.fmt is OutputFormat.JSON:
            structured.print_json(doc, out)
        elif self.fmt is OutputFormat.YAML:
            structured.print_yaml(doc, out)
        else:
            table.print_table(headers, rows(self.wide), out, self.no_headers, self.color, color_column)

    def print(self, report: Report, out: TextIO, position: Optional[sarif.Position] = None,
              cluster_column: bool = False) -> None:
        """The report; `cluster_column`: a CLUSTER column first (check across contexts)."""
        if self.fmt is OutputFormat.SARIF:
            from .. import HOMEPAGE, __version__

            structured.print_json(sarif.document(report, position or (lambda *_: None), __version__, HOMEPAGE), out)
            return
        headers = findings.WIDE_HEADERS if self.wide else findings.HEADERS
        first = ["cluster"] if cluster_column else []
        self.emit(report.to_dict(), first + headers,
                  lambda wide: [[str(f.detail.get("cluster", ""))] * len(first) + findings.row(f, wide)
                                for f in report.findings], out,
                  color_column=findings.OUTCOME_COLUMN[self.wide] + len(first))
        # a second table goes with headers only: without them a script reading one table would
        # take its rows for findings (the conditions stay in -o json and -o yaml)
        if self.wide and report.conditions and not self.no_headers:
            if report.findings:
                out.write("\n")
            table.print_table(findings.CONDITION_HEADERS, findings.condition_rows(report.conditions), out)
