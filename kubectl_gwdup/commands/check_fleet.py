"""`check --context A --context B` and `check --all-contexts`: one report across clusters.

Each context is read and analysed as `check` reads one (its own client, its own kubeconfig
selection), in parallel; a cluster that cannot be read (unreachable, forbidden, a bad
kubeconfig entry) is named in the report and in the exit status, and never stops the others.
Findings carry their cluster (a CLUSTER column; `cluster` in JSON, YAML and SARIF), and the
hazards no single cluster can see, between clusters behind one address, are added
(analysis.fleet), from the DNS answers of every cluster's hosts.

Exit status: 1 when any cluster could not be read (the report is printed all the same), else
check's (3 when a finding is at --fail-level).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..env import Env, with_stderr
from ..errors import ExitStatus, GwdupError, UsageError
from ..model import Finding, Inventory, Report
from . import check

PARALLEL = 8  # clusters read at once


@dataclass
class ClusterResult:
    name: str
    raw: Any = None
    inventory: Optional[Inventory] = None
    report: Optional[Report] = None
    error: str = ""


def contexts(opts: check.Options) -> List[str]:
    if not opts.all_contexts:
        return list(dict.fromkeys(opts.kube.contexts))
    from ..sources import kubeconfig

    paths, _ = kubeconfig.config_paths(opts.kube.kubeconfig, opts.kube.environ)
    if not paths:
        raise UsageError("--all-contexts needs a kubeconfig")
    names = [str(c.get("name")) for c in kubeconfig.load_merged(paths).get("contexts") or [] if c.get("name")]
    if not names:
        raise UsageError("--all-contexts: the kubeconfig has no contexts")
    return sorted(dict.fromkeys(names))


def _one(opts: check.Options, name: str, env: Env, resolver: Any) -> ClusterResult:
    kube = replace(opts.kube, context=name, contexts=[name], fleet=False)
    o = replace(opts, kube=kube, all_contexts=False)
    try:
        from ..sources.live import load_cluster

        raw = load_cluster(kube.cluster, chunk_size=kube.chunk_size, settings=o.settings)
        inventory, report = check.analyze(o, raw)
        report = check.suppress(report, raw, o.suppress,
                                with_stderr(env, lambda text: f"[{name}] {text}" if text.strip() else None))
        if o.resolving:
            report = check.dns_labels(o, raw, inventory, report, resolver)
        return ClusterResult(name, raw, inventory, report)
    except GwdupError as exc:
        return ClusterResult(name, error=exc.render().strip().removeprefix("error: "))
    finally:
        kube.close()


def _tag(f: Finding, cluster: str) -> Finding:
    return replace(f, detail={**f.detail, "cluster": cluster})


def run_fleet(opts: check.Options, env: Env) -> ExitStatus:
    names = contexts(opts)
    resolver = check.new_resolver(opts) if opts.resolving else None
    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL, len(names)))) as pool:
        results = list(pool.map(lambda n: _one(opts, n, env, resolver), names))
    read = [r for r in results if r.report is not None]
    findings: List[Finding] = []
    suppressed: List[Tuple[Finding, str]] = []
    notes: List[str] = []
    conditions: List[Any] = []
    for r in read:
        findings += [_tag(f, r.name) for f in r.report.findings]
        suppressed += [(_tag(f, r.name), by) for f, by in r.report.suppressed]
        notes += [f"[{r.name}] {n}" for n in r.report.notes]
        conditions += [{**c, "cluster": r.name} for c in r.report.conditions]
    if opts.resolving and len(read) > 1:
        findings += _across(opts, read, resolver)
    clusters = tuple({"name": r.name, "status": "Error" if r.error else "Read",
                      **({"error": r.error} if r.error else
                         {"gateways": len({s.ref.resource for s in r.inventory.servers})})} for r in results)
    report = Report(findings=tuple(sorted(findings, key=lambda f: (f.detail.get("cluster", ""), f.sort_key()))),
                    notes=tuple(notes), conditions=tuple(conditions), suppressed=tuple(suppressed), clusters=clusters)
    printer = opts.output.printer(env.color)
    printer.print(report, env.stdout, None, cluster_column=True)
    for note in report.notes:
        env.stderr.write(f"note: {note}\n")
    for r in results:
        if r.error:
            env.stderr.write(f"error: cluster {r.name}: {r.error}\n")
    gateways = sum(c.get("gateways", 0) for c in clusters)
    env.stderr.write(_summary(report, len(read), len(results), gateways) + "\n")
    if any(r.error for r in results):
        return ExitStatus.FAILURE
    return check.exit_status(report.findings, opts.fail_level)


def _across(opts: check.Options, read: Sequence[ClusterResult], resolver: Any) -> List[Finding]:
    from ..analysis import fleet

    pairs = [(r.name, r.inventory) for r in read]
    answers: Dict[str, Any] = {}
    for r in read:
        wanted = fleet.names([(r.name, r.inventory)])
        got, _how = check.dns_answers(opts, r.raw, wanted, resolver)
        for name, a in got.items():
            answers.setdefault(name, a)
    return fleet.across(pairs, answers)


def _summary(report: Report, read: int, total: int, gateways: int) -> str:
    hazards = [f for f in report.findings if "outcome" in f.detail]
    across = sum(1 for f in hazards if f.code == "GWD0107")
    where = f"{read} of {total} cluster(s), {gateways} Gateway(s)"
    if not report.findings:
        return f"no hazards found in {where}"
    extra = f", {across} across clusters" if across else ""
    others = len(report.findings) - len(hazards)
    return (f"found {len(hazards)} hazard(s){extra}" + (f", {others} other finding(s)" if others else "")
            + f" in {where}")
