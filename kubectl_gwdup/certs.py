"""Certificates: PEM bytes -> Certificate (DNS SANs, fingerprint). No I/O.

Each distinct PEM is parsed once per process (a long-running one drops those no longer in use,
`keep_only`): clusters often store one certificate in many
Secrets, and parsing is the dominant cost of reading them. Only the leaf (first block) counts,
because it is what a browser checks before it reuses a connection. The private key is never
read here; callers drop it before anything reaches this module.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Dict, Iterable, Optional

from .model import Certificate

_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL)
_cache: Dict[bytes, Optional[Certificate]] = {}


class CertificateError(ValueError):
    pass


def parse_pem(pem: bytes) -> Certificate:
    """The leaf certificate of a PEM bundle; raises CertificateError when there is none."""
    if pem in _cache:
        cert = _cache[pem]
        if cert is None:
            raise CertificateError("no parseable certificate")
        return cert
    try:
        cert = _parse(pem)
    except CertificateError:
        _cache[pem] = None
        raise
    _cache[pem] = cert
    return cert


def _parse(pem: bytes) -> Certificate:
    match = _PEM_BLOCK.search(pem)
    if not match:
        raise CertificateError("no PEM certificate block")
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateError(f"bad base64 in PEM block: {exc}") from None
    from asn1crypto import x509  # imported on first use: -f runs without Secrets never pay for it

    try:
        parsed = x509.Certificate.load(der)
        san = parsed.subject_alt_name_value
        names = sorted({n.native.lower().rstrip(".") for n in (san or []) if n.name == "dns_name"})
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # asn1crypto parses lazily and reports malformed DER with any of these
        raise CertificateError(f"malformed certificate: {exc}") from None
    return Certificate(fingerprint=hashlib.sha256(der).hexdigest(), sans=tuple(names), der=der)


def cache_size() -> int:
    return len(_cache)


def keep_only(pems: Iterable[bytes]) -> None:
    """Forget every parsed PEM but these: a process that runs for days (serve, check --watch)
    sees certificates renewed and Secrets deleted, and must hold only what the mesh uses now."""
    wanted = set(pems)
    for pem in [p for p in _cache if p not in wanted]:
        del _cache[pem]
