"""`kubectl gwdup fix`: an interactive session from finding to verified fix.

For each group of hazards it shows what is at stake and offers merge, 421, probe, skip or quit.
Every write goes through the same safe paths as `merge --apply` and `apply-421` (server dry
run, backup, all-or-nothing with rollback); Ctrl-C is deferred while a write is on the wire, so
the cluster is left unchanged or fully rolled back, never half done.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import List, Sequence, Set, Tuple

from ..env import Env
from ..errors import ExitStatus, GwdupError, UsageError
from ..execute import merge as merge_exec
from ..execute.apply import apply_all_or_nothing
from ..inventory import RawObjects
from ..model import Finding, Inventory
from ..plans.merge import plan_merge
from ..plans.merge_steps import hazard_units, unit_key
from ..plans.misdirect421 import Method421, plan_421
from ..probeplan import plan_probes, service_address
from ..render.findings import label
from ..yamldump import dump
from . import check, probe
from .apply421 import mitigation_method

STRATEGIES = ("merge", "421")
CHOICES = "[m]erge, [4]21, [p]robe, [s]kip, [q]uit"


@dataclass
class Options(probe.Options):
    strategy: str = ""
    yes: bool = False
    backup_dir: str = "gwdup-backups"
    mitigation: str = "vhost"

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Env) -> "Options":
        base = probe.Options.from_args(args, env)
        return cls(**vars(base), strategy=args.strategy or "", yes=args.yes, backup_dir=args.backup_dir,
                   mitigation=args.mitigation)

    def validate(self) -> None:
        check.Options.validate(self)
        if self.filenames:
            raise UsageError("fix works on a cluster, not on -f manifests (use check, merge --plan, apply-421)")
        if self.strategy and self.strategy not in STRATEGIES:
            raise UsageError(f'--strategy must be merge or 421, not "{self.strategy}"')
        if self.strategy and not self.yes:
            raise UsageError("--strategy goes with --yes (a session without prompts)")
        mitigation_method(self.mitigation)


@dataclass
class Session:
    opts: Options
    env: Env
    changed: List[str] = field(default_factory=list)
    backups: List[str] = field(default_factory=list)
    mitigated: List[Finding] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        self.env.stdout.write(text + "\n")
        self.env.stdout.flush()

    def ask(self, question: str) -> str:
        self.env.stdout.write(question)
        self.env.stdout.flush()
        line = self.env.stdin.readline()
        if not line:
            return "q"
        return line.strip().lower()

    def read(self) -> Tuple[RawObjects, Inventory, List[Finding]]:
        raw = check.load(self.opts, self.env)
        inv, report = check.analyze(self.opts, raw)
        return raw, inv, [f for f in report.findings if "outcome" in f.detail]


def _of(findings: Sequence[Finding], unit: Set[str]) -> List[Finding]:
    return [f for f in findings if {unit_key(s) for s in f.detail["from"] + f.detail["to"]} & unit]


def _stake(findings: Sequence[Finding]) -> List[str]:
    out = []
    for f in findings:
        d = f.detail
        gws = sorted({label(s) for s in d["from"]})
        mitigated = " [mitigated by an installed filter]" if d.get("mitigation") else ""
        out.append(f"  {d['outcome']}: {', '.join(d['hosts'][:5])}{' ...' if len(d['hosts']) > 5 else ''} "
                   f"on connections of {', '.join(gws[:3])}{' ...' if len(gws) > 3 else ''} "
                   f"(port {d['from'][0]['portNumber']}, {f.code}){mitigated}")
    return out


def _merge(s: Session, raw: RawObjects, inv: Inventory, findings: List[Finding], interactive: bool) -> bool:
    plan = plan_merge(raw, inv, findings)
    for note in plan.notes:
        s.say(f"  note: {note}")
    doc = plan.to_dict()
    if not plan.units:
        s.say("  cannot merge this group (see the note); [4]21 mitigates it")
        return False
    from .merge import human

    s.say(human(doc, {st.key: st.before for st in plan.steps}).rstrip())
    access = s.opts.kube.cluster
    run = merge_exec.read_current(access, doc)
    for line in merge_exec.dry_run(access, run):
        s.say(f"  {line}")
    if interactive and s.ask("Apply this merge? [y/N] ") not in ("y", "yes"):
        s.say("  not applied")
        return False
    run.backup = merge_exec.write_backup(run, s.opts.backup_dir)
    s.backups.append(run.backup)
    lines: List[str] = []
    merge_exec.execute(access, run, lambda line: (s.say(f"  {line}"), lines.append(line)))
    s.changed += lines  # only once the whole merge went through
    return True


def _mitigate(s: Session, inv: Inventory, findings: List[Finding], interactive: bool) -> bool:
    chosen = s.mitigated + findings  # one EnvoyFilter per listener carries every chosen group
    plan = plan_421(inv, chosen, Method421(s.opts.mitigation))
    for note in plan.notes + plan.costs:
        s.say(f"  note: {note}")
    if not plan.objects:
        s.say("  nothing to mitigate")
        return False
    for obj in plan.objects:
        s.say("  " + dump(obj).replace("\n", "\n  ").rstrip())
    if interactive and s.ask("Apply these EnvoyFilters? [y/N] ") not in ("y", "yes"):
        s.say("  not applied")
        return False
    lines: List[str] = []
    apply_all_or_nothing(s.opts.kube.cluster, plan.objects, lambda line: (s.say(f"  {line}"), lines.append(line)))
    s.changed += lines
    s.mitigated = chosen  # what is left for which clients is said after the group is checked again
    return True


def _probe(s: Session, raw: RawObjects, inv: Inventory, findings: List[Finding]) -> None:
    plan = plan_probes(findings, inv, s.opts.sample_hosts, s.opts.max_requests)
    for note in plan.notes:
        s.say(f"  note: {note}")
    for pair in plan.pairs:
        host, _ = s.opts.address_for(pair.workload)
        where = None if host else service_address(raw.services, inv, pair.workload)
        if not (host or where or s.opts.resolve):
            s.say(f"  {pair.from_host} -> {pair.to_host}: no address (give --address or --resolve)")
            continue
        p, addr, r = probe.run_pair(s.opts, pair, where)
        s.say(f"  {r.from_host} -> {r.to_host}: {r.result.verdict} ({r.detail})")


def run(opts: Options, env: Env) -> ExitStatus:
    interactive = not opts.yes
    if interactive and not (hasattr(env.stdin, "isatty") and env.stdin.isatty()):
        raise UsageError("fix is interactive: run it in a terminal, or use --yes --strategy merge|421")
    s = Session(opts, env)
    for backup in merge_exec.unfinished(opts.backup_dir):
        env.stderr.write(f"warning: {merge_exec.unfinished_warning(backup)}\n")
    raw, inv, findings = s.read()
    units = hazard_units(findings)
    if not units:
        s.say("no hazards found")
        return ExitStatus.OK
    try:
        for n, unit in enumerate(units, 1):
            group = _of(findings, unit)
            s.say(f"\ngroup {n}/{len(units)}: {', '.join(sorted(unit))}")
            for line in _stake(group):
                s.say(line)
            while True:
                choice = opts.strategy if not interactive else s.ask(f"{CHOICES}? ")
                choice = {"m": "merge", "4": "421", "p": "probe", "s": "skip", "q": "quit"}.get(choice, choice)
                if choice == "quit":
                    return _summary(s, quit_=True, status=check.exit_status(findings, opts.fail_level))
                if choice == "skip":
                    break
                if choice == "probe":
                    _probe(s, raw, inv, group)
                    continue
                if choice not in STRATEGIES:
                    s.say(f"  please answer one of {CHOICES}")
                    continue
                try:
                    applied = _merge(s, raw, inv, group, interactive) if choice == "merge" \
                        else _mitigate(s, inv, group, interactive)
                except GwdupError as exc:
                    s.say(f"  {exc.render()}")
                    applied = False
                if applied:
                    before = _stake(group)
                    raw, inv, findings = s.read()
                    left = _of(findings, unit)
                    after = [f for f in left if not f.detail.get("mitigation")]
                    s.say("  before:")
                    for line in before:
                        s.say("  " + line)
                    s.say("  after: " + _after(left, after))
                    for line in _stake(after):
                        s.say("  " + line)
                    if opts.address or opts.resolve:
                        _probe(s, raw, inv, _of(findings, unit))
                break
    except KeyboardInterrupt:
        s.say("\ninterrupted")
        return _summary(s, quit_=True, status=ExitStatus.INTERRUPTED)
    # as check would exit on the mesh as it is now: a skipped group still fails it
    return _summary(s, status=check.exit_status(findings, opts.fail_level))


def _after(left: Sequence[Finding], unmitigated: Sequence[Finding]) -> str:
    """The group's state after a fix, in words that do not overstate it: a hazard answered by
    421 is still there for clients that do not retry."""
    if not left:
        return "no hazard left"
    if unmitigated:
        return ""
    methods = sorted({f.detail["mitigation"]["method"] for f in left})
    how = "HTTP/1.1 only (browsers never pool those connections)" if methods == ["http1"] else \
        "421 (browsers retry on a new connection; clients that do not retry, such as older Safari, still fail)"
    return f"mitigated by {how}; the hazard is still there: merging removes it"


def _summary(s: Session, quit_: bool = False, status: ExitStatus = ExitStatus.OK) -> ExitStatus:
    s.say("\nsummary:" + (" (stopped before the end)" if quit_ else ""))
    for line in s.changed or ["nothing changed"]:
        s.say(f"  {line}")
    for b in s.backups:
        s.say(f"  backup: {b}")
    return status
