"""A Kubernetes API emulator over HTTPS on loopback, for tests through a real kubeconfig.

It is a fake, and fakes drift from the server; so every behaviour the tests depend on follows
kube-apiserver point by point, and each names the source it follows (paths under
kubernetes/kubernetes, `staging/src/k8s.io/apiserver/` shortened to `apiserver/`):

- Request body size: more than 3 MiB is 413 RequestEntityTooLarge
  (`apiserver/pkg/server/config.go` MaxRequestBodyBytes = 3 * 1024 * 1024;
  `apiserver/pkg/endpoints/handlers/rest.go` limitedReadBody).
- DELETE options: when the request has a body, every option (dryRun, preconditions,
  propagationPolicy, gracePeriodSeconds) is decoded from the DeleteOptions in the body and the
  query string is ignored; only a body-less DELETE reads them from the query
  (`apiserver/pkg/endpoints/handlers/delete.go` DeleteResource).
- dryRun: only `All` is accepted, anything else is 400 (`apiserver/pkg/endpoints/handlers/rest.go`
  dryRunHandling / `apimachinery/pkg/apis/meta/v1/validation` ValidateDryRun); a dry run is
  validated and admitted like the real write, then not stored.
- Create: the server sets uid, creationTimestamp and resourceVersion, whatever the body says
  (`apiserver/pkg/registry/rest/create.go` BeforeCreate, FillObjectMetaSystemFields); a body
  namespace other than the URL's is 400 (`apiserver/pkg/endpoints/handlers/create.go`,
  "the namespace of the provided object does not match the namespace sent on the request");
  a name that is not a DNS-1123 subdomain (a label, for Namespaces) is 422 Invalid
  (`apimachinery/pkg/api/validation/objectmeta.go` ValidateObjectMeta); 409 AlreadyExists.
- Secrets: `stringData` is merged into `data` on write (`pkg/apis/core/v1/conversion.go`
  Convert_v1_Secret_To_core_Secret); a `kubernetes.io/tls` Secret needs both `tls.crt` and
  `tls.key`, else 422 `data[tls.key]: Required value`; data keys must be valid config keys; the
  type cannot change on update (`pkg/apis/core/validation/validation.go` ValidateSecret,
  ValidateSecretUpdate; `pkg/registry/core/secret/strategy.go`).
- Update, merge patch and server-side apply keep uid and creationTimestamp from the stored
  object (`apiserver/pkg/registry/rest/update.go` BeforeUpdate, FillObjectMetaSystemFields is
  create-only); a resourceVersion in the body that is not the stored one is 409 Conflict
  (`apiserver/pkg/registry/generic/registry/store.go` Update via GuaranteedUpdate); a patch or
  apply that changes nothing does not bump resourceVersion (`store.go`, no-op updates).
- Delete preconditions: a uid or resourceVersion that does not match is 409 Conflict with the
  "Precondition failed" message (`apiserver/pkg/registry/generic/registry/store.go` Delete,
  `apiserver/pkg/storage/interfaces.go` Preconditions.Check).
- Server-side apply needs fieldManager (400), and creates a missing object
  (`apiserver/pkg/endpoints/handlers/patch.go` applyPatcher).
- Authentication: a bearer token it does not know is 401 (`apiserver/pkg/authentication`);
  without a token, a client certificate signed by the client CA (when one is given) is the
  user its subject CN names (`apiserver/pkg/authentication/request/x509/x509.go`
  CommonNameUserConversion), as with kubeadm's admin.conf; the certificate is asked for and
  not required, so token clients are unaffected (`--client-ca-file`, tls.VerifyClientCertIfGiven);
  RBAC denials are 403 Forbidden with RBAC's message shape (`apiserver/pkg/endpoints/handlers/
  responsewriters/errors.go` ForbiddenStatusError).
- Admission: a validating-webhook denial (a policy engine) is 403 Forbidden,
  `admission webhook "<name>" denied the request: <why>`, on the real write only; the dry run
  of the same request passes, as a webhook that skips dry runs lets it
  (`apiserver/pkg/admission/plugin/webhook/errors/statuserror.go` ToStatusErr).
- Pod logs (`GET .../pods/<name>/log`, text): `container` must name one of the pod's containers
  (else 400 BadRequest), and may be left out only when there is one; `tailLines` keeps the last
  lines, `limitBytes` cuts the body after that many bytes, `sinceSeconds`/`sinceTime` keep lines
  the kubelet stamped at or after then; a negative tailLines, a limitBytes or sinceSeconds
  below 1, or both since options, are 422 Invalid (`pkg/registry/core/pod/rest/log.go` LogREST,
  `pkg/apis/core/validation/validation.go` ValidatePodLogOptions); RBAC checks the `pods/log`
  subresource, verb get.
- Namespaces: deleting one deletes what is in it (on a real cluster the namespace controller
  does this a little later; tests use fresh namespaces, so they do not see the difference).

Faults and delays can be injected per request (`inject`), the only behaviour with no
counterpart on a real server: tests that use it are skipped there.
"""
from __future__ import annotations

import base64
import copy
import datetime
import itertools
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse

import yaml

from .fieldmanager import ApplyConflict, FieldManager


@dataclass(frozen=True)
class Kind:
    group: str
    versions: Tuple[str, ...]
    resource: str
    kind: str
    namespaced: bool = True
    status: bool = False  # a status subresource: writes to the object leave status, /status the rest


CORE = [Kind("", ("v1",), "namespaces", "Namespace", False), Kind("", ("v1",), "pods", "Pod"),
        Kind("", ("v1",), "services", "Service"), Kind("", ("v1",), "secrets", "Secret"),
        Kind("apps", ("v1",), "deployments", "Deployment"), Kind("", ("v1",), "serviceaccounts", "ServiceAccount"),
        Kind("rbac.authorization.k8s.io", ("v1",), "clusterroles", "ClusterRole", False),
        Kind("rbac.authorization.k8s.io", ("v1",), "clusterrolebindings", "ClusterRoleBinding", False),
        Kind("events.k8s.io", ("v1",), "events", "Event")]
ISTIO_ALL = ("v1", "v1beta1", "v1alpha3")


def istio_kinds(versions: Tuple[str, ...] = ISTIO_ALL) -> List[Kind]:
    return [Kind("networking.istio.io", versions, r, k, status=True) for r, k in
            (("gateways", "Gateway"), ("virtualservices", "VirtualService"), ("envoyfilters", "EnvoyFilter"))]


GATEWAY_API = "gateway.networking.k8s.io"


def gateway_api_kinds(listener_sets: bool = True) -> List[Kind]:
    """The Gateway API kinds at the versions of a v1.4 install (GRPCRoute is v1; ReferenceGrant and TLSRoute are
    still beta and alpha there); `listener_sets=False` is an older install without them."""
    out = [Kind(GATEWAY_API, ("v1", "v1beta1"), "gateways", "Gateway", status=True),
           Kind(GATEWAY_API, ("v1", "v1beta1"), "httproutes", "HTTPRoute", status=True),
           Kind(GATEWAY_API, ("v1",), "grpcroutes", "GRPCRoute", status=True),
           Kind(GATEWAY_API, ("v1beta1",), "referencegrants", "ReferenceGrant"),
           Kind(GATEWAY_API, ("v1alpha2",), "tlsroutes", "TLSRoute", status=True),
           Kind(GATEWAY_API, ("v1", "v1beta1"), "gatewayclasses", "GatewayClass", False, status=True)]
    if listener_sets:
        out.append(Kind(GATEWAY_API, ("v1",), "listenersets", "ListenerSet", status=True))
    return out


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    times: int
    reason: str = ""
    delay: float = 0.0
    writes_only: bool = False  # leave dry runs alone, fail the real write
    skip: int = 0  # matching requests let through untouched first
    action: Optional[Callable[[], None]] = None  # run when it fires (a test kills its client here)


MAX_BODY = 3 * 1024 * 1024
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], OSError):
            return  # a client gone mid-answer (a watch it stopped reading): what a server shrugs at
        super().handle_error(request, client_address)


@dataclass
class AdmissionDenial:
    """A validating webhook that denies matching real writes (dry runs pass)."""

    method: str
    path: re.Pattern
    webhook: str
    why: str
    times: int
    skip: int = 0  # matching real writes let through first


def status(code: int, reason: str, message: str, details: Optional[dict] = None) -> Dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details or {}, "code": code}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.body = status(code, reason, message)
        self.code = code


def _parse_selector(text: str) -> List[Tuple[str, str, Tuple[str, ...]]]:
    terms = []
    for part in re.split(r",(?![^()]*\))", text):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^(\S+?)\s+(in|notin)\s+\((.*)\)$", part)
        if m:
            terms.append((m.group(2), m.group(1), tuple(v.strip() for v in m.group(3).split(","))))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            terms.append(("notin", k.strip(), (v.strip(),)))
        elif "=" in part:
            k, v = part.replace("==", "=").split("=", 1)
            terms.append(("in", k.strip(), (v.strip(),)))
        elif part.startswith("!"):
            terms.append(("!exists", part[1:].strip(), ()))
        else:
            terms.append(("exists", part, ()))
    return terms


def _labels_match(terms, labels: Dict[str, str]) -> bool:
    for op, k, vals in terms:
        if op == "in" and labels.get(k) not in vals:
            return False
        if op == "notin" and k in labels and labels[k] in vals:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!exists" and k in labels:
            return False
    return True


def _field_terms(text: str) -> List[Tuple[str, str, bool]]:
    """A field selector's terms, (field, value, negated)."""
    out = []
    for part in filter(None, text.split(",")):
        neg = "!=" in part
        k, v = part.split("!=" if neg else "=", 1)
        out.append((k.lstrip("="), v.lstrip("="), neg))
    return out


def _field(obj: Dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


class Emulator:
    def __init__(self, tls_cert: str, tls_key: str, istio_versions: Optional[Tuple[str, ...]] = ISTIO_ALL,
                 gateway_api: Optional[List[Kind]] = None, client_ca: Optional[str] = None) -> None:
        self.kinds: Dict[Tuple[str, str], Kind] = {}
        self.pod_logs: Dict[Tuple[str, str], Dict[str, List[Tuple[datetime.datetime, str]]]] = {}
        for k in CORE + (istio_kinds(istio_versions) if istio_versions else []) + list(gateway_api or []):
            self.kinds[(k.group, k.resource)] = k
        self.store: Dict[Tuple[str, str], Dict[Tuple[str, str], Dict[str, Any]]] = {
            key: {} for key in self.kinds}
        self.rv = itertools.count(1000)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # a watch waits on it for the next event
        # per kind: (resourceVersion, type, object) of every write, as etcd's history and the
        # watch cache keep them; events at or below `compacted` are gone (410 Expired)
        self.history: Dict[Tuple[str, str], deque] = {key: deque() for key in self.kinds}
        self.compacted: Dict[Tuple[str, str], int] = {key: 0 for key in self.kinds}
        self.history_limit = 200_000
        self.latest = 0  # the newest write's resourceVersion, of any kind
        self.fields: Dict[Tuple[str, str], Dict[Tuple[str, str], FieldManager]] = {key: {} for key in self.kinds}
        self.bookmark_interval = 1.0  # seconds between BOOKMARK events on a watch that asked for them
        self.watches: List[Any] = []  # open watch connections, for break_watches()
        self.roles: Dict[str, List[Dict[str, Any]]] = {}  # user -> RBAC rules: all that user may do
        self.deny_log: List[Tuple[str, str, str, str]] = []  # what `roles` refused: (user, verb, group, resource)
        self.allow_log: set = set()  # what `roles` allowed
        self.tokens: Dict[str, str] = {"admin-token": "admin"}
        self.deny: List[Tuple[str, str, str, str]] = []  # (user, verb, group, resource)
        self.faults: List[Fault] = []
        self.admission: List[AdmissionDenial] = []
        self.log: List[Tuple[str, str, Dict[str, List[str]]]] = []
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls_cert, tls_key)
        if client_ca:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(client_ca)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- control ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "Emulator":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, method: str, path: str, status_code: int, times: int = 1, reason: str = "",
               delay: float = 0.0, writes_only: bool = False, skip: int = 0,
               action: Optional[Callable[[], None]] = None) -> None:
        """Fail (status_code), delay, or run `action` on `times` matching requests after
        letting `skip` through; status_code 0 lets the request proceed afterwards."""
        self.faults.append(Fault(method, re.compile(path), status_code, times, reason, delay, writes_only,
                                 skip, action))

    def deny_admission(self, method: str, path: str, times: int = 1, skip: int = 0,
                       webhook: str = "validation.policy.example", why: str = "denied by policy") -> None:
        """A policy engine's validating webhook denies `times` real writes that match, after
        letting `skip` of them through."""
        self.admission.append(AdmissionDenial(method, re.compile(path), webhook, why, times, skip))

    def break_watches(self) -> int:
        """Close every open watch connection from the server's side, as an API server restarting
        or a load balancer's idle cut does; returns how many were open."""
        with self.lock:
            conns, self.watches = list(self.watches), []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns)

    def compact(self) -> None:
        """Forget the history so far, as etcd's compaction does: a watch from an older
        resourceVersion is answered 410 Expired, and the client must list again."""
        with self.lock:
            for key, events in self.history.items():
                self.compacted[key] = max(self.compacted[key], next(self.rv))
                events.clear()

    def bind_role(self, user: str, rules: List[Dict[str, Any]]) -> None:
        """RBAC for `user`: exactly what `rules` (a ClusterRole's) allow, everything else 403."""
        self.roles[user] = rules

    def snapshot(self) -> Dict[Tuple[str, str], Dict[Tuple[str, str], Dict[str, Any]]]:
        """The whole store, deep-copied: what a dry-run test compares before and after."""
        with self.lock:
            return copy.deepcopy(self.store)

    def requests(self, method: str = "", path_re: str = "") -> List[Tuple[str, str, Dict[str, List[str]]]]:
        return [r for r in self.log if (not method or r[0] == method) and re.search(path_re, r[1])]

    # -- storage -----------------------------------------------------------------------------
    def _kind(self, group: str, version: str, resource: str) -> Kind:
        k = self.kinds.get((group, resource))
        if k is None or version not in k.versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return k

    def put_object(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        """Test setup without HTTP: store an object as a create would."""
        group, _, version = obj["apiVersion"].rpartition("/")
        kind = next(k for k in self.kinds.values() if k.group == group and k.kind == obj["kind"])
        ns = obj["metadata"].get("namespace", "default") if kind.namespaced else ""
        return self._create(kind, ns, copy.deepcopy(obj), dry_run=False, manager="test-setup")

    def _stamp(self, obj: Dict[str, Any], kind: Kind, ns: str) -> None:
        m = obj.setdefault("metadata", {})
        if kind.namespaced:
            m["namespace"] = ns
        m.setdefault("uid", str(uuid.uuid4()))
        if "creationTimestamp" not in m:  # set on create only; updates carry the stored one
            m["creationTimestamp"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        m["resourceVersion"] = str(next(self.rv))

    def _invalid(self, kind: Kind, name: str, causes: List[str]) -> ApiError:
        what = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
        return ApiError(422, "Invalid", f'{what} "{name}" is invalid: {", ".join(causes)}')

    def _validate(self, kind: Kind, obj: Dict[str, Any], old: Optional[Dict[str, Any]] = None) -> None:
        """ValidateObjectMeta's name rule, and ValidateSecret / ValidateSecretUpdate."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        pattern = _LABEL if kind.resource == "namespaces" else _SUBDOMAIN
        if len(name) > (63 if kind.resource == "namespaces" else 253) or not pattern.match(name):
            what = "RFC 1123 label" if kind.resource == "namespaces" else "RFC 1123 subdomain"
            raise self._invalid(kind, name, [f'metadata.name: Invalid value: "{name}": a lowercase {what} '
                                             "must consist of lower case alphanumeric characters, '-' or '.'"])
        if kind.resource != "secrets":
            return
        data = obj.get("data") or {}
        for k, v in (obj.pop("stringData", None) or {}).items():  # stringData wins, stored as data
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data
        obj.setdefault("type", "Opaque")
        causes = [f'data[{k}]: Invalid value: "{k}": a valid config key must consist of alphanumeric '
                  "characters, '-', '_' or '.'" for k in data if not _CONFIG_KEY.match(k)]
        if obj["type"] == "kubernetes.io/tls":
            causes += [f"data[{k}]: Required value" for k in ("tls.crt", "tls.key") if k not in data]
        if old is not None and old.get("type") != obj["type"]:
            causes.append(f'type: Invalid value: "{obj["type"]}": field is immutable')
        if causes:
            raise self._invalid(kind, name, causes)

    def _record(self, kind: Kind, event: str, obj: Dict[str, Any]) -> None:
        """A write, for watches (etcd's history); callers hold the lock."""
        key = (kind.group, kind.resource)
        events = self.history[key]
        events.append((int(obj["metadata"]["resourceVersion"]), event, copy.deepcopy(obj)))
        self.latest = max(self.latest, int(obj["metadata"]["resourceVersion"]))
        while len(events) > self.history_limit:
            self.compacted[key] = events.popleft()[0]
        self.changed.notify_all()

    def _own(self, kind: Kind, ns: str, name: str, obj: Dict[str, Any], fm: FieldManager) -> None:
        """Keep the field ownership, and show it in metadata.managedFields."""
        if fm.managed:
            self.fields[(kind.group, kind.resource)][(ns, name)] = fm
            when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            api = f"{kind.group}/{kind.versions[0]}" if kind.group else kind.versions[0]
            obj["metadata"]["managedFields"] = fm.render(api, when)

    @staticmethod
    def _spec_changed(old: Dict[str, Any], new: Dict[str, Any]) -> bool:
        """metadata.generation moves when anything but metadata and status changes
        (`apiextensions-apiserver/pkg/registry/customresource/strategy.go` PrepareForUpdate)."""
        def rest(o: Dict[str, Any]) -> Dict[str, Any]:
            return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}
        return rest(old) != rest(new)

    def _create(self, kind: Kind, ns: str, obj: Dict[str, Any], dry_run: bool,
                manager: str = "unknown") -> Dict[str, Any]:
        with self.lock:
            name = (obj.get("metadata") or {}).get("name")
            if not name:
                raise ApiError(422, "Invalid", f"{kind.kind} is invalid: metadata.name: Required value")
            body_ns = (obj.get("metadata") or {}).get("namespace")
            if kind.namespaced and body_ns and body_ns != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                               "the namespace sent on the request")
            self._validate(kind, obj)
            if kind.namespaced and (kind.group, kind.resource) != ("", "namespaces") and \
                    ("", ns) not in self.store[("", "namespaces")]:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found')
            key = (ns, name)
            bucket = self.store[(kind.group, kind.resource)]
            if key in bucket:
                raise ApiError(409, "AlreadyExists", f'{kind.resource}.{kind.group} "{name}" already exists'
                               if kind.group else f'{kind.resource} "{name}" already exists')
            m = obj["metadata"]
            for server_set in ("uid", "creationTimestamp", "resourceVersion", "managedFields"):
                m.pop(server_set, None)  # FillObjectMetaSystemFields
            if kind.status:  # customresource/strategy.go PrepareForCreate: status is the controller's
                obj.pop("status", None)
            m["generation"] = 1
            if kind.group == "events.k8s.io":
                self._validate_event(obj)
            self._stamp(obj, kind, ns)
            if not dry_run:
                fm = FieldManager()
                fm.update(manager, {}, obj)
                self._own(kind, ns, name, obj, fm)
                bucket[key] = obj
                self._record(kind, "ADDED", obj)
            return copy.deepcopy(obj)

    def _validate_event(self, obj: Dict[str, Any]) -> None:
        """events.k8s.io/v1 on create (`pkg/apis/core/validation/events.go` ValidateEventCreate):
        eventTime, reportingController, reportingInstance, action and reason are required, a
        note is at most 1 kB, a type Normal or Warning."""
        causes = [f"{f}: Required value" for f in ("eventTime", "reportingController", "reportingInstance",
                                                    "action", "reason") if not obj.get(f)]
        if len(str(obj.get("note") or "").encode()) > 1024:
            causes.append("note: Too long: may not be more than 1024 bytes")
        if obj.get("type") not in ("Normal", "Warning"):
            causes.append(f'type: Unsupported value: "{obj.get("type")}": supported values: "Normal", "Warning"')
        for f in ("action", "reason"):
            if len(str(obj.get(f) or "")) > 128:
                causes.append(f"{f}: Too long: may not be more than 128 bytes")
        if causes:
            raise ApiError(422, "Invalid", f'Event.events.k8s.io "{obj["metadata"]["name"]}" is invalid: '
                           + ", ".join(causes))

    # -- HTTP --------------------------------------------------------------------------------
    def _handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # one write per response: no Nagle/delayed-ACK stall on keep-alive

            def setup(self) -> None:
                super().setup()
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    # the API server reads up to the limit, and Go's server drains a little more
                    # before answering; reading it all keeps the answer readable for the client
                    remaining = length
                    while remaining > 0:
                        remaining -= len(self.rfile.read(min(remaining, 1 << 20)) or b"x" * remaining)
                    self.close_connection = True
                    self._reply(413, status(413, "RequestEntityTooLarge",
                                            f"Request entity too large: limit is {MAX_BODY}"))
                    return
                body = self.rfile.read(length) if length else b""
                emu.log.append((method, url.path, query))
                try:
                    user = emu._authenticate(self.headers.get("Authorization", ""), self.connection)
                    dry = emu._is_dry_run(method, query, body)
                    for fault in emu.faults:
                        if fault.writes_only and dry:
                            continue
                        if fault.times > 0 and fault.method == method and fault.path.search(url.path):
                            if fault.skip > 0:
                                fault.skip -= 1
                                continue
                            fault.times -= 1
                            if fault.action is not None:
                                fault.action()
                            if fault.delay:
                                time.sleep(fault.delay)
                            if fault.status:
                                raise ApiError(fault.status, fault.reason or {409: "Conflict", 403: "Forbidden"}.get(fault.status, "InternalError"),
                                               f"injected failure for {method} {url.path}")
                    if method != "GET" and not dry:
                        emu._admit(method, url.path)
                    if method == "GET" and (query.get("watch") or [""])[-1] in ("1", "true"):
                        emu._watch(self, url.path, {k: v[-1] for k, v in query.items()}, user)
                        return
                    m = re.match(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$", url.path)
                    if m and method == "GET":
                        text = emu._pod_log(m.group(1), m.group(2), {k: v[-1] for k, v in query.items()}, user)
                        self.send_response(200)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", str(len(text)))
                        self.end_headers()
                        self.wfile.write(text)
                        return
                    code, out = emu._route(method, url.path, query, body, self.headers, user)
                    self._reply(code, out)
                except ApiError as exc:
                    self._reply(exc.code, exc.body)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler

    @staticmethod
    def _delete_options(query: Dict[str, List[str]], body: bytes) -> Dict[str, Any]:
        """delete.go: a body is the whole DeleteOptions; only without one is the query read."""
        if body:
            try:
                opts = json.loads(body)
            except ValueError:
                raise ApiError(400, "BadRequest", "the body of the request could not be decoded as DeleteOptions")
            return opts if isinstance(opts, dict) else {}
        return {"dryRun": query.get("dryRun") or []}

    def _is_dry_run(self, method: str, query: Dict[str, List[str]], body: bytes) -> bool:
        values = self._delete_options(query, body).get("dryRun") if method == "DELETE" else query.get("dryRun")
        values = values or []
        if any(v != "All" for v in values):
            raise ApiError(400, "BadRequest", f"Invalid dry run value: {values}")
        return bool(values)

    def _admit(self, method: str, path: str) -> None:
        with self.lock:
            for d in self.admission:
                if d.times > 0 and d.method == method and d.path.search(path):
                    if d.skip > 0:
                        d.skip -= 1
                        continue
                    d.times -= 1
                    raise ApiError(403, "Forbidden", f'admission webhook "{d.webhook}" denied the request: {d.why}')

    def _authenticate(self, header: str, connection: Any = None) -> str:
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""  # the scheme is case-insensitive
        user = self.tokens.get(token)
        peer = connection.getpeercert() if token == "" and hasattr(connection, "getpeercert") else None
        if user is None and peer:
            user = next((v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"), None)
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    def set_pod_log(self, ns: str, name: str, lines: List[str], container: str = "istio-proxy",
                    times: Optional[List[datetime.datetime]] = None) -> None:
        """What a pod's container wrote, each line with the time the kubelet stamped it."""
        now = datetime.datetime.now(datetime.timezone.utc)
        stamps = times or [now] * len(lines)
        with self.lock:
            self.pod_logs.setdefault((ns, name), {})[container] = list(zip(stamps, lines))

    def _pod_log(self, ns: str, name: str, q: Dict[str, str], user: str) -> bytes:
        pods = self.kinds[("", "pods")]
        for du, dv, dg, dr in self.deny:
            if du in (user, "*") and dv in ("get", "*") and dg == "" and dr == "pods/log":
                raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: User "{user}" cannot get resource '
                                                 f'"pods/log" in API group "" in the namespace "{ns}"')
        pod = self._get(pods, ns, name)
        causes = []
        if "tailLines" in q and int(q["tailLines"]) < 0:
            causes.append(f'tailLines: Invalid value: {q["tailLines"]}: must be greater than or equal to 0')
        if "limitBytes" in q and int(q["limitBytes"]) < 1:
            causes.append(f'limitBytes: Invalid value: {q["limitBytes"]}: must be greater than 0')
        if "sinceSeconds" in q and int(q["sinceSeconds"]) < 1:
            causes.append(f'sinceSeconds: Invalid value: {q["sinceSeconds"]}: must be greater than 0')
        if "sinceSeconds" in q and "sinceTime" in q:
            causes.append("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
        if causes:
            raise ApiError(422, "Invalid", "PodLogOptions is invalid: " + "; ".join(causes))
        logs = self.pod_logs.get((ns, name), {})
        containers = [c.get("name") for c in ((pod.get("spec") or {}).get("containers") or [])] or list(logs) or ["main"]
        container = q.get("container") or ""
        if not container:
            if len(containers) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one "
                                                  f"of: [{' '.join(containers)}]")
            container = containers[0]
        elif container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        lines = logs.get(container, [])
        since = None
        if "sinceSeconds" in q:
            since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=int(q["sinceSeconds"]))
        elif "sinceTime" in q:
            since = datetime.datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00"))
        if since is not None:
            lines = [(t, line) for t, line in lines if t >= since]
        if "tailLines" in q:
            lines = lines[len(lines) - int(q["tailLines"]):] if int(q["tailLines"]) else []
        data = "".join(line if line.endswith("\n") else line + "\n" for _, line in lines).encode()
        if "limitBytes" in q:
            data = data[:int(q["limitBytes"])]
        return data

    def _authorize(self, user: str, verb: str, kind: Kind, ns: str, name: str, sub: str = "") -> None:
        resource = f"{kind.resource}/{sub}" if sub else kind.resource
        rules = self.roles.get(user)
        if rules is not None and not any(
                ({"*", kind.group} & set(r.get("apiGroups") or [])) and ({"*", resource} & set(r.get("resources") or []))
                and ({"*", verb} & set(r.get("verbs") or [])) for r in rules):
            self.deny_log.append((user, verb, kind.group, resource))
            what = f'{resource}.{kind.group}' if kind.group else resource
            subject = f'{what} "{name}"' if name else what
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            raise ApiError(403, "Forbidden", f'{subject} is forbidden: User "{user}" cannot {verb} resource '
                           f'"{resource}" in API group "{kind.group}" {scope}')
        if rules is not None:
            self.allow_log.add((user, verb, kind.group, resource))
        for du, dv, dg, dr in self.deny:
            if du in (user, "*") and dv in (verb, "*") and dg == kind.group and dr == resource:
                what = f'{kind.resource}.{kind.group}' if kind.group else kind.resource
                subject = f'{what} "{name}"' if name else what
                scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
                raise ApiError(403, "Forbidden",
                               f'{subject} is forbidden: User "{user}" cannot {verb} resource '
                               f'"{kind.resource}" in API group "{kind.group}" {scope}')

    def _discovery(self, path: str) -> Optional[Dict[str, Any]]:
        if path == "/version":
            return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-gwdup-emulator"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"]}
        groups: Dict[str, List[str]] = {}
        for k in self.kinds.values():  # a group serves the union of its kinds' versions
            if k.group:
                have = groups.setdefault(k.group, [])
                have += [v for v in k.versions if v not in have]
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                for g, vs in groups.items()]}
        m = re.match(r"^/(?:api/(v1)|apis/([^/]+)/([^/]+))$", path)
        if m:
            group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
            kinds = [k for k in self.kinds.values() if k.group == group and version in k.versions]
            if not kinds:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            verbs = ["create", "delete", "get", "list", "patch", "update"]
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version,
                    "resources": [{"name": k.resource, "singularName": k.kind.lower(), "namespaced": k.namespaced,
                                   "kind": k.kind, "verbs": verbs} for k in kinds]}
        m = re.match(r"^/apis/([^/]+)$", path)
        if m:
            g = m.group(1)
            if g not in groups:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            vs = groups[g]
            return {"kind": "APIGroup", "apiVersion": "v1", "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
        return None

    def _route(self, method: str, path: str, query: Dict[str, List[str]], body: bytes, headers: Any,
               user: str) -> Tuple[int, Dict[str, Any]]:
        if method == "GET":
            found = self._discovery(path)
            if found is not None:
                return 200, found
        m = re.match(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))"
                     r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?$", path)
        if not m:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version = (m.group("g"), m.group("v")) if m.group("g") else ("", m.group("cv"))
        res, ns, name, sub = m.group("res"), m.group("ns") or "", m.group("name") or "", m.group("sub") or ""
        kind = self._kind(group, version, res)
        if sub and not kind.status:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not kind.namespaced:
            ns = ""
        q = {k: v[-1] for k, v in query.items()}
        dry_run = self._is_dry_run(method, query, body)
        # handlers/rest.go managerOrUserAgent: the fieldManager, else the User-Agent's first part
        manager = q.get("fieldManager") or (headers.get("User-Agent") or "unknown").split("/")[0]
        if sub:
            verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method)
            if verb is None:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")
            self._authorize(user, verb, kind, ns, name, sub)
            if method == "GET":
                return 200, self._versioned(self._get(kind, ns, name), kind, version)
            if method == "PUT":
                return 200, self._versioned(self._update(kind, ns, name, json.loads(body), dry_run, manager, sub),
                                            kind, version)
            return self._patch(kind, version, ns, name, body, headers.get("Content-Type", ""), q, dry_run, manager, sub)
        if method == "GET" and not name:
            self._authorize(user, "list", kind, ns, "")
            return 200, self._list(kind, version, ns, q, headers.get("Accept", ""))
        if method == "GET":
            self._authorize(user, "get", kind, ns, name)
            return 200, self._versioned(self._get(kind, ns, name), kind, version)
        if method == "POST" and not name:
            self._authorize(user, "create", kind, ns, "")
            obj = json.loads(body or b"{}")
            return 201, self._versioned(self._create(kind, ns, obj, dry_run, manager), kind, version)
        if method == "PUT" and name:
            self._authorize(user, "update", kind, ns, name)
            return 200, self._versioned(self._update(kind, ns, name, json.loads(body), dry_run, manager), kind, version)
        if method == "PATCH" and name:
            self._authorize(user, "patch", kind, ns, name)
            return self._patch(kind, version, ns, name, body, headers.get("Content-Type", ""), q, dry_run, manager)
        if method == "DELETE" and name:
            self._authorize(user, "delete", kind, ns, name)
            return 200, self._delete(kind, ns, name, self._delete_options(query, body), dry_run)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {path}")

    def _watch(self, handler: BaseHTTPRequestHandler, path: str, q: Dict[str, str], user: str) -> None:
        """A watch, streamed as the API server streams it (`apiserver/pkg/endpoints/handlers/
        watch.go` serveWatch): chunked JSON, one {"type", "object"} per event.

        - resourceVersion "" or "0": ADDED for every object first, then what follows; a
          resourceVersion: every event after it, or, when the history before it is compacted,
          one ERROR event with a 410 Expired Status and the end of the stream
          (`apiserver/pkg/storage/cacher/watch_cache.go` getAllEventsSinceLocked,
          "too old resource version").
        - allowWatchBookmarks=true: BOOKMARK events carry only a resourceVersion, the cache's
          newest (`apiserver/pkg/storage/cacher/cacher.go` bookmarks, moved on by etcd's
          progress notifications); every `bookmark_interval` s here.
        - timeoutSeconds ends the stream; label and field selectors turn an object that
          leaves the selection into DELETED and one that enters it into ADDED
          (`apiserver/pkg/storage/cacher/cache_watcher.go` convertToWatchEvent).
        - The metadata-only Accept (as=PartialObjectMetadata) sends PartialObjectMetadata."""
        m = re.match(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))"
                     r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)$", path)
        if not m:
            raise ApiError(405, "MethodNotAllowed", f"watch is not supported on {path}")
        group, version = (m.group("g"), m.group("v")) if m.group("g") else ("", m.group("cv"))
        kind = self._kind(group, version, m.group("res"))
        ns = m.group("ns") or "" if kind.namespaced else ""
        self._authorize(user, "watch", kind, ns, "")
        key = (kind.group, kind.resource)
        terms = _parse_selector(q.get("labelSelector", ""))
        fields = _field_terms(q.get("fieldSelector", ""))
        meta_only = "as=PartialObjectMetadata" in (handler.headers.get("Accept") or "")

        def selected(o: Dict[str, Any]) -> bool:
            return ((not ns or o["metadata"].get("namespace") == ns)
                    and _labels_match(terms, o["metadata"].get("labels") or {})
                    and all((_field(o, k) == v) != neg for k, v, neg in fields))

        def shown(o: Dict[str, Any]) -> Dict[str, Any]:
            if meta_only:
                return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": copy.deepcopy(o["metadata"])}
            return self._versioned(o, kind, version)

        rv = q.get("resourceVersion", "")
        timeout = float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        pending: List[Tuple[str, Dict[str, Any]]] = []
        with self.lock:
            current = {k: o for k, o in self.store[key].items() if selected(o)}
            if rv in ("", "0"):
                last = next(self.rv)
                pending = [("ADDED", shown(o)) for _, o in sorted(current.items())]
            else:
                try:
                    last = int(rv)
                except ValueError:
                    raise ApiError(400, "BadRequest", f"invalid resource version: {rv}")
                if last < self.compacted[key]:
                    gone = status(410, "Expired", f"too old resource version: {last} ({self.compacted[key]})")
                    pending = [("ERROR", gone)]
            visible = set(current)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        conn = handler.connection
        with self.lock:
            self.watches.append(conn)

        def send(events: List[Tuple[str, Dict[str, Any]]]) -> None:
            for event, obj in events:
                data = json.dumps({"type": event, "object": obj}).encode() + b"\n"
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.flush()

        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + self.bookmark_interval
        try:
            send(pending)
            if pending and pending[0][0] == "ERROR":
                deadline = 0.0
            while time.monotonic() < deadline:
                out: List[Tuple[str, Dict[str, Any]]] = []
                with self.lock:
                    history = self.history[key]
                    fresh = []
                    for item in reversed(history):
                        if item[0] <= last:
                            break
                        fresh.append(item)
                    if not fresh:
                        wait = min(deadline, next_bookmark if bookmarks else deadline) - time.monotonic()
                        self.changed.wait(max(0.0, min(wait, 1.0)))
                    for when, event, obj in reversed(fresh):
                        last = when
                        k = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                        inside = selected(obj)
                        if event == "DELETED" or not inside:
                            if k in visible:
                                visible.discard(k)
                                out.append(("DELETED", shown(obj)))
                        else:
                            out.append(("MODIFIED" if k in visible and event != "ADDED" else "ADDED", shown(obj)))
                            visible.add(k)
                    if bookmarks and time.monotonic() >= next_bookmark:
                        # every kind's cache moves on with etcd's progress notifications, so a
                        # bookmark carries the newest version even when this kind had no write
                        last = max(last, self.latest)
                        out.append(("BOOKMARK", {"kind": kind.kind, "apiVersion": f"{kind.group}/{version}"
                                                 if kind.group else version,
                                                 "metadata": {"resourceVersion": str(last)}}))
                        next_bookmark = time.monotonic() + self.bookmark_interval
                if out:
                    send(out)
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True
        finally:
            with self.lock:
                if conn in self.watches:
                    self.watches.remove(conn)

    def _versioned(self, obj: Dict[str, Any], kind: Kind, version: str) -> Dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = f"{kind.group}/{version}" if kind.group else version
        obj["kind"] = kind.kind
        return obj

    def _get(self, kind: Kind, ns: str, name: str) -> Dict[str, Any]:
        with self.lock:
            obj = self.store[(kind.group, kind.resource)].get((ns, name))
        if obj is None:
            what = f"{kind.resource}.{kind.group}" if kind.group else kind.resource
            raise ApiError(404, "NotFound", f'{what} "{name}" not found')
        return obj

    def _list(self, kind: Kind, version: str, ns: str, q: Dict[str, str], accept: str) -> Dict[str, Any]:
        terms = _parse_selector(q.get("labelSelector", ""))
        fields = _field_terms(q.get("fieldSelector", ""))
        with self.lock:
            rv = str(next(self.rv))
            items = [o for (ons, _), o in sorted(self.store[(kind.group, kind.resource)].items())
                     if (not ns or ons == ns)
                     and _labels_match(terms, (o.get("metadata") or {}).get("labels") or {})
                     and all((_field(o, k) == v) != neg for k, v, neg in fields)]
        start = 0
        if q.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(q["continue"]))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid")
        limit = int(q.get("limit") or 0)
        page = items[start:start + limit] if limit else items[start:]
        meta: Dict[str, Any] = {"resourceVersion": rv}
        if limit and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": start + limit, "rv": rv}).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        if "as=PartialObjectMetadataList" in accept:
            return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                    "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": copy.deepcopy(o["metadata"])} for o in page]}
        api_version = f"{kind.group}/{version}" if kind.group else version
        return {"kind": f"{kind.kind}List", "apiVersion": api_version, "metadata": meta,
                "items": [self._versioned(o, kind, version) for o in page]}

    def _update(self, kind: Kind, ns: str, name: str, obj: Dict[str, Any], dry_run: bool,
                manager: str = "unknown", sub: str = "", apply_fm: Optional[FieldManager] = None) -> Dict[str, Any]:
        """An update of the object, or of its status (`sub`). `apply_fm`: the ownership a
        server-side apply already worked out."""
        with self.lock:
            cur = self._get(kind, ns, name)
            want = (obj.get("metadata") or {}).get("resourceVersion")
            if want and want != cur["metadata"]["resourceVersion"]:
                raise self._conflict(kind, name)
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {})
            if (obj["metadata"].get("name") or name) != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            obj["metadata"]["name"] = name
            if kind.status and sub == "status":  # status strategy: only status comes from the body
                obj = {**copy.deepcopy(cur), "status": obj.get("status")}
                if obj["status"] is None:
                    obj.pop("status")
            elif kind.status:  # the object's strategy: status stays as it was
                obj.pop("status", None)
                if "status" in cur:
                    obj["status"] = copy.deepcopy(cur["status"])
            self._validate(kind, obj, cur)
            for keep in ("uid", "creationTimestamp"):  # BeforeUpdate: never taken from the body
                obj["metadata"][keep] = cur["metadata"][keep]
            obj["metadata"]["generation"] = cur["metadata"].get("generation", 1) + \
                (1 if self._spec_changed(cur, obj) else 0)
            obj["metadata"].pop("managedFields", None)
            self._stamp(obj, kind, ns)
            if not dry_run:
                fm = apply_fm
                if fm is None:
                    fm = self.fields[(kind.group, kind.resource)].get((ns, name), FieldManager()).copy()
                    fm.update(manager, cur, obj, sub)
                self._own(kind, ns, name, obj, fm)
                self.store[(kind.group, kind.resource)][(ns, name)] = obj
                self._record(kind, "MODIFIED", obj)
            else:  # registry/dryrun.go: a dry-run update answers with the stored resourceVersion
                obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            return copy.deepcopy(obj)

    def _conflict(self, kind: Kind, name: str) -> ApiError:
        what = f"{kind.resource}.{kind.group}" if kind.group else kind.resource
        return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": the object '
                        "has been modified; please apply your changes to the latest version and try again")

    def _patch(self, kind: Kind, version: str, ns: str, name: str, body: bytes, ctype: str,
               q: Dict[str, str], dry_run: bool, manager: str = "unknown", sub: str = "") -> Tuple[int, Dict[str, Any]]:
        ctype = ctype.split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            manager = q.get("fieldManager") or ""
            if not manager:
                raise ApiError(400, "BadRequest", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                               "Required value: is required for apply patch")
            applied = yaml.safe_load(body) or {}
            with self.lock:
                existing = self.store[(kind.group, kind.resource)].get((ns, name))
                if existing is None:
                    if sub:
                        what = f"{kind.resource}.{kind.group}" if kind.group else kind.resource
                        raise ApiError(404, "NotFound", f'{what} "{name}" not found')
                    applied.setdefault("metadata", {})["name"] = name
                    fm = FieldManager()
                    created = self._create(kind, ns, applied, dry_run, manager)
                    if not dry_run:
                        fm.managed.clear()
                        fm.apply(manager, {}, applied, force=True)
                        stored = self.store[(kind.group, kind.resource)][(ns, name)]
                        self._own(kind, ns, name, stored, fm)
                        created = copy.deepcopy(stored)
                    return 201, self._versioned(created, kind, version)
                want = (applied.get("metadata") or {}).get("resourceVersion")
                if want and want != existing["metadata"]["resourceVersion"]:
                    raise self._conflict(kind, name)
                if kind.status and sub == "status":
                    applied = {k: v for k, v in applied.items() if k in ("apiVersion", "kind", "metadata", "status")}
                    applied["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items()
                                           if k in ("name", "namespace")}
                elif kind.status:
                    applied.pop("status", None)
                fm = self.fields[(kind.group, kind.resource)].get((ns, name), FieldManager()).copy()
                bare = copy.deepcopy(existing)
                bare["metadata"].pop("managedFields", None)
                try:
                    merged = fm.apply(manager, bare, applied, q.get("force") == "true", sub)
                except ApplyConflict as exc:
                    raise ApiError(409, "Conflict", f"Apply failed with {len(exc.conflicts)} conflict(s): " + "; ".join(
                        f'conflict with "{m}": .{".".join(str(p[1]) if isinstance(p, tuple) else p for p in path)}'
                        for m, path in exc.conflicts))
                merged["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                if merged == bare:
                    if not dry_run:  # ownership may still have changed; the object has not
                        self._own(kind, ns, name, existing, fm)
                    return 200, self._versioned(existing, kind, version)
                return 200, self._versioned(self._update(kind, ns, name, merged, dry_run, manager, sub, apply_fm=fm),
                                            kind, version)
        if ctype != "application/merge-patch+json":
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/apply-patch+yaml")
        patch = json.loads(body)
        with self.lock:
            cur = self._get(kind, ns, name)
            want = ((patch.get("metadata") or {}).get("resourceVersion"))
            if want and want != cur["metadata"]["resourceVersion"]:
                raise self._conflict(kind, name)
            merged = _merge_patch(cur, patch)
            merged["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if merged == cur:
                return 200, self._versioned(cur, kind, version)
            return 200, self._versioned(self._update(kind, ns, name, merged, dry_run, manager, sub), kind, version)

    def _forget(self, kind: Kind, ns: str, name: str) -> None:
        """Delete from the store: the DELETED event carries the last state at the deletion's
        resourceVersion (`apiserver/pkg/storage/etcd3/watcher.go` parseEvent)."""
        gone = self.store[(kind.group, kind.resource)].pop((ns, name))
        self.fields[(kind.group, kind.resource)].pop((ns, name), None)
        gone = copy.deepcopy(gone)
        gone["metadata"]["resourceVersion"] = str(next(self.rv))
        self._record(kind, "DELETED", gone)

    def _delete(self, kind: Kind, ns: str, name: str, opts: Dict[str, Any], dry_run: bool) -> Dict[str, Any]:
        with self.lock:
            cur = self._get(kind, ns, name)
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                what = f"{kind.resource}.{kind.group}" if kind.group else kind.resource
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": '
                               f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {cur["metadata"]["uid"]}')
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                raise self._conflict(kind, name)
            if not dry_run:
                self._forget(kind, ns, name)
                if kind.resource == "namespaces":
                    for k in self.kinds.values():
                        for key in [key for key in self.store[(k.group, k.resource)] if key[0] == name]:
                            self._forget(k, *key)
            return status(200, "", "") | {"status": "Success", "details": {"name": name, "kind": kind.resource}}
