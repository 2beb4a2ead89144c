"""Certificates made by the real openssl at test time: one CA, leaves with chosen SANs."""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Leaf:
    cert_pem: bytes
    key_pem: bytes
    cert_path: str
    key_path: str
    sans: Tuple[str, ...]


class CertFactory:
    def __init__(self, directory: str) -> None:
        self.dir = directory
        self._leaves: Dict[Tuple[str, Tuple[str, ...]], Leaf] = {}
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca_cert = os.path.join(directory, "ca.crt")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "3650",
                 "-subj", "/CN=gwdup test CA")

    @property
    def ca_pem(self) -> bytes:
        with open(self.ca_cert, "rb") as f:
            return f.read()

    def leaf(self, *sans: str, tag: str = "", rsa: bool = False, usage: str = "serverAuth") -> Leaf:
        """A certificate for `sans` (DNS or IP:...), its CN the first DNS name; same (tag, sans,
        usage) -> same certificate. usage="clientAuth" makes a client certificate (kubeadm's
        admin.conf user: CN is the user name)."""
        key = (tag + (":rsa" if rsa else "") + ("" if usage == "serverAuth" else ":" + usage), tuple(sans))
        if key in self._leaves:
            return self._leaves[key]
        stem = os.path.join(self.dir, hashlib.sha1(repr(key).encode()).hexdigest()[:16])
        ext = stem + ".ext"
        entries = ",".join(s if s.startswith("IP:") else f"DNS:{s}" for s in sans)
        with open(ext, "w") as f:
            f.write(f"subjectAltName={entries}\nbasicConstraints=CA:FALSE\n"
                    f"keyUsage=digitalSignature\nextendedKeyUsage={usage}\n")
        cn = next((s for s in sans if not s.startswith("IP:")), "leaf")[:60]
        algo = ["rsa:2048"] if rsa else ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        _openssl("req", "-newkey", *algo, "-nodes",
                 "-keyout", stem + ".key", "-out", stem + ".csr", "-subj", f"/CN={cn}")
        _openssl("x509", "-req", "-in", stem + ".csr", "-CA", self.ca_cert, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", stem + ".crt", "-days", "825", "-extfile", ext)
        with open(stem + ".crt", "rb") as f:
            cert = f.read()
        with open(stem + ".key", "rb") as f:
            keyb = f.read()
        leaf = Leaf(cert, keyb, stem + ".crt", stem + ".key", tuple(sans))
        self._leaves[key] = leaf
        return leaf


    def by_pem(self) -> Dict[str, Leaf]:
        """Every certificate made so far, by its PEM text (to find the key of a rendered one)."""
        return {leaf.cert_pem.decode(): leaf for leaf in self._leaves.values()}

    def by_fingerprint(self) -> Dict[str, Leaf]:
        import base64
        import hashlib

        out = {}
        for leaf in self._leaves.values():
            body = b"".join(leaf.cert_pem.split(b"-----")[2].split())
            out[hashlib.sha256(base64.b64decode(body)).hexdigest()] = leaf
        return out


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def new_factory() -> CertFactory:
    return CertFactory(tempfile.mkdtemp(prefix="gwdup-certs-"))
