"""Applying a merge plan: dry run, backup, ordered writes with preconditions, rollback.

Order: apply the merged Gateway; then each VirtualService, with its resourceVersion as a
precondition; then delete the old Gateways with uid + resourceVersion preconditions. Any
failure (a 409 from a concurrent change, a refusal, a timeout) stops the run and undoes what
was done, newest first; the result says exactly what state the cluster is in.
"""
from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from ..errors import ApiError, ApplyError, GwdupError, RollbackError
from .apply import FIELD_MANAGER, Writer, delete_options, object_path, resource

STRIP = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink")


def clean(obj: Dict[str, Any]) -> Dict[str, Any]:
    """An object as a backup keeps it: no status, no server-managed metadata."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    for k in ("managedFields",):
        out.get("metadata", {}).pop(k, None)
    return out


def _fresh(obj: Dict[str, Any]) -> Dict[str, Any]:
    out = clean(obj)
    for k in STRIP:
        out["metadata"].pop(k, None)
    return out


@dataclass
class Step:
    kind: str  # apply | update | delete
    obj: Dict[str, Any]
    before: Optional[Dict[str, Any]] = None  # as read; None when it did not exist


@dataclass
class Run:
    steps: List[Step] = field(default_factory=list)
    backup: str = ""


def read_current(access: Writer, plan: Dict[str, Any]) -> Run:
    """Every object the plan touches, as it is now; refuses when a precondition no longer holds."""
    run = Run()
    objs = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in plan["apply"]}
    pre = {(p["kind"], p["namespace"], p["name"]): p for p in plan.get("preconditions", [])}
    for o in plan["apply"]:
        if o["kind"] != "Gateway":
            continue
        try:
            before = access.request("GET", object_path(o))
        except ApiError as exc:
            if exc.code != 404:
                raise
            before = None
        run.steps.append(Step("apply", o, before))
    for o in plan["apply"]:
        if o["kind"] == "Gateway":
            continue
        now = access.request("GET", object_path(o))
        _check(pre, now)
        run.steps.append(Step("update", o, now))
    for d in plan["delete"]:
        template = {"apiVersion": d["apiVersion"], "kind": d["kind"],
                    "metadata": {"namespace": d["namespace"], "name": d["name"]}}
        now = access.request("GET", object_path(template))
        _check(pre, now)
        run.steps.append(Step("delete", template, now))
    del objs
    return run


def _check(pre: Dict[Tuple[str, str, str], Dict[str, Any]], now: Dict[str, Any]) -> None:
    m = now["metadata"]
    want = pre.get((now["kind"], m["namespace"], m["name"]))
    if want and want.get("resourceVersion") and want["resourceVersion"] != m.get("resourceVersion"):
        raise GwdupError(f"the cluster changed since the plan was made: {now['kind']} {m['namespace']}/{m['name']} "
                         f"is at resourceVersion {m.get('resourceVersion')}, the plan read "
                         f"{want['resourceVersion']}; make a new plan")


def _write(access: Writer, step: Step, dry_run: bool) -> str:
    query = {"dryRun": "All"} if dry_run else {}
    obj = step.obj
    if step.kind == "apply":
        access.request("PATCH", object_path(obj), {"fieldManager": FIELD_MANAGER, "force": "true", **query},
                       body=obj, content_type="application/apply-patch+yaml")
        return f"{resource(obj)} serverside-applied"
    if step.kind == "update":
        body = {"metadata": {"resourceVersion": step.before["metadata"]["resourceVersion"]},
                "spec": obj["spec"]}
        access.request("PATCH", object_path(obj), {"fieldManager": FIELD_MANAGER, **query}, body=body,
                       content_type="application/merge-patch+json")
        return f"{resource(obj)} configured"
    m = step.before["metadata"]
    access.request("DELETE", object_path(obj), body=delete_options(
        dry_run, uid=m.get("uid"), resourceVersion=m.get("resourceVersion")))
    return f"{resource(step.before)} deleted"


def write_backup(run: Run, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, time.strftime("gwdup-merge-%Y%m%d-%H%M%S.yaml", time.gmtime()))
    doc = {"apiVersion": "gwdup.kubectl.io/v1alpha1", "kind": "MergeBackup",
           "objects": [clean(s.before) for s in run.steps if s.before is not None],
           "created": [{"apiVersion": s.obj["apiVersion"], "kind": s.obj["kind"],
                        "namespace": s.obj["metadata"]["namespace"], "name": s.obj["metadata"]["name"]}
                       for s in run.steps if s.kind == "apply" and s.before is None]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path


class Interrupts:
    """Ctrl-C while a write is on the wire would leave its outcome unknown; so SIGINT only sets a
    flag during writes, and the run stops (and rolls back) between two of them."""

    def __init__(self) -> None:
        self.pending = False

    @contextlib.contextmanager
    def deferred(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def note(signum: int, frame: Any) -> None:
            self.pending = True
        signal.signal(signal.SIGINT, note)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def _undo(access: Writer, step: Step) -> None:
    if step.kind == "apply" and step.before is None:
        try:
            access.request("DELETE", object_path(step.obj))
        except ApiError as exc:
            if exc.code != 404:
                raise
    elif step.kind in ("apply", "update"):
        current = access.request("GET", object_path(step.obj))
        body = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"],
                             "labels": step.before["metadata"].get("labels")},
                "spec": step.before["spec"]}
        access.request("PATCH", object_path(step.obj), {"fieldManager": FIELD_MANAGER}, body=body,
                       content_type="application/merge-patch+json")
    else:
        access.request("POST", object_path(step.before, name=False), body=_fresh(step.before))


def execute(access: Writer, run: Run, out: Callable[[str], None]) -> None:
    done: List[Step] = []
    interrupts = Interrupts()
    with interrupts.deferred():
        try:
            for step in run.steps:
                if interrupts.pending:
                    raise GwdupError("interrupted")
                out(_write(access, step, dry_run=False))
                done.append(step)
        except (GwdupError, OSError) as exc:
            failed = f"{exc.render() if isinstance(exc, GwdupError) else exc}"
            undone, broken = [], []
            for step in reversed(done):
                try:
                    _undo(access, step)
                    undone.append(resource(step.before or step.obj))
                except (GwdupError, OSError) as undo_exc:
                    broken.append(f"{resource(step.before or step.obj)}: {undo_exc}")
            if broken:
                raise RollbackError(f"the merge failed ({failed}) and rolling back failed too: "
                                    f"{'; '.join(broken)}; restore with: kubectl gwdup merge --restore {run.backup}") from None
            state = f"rolled back {', '.join(undone)}" if undone else "nothing had been changed"
            raise ApplyError(f"the merge failed ({failed}); {state}: the cluster is as before "
                             f"(backup: {run.backup})") from None


def dry_run(access: Writer, run: Run) -> List[str]:
    return [_write(access, s, dry_run=True) + " (server dry run)" for s in run.steps]


def restore(access: Writer, path: str, out: Callable[[str], None]) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise GwdupError(f"cannot read backup {path}: {exc}") from None
    for ref in doc.get("created") or []:
        template = {"apiVersion": ref["apiVersion"], "kind": ref["kind"],
                    "metadata": {"namespace": ref["namespace"], "name": ref["name"]}}
        try:
            access.request("DELETE", object_path(template))
            out(f"{resource(template)} deleted")
        except ApiError as exc:
            if exc.code != 404:
                raise
    for obj in doc.get("objects") or []:
        try:
            current = access.request("GET", object_path(obj))
        except ApiError as exc:
            if exc.code != 404:
                raise
            access.request("POST", object_path(obj, name=False), body=_fresh(obj))
            out(f"{resource(obj)} created")
            continue
        body = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"],
                             "labels": obj["metadata"].get("labels")}, "spec": obj["spec"]}
        access.request("PATCH", object_path(obj), {"fieldManager": FIELD_MANAGER}, body=body,
                       content_type="application/merge-patch+json")
        out(f"{resource(obj)} restored")
