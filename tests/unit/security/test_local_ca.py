"""The local CA and the broker certificate ``lintas up`` makes for the TLS listener."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lintas.deploy.local.kafka import KafkaNode
from lintas.security import TlsMaterialError, ensure_local_tls


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def _verify(cert: x509.Certificate, ca: x509.Certificate) -> None:
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))


def _keystore_parts(path: Path) -> tuple[object, list[x509.Certificate]]:
    data = path.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    return key, x509.load_pem_x509_certificates(data)


def test_makes_a_ca_and_a_broker_certificate_for_the_hosts(tmp_path: Path) -> None:
    made = ensure_local_tls(tmp_path / "tls")
    files = made.files
    assert made.made_ca and made.made_broker_cert
    assert _mode(files.directory) == 0o700
    assert _mode(files.ca_key) == 0o600 and _mode(files.broker_keystore) == 0o600
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key, chain = _keystore_parts(files.broker_keystore)
    broker = chain[0]
    assert chain[1] == ca, "the keystore carries the chain up to the CA"
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == broker.public_key().public_numbers()  # type: ignore[union-attr]
    _verify(broker, ca)
    san = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert not broker.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_second_call_keeps_everything(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path)
    before = first.files.broker_keystore.read_bytes()
    again = ensure_local_tls(tmp_path)
    assert not again.made_ca and not again.made_broker_cert
    assert again.files.broker_keystore.read_bytes() == before


def test_renews_the_broker_certificate_before_it_ends(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ensure_local_tls(tmp_path, cert_days=60, now=now)
    ca_before = (tmp_path / "ca.crt").read_bytes()
    later = ensure_local_tls(tmp_path, cert_days=60, now=now + dt.timedelta(days=40))
    assert later.made_broker_cert and not later.made_ca
    assert (tmp_path / "ca.crt").read_bytes() == ca_before, "clients keep trusting the same CA"


def test_a_new_host_or_a_new_ca_means_a_new_broker_certificate(tmp_path: Path) -> None:
    ensure_local_tls(tmp_path)
    wider = ensure_local_tls(tmp_path, hosts=("127.0.0.1", "localhost", "kafka"))
    assert wider.made_broker_cert and not wider.made_ca
    old_ca = (tmp_path / "ca.crt").read_bytes()
    (tmp_path / "ca.key").unlink()
    fresh = ensure_local_tls(tmp_path)
    assert (tmp_path / "ca.crt").read_bytes() != old_ca
    assert fresh.made_ca and fresh.made_broker_cert
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    _, chain = _keystore_parts(tmp_path / "broker.pem")
    _verify(chain[0], ca)


def test_a_broker_certificate_of_another_ca_is_replaced(tmp_path: Path) -> None:
    ensure_local_tls(tmp_path / "a")
    ensure_local_tls(tmp_path / "b")
    (tmp_path / "a" / "broker.crt").write_bytes((tmp_path / "b" / "broker.crt").read_bytes())
    again = ensure_local_tls(tmp_path / "a")
    assert again.made_broker_cert
    ca = x509.load_pem_x509_certificate((tmp_path / "a" / "ca.crt").read_bytes())
    broker = x509.load_pem_x509_certificate((tmp_path / "a" / "broker.crt").read_bytes())
    _verify(broker, ca)
    other = x509.load_pem_x509_certificate((tmp_path / "b" / "ca.crt").read_bytes())
    with pytest.raises(InvalidSignature):
        _verify(broker, other)


def test_a_corrupt_ca_is_a_clear_error(tmp_path: Path) -> None:
    ensure_local_tls(tmp_path)
    (tmp_path / "ca.crt").write_text("not a certificate")
    with pytest.raises(TlsMaterialError, match="CA does not load"):
        ensure_local_tls(tmp_path)


def _props(node: KafkaNode) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in node.config.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_broker_config_adds_a_sasl_ssl_listener(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path / "tls")
    node = KafkaNode(tmp_path)
    node.render(
        port=19092,
        controller_port=19093,
        controller_password="c",
        platform_password="p",
        tls_port=19094,
        tls_keystore=tls.files.broker_keystore,
    )
    props = _props(node)
    assert "SASL_SSL://127.0.0.1:19094" in props["listeners"]
    assert "SASL_SSL://127.0.0.1:19094" in props["advertised.listeners"]
    protocols = {p.split(":")[1] for p in props["listener.security.protocol.map"].split(",")}
    assert protocols == {"SASL_PLAINTEXT", "SASL_SSL"}, "every listener authenticates"
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == str(tls.files.broker_keystore)
    assert "ScramLoginModule" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert "ssl.key.password" not in node.config.read_text()
