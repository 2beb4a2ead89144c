"""Output format name -> printer. An unknown format is an error listing the allowed ones."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Dict, TextIO

from ..errors import UsageError
from ..model import Report
from . import findings, structured, table


class OutputFormat(enum.Enum):
    TABLE = ""
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


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

    def print(self, report: Report, out: TextIO) -> None:
        if self.fmt is OutputFormat.JSON:
            structured.print_json(report.to_dict(), out)
        elif self.fmt is OutputFormat.YAML:
            structured.print_yaml(report.to_dict(), out)
        else:
            wide = self.fmt is OutputFormat.WIDE
            rows = [findings.row(f, wide) for f in report.findings]
            table.print_table(findings.WIDE_HEADERS if wide else findings.HEADERS, rows, out,
                              self.no_headers, self.color, color_column=4)
