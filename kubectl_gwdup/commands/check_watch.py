"""`kubectl gwdup check --watch`: the report once every kind is listed, then one line per
hazard that appears, disappears, is mitigated or loses its mitigation, as `kubectl get -w
--output-watch-events` prints objects: an EVENT column, the header once. With -o json or
-o yaml, one document per change ({"type": ..., "finding": ...}), JSON one per line.

The engine and the analysis are check's (watch.engine, check.evaluate): what --watch prints
after a change is what `check` would print if run at that moment.
"""
from __future__ import annotations

import json
import time
from typing import Any, List, Sequence, Tuple

from ..cli.flags import parse_duration
from ..env import Env, once, with_stderr
from ..errors import ExitStatus
from ..render import findings as finding_rows
from ..render.printers import OutputFormat
from ..render.table import format_table
from ..analysis.changes import Change, FindingChange, diff
from ..watch.engine import Engine
from . import check

EVENT_HEADER = "event"
FIRST = "FOUND"  # a finding of the first report: there when the watch began


def _rows(changes: Sequence[Tuple[str, Any]], wide: bool) -> List[List[str]]:
    return [[event] + finding_rows.row(f, wide) for event, f in changes]


class ChangePrinter:
    def __init__(self, opts: check.Options, env: Env) -> None:
        self.fmt = opts.output.printer(env.color).fmt
        self.no_headers = opts.output.no_headers
        self.color = env.color
        self.out = env.stdout
        self.header_done = False

    def print(self, changes: Sequence[Tuple[str, Any]]) -> None:
        if not changes:
            return
        if self.fmt is OutputFormat.JSON:
            for event, f in changes:
                self.out.write(json.dumps({"type": event, "finding": f.to_dict()}, sort_keys=False) + "\n")
        elif self.fmt is OutputFormat.YAML:
            from ..render.structured import print_yaml

            for event, f in changes:
                self.out.write("---\n")
                print_yaml({"type": event, "finding": f.to_dict()}, self.out)
        else:
            wide = self.fmt is OutputFormat.WIDE
            headers = [EVENT_HEADER] + (finding_rows.WIDE_HEADERS if wide else finding_rows.HEADERS)
            column = finding_rows.OUTCOME_COLUMN[wide] + 1
            text = format_table(headers, _rows(changes, wide), self.no_headers or self.header_done, self.color, column)
            self.out.write(text + "\n")
            self.header_done = True
        self.out.flush()


def watch(opts: check.Options, env: Env) -> ExitStatus:
    duration = parse_duration(opts.watch_duration, "--watch-duration")
    deadline = time.monotonic() + duration if duration else None
    access = opts.kube.cluster
    printer = ChangePrinter(opts, env)

    def log(message: str) -> None:
        env.stderr.write(f"warning: {message}\n")
        env.stderr.flush()

    quiet = with_stderr(env, once())  # a --suppress matching nothing is said at the first report only
    engine = Engine(access, lambda cached: check.evaluate_watched(opts, cached, quiet), read_secrets=True,
                    chunk_size=opts.kube.chunk_size, log=log)
    engine.start()
    last: Sequence[Any] = ()
    status = ExitStatus.OK
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            ev = engine.next(timeout=left)
            if ev is None:
                break
            result: check.Evaluation = ev.result
            found = result.report.findings
            if ev.generation == 1:
                printer.print([(FIRST, f) for f in found])
                for note in result.report.notes:
                    env.stderr.write(f"note: {note}\n")
                env.stderr.write(check.summary(result.report, result.inventory) + "\n")
            else:
                changes = diff(last, found)
                printer.print([(c.change.value, c.finding) for c in _ordered(changes)])
                if changes:
                    env.stderr.write(check.summary(result.report, result.inventory) + "\n")
            env.stderr.flush()
            last = found
            status = check.exit_status(found, opts.fail_level)
    finally:
        engine.stop()
    return status


def _ordered(changes: Sequence[FindingChange]) -> List[FindingChange]:
    rank = {Change.APPEARED: 0, Change.UNMITIGATED: 1, Change.MITIGATED: 2, Change.DISAPPEARED: 3}
    return sorted(changes, key=lambda c: (rank[c.change], c.finding.sort_key()))
