"""`kubectl gwdup apply-421`: EnvoyFilters that answer 421 to coalesced requests."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Sequence, Set

from ..env import Env
from ..errors import ExitStatus, GwdupError, UsageError
from ..execute.apply import DryRun, apply_objects, delete_managed, prune_managed
from ..model import MANAGED_BY
from ..plans.misdirect421 import API_VERSION, MIN_ISTIO, Method421, object_stem, plan_421
from ..render.printers import OutputFormat
from . import check

TEMPLATE = {"apiVersion": API_VERSION, "kind": "EnvoyFilter"}
MANAGED_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
CAVEAT = ("clients that do not retry on 421 (Safari) still fail: --mitigation http1 serves them; "
          "merging the servers (kubectl gwdup merge) is the lasting fix")


@dataclass
class Options(check.Options):
    method: str = "vhost"
    dry_run: str = "none"
    delete: bool = False
    istio_namespace: str = "istio-system"

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Env) -> "Options":
        base = check.Options.from_args(args, env)
        method = args.mitigation
        if args.method_alias is not None:
            env.stderr.write("warning: apply-421 --method is now --mitigation (probe's --method is the HTTP "
                             "method)\n")
            method = args.method_alias
        return cls(**vars(base), method=method, dry_run=args.dry_run or "none", delete=args.delete,
                   istio_namespace=args.istio_namespace)

    def validate(self) -> None:
        super().validate()
        if self.output.output not in ("", "json", "yaml") or self.output.no_headers:
            raise UsageError("apply-421 prints EnvoyFilters or kubectl's result lines: -o yaml or -o json, "
                             "and no table (-o wide and --no-headers go with check and probe)")
        mitigation_method(self.method)
        try:
            DryRun(self.dry_run)
        except ValueError:
            raise UsageError(f'--dry-run must be "none", "server" or "client", not "{self.dry_run}"') from None
        if self.filenames and DryRun(self.dry_run) is not DryRun.CLIENT:
            raise UsageError("-f works offline: add --dry-run=client (and -o yaml to print the EnvoyFilters)")
        if self.delete and self.filenames:
            raise UsageError("--delete works on the cluster, not on -f manifests")


def mitigation_method(value: str) -> Method421:
    """--mitigation (apply-421 and fix), checked before any I/O."""
    try:
        return Method421(value)
    except ValueError:
        raise UsageError(f'--mitigation must be vhost, lua or http1, not "{value}"') from None


def _prunable(opts: Options, inventory: Any, planned: Sequence[Any]) -> Set[str]:
    """The listeners whose filters this run may rewrite or delete: those it planned, and, when
    the whole mesh was judged (no -n, no -l), every listener it read, so that a listener a merge
    made safe loses the filter it no longer needs. With a scope, a listener may still hold a
    hazard outside it, so only the planned ones are touched."""
    stems = {object_stem(listener) for listener in planned}
    if not opts.kube.report_namespace and not opts.selector:
        stems |= {object_stem(p.listener) for p in inventory.placements}
    return stems


def run(opts: Options, env: Env) -> ExitStatus:
    fmt = opts.output.validate()
    dry_run = DryRun(opts.dry_run)
    if opts.delete:
        ns = [opts.kube.namespace] if opts.kube.report_namespace else []
        for line in delete_managed(opts.kube.cluster, TEMPLATE, MANAGED_SELECTOR, dry_run, ns):
            env.stdout.write(line + "\n")
        return ExitStatus.OK
    raw = check.load(opts, env)
    cp = check.control_plane(opts, raw)
    version = cp.version
    if version is not None and version < MIN_ISTIO:
        raise GwdupError(f"Istio {version[0]}.{version[1]} (from the {cp.source}) is older than "
                         f"{MIN_ISTIO[0]}.{MIN_ISTIO[1]}, the oldest release these EnvoyFilters are made for")
    inventory, report = check.analyze(opts, raw, cp)
    plan = plan_421(inventory, report.findings, Method421(opts.method), opts.istio_namespace, version)
    env.stderr.write(f"note: {cp.describe()}\n")
    for note in plan.notes:
        env.stderr.write(f"note: {note}\n")
    for cost in plan.costs:
        env.stderr.write(f"note: {opts.method} adds {cost}\n")
    if plan.objects:
        sizes = plan.sizes()
        env.stderr.write(f"note: {len(sizes)} EnvoyFilter(s), {sum(sizes) / 1024:.1f} KiB in all, "
                         f"the largest {max(sizes) / 1024:.1f} KiB\n")
    elif not plan.listeners:
        env.stderr.write("no hazards to mitigate\n")
    writer = None if dry_run is DryRun.CLIENT else opts.kube.cluster
    lines = apply_objects(writer, plan.objects, dry_run)
    if writer is not None:  # a shorter plan than the last one: the surplus objects go
        lines += prune_managed(writer, TEMPLATE, MANAGED_SELECTOR, dry_run,
                               keep={(o["metadata"]["namespace"], o["metadata"]["name"]) for o in plan.objects},
                               stems=_prunable(opts, inventory, plan.listeners))
    if not plan.objects and not plan.listeners:  # nothing to mitigate: at most stale filters went
        for line in lines:
            env.stdout.write(line + "\n")
        return ExitStatus.OK
    if fmt in (OutputFormat.JSON, OutputFormat.YAML):
        opts.output.printer(False).emit({"apiVersion": "v1", "kind": "List", "items": plan.objects},
                                        [], lambda wide: [], env.stdout)
    else:
        for line in lines:
            env.stdout.write(line + "\n")
    if Method421(opts.method) is not Method421.HTTP1:
        env.stderr.write(f"warning: {CAVEAT}\n")
    return ExitStatus.OK
