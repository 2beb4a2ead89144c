"""Writes: server-side apply and deletes through ClusterAccess, with kubectl's result lines.

Server-side apply uses field manager `kubectl-gwdup` and `force`, so the objects this tool
owns converge to the plan; dry runs go to the server as dryRun=All (validated, not stored).
"""
from __future__ import annotations

import enum
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ..errors import ApiError, ApplyError, GwdupError
from .rest import FIELD_MANAGER, Interrupts, Writer, clean, delete_options, object_path, resource


class DryRun(enum.Enum):
    NONE = "none"
    CLIENT = "client"
    SERVER = "server"


def _suffix(dry_run: DryRun) -> str:
    return {DryRun.NONE: "", DryRun.CLIENT: " (dry run)", DryRun.SERVER: " (server dry run)"}[dry_run]


def apply_objects(access: Optional[Writer], objects: Sequence[Dict[str, Any]], dry_run: DryRun) -> List[str]:
    """kubectl-style lines, one per object: `<kind>.<group>/<name> serverside-applied`."""
    lines = []
    for obj in objects:
        if dry_run is not DryRun.CLIENT:
            assert access is not None
            path = object_path(obj)
            query = {"fieldManager": FIELD_MANAGER, "force": "true",
                     "dryRun": "All" if dry_run is DryRun.SERVER else None}
            # the client serializes the body as JSON, which is YAML: a valid apply patch
            _missing_crd(lambda: access.request("PATCH", path, query, body=obj,
                                                content_type="application/apply-patch+yaml"), obj)
        lines.append(f"{resource(obj)} serverside-applied{_suffix(dry_run)}")
    return lines


def delete_managed(access: Writer, template: Dict[str, Any], label_selector: str, dry_run: DryRun,
                   namespaces: Sequence[str] = (), keep: Callable[[Dict[str, Any]], bool] = lambda o: False
                   ) -> List[str]:
    """Delete every object of the template's kind that carries our label (but those `keep`
    holds on to); kubectl's lines."""
    group_version = template["apiVersion"]
    plural = template["kind"].lower() + "s"
    found = _missing_crd(lambda: list(access.list(f"/apis/{group_version}/{plural}", label_selector=label_selector)),
                         template)
    lines = []
    for obj in sorted(found, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        m = obj["metadata"]
        if namespaces and m["namespace"] not in namespaces or keep(obj):
            continue
        obj = {**obj, "apiVersion": group_version, "kind": template["kind"]}
        if dry_run is not DryRun.CLIENT:
            access.request("DELETE", object_path(obj), body=delete_options(
                dry_run is DryRun.SERVER, uid=m.get("uid")))
        lines.append(f"{resource(obj)} deleted{_suffix(dry_run)}")
    return lines


def _missing_crd(call: Any, obj: Dict[str, Any]) -> Any:
    try:
        return call()
    except ApiError as exc:
        if exc.code == 404 and "could not find the requested resource" in exc.message:
            raise GwdupError(f'the server doesn\'t have a resource type "{obj["kind"].lower()}s" in '
                             f'{obj["apiVersion"]} (are the Istio CRDs installed?)') from None
        raise


def apply_all_or_nothing(access: Writer, objects: Sequence[Dict[str, Any]], out: Any) -> List[str]:
    """Apply the objects, or none of them: a failure or Ctrl-C (deferred while a write is on the
    wire) puts back what each object was before."""
    before: List[Optional[Dict[str, Any]]] = []
    for obj in objects:
        try:
            before.append(access.request("GET", object_path(obj)))
        except ApiError as exc:
            if exc.code != 404:
                raise
            before.append(None)
    done: List[int] = []
    lines: List[str] = []
    interrupts = Interrupts()
    with interrupts.deferred():
        try:
            for i, obj in enumerate(objects):
                if interrupts.pending:
                    raise GwdupError("interrupted")
                lines += apply_objects(access, [obj], DryRun.NONE)
                out(lines[-1])
                done.append(i)
        except GwdupError as exc:
            for i in reversed(done):
                path = object_path(objects[i])
                if before[i] is None:
                    access.request("DELETE", path)
                else:
                    prev = clean(before[i])
                    prev["metadata"].pop("resourceVersion", None)
                    access.request("PATCH", path, {"fieldManager": FIELD_MANAGER, "force": "true"}, body=prev,
                                   content_type="application/apply-patch+yaml")
            raise ApplyError(f"applying failed ({exc.render()}); put back {len(done)} object(s): "
                             "the cluster is as before") from None
    return lines


def prune_managed(access: Writer, template: Dict[str, Any], label_selector: str, dry_run: DryRun,
                  keep: Set[Tuple[str, str]], stems: Set[str]) -> List[str]:
    """Delete our objects of the listeners just planned that the plan no longer has (`<stem>`
    or `<stem>-N`), so that a smaller plan leaves nothing stale behind."""
    def stale(obj: Dict[str, Any]) -> bool:
        m = obj["metadata"]
        name = m["name"]
        ours = any(name == s or (name.startswith(s + "-") and name[len(s) + 1:].isdigit()) for s in stems)
        return ours and (m["namespace"], name) not in keep

    return delete_managed(access, template, label_selector, dry_run, keep=lambda o: not stale(o))
