"""Which Secrets a terminating server reads, and which keys of them istiod takes.

Mirrors, the same from Istio 1.24 to controlplane.NEWEST_MODELLED:
- pilot/pkg/credentials/kube/secrets.go ExtractCertInfo and ExtractRoot: the certificate is
  `tls.crt` of a kubernetes.io/tls Secret or `cert` of a generic one; a client CA is `ca.crt`
  or `cacert`, in the Secret itself or in the Secret `<name>-cacert`;
- pilot/pkg/model/credentials/resource.go: `credentialName` (and each of `credentialNames`) is
  a Secret of the gateway workload's namespace; `kubernetes-gateway://<ns>/<name>` (what istiod
  writes for a Gateway API certificateRef) names its own namespace;
- pilot/pkg/networking/core/listener.go BuildListenerTLSContext: a MUTUAL (or OPTIONAL_MUTUAL)
  server validates client certificates against that CA, so without one its handshakes fail.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Collection, Mapping, Optional, Tuple

from ..model import Credential, Server, TlsMode, Workload
from ..objects import ShapeError

CERT_KEYS = ("tls.crt", "cert")  # istio reads kubernetes.io/tls Secrets and generic ones
CA_KEYS = ("ca.crt", "cacert")  # a MUTUAL server's client CA: in its Secret, or in <name>-cacert
CA_SUFFIX = "-cacert"
SECRET_PREFIX = "kubernetes-gateway://"
MUTUAL_MODES = (TlsMode.MUTUAL, TlsMode.OPTIONAL_MUTUAL)


def secret_from_manifest(obj: Mapping[str, Any]) -> Optional[bytes]:
    """The certificate bytes of a Secret manifest (data is base64, stringData plain)."""
    data = obj.get("data") or {}
    string_data = obj.get("stringData") or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        raise ShapeError("data: must be a mapping")
    for key in CERT_KEYS:
        if isinstance(string_data.get(key), str):
            return string_data[key].encode()
        if isinstance(data.get(key), str):
            try:
                return base64.b64decode(data[key], validate=True)
            except (binascii.Error, ValueError):
                raise ShapeError(f"data.{key}: not valid base64") from None
    return None


def credentials_for(server: Server, workload: Workload) -> Tuple[Credential, ...]:
    """The credentials a terminating server presents on this workload's pods."""
    if server.tls_mode is None or not server.tls_mode.terminates:
        return ()
    if server.credential_names:
        out = []
        for name in server.credential_names:
            ns = workload.namespace
            if name.startswith(SECRET_PREFIX):
                ref = name[len(SECRET_PREFIX):]
                ns, _, name = ref.rpartition("/")
                ns = ns or workload.namespace
            out.append(Credential("secret", ns, name))
        return tuple(out)
    if server.server_certificate:
        return (Credential("file", workload.key, server.server_certificate),)
    return ()


def client_ca_missing(server: Server, creds: Tuple[Credential, ...], secret_cas: Collection[Tuple[str, str]],
                      every_secret_read: bool) -> bool:
    """A MUTUAL server whose client CA is in neither its Secret nor `<name>-cacert`: the CA never
    arrives and Envoy ends every handshake on the chain. Only said when every Secret was read."""
    if server.tls_mode not in MUTUAL_MODES or server.tls.get("caCertificates") or not every_secret_read:
        return False
    secrets = [c for c in creds if c.kind == "secret" and c.namespace]
    return bool(secrets) and not any((c.namespace, c.name) in secret_cas
                                     or (c.namespace, c.name + CA_SUFFIX) in secret_cas for c in secrets)
