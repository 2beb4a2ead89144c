"""`kubectl gwdup impact`: how many real requests the hazards broke, from the gateways' own
access logs. Inventory and findings as `check`; logs from the gateway pods or saved files;
kubectl_gwdup/accesslog.py parses, kubectl_gwdup/analysis/impact.py joins."""
from __future__ import annotations

import argparse
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Tuple

from ..accesslog import LogFormatError, Parser, Tally, detect
from ..analysis import registry
from ..analysis.impact import OUTCOMES, Impact, Join, report
from ..cli.flags import parse_duration
from ..env import Env
from ..errors import ExitStatus, InputError, UsageError
from ..inventory import RawObjects, build_inventory, pod_workloads
from ..model import Inventory, Workload
from ..selectors import parse_selector
from ..sources import logtally, podlogs
from . import check

HEADERS = ["finding", "connection host", "request host", "requests", "404 no route", "421", "misrouted", "other",
           "last seen"]
WIDE_HEADERS = HEADERS + ["same routes", "first seen", "user agents", "workload", "listener", "from", "to"]
HARM = ("404 no route", "misrouted")
DETECT_LINES = 50  # a stream's format is told from its first lines that tell, among these
_SINCE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Options(check.Options):
    logs: List[str] = field(default_factory=list)  # saved logs (--log-file); empty: the pods'
    deprecated_f: bool = False  # the logs were named with -f, which names manifests everywhere else
    since: str = ""
    since_time: str = ""
    tail: int = -1
    max_log_bytes: int = 0
    log_format: str = ""
    workload: str = ""
    jobs: int = 0  # 0: logtally.default_jobs()

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Env) -> "Options":
        args.fail_level = "warning"  # check's threshold does not apply: impact's status is what the logs show
        base = check.Options.from_args(args, env)
        base.filenames = list(args.manifests or [])
        return cls(**vars(base), logs=list(args.log_files or []) + list(args.filenames or []),
                   deprecated_f=bool(args.filenames), since=args.since or "",
                   since_time=args.since_time or "", tail=args.tail, max_log_bytes=args.max_log_bytes,
                   log_format=args.log_format or "", workload=args.workload or "", jobs=args.jobs)

    def validate(self) -> None:
        super().validate()
        if self.since and self.since_time:
            raise UsageError("at most one of --since and --since-time may be specified")
        if self.since and not parse_duration(self.since, "--since"):
            raise UsageError("--since must be more than 0")
        if self.since_time and not _SINCE_TIME.match(self.since_time):
            raise UsageError(f'invalid --since-time "{self.since_time}": use RFC3339, e.g. 2026-11-30T10:00:00Z')
        if self.tail < -1:
            raise UsageError("--tail must be -1 (all) or more")
        if self.jobs < 0:
            raise UsageError("--jobs must be 0 (the cores) or more")
        if self.max_log_bytes < 0:
            raise UsageError("--max-log-bytes must be 0 (no limit) or more")
        if self.logs and (self.since or self.since_time or self.tail != -1 or self.max_log_bytes):
            raise UsageError("--since, --since-time, --tail and --max-log-bytes bound what is read from the pods, "
                             "not --log-file files")
        try:
            if self.log_format:
                Parser.from_flag(self.log_format)
        except LogFormatError as exc:
            raise UsageError(str(exc)) from None


def _workloads(raw: RawObjects, inventory: Inventory) -> Dict[Tuple[str, str], Workload]:
    """Gateway pods -> the workload of a listener with TLS chains (the pods whose logs matter)."""
    tls = {p.listener.workload.key: p.listener.workload for p in inventory.placements if p.server.sni_chain}
    out = {}
    for pod_key, (ns, name) in pod_workloads(raw).items():
        w = tls.get(f"{ns}/{name}")
        if w is not None:
            out[pod_key] = w
    return out


class Feed:
    """Each source's lines, tallied (on several cores: kubectl_gwdup/sources/logtally.py), into
    one Impact; a source's format is --log-format, or told from its first lines."""

    def __init__(self, opts: Options, join: Join, tallier: logtally.Tallier) -> None:
        self.opts, self.join, self.tallier = opts, join, tallier
        self.total = Impact(join)
        self.lock = threading.Lock()
        self.empty: List[str] = []
        self.formats: Dict[str, int] = {}
        self.spec = Parser.from_flag(opts.log_format).spec if opts.log_format else None

    def _spec(self, head: List[bytes]) -> Any:
        if self.spec is not None:
            return self.spec
        fmt = detect(head)
        with self.lock:
            self.formats[fmt or "unknown"] = self.formats.get(fmt or "unknown", 0) + 1
        return Parser.from_flag(fmt or "text").spec

    def stream(self, label: str, workload: Workload, chunks: Iterable[bytes]) -> None:
        head, data = logtally.first_lines(logtally.blocks(chunks), DETECT_LINES)
        tally = Tally()
        self.tallier.stream(self._spec(head), data, tally)
        self._add(label, workload, tally)

    def file(self, path: str, workload: Workload) -> None:
        with open(path, "rb") as f:
            head = f.read(1 << 20).split(b"\n", DETECT_LINES)[:DETECT_LINES]
        self._add(path, workload, self.tallier.file(self._spec(head), path))

    def _add(self, label: str, workload: Workload, tally: Tally) -> None:
        with self.lock:
            if tally.lines == 0:
                self.empty.append(label)
            self.total.add(workload, tally)


def run(opts: Options, env: Env) -> ExitStatus:
    if opts.deprecated_f:
        env.stderr.write("warning: impact -f is deprecated, use --log-file (-f names manifests in every other "
                         "command)\n")
    raw = check.load(opts, env)
    # requests are joined with every finding (a request on another namespace's hazard is not
    # "unpredicted"); -n and -l then choose which rows and findings are reported
    cp = check.control_plane(opts, raw)
    inventory = build_inventory(raw, check.settings_for(opts, cp))
    report_ = registry.run(inventory)
    findings = list(report_.findings)
    scoped = check.scope(report_, raw, opts.kube.report_namespace, parse_selector(opts.selector))
    in_scope = {id(f) for f in scoped.findings}
    keep = {i for i, f in enumerate(findings) if id(f) in in_scope}
    join = Join(inventory, findings)
    tallier = logtally.Tallier(opts.jobs or logtally.default_jobs())
    try:
        feed = Feed(opts, join, tallier)
        notes = [cp.describe()] + list(report_.notes)
        if opts.logs:
            workload = _one_workload(opts, inventory)
            for path in opts.logs:
                try:
                    if path == "-":
                        feed.stream(path, workload, podlogs.stdin_chunks(env.stdin))
                    else:
                        feed.file(path, workload)
                except OSError as exc:
                    raise InputError(f"{path}: {exc.strerror or exc}") from None
        else:
            pods = _workloads(raw, inventory)
            if not raw.pods:
                notes.append("no gateway pods listed (pods not readable, or none run): no log read")
            seconds = parse_duration(opts.since, "--since") if opts.since else None
            query = podlogs.log_query(int(seconds) if seconds else None, opts.since_time,
                                      opts.tail if opts.tail >= 0 else None, opts.max_log_bytes or None)
            if pods:
                tallier.start()  # workers forked before the stream threads start
            notes += podlogs.read_pods(opts.kube.cluster, sorted(pods), query,
                                       lambda pod, chunks: feed.stream(f"{pod[0]}/{pod[1]}", pods[pod], chunks))
    finally:
        tallier.close()
    notes += _log_notes(feed, inventory)
    namespace = opts.kube.report_namespace
    doc = report(feed.total, findings, notes, keep,
                 lambda row: namespace is None or namespace in (row.source.split("/", 1)[0], row.target.split("/", 1)[0]))
    printer = opts.output.printer(env.color)
    printer.emit(doc, WIDE_HEADERS if printer.wide else HEADERS, lambda wide: _rows(doc, findings, wide), env.stdout)
    for note in doc["notes"]:
        env.stderr.write(f"note: {note}\n")
    env.stderr.write(_summary(doc) + "\n")
    harmful = sum(doc["totals"]["outcomes"][o] for o in HARM)
    return ExitStatus.FINDINGS if harmful else ExitStatus.OK


def _one_workload(opts: Options, inventory: Inventory) -> Workload:
    """The workload saved logs came from: --workload, or the only one with TLS chains."""
    tls = sorted({p.listener.workload for p in inventory.placements if p.server.sni_chain})
    if opts.workload:
        for w in tls:
            if w.key == opts.workload:
                return w
        raise UsageError(f'--workload "{opts.workload}": no gateway workload of that name with TLS servers '
                         f"(known: {', '.join(w.key for w in tls) or 'none'})")
    if len(tls) != 1:
        raise UsageError("which gateway wrote these logs? give --workload NS/NAME (one of: "
                         f"{', '.join(w.key for w in tls) or 'none'})")
    return tls[0]


def _log_notes(feed: Feed, inventory: Inventory) -> List[str]:
    t = feed.total.totals
    out = []
    if feed.empty and not feed.opts.logs:
        out.append(f"{len(feed.empty)} gateway pod(s) logged nothing in the window read: "
                   f"{', '.join(sorted(feed.empty)[:5])}{' ...' if len(feed.empty) > 5 else ''}")
    if t.lines > t.proxy_log and not t.requests:
        out.append(f"none of {t.lines - t.proxy_log} line(s) is an access-log line of the expected format "
                   f"({feed.opts.log_format or 'Istio text or JSON'}); give the format with --log-format")
    elif t.unparsed:
        out.append(f"{t.unparsed} of {t.lines} line(s) are not access-log lines (other output, cut or binary): skipped")
    if t.proxy_log:
        out.append(f"{t.proxy_log} line(s) of istio-proxy's own logging: skipped")
    if t.without_authority:
        out.append(f"{t.without_authority} request(s) without a host (HTTP/1.0 without Host): never coalesced")
    if t.requests and t.without_sni == t.requests:
        out.append("no request carries the connection's SNI (%REQUESTED_SERVER_NAME%): coalescing cannot be seen")
    if t.unknown_listener:
        out.append(f"{t.unknown_listener} request(s) on a listener check does not know (their "
                   "%DOWNSTREAM_LOCAL_ADDRESS% port): not joined")
    if not t.requests:
        workloads = sorted({p.listener.workload for p in inventory.placements if p.server.sni_chain})
        for w in workloads[:3]:
            labels = dict(w.labels)
            if labels and w.namespace:
                selector = ", ".join(f"{k}: {v}" for k, v in sorted(labels.items()))
                out.append(f"access logs look off for {w.key}: a Telemetry resource turns them on for it alone, "
                           f"e.g. apiVersion: telemetry.istio.io/v1, kind: Telemetry, metadata: {{name: gateway-access-log, "
                           f"namespace: {w.namespace}}}, spec: {{selector: {{matchLabels: {{{selector}}}}}, "
                           "accessLogging: [{providers: [{name: envoy}]}]}")
    return out


def _rows(doc: Dict[str, Any], findings: List[Any], wide: bool) -> List[List[str]]:
    out = []
    for r in doc["rows"]:
        o = r["outcomes"]
        label = f"{findings[r['finding']].code}#{r['finding']}" if r["predicted"] else "not predicted"
        cells = [label, r["connectionHost"], r["requestHost"], str(r["requests"]), str(o["404 no route"]), str(o["421"]),
                 str(o["misrouted"]), str(o["other"]), r["lastSeen"] or "-"]
        if wide:
            agents = ",".join(f"{k} {v}" for k, v in sorted(r["userAgents"].items(), key=lambda kv: -kv[1])[:3])
            cells += [str(o["same routes"]), r["firstSeen"] or "-", agents, r["workload"], str(r["listenerPort"]),
                      r["from"], r["to"]]
        out.append(cells)
    return out


def _summary(doc: Dict[str, Any]) -> str:
    t = doc["totals"]
    outcomes = ", ".join(f"{t['outcomes'][o]} {o}" for o in OUTCOMES if t["outcomes"][o])
    return (f"{t['coalesced']} coalesced request(s) in {t['lines']} log line(s)"
            + (f" ({outcomes})" if outcomes else "")
            + f"; hazards: {t['predictedAndSeen']} seen, {t['predictedNotSeen']} not seen"
            + (f"; {t['seenNotPredicted']} request(s) coalesced where check predicted none" if t["seenNotPredicted"]
               else ""))

