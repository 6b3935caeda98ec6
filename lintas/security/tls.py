"""A local certificate authority for the broker's TLS listener, made by ``lintas up``.

Files in one directory (``<data_dir>/secrets/tls/`` for the local stack)::

    ca.crt      the CA certificate clients trust (LINTAS_KAFKA__SSL_CAFILE)
    ca.key      the CA's private key, owner-only; it signs broker certificates and nothing else
    broker.pem  the broker's private key (PKCS#8) and certificate chain: Kafka's PEM keystore,
                owner-only
    broker.crt  the broker's certificate alone, for inspection (openssl x509 -in ... -text)

The broker certificate names the addresses clients dial (``127.0.0.1`` and ``localhost`` by
default) so clients verify the hostname, as they must. Keys are ECDSA P-256: quick to make
and accepted by Java, OpenSSL (librdkafka) and Python alike. Everything is re-made only when
needed: a missing file, a certificate within 30 days of its end, a broker certificate not
signed by the current CA or not naming every address.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .exceptions import TlsMaterialError

__all__ = ["DEFAULT_HOSTS", "LocalTls", "TlsFiles", "ensure_local_tls"]

DEFAULT_HOSTS = ("127.0.0.1", "localhost")
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    """Paths of the local CA and the broker's keystore."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    broker_keystore: Path
    broker_cert: Path

    @classmethod
    def in_dir(cls, directory: Path) -> TlsFiles:
        return cls(
            directory=directory,
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            broker_keystore=directory / "broker.pem",
            broker_cert=directory / "broker.crt",
        )


@dataclass(frozen=True, kw_only=True)
class LocalTls:
    """The outcome of :func:`ensure_local_tls`: the files, and what had to be made."""

    files: TlsFiles
    made_ca: bool
    made_broker_cert: bool


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted PKCS#8: Kafka reads it from a PEM keystore without ssl.key.password;
    # the file mode (0600, in a 0700 directory) is what protects it, as for the passwords.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _load(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if not (files.ca_cert.exists() and files.ca_key.exists()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise TlsMaterialError(str(files.ca_cert.parent), f"the CA does not load ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsMaterialError(str(files.ca_key), "the CA key is not an EC key")
    return cert, key


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > _RENEW_BEFORE


def _make_ca(
    files: TlsFiles, now: dt.datetime, days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lintas"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Lintas local CA {now:%Y-%m-%d}"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files.ca_key, _key_pem(key), 0o600)
    _write(files.ca_cert, _cert_pem(cert), 0o644)
    return cert, key


def _broker_ok(
    files: TlsFiles, ca: x509.Certificate, hosts: Sequence[str], now: dt.datetime
) -> bool:
    if not (files.broker_keystore.exists() and files.broker_cert.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.broker_cert.read_bytes())
        public = ca.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
        named = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, InvalidSignature, x509.ExtensionNotFound, OSError):
        return False
    return _fresh(cert, now) and set(_san(hosts)) <= set(named)


def _make_broker_cert(
    files: TlsFiles,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    now: dt.datetime,
    days: int,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lintas"),
                    x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Kafka's PEM keystore: the private key, then the chain from the broker's certificate up.
    _write(files.broker_keystore, _key_pem(key) + _cert_pem(cert) + _cert_pem(ca), 0o600)
    _write(files.broker_cert, _cert_pem(cert), 0o644)


def ensure_local_tls(
    directory: Path,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    ca_days: int = 3650,
    cert_days: int = 397,
    now: dt.datetime | None = None,
) -> LocalTls:
    """Make (or keep) the local CA and a broker certificate for ``hosts``.

    Args:
        directory: where the files live; created owner-only.
        hosts: the addresses clients dial; the first is also the certificate's CN.
        ca_days: validity of a new CA.
        cert_days: validity of a new broker certificate (never beyond the CA's).
        now: the current time (tests).

    Raises:
        TlsMaterialError: existing files that cannot be read or parsed.
    """
    if not hosts:
        raise ValueError("a broker certificate needs at least one host name or address")
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    files = TlsFiles.in_dir(directory)
    loaded = _load(files)
    made_ca = loaded is None or not _fresh(loaded[0], now)
    if made_ca:
        ca, ca_key = _make_ca(files, now, ca_days)
    else:
        assert loaded is not None
        ca, ca_key = loaded
    made_cert = made_ca or not _broker_ok(files, ca, hosts, now)
    if made_cert:
        _make_broker_cert(files, ca, ca_key, hosts, now, cert_days)
    return LocalTls(files=files, made_ca=made_ca, made_broker_cert=made_cert)
