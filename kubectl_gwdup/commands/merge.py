"""`kubectl gwdup merge --plan | --apply | --restore`: the lasting fix, planned and applied safely."""
from __future__ import annotations

import argparse
import difflib
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import yaml

from ..env import Env
from ..errors import ExitStatus, InputError, UsageError
from ..model import GATEWAY_API_GROUP
from ..execute import merge as executor
from ..plans.merge import plan_merge
from ..render import manifest_dir
from ..render.printers import OutputFormat
from ..yamldump import dump
from . import check


SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Options(check.Options):
    plan: bool = False
    apply: bool = False
    restore: str = ""
    plan_file: str = ""
    output_dir: str = ""
    yes: bool = False
    backup_dir: str = "gwdup-backups"
    prefer_cert: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Env) -> "Options":
        base = check.Options.from_args(args, env)
        return cls(**vars(base), plan=args.plan, apply=args.apply, restore=args.restore or "",
                   plan_file=args.plan_file or "", output_dir=args.output_dir or "", yes=args.yes, backup_dir=args.backup_dir,
                   prefer_cert=args.prefer_cert or "")

    def validate(self) -> None:
        super().validate()
        modes = [m for m in (self.plan, self.apply, bool(self.restore)) if m]
        if len(modes) != 1:
            raise UsageError("give exactly one of --plan, --apply or --restore BACKUP")
        if self.output_dir and not self.plan:
            raise UsageError("--output-dir goes with --plan")
        if self.output_dir and os.path.isdir(self.output_dir) and os.listdir(self.output_dir):
            raise UsageError(f"--output-dir {self.output_dir}: not empty (nothing in it is overwritten)")
        if self.filenames and not self.plan:
            raise UsageError("-f works offline: only with --plan")
        if self.apply and self.output.output:
            raise UsageError("-o goes with --plan (the plan document); --apply prints kubectl's result lines")
        if self.prefer_cert and not SECRET_NAME.match(self.prefer_cert):
            raise UsageError(f'--prefer-cert "{self.prefer_cert}": not a Secret name (a lowercase RFC 1123 '
                             "subdomain: lower case letters, digits, '-' and '.')")
        if self.output.output not in ("", "json", "yaml") or self.output.no_headers:
            raise UsageError("merge prints a plan: -o yaml or -o json, and no table (-o wide and "
                             "--no-headers go with check and probe)")


def _yaml(obj: Any) -> List[str]:
    return dump(obj).splitlines(keepends=True)


WHAT = {"bind": "bind {ref} to the merged Gateway too",
        "qualify": "spell {ref}'s hosts as ns/host (as the merged server will)",
        "merge": "merge into {ref} (the oldest of the group)",
        "unbind": "unbind {ref} from the old Gateways", "delete": "delete {ref}"}


LISTENER_WHAT = {("bind", "Gateway"): "add the wildcard listener to {ref}",
                 ("bind", "HTTPRoute"): "attach {ref} to the wildcard listener too",
                 ("merge", "Gateway"): "remove the merged listeners from {ref}",
                 ("unbind", "HTTPRoute"): "detach {ref} from the removed listeners"}


def human(doc: Dict[str, Any], before: Dict[Tuple[str, str, str], Dict[str, Any]]) -> str:
    """The plan's writes in order, each an update with its spec diff or a delete."""
    out: List[str] = []
    current = {k: v.get("spec") for k, v in before.items()}
    for i, step in enumerate(doc["steps"], 1):
        key = (step["kind"], step["namespace"], step["name"])
        ref = f"{step['kind']} {step['namespace']}/{step['name']}"
        what = LISTENER_WHAT[(step["phase"], step["kind"])] if step["apiVersion"].startswith(GATEWAY_API_GROUP) \
            else WHAT[step["phase"]]
        out.append(f"{i}. {what.format(ref=ref)}\n")
        if step["action"] == "update":
            out += ["   " + line for line in difflib.unified_diff(
                _yaml({"spec": current.get(key)}), _yaml({"spec": step["spec"]}),
                fromfile=f"{ref} (before this step)", tofile=f"{ref} (after)")]
            current[key] = step["spec"]
    return "".join(out)


def _plan(opts: Options, env: Env) -> Tuple[Dict[str, Any], Dict[Tuple[str, str, str], Dict[str, Any]]]:
    if opts.plan_file and opts.apply:
        try:
            with open(opts.plan_file, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{opts.plan_file}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("kind") != "MergePlan":
            raise InputError(f"{opts.plan_file}: not a MergePlan document")
        return doc, {}
    raw = check.load(opts, env)
    inventory, report = check.analyze(opts, raw)
    if opts.prefer_cert:
        _check_preferred(opts.prefer_cert, inventory)
    plan = plan_merge(raw, inventory, report.findings, prefer_cert=opts.prefer_cert or None)
    return plan.to_dict(), {s.key: s.before for s in plan.steps}


def _write_dir(path: str, doc: Dict[str, Any], before: Dict[Tuple[str, str, str], Dict[str, Any]], env: Env) -> None:
    files = manifest_dir.layout(doc, before)
    try:
        os.makedirs(os.path.join(path, "delete") if any(p.startswith("delete/") for p, _ in files) else path,
                    exist_ok=True)
        for rel, obj in files:
            with open(os.path.join(path, rel), "x", encoding="utf-8") as f:
                f.write(dump(obj))
    except OSError as exc:
        raise InputError(f"--output-dir {path}: {exc.strerror or exc}") from None
    deletes = sum(1 for p, _ in files if p.startswith("delete/"))
    env.stderr.write(f"{len(files) - deletes} manifest(s) written to {path}: kubectl apply -f {path}"
                     + (f", then kubectl delete -f {os.path.join(path, 'delete')}" if deletes else "") + "\n")


def _check_preferred(name: str, inventory: Any) -> None:
    """--prefer-cert must name the credential of a server being read, whose certificate was
    read: the planner takes the certificate (and its names) from there, and a name it cannot
    find would be ignored in silence."""
    holders = [p for p in inventory.placements if any(c.name == name for c in p.credentials)]
    if not holders:
        raise InputError(f'--prefer-cert "{name}": no Gateway server uses credentialName {name}; give the '
                         "credential of one of the servers to merge (check -o wide shows each one's)")
    if not any(p.certificates for p in holders):
        raise InputError(f'--prefer-cert "{name}": its Secret was not read (missing, or Secrets not readable), '
                         "so which hosts it covers is unknown")


def _confirmed(opts: Options, env: Env, question: str, verb: str) -> bool:
    """--yes, or a `y` typed at a terminal after the question; without a terminal to ask on,
    a UsageError (a pipeline must say --yes)."""
    if opts.yes:
        return True
    if not (env.stdin.isatty() if hasattr(env.stdin, "isatty") else False):
        raise UsageError(f"refusing to {verb} without a terminal to confirm on: add --yes")
    env.stdout.write(question)
    env.stdout.flush()
    return env.stdin.readline().strip().lower() in ("y", "yes")


def run(opts: Options, env: Env) -> ExitStatus:
    if opts.restore:
        objects = executor.read_backup(opts.restore)
        listing = "".join(f"  {o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata'].get('name', '')}\n"
                          for o in objects)
        if not _confirmed(opts, env, f"{opts.restore} puts back, as they were before the merge:\n{listing}"
                                     "Restore these objects? [y/N] ", "restore"):
            env.stderr.write("not restored\n")
            return ExitStatus.OK
        executor.restore(opts.kube.cluster, opts.restore, objects, lambda line: env.stdout.write(line + "\n"))
        return ExitStatus.OK
    for backup in executor.unfinished(opts.backup_dir):
        env.stderr.write(f"warning: {executor.unfinished_warning(backup)}\n")
    doc, before = _plan(opts, env)
    for note in doc["notes"]:
        env.stderr.write(f"note: {note}\n")
    if opts.plan:
        fmt = opts.output.validate()
        if opts.plan_file:
            with open(opts.plan_file, "w", encoding="utf-8") as f:
                f.write(dump(doc))
            env.stderr.write(f"plan written to {opts.plan_file}\n")
        if opts.output_dir:
            _write_dir(opts.output_dir, doc, before, env)
        if fmt in (OutputFormat.JSON, OutputFormat.YAML):
            opts.output.printer(False).emit(doc, [], lambda wide: [], env.stdout)
        elif doc["steps"]:
            env.stdout.write(human(doc, before))
        else:
            env.stderr.write("nothing to merge\n")
        return ExitStatus.OK
    if not doc["steps"]:
        env.stderr.write("nothing to merge\n")
        return ExitStatus.OK
    access = opts.kube.cluster
    run_ = executor.read_current(access, doc)
    for line in executor.dry_run(access, run_):
        env.stderr.write(line + "\n")
    if not _confirmed(opts, env, human(doc, run_.before) + "Apply this merge? [y/N] ", "apply"):
        env.stderr.write("not applied\n")
        return ExitStatus.OK
    run_.backup = executor.write_backup(run_, opts.backup_dir)
    env.stderr.write(f"backup written to {run_.backup}\n")
    executor.execute(access, run_, lambda line: env.stdout.write(line + "\n"))
    return ExitStatus.OK
