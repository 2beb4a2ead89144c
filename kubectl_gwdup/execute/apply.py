"""Writes: server-side apply and deletes through ClusterAccess, with kubectl's result lines.

Server-side apply uses field manager `kubectl-gwdup` and `force`, so the objects this tool
owns converge to the plan; dry runs go to the server as dryRun=All (validated, not stored).
"""
from __future__ import annotations

import enum
from typing import Any, Dict, List, Optional, Protocol, Sequence

from ..errors import ApiError, GwdupError

FIELD_MANAGER = "kubectl-gwdup"


class DryRun(enum.Enum):
    NONE = "none"
    CLIENT = "client"
    SERVER = "server"


class Writer(Protocol):
    def request(self, method: str, path: str, query: Optional[Dict[str, Any]] = None, body: Any = None,
                content_type: str = "application/json", accept: str = "application/json") -> Dict[str, Any]: ...

    def list(self, path: str, *, label_selector: str = "", field_selector: str = "",
             chunk_size: int = 500, metadata_only: bool = False) -> Any: ...


def object_path(obj: Dict[str, Any], name: bool = True) -> str:
    """The REST path of a namespaced object (or of its collection, name=False)."""
    group_version = obj["apiVersion"]
    base = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
    m = obj["metadata"]
    path = f"{base}/namespaces/{m['namespace']}/{obj['kind'].lower()}s"
    return f"{path}/{m['name']}" if name else path


def _suffix(dry_run: DryRun) -> str:
    return {DryRun.NONE: "", DryRun.CLIENT: " (dry run)", DryRun.SERVER: " (server dry run)"}[dry_run]


def resource(obj: Dict[str, Any]) -> str:
    """kubectl's name for an object in result lines: `<kind>.<group>/<name>`."""
    return f"{obj['kind'].lower()}.{obj['apiVersion'].rpartition('/')[0]}/{obj['metadata']['name']}"


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
                   namespaces: Sequence[str] = ()) -> List[str]:
    """Delete every object of the template's kind that carries our label; kubectl's lines."""
    group_version = template["apiVersion"]
    plural = template["kind"].lower() + "s"
    found = _missing_crd(lambda: list(access.list(f"/apis/{group_version}/{plural}", label_selector=label_selector)),
                         template)
    lines = []
    for obj in sorted(found, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        m = obj["metadata"]
        if namespaces and m["namespace"] not in namespaces:
            continue
        obj = {**obj, "apiVersion": group_version, "kind": template["kind"]}
        if dry_run is not DryRun.CLIENT:
            access.request("DELETE", object_path(obj), body=delete_options(
                dry_run is DryRun.SERVER, uid=m.get("uid")))
        lines.append(f"{resource(obj)} deleted{_suffix(dry_run)}")
    return lines


def delete_options(dry_run: bool, **preconditions: Optional[str]) -> Dict[str, Any]:
    """The DeleteOptions body of a DELETE. kube-apiserver reads every option of a DELETE that
    has a body from that body and ignores the query string (apiserver
    endpoints/handlers/delete.go), so dryRun must be here: `?dryRun=All` beside a body deletes
    for real."""
    body: Dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                            "preconditions": {k: v for k, v in preconditions.items() if v}}
    if dry_run:
        body["dryRun"] = ["All"]
    return body


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
    from .merge import Interrupts, clean

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
            from ..errors import ApplyError

            raise ApplyError(f"applying failed ({exc.render()}); put back {len(done)} object(s): "
                             "the cluster is as before") from None
    return lines
