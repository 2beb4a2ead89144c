"""kubeconfig: which file, context, cluster, user and namespace, exactly as kubectl decides.

Pure Python on purpose: the kubernetes client merges KUBECONFIG lists differently (the last
file's current-context wins there; kubectl takes the first file that sets one), and it falls
back to in-cluster config when a listed path is missing. Here:
- `--kubeconfig` names one file, which must exist;
- KUBECONFIG is a path list: for each name in clusters/users/contexts, and for
  current-context, the first file that sets it wins; missing files are skipped;
- with neither, ~/.kube/config; in-cluster config only when no kubeconfig was asked for at all;
- relative file paths inside a file resolve against that file's directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Sequence, Tuple

import yaml

from ..errors import ConfigError

SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
_PATH_FIELDS = {"cluster": ("certificate-authority",),
                "user": ("client-certificate", "client-key", "tokenFile")}
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Selection:
    """The effective client settings, after flags override the kubeconfig."""

    context: str
    cluster: str
    user: str
    namespace: str
    server: str
    config: Mapping[str, Any] = field(compare=False)  # single-context kubeconfig for the client
    explicit_namespace: bool = False


def config_paths(explicit: Optional[str], environ: Mapping[str, str]) -> Tuple[List[str], bool]:
    """(files to merge, whether in-cluster config may be used when there are none)."""
    if explicit:
        if os.path.isdir(explicit):
            raise ConfigError(f"error loading config file \"{explicit}\": read {explicit}: is a directory")
        if not os.path.isfile(explicit):
            raise ConfigError(f"stat {explicit}: no such file or directory")
        return [explicit], False
    env = environ.get("KUBECONFIG", "")
    if env:
        paths = list(dict.fromkeys(p for p in env.split(os.pathsep) if p))
        return [p for p in paths if os.path.isfile(p)], False
    home = environ.get("HOME") or os.path.expanduser("~")
    default = os.path.join(home, ".kube", "config")
    return ([default], False) if os.path.isfile(default) else ([], True)


def _resolve_paths(entry: MutableMapping[str, Any], kind: str, base: str) -> None:
    for key in _PATH_FIELDS.get(kind, ()):
        value = entry.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            entry[key] = os.path.join(base, value)
    exec_cfg = entry.get("exec")
    if kind == "user" and isinstance(exec_cfg, dict):
        cmd = exec_cfg.get("command")
        # kubectl resolves an exec command relative to the file only when it names a path
        if isinstance(cmd, str) and os.sep in cmd and not os.path.isabs(cmd):
            exec_cfg["command"] = os.path.join(base, cmd)


def load_merged(paths: Sequence[str]) -> Dict[str, Any]:
    merged: Dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                              "contexts": [], "current-context": ""}
    seen: Dict[str, set] = {s: set() for s, _ in SECTIONS}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
        except OSError as exc:
            raise ConfigError(f'error loading config file "{path}": {exc.strerror or exc}') from None
        except yaml.YAMLError as exc:
            raise ConfigError(f'error loading config file "{path}": {str(exc).splitlines()[0]}') from None
        if not isinstance(doc, dict):
            raise ConfigError(f'error loading config file "{path}": not a kubeconfig mapping')
        base = os.path.dirname(os.path.abspath(path))
        for section, kind in SECTIONS:
            for item in doc.get(section) or []:
                if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                    raise ConfigError(f'error loading config file "{path}": {section} entries need a name')
                if item["name"] in seen[section]:
                    continue
                seen[section].add(item["name"])
                item = {"name": item["name"], kind: dict(item.get(kind) or {})}
                _resolve_paths(item[kind], kind, base)
                merged[section].append(item)
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
    return merged


def _named(merged: Mapping[str, Any], section: str, name: str) -> Optional[Dict[str, Any]]:
    return next((i for i in merged[section] if i["name"] == name), None)


def select(merged: Mapping[str, Any], context: Optional[str] = None, cluster: Optional[str] = None,
           user: Optional[str] = None, namespace: Optional[str] = None) -> Selection:
    ctx_name = context or merged.get("current-context") or ""
    ctx: Dict[str, Any] = {}
    if ctx_name:
        entry = _named(merged, "contexts", ctx_name)
        if entry is None:
            raise ConfigError(f'context "{ctx_name}" does not exist')
        ctx = entry["context"]
    elif not cluster:
        raise ConfigError("current-context is not set (use --context, or "
                          "kubectl config use-context)")
    cluster_name = cluster or ctx.get("cluster") or ""
    cl = _named(merged, "clusters", cluster_name)
    if cl is None or not cl["cluster"].get("server"):
        raise ConfigError(f'no server found for cluster "{cluster_name}"')
    user_name = user or ctx.get("user") or ""
    us = _named(merged, "users", user_name) if user_name else None
    if user and us is None:
        raise ConfigError(f'user "{user}" does not exist')
    ns = namespace or ctx.get("namespace") or "default"
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "gwdup",
        "clusters": [cl], "users": [us] if us else [],
        "contexts": [{"name": "gwdup", "context": {"cluster": cluster_name, "namespace": ns,
                                                   **({"user": user_name} if us else {})}}],
    }
    return Selection(context=ctx_name, cluster=cluster_name, user=user_name, namespace=ns,
                     server=cl["cluster"]["server"], config=config,
                     explicit_namespace=bool(namespace))


def in_cluster_namespace() -> str:
    try:
        with open(os.path.join(SERVICE_ACCOUNT_DIR, "namespace"), encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def in_cluster_possible(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST") and environ.get("KUBERNETES_SERVICE_PORT")
                and os.path.isfile(os.path.join(SERVICE_ACCOUNT_DIR, "token")))
