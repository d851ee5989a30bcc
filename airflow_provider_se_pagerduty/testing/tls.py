"""Self-signed certificate for serving the local Events API receiver over https."""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

CERTIFICATE_FILE_NAME = "receiver-cert.pem"
KEY_FILE_NAME = "receiver-key.pem"
_VALIDITY = datetime.timedelta(days=2)
# Starts the validity early, so that a client whose clock is slightly behind still accepts it.
_BACKDATE = datetime.timedelta(minutes=5)


def write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a new EC key and a self-signed certificate for 127.0.0.1 and localhost.

    Returns the certificate path and the key path. The certificate is its own CA, so a client
    verifies the receiver by passing the certificate file as its CA bundle.
    """
    # cryptography is a development dependency, imported only when https is requested.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "se-pagerduty local Events API receiver")])
    now = datetime.datetime.now(datetime.UTC)
    subject_key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(subject_key_id, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(subject_key_id),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )

    certificate_path = directory / CERTIFICATE_FILE_NAME
    key_path = directory / KEY_FILE_NAME
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_bytes)
    return certificate_path, key_path
