"""A merge plan as a directory of manifests (`merge --plan --output-dir DIR`), for a pull request
or for applying by hand. Pure: names and objects; kubectl_gwdup/commands/merge.py writes them.

One file per write, named `NNN-PHASE-KIND-NAMESPACE-NAME.yaml` with NNN the write's place in
the plan, so `kubectl apply -f DIR` (which reads a directory's files in lexical order, one
request per object) makes the plan's writes in the plan's order: every state between two of them
is one the planner checked serves every host as before. A final state alone, applied at once,
would not be: bound before its hosts are served, a VirtualService answers 404 for a while.

Deletions cannot be applied: they are `DIR/delete/NNN-KIND-NAMESPACE-NAME.yaml`, for
`kubectl delete -f DIR/delete` once the rest is applied (`kubectl apply -f DIR` does not read
subdirectories). For a repository of manifests, the last file of each object is its new content,
and the objects under delete/ are removed.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Tuple

# what the API server sets and a manifest must not carry (a stale resourceVersion would make a
# second write of one object conflict with the first)
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
                  "deletionTimestamp", "deletionGracePeriodSeconds")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def layout(doc: Mapping[str, Any], before: Mapping[Tuple[str, str, str], Dict[str, Any]]) -> List[Tuple[str, Dict[str, Any]]]:
    """(relative path, manifest) for every write of the MergePlan `doc`; `before` holds each
    object as read (for the metadata the plan's steps do not carry)."""
    steps = doc.get("steps") or []
    width = max(3, len(str(len(steps))))
    out = []
    for i, step in enumerate(steps, 1):
        key = (step["kind"], step["namespace"], step["name"])
        stem = f"{i:0{width}d}-{step['kind'].lower()}-{step['namespace']}-{step['name']}.yaml"
        if step["action"] == "delete":
            out.append((f"delete/{stem}", {"apiVersion": step["apiVersion"], "kind": step["kind"],
                                           "metadata": {"name": step["name"], "namespace": step["namespace"]}}))
            continue
        obj = copy.deepcopy(before.get(key) or {"metadata": {"name": step["name"], "namespace": step["namespace"]}})
        obj.pop("status", None)
        meta = obj.setdefault("metadata", {})
        for name in _SERVER_FIELDS:
            meta.pop(name, None)
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != _LAST_APPLIED}
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        manifest = {"apiVersion": step["apiVersion"], "kind": step["kind"], "metadata": meta, "spec": step["spec"]}
        out.append((f"{i:0{width}d}-{step['phase']}-{stem[width + 1:]}", manifest))
    return out
