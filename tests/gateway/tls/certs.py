"""Certificates the listener's TLS tests make: leaf certificates signed by the tests' CA
(tests/tls_authority.py)."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.tls_authority import TestAuthority


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Authority:
    """A test CA; `cafile` is what the clients trust."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    cafile: Path

    @classmethod
    def create(cls, directory: Path) -> Authority:
        # The CA itself is the one the upstream TLS tests use; only the leaves differ here
        # (written by rename, as a renewal is, and named by the caller).
        ca = TestAuthority(directory, "ca")
        return cls(ca.key, ca.certificate, ca.path)

    def issue(self, cert_path: Path, key_path: Path, *names: str) -> int:
        """Write a certificate for `names` (and its key); returns its serial number."""
        key = _key()
        now = dt.datetime.now(dt.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in names]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        # Written key first, then certificate, each replaced at once (as certbot and
        # cert-manager do, by rename): a reader never sees half a file.
        for path, data in (
            (key_path, _pem_key(key)),
            (cert_path, cert.public_bytes(serialization.Encoding.PEM)),
        ):
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            partial.replace(path)
        return int(serial)

    def client(self, **pins: ssl.TLSVersion) -> ssl.SSLContext:
        """A client context that verifies against this CA (versions pinned as given)."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        for attribute, version in pins.items():
            setattr(context, attribute, version)
        return context


def serial_of(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> int:
    """The serial number of the certificate the server presented."""
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)
