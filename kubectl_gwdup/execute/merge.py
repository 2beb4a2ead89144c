"""Applying a merge plan: preconditions, server dry run, backup, ordered writes, rollback.

The writes follow the plan's phases (bind, merge, unbind, delete: see plans/merge.py for why
that order has no outage window). An update is a PUT of the object as last read or written, with
the planned spec and that object's resourceVersion, so a concurrent change is a 409 and not
overwritten; a delete carries uid and resourceVersion preconditions in its DeleteOptions body.
Any failure (a 409, an admission webhook's denial, a timeout, Ctrl-C) stops the run and undoes
what was done, newest first: an updated object gets its spec, labels and annotations back. The
deletes come last, so they are only reached when every other write went through; a Gateway
deleted before a later delete failed is created again, which gives it a new uid and
creationTimestamp, and so a new place in istiod's order: the result says so.

What no process can undo is its own death (SIGKILL, a crash, a lost machine). So the backup is
written before the first write, and beside it a journal (`<backup>.journal`) that gets a line
per write before the write is sent and is removed only when the run ends with the cluster in a
known state (applied, or rolled back whole). A journal left behind means a merge died halfway:
`unfinished()` finds it, the next merge or fix says so, and `--restore` mends the cluster from
the backup and removes the journal.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from ..errors import ApiError, ApplyError, GwdupError, RollbackError
from ..plans.merge_steps import API_VERSION
from ..yamldump import dump
from .rest import FIELD_MANAGER, Interrupts, Writer, clean, delete_options, fresh, object_path, resource

Key = Tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True)
class PlannedStep:
    phase: str
    action: str  # update | delete
    key: Key
    api_version: str
    spec: Optional[Dict[str, Any]] = None


@dataclass
class Run:
    steps: List[PlannedStep] = field(default_factory=list)
    before: Dict[Key, Dict[str, Any]] = field(default_factory=dict)  # as read, before any write
    backup: str = ""


def _template(step: PlannedStep) -> Dict[str, Any]:
    return {"apiVersion": step.api_version, "kind": step.key[0],
            "metadata": {"namespace": step.key[1], "name": step.key[2]}}


def read_current(access: Writer, plan: Dict[str, Any]) -> Run:
    """Every object the plan touches, as it is now; refuses when a precondition no longer holds."""
    if plan.get("apiVersion") != API_VERSION or not isinstance(plan.get("steps"), list):
        raise GwdupError(f"the plan is not a {API_VERSION} MergePlan; make a new plan")
    run = Run()
    for s in plan["steps"]:
        run.steps.append(PlannedStep(s["phase"], s["action"], (s["kind"], s["namespace"], s["name"]),
                                     s["apiVersion"], s.get("spec")))
    pre = {(p["kind"], p["namespace"], p["name"]): p for p in plan.get("preconditions") or []}
    for step in run.steps:
        if step.key in run.before:
            continue
        try:
            now = access.request("GET", object_path(_template(step)))
        except ApiError as exc:
            if exc.code != 404:
                raise
            raise GwdupError(f"the cluster changed since the plan was made: {step.key[0]} "
                             f"{step.key[1]}/{step.key[2]} no longer exists; make a new plan") from None
        want, m = pre.get(step.key) or {}, now["metadata"]
        for field_ in ("uid", "resourceVersion"):
            if want.get(field_) and want[field_] != m.get(field_):
                raise GwdupError(f"the cluster changed since the plan was made: {step.key[0]} "
                                 f"{step.key[1]}/{step.key[2]} is at {field_} {m.get(field_)}, the plan read "
                                 f"{want[field_]}; make a new plan")
        run.before[step.key] = now
    return run


STATUS_RETRIES = 3  # writes of one step when only the object's status moves under it


def _what_merge_owns(obj: Dict[str, Any]) -> Tuple[Any, ...]:
    m = obj.get("metadata") or {}
    return (obj.get("spec"), m.get("labels"), m.get("annotations"), m.get("uid"), m.get("generation"))


def _write(access: Writer, step: PlannedStep, current: Dict[str, Any], dry_run: bool) -> Tuple[str, Optional[Dict[str, Any]]]:
    """One write; kubectl's line and the object as the server answered (None once deleted).

    A 409 is a concurrent change, and stops the merge, unless only the object's status (and
    with it its resourceVersion) moved: istiod writes a Gateway's status after every change of
    its spec (Gateway API listeners' conditions), `serve --write-conditions` too, and neither is
    an edit the merge could overwrite (the status subresource is not written by a PUT of the
    object). Then the write is sent again on the object as it is now, at most STATUS_RETRIES
    times (client-go's RetryOnConflict, `client-go/util/retry/util.go`, narrowed to that case)."""
    for attempt in range(STATUS_RETRIES):
        try:
            return _write_once(access, step, current, dry_run)
        except ApiError as exc:
            if exc.code != 409 or attempt == STATUS_RETRIES - 1:
                raise
            fresh = access.request("GET", object_path(current))
            if _what_merge_owns(fresh) != _what_merge_owns(current):
                raise
            current = fresh
    raise AssertionError("unreachable")


def _write_once(access: Writer, step: PlannedStep, current: Dict[str, Any], dry_run: bool) -> Tuple[str, Optional[Dict[str, Any]]]:
    path = object_path(current)
    if step.action == "delete":
        m = current["metadata"]
        access.request("DELETE", path, body=delete_options(dry_run, uid=m.get("uid"),
                                                           resourceVersion=m.get("resourceVersion")))
        return f"{resource(current)} deleted", None
    body = clean(current)
    body["spec"] = step.spec
    query = {"fieldManager": FIELD_MANAGER, "dryRun": "All" if dry_run else None}
    return f"{resource(current)} configured", access.request("PUT", path, query, body=body)


def dry_run(access: Writer, run: Run) -> List[str]:
    """Every write as a server dry run, in order (a dry-run answer keeps the stored
    resourceVersion, so a second step on one object still meets its precondition)."""
    current = dict(run.before)
    lines = []
    for step in run.steps:
        line, obj = _write(access, step, current[step.key], dry_run=True)
        if obj is not None:
            current[step.key] = obj
        lines.append(line + " (server dry run)")
    return lines


JOURNAL = ".journal"


def write_backup(run: Run, directory: str) -> str:
    """The backup, then its journal, both on disk before the first write is sent."""
    os.makedirs(directory, exist_ok=True)
    stamp = time.strftime("gwdup-merge-%Y%m%d-%H%M%S", time.gmtime())
    doc = {"apiVersion": API_VERSION, "kind": "MergeBackup", "objects": [clean(o) for o in run.before.values()]}
    for n in range(1000):  # two merges within one second get two backups, never one
        path = os.path.join(directory, f"{stamp}{'' if n == 0 else f'-{n}'}.yaml")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            continue
    else:
        raise GwdupError(f"cannot write a backup in {directory}: too many from this second")
    with os.fdopen(fd, "w") as f:
        f.write(dump(doc))
        f.flush()
        os.fsync(f.fileno())
    _journal(path, f"started: {len(run.steps)} writes planned\n", create=True)
    return path


def _journal(backup: str, line: str, create: bool = False) -> None:
    with open(backup + JOURNAL, "x" if create else "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _finished(backup: str) -> None:
    if backup:
        try:
            os.remove(backup + JOURNAL)
        except FileNotFoundError:
            pass


def unfinished(directory: str) -> List[str]:
    """Backups of merges that died halfway (their journal is still there), oldest first."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, n[:-len(JOURNAL)]) for n in names
            if n.endswith(".yaml" + JOURNAL) and os.path.exists(os.path.join(directory, n[:-len(JOURNAL)]))]


def unfinished_warning(backup: str) -> str:
    return (f"a merge that started from backup {backup} never finished (the process was killed or "
            "crashed halfway): the cluster may be half-merged; `kubectl gwdup merge --restore "
            f"{backup}` puts back every object it touched")


def _put_back(access: Writer, before: Dict[str, Any]) -> None:
    """The object's spec, labels and annotations as they were, over whatever it is now (read
    again when a status write lands between the read and the write)."""
    for attempt in range(STATUS_RETRIES):
        current = access.request("GET", object_path(before))
        body = clean(current)
        body["spec"] = before.get("spec")
        for k in ("labels", "annotations"):
            if before["metadata"].get(k) is None:
                body["metadata"].pop(k, None)
            else:
                body["metadata"][k] = before["metadata"][k]
        try:
            access.request("PUT", object_path(before), {"fieldManager": FIELD_MANAGER}, body=body)
            return
        except ApiError as exc:
            if exc.code != 409 or attempt == STATUS_RETRIES - 1:
                raise


def _create_again(access: Writer, before: Dict[str, Any]) -> str:
    """A deleted object created again; the note on its new place in istiod's order."""
    made = access.request("POST", object_path(before, name=False), body=fresh(before))
    m = before["metadata"]
    now = (made.get("metadata") or {}).get("creationTimestamp", "now")
    return (f"{before['kind']} {m['namespace']}/{m['name']} was created again: its creationTimestamp is "
            f"{now} (was {m.get('creationTimestamp')}), so istiod now orders it after Gateways created "
            "between the two; run `kubectl gwdup check` to see whether that changed which server keeps a host")


def execute(access: Writer, run: Run, out: Callable[[str], None]) -> None:
    current = dict(run.before)
    done: List[PlannedStep] = []
    interrupts = Interrupts()
    with interrupts.deferred():
        try:
            for step in run.steps:
                if interrupts.pending:
                    raise GwdupError("interrupted")
                if run.backup:
                    _journal(run.backup, f"{step.action} {step.key[0]} {step.key[1]}/{step.key[2]}\n")
                line, obj = _write(access, step, current[step.key], dry_run=False)
                done.append(step)
                if obj is not None:
                    current[step.key] = obj
                out(line)
        except (GwdupError, OSError) as exc:
            failed = f"{exc.render() if isinstance(exc, GwdupError) else exc}"
            _roll_back(access, run, done, failed)
    _finished(run.backup)


def _roll_back(access: Writer, run: Run, done: List[PlannedStep], failed: str) -> None:
    undone: List[str] = []
    broken: List[str] = []
    moved: List[str] = []
    seen = set()
    for step in reversed(done):  # newest first, each object once
        if step.key in seen:
            continue
        seen.add(step.key)
        before = run.before[step.key]
        try:
            if step.action == "delete":
                moved.append(_create_again(access, before))
            else:
                _put_back(access, before)
            undone.append(resource(before))
        except (GwdupError, OSError) as undo_exc:
            broken.append(f"{resource(before)}: {undo_exc}")
    if broken:
        raise RollbackError(f"the merge failed ({failed}) and rolling back failed too: "
                            f"{'; '.join(broken)}; restore with: kubectl gwdup merge --restore {run.backup}") from None
    _finished(run.backup)  # rolled back whole: nothing is left for --restore to mend
    state = f"rolled back {', '.join(undone)}" if undone else "nothing had been changed"
    if moved:  # spec, labels and annotations are back; a re-created object's identity is not
        raise ApplyError(f"the merge failed ({failed}); {state}: every spec, label and annotation is as "
                         f"before (backup: {run.backup}); note: {'; '.join(moved)}") from None
    raise ApplyError(f"the merge failed ({failed}); {state}: the cluster is as before "
                     f"(backup: {run.backup})") from None


def read_backup(path: str) -> List[Dict[str, Any]]:
    """The objects of a MergeBackup file, as they were before the merge wrote anything."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise GwdupError(f"cannot read backup {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "MergeBackup":
        raise GwdupError(f"{path}: not a MergeBackup document")
    objects = doc.get("objects") or []
    if not isinstance(objects, list) or not all(isinstance(o, dict) and isinstance(o.get("metadata"), dict)
                                                and o.get("kind") and o.get("apiVersion") for o in objects):
        raise GwdupError(f"{path}: its objects are not Kubernetes objects")
    return objects


def restore(access: Writer, path: str, objects: List[Dict[str, Any]], out: Callable[[str], None]) -> None:
    """Every object of the backup at `path` as it was: created again where gone, else its spec,
    labels and annotations put back; then the merge's journal, if any, is removed."""
    for obj in objects:
        try:
            access.request("GET", object_path(obj))
        except ApiError as exc:
            if exc.code != 404:
                raise
            access.request("POST", object_path(obj, name=False), body=fresh(obj))
            out(f"{resource(obj)} created")
            continue
        _put_back(access, obj)
        out(f"{resource(obj)} restored")
    _finished(path)
