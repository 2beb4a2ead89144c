"""Field ownership for the emulator, as kube-apiserver's field manager keeps it.

Paths under kubernetes/kubernetes, `staging/src/k8s.io/apiserver/` shortened to `apiserver/`,
and sigs.k8s.io/structured-merge-diff (`smd/`):

- Every write records, per manager, the set of fields it owns in `metadata.managedFields`
  (FieldsV1: `f:<field>`, `k:{"key":"value"}` for an item of an associative list, `.` for the
  item itself) (`apiserver/pkg/endpoints/handlers/fieldmanager/`, `smd/fieldpath/serialize.go`).
- Server-side apply by manager M: the applied configuration is merged into the object
  (associative lists item by item on their keys, maps field by field, atomic lists and scalars
  replaced); a field M set before and leaves out now is removed, unless another manager owns it;
  a field another manager owns with a different value is a 409 Conflict unless `force=true`,
  which takes it over (`smd/merge/update.go` Updater.Apply, `smd/typed/merge.go`).
- An update (PUT, merge patch) gives its manager the fields it changed, and takes them from the
  others; a field it removed is nobody's (`smd/merge/update.go` Updater.Update).
- A manager is the `fieldManager` query parameter, else the User-Agent up to its first `/`
  (`apiserver/pkg/endpoints/handlers/rest.go` managerOrUserAgent).

Which lists are associative comes from each kind's schema. Only the lists tests write through
apply are listed here, with the schema that declares them: the Gateway API CRDs mark
`status.conditions`, `status.listeners` and a listener status's `conditions` as
`x-kubernetes-list-type: map` keyed on `type`, `name` and `type`. Every other list of a custom
resource is atomic, as structural schemas default it (`apiextensions-apiserver/pkg/apiserver/
schema/...` a list without x-kubernetes-list-type is atomic).
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Optional, Set, Tuple

Path = Tuple[Any, ...]  # str for a field, ("k", key-json) for an associative list item

ASSOCIATIVE = {  # path of field names -> the keys of that list's items
    ("status", "conditions"): ("type",),
    ("status", "listeners"): ("name",),
    ("status", "listeners", "conditions"): ("type",),
}
UNTRACKED_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                      "managedFields", "selfLink", "deletionTimestamp")


class ApplyConflict(Exception):
    def __init__(self, conflicts: List[Tuple[str, Path]]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts


def _names(path: Path) -> Tuple[str, ...]:
    return tuple(p for p in path if isinstance(p, str))


def _key_of(item: Dict[str, Any], keys: Tuple[str, ...]) -> Tuple[str, str]:
    return ("k", json.dumps({k: item.get(k) for k in keys}, sort_keys=True, separators=(",", ":")))


def leaves(obj: Any, prefix: Path = ()) -> Dict[Path, Any]:
    """Every owned field of `obj` with its value: scalars, atomic lists, and the key fields of
    associative list items (an item's `.` is implied by its fields)."""
    out: Dict[Path, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if prefix == ("metadata",) and k in UNTRACKED_METADATA:
                continue
            if not prefix and k in ("apiVersion", "kind"):
                continue
            here = prefix + (k,)
            keys = ASSOCIATIVE.get(_names(here))
            if keys is not None and isinstance(v, list):
                for item in v:
                    if isinstance(item, dict):
                        out.update(leaves(item, here + (_key_of(item, keys),)))
            elif isinstance(v, dict) and v:
                out.update(leaves(v, here))
            else:
                out[here] = v
    return out


def _remove(node: Any, path: Path, names: Tuple[str, ...] = (), keys: Tuple[str, ...] = ()) -> None:
    """Remove the field at `path`, then every map or list item the removal left empty. An
    item's key fields go with the item, once nothing else of it is left."""
    part = path[0]
    if len(path) == 1:
        if isinstance(node, dict) and part not in keys:
            node.pop(part, None)
        return
    if isinstance(part, tuple):
        item_keys = ASSOCIATIVE[names]
        item = next((x for x in node if isinstance(x, dict) and _key_of(x, item_keys) == part), None) \
            if isinstance(node, list) else None
        if item is None:
            return
        _remove(item, path[1:], names, item_keys)
        if not set(item) - set(item_keys):  # only its key is left: the item was the removed fields'
            node.remove(item)
        return
    child = node.get(part) if isinstance(node, dict) else None
    if child is None:
        return
    _remove(child, path[1:], names + (part,))
    if child in ({}, []):
        node.pop(part, None)


def merge(target: Any, applied: Any, names: Tuple[str, ...] = ()) -> Any:
    """The applied configuration over the object (smd/typed/merge.go)."""
    if isinstance(target, dict) and isinstance(applied, dict):
        out = dict(target)
        for k, v in applied.items():
            out[k] = merge(target.get(k), v, names + (k,))
        return out
    keys = ASSOCIATIVE.get(names)
    if keys is not None and isinstance(target, list) and isinstance(applied, list):
        out_list = list(target)
        index = {_key_of(x, keys): i for i, x in enumerate(out_list) if isinstance(x, dict)}
        for item in applied:
            if not isinstance(item, dict):
                continue
            k = _key_of(item, keys)
            if k in index:
                out_list[index[k]] = merge(out_list[index[k]], item, names)
            else:
                index[k] = len(out_list)
                out_list.append(item)
        return out_list
    return copy.deepcopy(applied)


class FieldManager:
    """Ownership of one object's fields: manager -> (operation, set of paths)."""

    def __init__(self, managed: Optional[Dict[str, Tuple[str, Set[Path]]]] = None) -> None:
        self.managed: Dict[str, Tuple[str, Set[Path]]] = managed or {}

    def copy(self) -> "FieldManager":
        return FieldManager({m: (op, set(paths)) for m, (op, paths) in self.managed.items()})

    def update(self, manager: str, old: Dict[str, Any], new: Dict[str, Any], subresource: str = "") -> None:
        before, after = leaves(old), leaves(new)
        changed = {p for p, v in after.items() if p not in before or before[p] != v}
        gone = set(before) - set(after)
        for m in list(self.managed):
            op, paths = self.managed[m]
            paths -= changed | gone
        key = f"{manager}\x00Update\x00{subresource}"
        op, mine = self.managed.get(key, ("Update", set()))
        self.managed[key] = (op, mine | changed)
        self._prune()

    def apply(self, manager: str, current: Dict[str, Any], applied: Dict[str, Any], force: bool,
              subresource: str = "") -> Dict[str, Any]:
        """The object after manager's apply; raises ApplyConflict."""
        key = f"{manager}\x00Apply\x00{subresource}"
        want = leaves(applied)
        have = leaves(current)
        conflicts = []
        for p, v in want.items():
            if p in have and have[p] != v:
                for m, (_op, paths) in self.managed.items():
                    if m != key and p in paths:
                        conflicts.append((m.split("\x00")[0], p))
        if conflicts and not force:
            raise ApplyConflict(conflicts)
        out = copy.deepcopy(current)
        _, before = self.managed.get(key, ("Apply", set()))
        others = set().union(*(paths for m, (_op, paths) in self.managed.items() if m != key)) \
            if len(self.managed) > (key in self.managed) else set()
        for p in sorted(before - set(want), key=len, reverse=True):
            if p not in others:
                _remove(out, p)
        out = merge(out, {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")})
        for m in list(self.managed):
            if m != key:
                _op, paths = self.managed[m]
                paths -= {p for p in want if p in have and have[p] != want[p]}
        self.managed[key] = ("Apply", set(want))
        self._prune()
        return out

    def _prune(self) -> None:
        for m in [m for m, (_op, paths) in self.managed.items() if not paths]:
            del self.managed[m]

    def render(self, api_version: str, time: str) -> List[Dict[str, Any]]:
        """metadata.managedFields as the server shows it."""
        out = []
        for key, (op, paths) in sorted(self.managed.items()):
            manager, _, subresource = key.split("\x00")
            entry = {"manager": manager, "operation": op, "apiVersion": api_version, "time": time,
                     "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
            if subresource:
                entry["subresource"] = subresource
            out.append(entry)
        return out


def fields_v1(paths: Set[Path]) -> Dict[str, Any]:
    root: Dict[str, Any] = {}
    for path in paths:
        node = root
        for part in path:
            name = f"k:{part[1]}" if isinstance(part, tuple) else f"f:{part}"
            node = node.setdefault(name, {})
            if isinstance(part, tuple):
                node.setdefault(".", {})
    return root
