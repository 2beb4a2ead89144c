"""Files: -f FILE|DIR|- manifests -> RawObjects of plain dicts.

Accepts what `kubectl apply -f` accepts: multi-document YAML or JSON, `kind: List` and
`*List` objects, directories (one level, or all levels with -R). Unknown kinds are ignored.
"""
from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Dict, Iterator, List, Mapping, Sequence, TextIO, Tuple

import yaml

from ..errors import InputError
from ..inventory import RawObjects
from ..istiod.credentials import CA_KEYS, secret_from_manifest
from ..model import GATEWAY_API_GROUP, Input
from ..objects import ShapeError, check_workload_object, labels_of, object_ref

try:  # libyaml parses large manifest sets about ten times faster
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

EXTENSIONS = (".yaml", ".yml", ".json")
_KINDS = {
    ("networking.istio.io", "Gateway"): "gateways",
    ("networking.istio.io", "VirtualService"): "virtual_services",
    ("networking.istio.io", "EnvoyFilter"): "envoy_filters",
    ("", "Pod"): "pods",
    ("apps", "Deployment"): "deployments",
    ("", "Service"): "services",
}

_GATEWAY_API = {"Gateway": "gateways", "ListenerSet": "listener_sets", "HTTPRoute": "http_routes",
                "GRPCRoute": "grpc_routes", "TLSRoute": "tls_routes", "ReferenceGrant": "reference_grants",
                "GatewayClass": "gateway_classes"}
_JSON_START = re.compile(r"\s*[\[{]")  # scans the leading blanks only, not the whole text
_INPUT_OF = {"gateways": Input.GATEWAYS, "virtual_services": Input.VIRTUAL_SERVICES,
             "envoy_filters": Input.ENVOY_FILTERS, "services": Input.SERVICES}


def expand_paths(paths: Sequence[str], recursive: bool) -> List[str]:
    """Files to read, in a stable order; `-` is standard input."""
    out: List[str] = []
    for path in paths:
        if path == "-":
            out.append(path)
        elif os.path.isdir(path):
            found = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(EXTENSIONS))
                if not recursive:
                    break
            out.extend(found)
        elif os.path.exists(path):
            out.append(path)
        else:
            raise InputError(f'the path "{path}" does not exist')
    return out


def _documents(path: str, stream: TextIO) -> Iterator[Any]:
    """The documents of one file. JSON (what `kubectl get -o json` writes: text starting with
    `{` or `[`) goes through the json module, several times faster than any YAML loader; what
    is not JSON after all (a YAML flow mapping) goes through YAML."""
    text = stream.read()
    if _JSON_START.match(text):
        try:
            yield json.loads(text)
            return
        except RecursionError:
            raise InputError(f"{path}: nested too deeply") from None
        except ValueError:
            pass
    try:
        for doc in yaml.load_all(text, Loader=_Loader):
            yield doc
    except RecursionError:  # the pure-Python loader recurses once per level
        raise InputError(f"{path}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: invalid YAML{where}: {problem}") from None


def _flatten(doc: Any, path: str) -> Iterator[Mapping[str, Any]]:
    """The objects of a document: itself, or the items of a `*List`, depth first, without a
    generator per level (a `kubectl get -o json` List holds tens of thousands)."""
    stack = [doc]
    while stack:
        doc = stack.pop()
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InputError(f"{path}: expected a Kubernetes object (a mapping), got {type(doc).__name__}")
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise InputError(f"{path}: {kind}.items: must be a list")
            stack.extend(reversed(items))
            continue
        if not isinstance(kind, str) or not isinstance(doc.get("apiVersion"), str):
            raise InputError(f"{path}: object is missing apiVersion or kind")
        yield doc


def load_files(paths: Sequence[str], recursive: bool = False, default_namespace: str = "default",
               stdin: TextIO = sys.stdin) -> RawObjects:
    """Every object of the files, as kubectl reads them: the same object given twice counts
    once (the later wins, as the later `kubectl apply` would), and reading no object at all is an
    error, as kubectl's "no objects passed" is, so a CI gate cannot pass on nothing."""
    raw = RawObjects(default_namespace=default_namespace, source="files")
    raw.available.update((Input.GATEWAYS, Input.WORKLOADS))
    objects: Dict[Tuple[str, str, str, str], Tuple[Mapping[str, Any], str]] = {}
    for path in expand_paths(paths, recursive):
        name = "<stdin>" if path == "-" else path
        try:
            if path == "-":
                if stdin is None or getattr(stdin, "closed", False):
                    raise InputError("-f -: standard input is closed")
                docs = list(_documents(name, stdin))
            else:
                with open(path, encoding="utf-8") as f:
                    docs = list(_documents(name, f))
        except OSError as exc:
            raise InputError(f"{name}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, UnicodeEncodeError):
            raise InputError(f"{name}: not UTF-8 text") from None
        for doc in docs:
            for obj in _flatten(doc, name):
                objects[_identity(obj, default_namespace)] = (obj, name)
    if not objects:
        read = ", ".join("<stdin>" if p == "-" else p for p in paths)
        hint = "" if recursive or paths == ["-"] else " (-R reads subdirectories too)"
        raise InputError(f"{read}: no objects found{hint}")
    for obj, name in objects.values():
        _add(raw, obj, name)
    return raw


def _identity(obj: Mapping[str, Any], default_namespace: str) -> Tuple[str, str, str, str]:
    m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    ns = m.get("namespace") or default_namespace
    if not isinstance(ns, str) or not isinstance(m.get("name", ""), str):
        raise InputError(f"{obj['kind']}: metadata.name and metadata.namespace must be strings")
    return (obj["apiVersion"].rpartition("/")[0], obj["kind"], ns, m.get("name") or f"<unnamed {id(obj)}>")


def _add(raw: RawObjects, obj: Mapping[str, Any], path: str) -> None:
    group = obj["apiVersion"].rpartition("/")[0]
    kind = obj["kind"]
    if (group, kind) == ("", "Secret"):
        try:
            ref = object_ref(obj, raw.default_namespace)
            pem = secret_from_manifest(obj)
        except ShapeError as exc:
            raise InputError(f"{path}: Secret: {exc}") from None
        raw.available.add(Input.CERTIFICATES)
        keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
        if keys & set(CA_KEYS):
            raw.secret_cas.add((ref.namespace, ref.name))
        if pem is not None:
            if b"-----BEGIN CERTIFICATE-----" not in pem:
                raise InputError(f"{path}: Secret {ref.namespace}/{ref.name}: tls.crt holds no PEM "
                                 "certificate (istiod reads PEM; is it base64-encoded twice?)")
            raw.secrets[(ref.namespace, ref.name)] = pem
        return
    if group == GATEWAY_API_GROUP and kind in _GATEWAY_API:
        getattr(raw.gateway_api, _GATEWAY_API[kind]).append(obj)
        raw.origin[id(obj)] = path
        if kind in ("HTTPRoute", "GRPCRoute", "TLSRoute"):
            raw.gateway_api.routes_read = True
        return
    if (group, kind) == ("", "Namespace"):  # their labels decide Gateway API namespace selectors
        m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        if raw.gateway_api.namespaces is None:
            raw.gateway_api.namespaces = {}
        raw.gateway_api.namespaces[str(m.get("name", ""))] = labels_of(obj)
        return
    bucket = _KINDS.get((group, kind))
    if bucket is None:
        return
    if bucket in ("pods", "deployments", "services"):
        try:
            check_workload_object(obj)
        except ShapeError as exc:
            m = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            raise InputError(f"{path}: {kind} {m.get('namespace') or raw.default_namespace}/"
                             f"{m.get('name', '?')}: {exc}") from None
    getattr(raw, bucket).append(obj)
    raw.origin[id(obj)] = path
    raw.available.add(_INPUT_OF.get(bucket, Input.WORKLOADS))
