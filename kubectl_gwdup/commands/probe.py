"""`kubectl gwdup probe`: confirm hazards on a live gateway the way a browser meets them."""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..cli.flags import parse_duration
from ..env import Env
from ..errors import ExitStatus, UsageError
from ..netprobe import PairReport, ProbeResult, client_context, host_port, probe_pair
from ..probeplan import Pair, Plan, manual, parse_address, parse_resolve, plan_probes, service_address
from . import check

HEADERS = ["from host", "host", "address", "expected", "result", "detail"]
WIDE_HEADERS = HEADERS + ["finding", "requests"]
CONFIRMED = (ProbeResult.CONFIRMED_404, ProbeResult.CONFIRMED_MISROUTE)


@dataclass
class Options(check.Options):
    hosts: List[str] = field(default_factory=list)
    address: List[str] = field(default_factory=list)
    resolve: List[str] = field(default_factory=list)
    insecure: bool = False
    cacert: Optional[str] = None
    path: str = "/"
    method: str = "GET"
    timeout: str = "5s"
    concurrency: int = 4
    max_requests: int = 100
    sample_hosts: List[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Env) -> "Options":
        base = check.Options.from_args(args, env)
        return cls(**vars(base), hosts=list(args.host or []), address=list(args.address or []),
                   resolve=list(args.resolve or []), insecure=args.insecure, cacert=args.cacert,
                   path=args.path, method=args.method.upper(), timeout=args.timeout,
                   concurrency=args.concurrency, max_requests=args.max_requests,
                   sample_hosts=list(args.sample_host or []))

    def validate(self) -> None:
        super().validate()
        if self.insecure and self.cacert:
            raise UsageError("--insecure and --cacert exclude each other")
        if self.method not in ("GET", "HEAD"):
            raise UsageError(f'--method must be GET or HEAD, not "{self.method}"')
        if not self.path.startswith("/"):
            raise UsageError("--path must start with /")
        if parse_duration(self.timeout, "--timeout") is None:
            raise UsageError("--timeout must be more than 0")
        if self.concurrency < 1:
            raise UsageError("--concurrency must be 1 or more")
        if self.max_requests < 4:
            raise UsageError("--max-requests must be 4 or more (one pair takes up to 4)")
        if self.hosts and len(self.hosts) < 2:
            raise UsageError("--host takes at least two hosts (the one a connection is opened for, "
                             "then the one sent on it)")
        if self.hosts and not (self.address or self.resolve):
            raise UsageError("--host needs --address or --resolve")
        try:
            self.addresses()
            self.resolved()
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def addresses(self) -> Tuple[Dict[str, Tuple[str, Optional[int]]], Tuple[str, Optional[int]]]:
        """(per workload, for every other workload) from --address [WORKLOAD=]HOST[:PORT]."""
        own: Dict[str, Tuple[str, Optional[int]]] = {}
        default: Tuple[str, Optional[int]] = ("", None)
        for text in self.address:
            workload, eq, rest = text.partition("=")
            if eq:
                if "/" not in workload:
                    raise ValueError(f'invalid --address "{text}": the workload is NAMESPACE/NAME, as check shows it')
                own[workload] = parse_address(rest)
            elif default[0]:
                raise ValueError("only one --address may leave out the workload; name it: --address NS/NAME=HOST")
            else:
                default = parse_address(text)
        return own, default

    def address_for(self, workload: str) -> Tuple[str, Optional[int]]:
        """The address flags give for one workload's pairs, ("", None) for none."""
        own, default = self.addresses()
        return own.get(workload, default)

    def resolved(self) -> Dict[Tuple[str, int], str]:
        return {(h, p): a for h, p, a in (parse_resolve(r) for r in self.resolve)}


def _plan(opts: Options, env: Env) -> Tuple[Plan, Dict[str, Optional[str]]]:
    """The pairs, and the gateway address per workload (from its Service) where needed."""
    if opts.hosts:
        return manual(opts.hosts, opts.address_for("")[1] or 443, opts.max_requests), {}
    raw = check.load(opts, env)
    inventory, report = check.analyze(opts, raw)
    plan = plan_probes(report.findings, inventory, opts.sample_hosts, opts.max_requests)
    services = {p.workload: (None if opts.address_for(p.workload)[0]
                             else service_address(raw.services, inventory, p.workload)) for p in plan.pairs}
    return plan, services


def run_pair(opts: Options, pair: Pair, workload_address: Optional[str]) -> Tuple[Pair, str, PairReport]:
    """One pair at the address flags or the workload's Service give (used by fix too)."""
    host, port = opts.address_for(pair.workload)
    port = port or pair.port
    resolved = opts.resolved()
    address = resolved.get((pair.from_host, port)) or host or workload_address
    direct = resolved.get((pair.to_host, port)) or address
    if not address:
        return pair, "", PairReport(pair.from_host, pair.to_host, ProbeResult.UNREACHABLE,
                                    f"no address for {pair.workload or pair.from_host}: use --address or --resolve")
    ctx = client_context(opts.cacert, opts.insecure)
    report = probe_pair(address, port, pair.from_host, pair.to_host, ctx, timeout=parse_duration(opts.timeout, "--timeout"),
                        path=opts.path, method=opts.method, direct_address=direct)
    return pair, host_port(address, port), report


def result_dict(pair: Pair, where: str, r: PairReport) -> Dict[str, Any]:
    return {"fromHost": r.from_host, "host": r.to_host, "address": where, "expected": pair.expected or None,
            "result": r.result.verdict, "detail": r.detail, "finding": pair.finding or None,
            "requests": r.requests,
            "statuses": {k: getattr(r, k).status for k in ("first", "coalesced", "direct") if getattr(r, k)}}


def run(opts: Options, env: Env) -> ExitStatus:
    printer = opts.output.printer(env.color)
    plan, addresses = _plan(opts, env)
    with ThreadPoolExecutor(max_workers=opts.concurrency) as pool:
        done = list(pool.map(lambda p: run_pair(opts, p, addresses.get(p.workload)), plan.pairs))
    results = [result_dict(p, where, r) for p, where, r in done]
    doc = {"apiVersion": "gwdup.kubectl.io/v1alpha1", "kind": "ProbeReport", "results": results,
           "notes": plan.notes}

    def rows(wide: bool) -> List[List[str]]:
        out = []
        for r in results:
            row = [r["fromHost"], r["host"], r["address"] or "-", r["expected"] or "-", r["result"], r["detail"]]
            out.append(row + [r["finding"] or "-", str(r["requests"])] if wide else row)
        return out
    printer.emit(doc, WIDE_HEADERS if printer.wide else HEADERS, rows, env.stdout, color_column=4)
    for note in plan.notes:
        env.stderr.write(f"note: {note}\n")
    kinds = [r.result for _, _, r in done]
    confirmed = sum(k in CONFIRMED for k in kinds)
    env.stderr.write(f"probed {len(kinds)} pair(s): {confirmed} confirmed, "
                     f"{kinds.count(ProbeResult.MITIGATED_421)} mitigated by 421, "
                     f"{kinds.count(ProbeResult.MITIGATED_HTTP1)} by HTTP/1.1, "
                     f"{kinds.count(ProbeResult.UNREACHABLE)} unreachable\n")
    if confirmed:
        return ExitStatus.FINDINGS
    if kinds and all(k is ProbeResult.UNREACHABLE for k in kinds):
        return ExitStatus.FAILURE
    return ExitStatus.OK
