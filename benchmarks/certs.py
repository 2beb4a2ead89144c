"""Certificates for benchmarks, made in-process with `cryptography` (thousands are needed)."""
from __future__ import annotations

import datetime
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_KEY = ec.generate_private_key(ec.SECP256R1())


def make_pem(sans: Sequence[str], serial: int) -> bytes:
    now = datetime.datetime(2026, 1, 1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0][:60])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(_KEY.public_key()).serial_number(serial + 1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
            .sign(_KEY, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem() -> bytes:
    """The private key of every certificate make_pem makes (Envoy needs it to load them)."""
    return _KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
