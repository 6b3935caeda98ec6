"""The local broker's second listener: SASL_SSL with a certificate of the CA `lintas up`
makes. Clients verify the certificate and the host name; SCRAM is still required."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
from security_helpers import login_error

from lintas.deploy.local import LocalStack
from lintas.endpoints import kafka_connection
from lintas.kafka import KafkaConnection, create_admin
from lintas.security import ensure_local_tls
from lintas.settings import KafkaSecurityProtocol, KafkaSettings


def _handshake(port: int, cafile: Path, server_hostname: str) -> None:
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname),
    ):
        pass


async def _topics(conn: KafkaConnection) -> list[str]:
    admin = create_admin(conn, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(admin.start(), 30)
        return list(await admin.list_topics())
    finally:
        await admin.close()


def test_sasl_ssl_listener_with_the_local_ca(private_stack: LocalStack, tmp_path: Path) -> None:
    private_stack.up_kafka()
    _, doc = private_stack.status()
    assert doc["kafka_bootstrap"] and doc["kafka_security"]["username"] == "lintas"
    tls_address = doc["kafka_bootstrap_tls"]
    assert tls_address and tls_address != doc["kafka_bootstrap"]
    cafile = Path(doc["kafka_ca_file"])
    port = int(tls_address.rsplit(":", 1)[1])

    # The endpoints resolve SASL_SSL to the TLS listener and its CA by themselves.
    settings = private_stack.settings.model_copy(
        update={"kafka": KafkaSettings(security_protocol=KafkaSecurityProtocol.SASL_SSL)}
    )
    conn = kafka_connection(settings)
    assert conn.bootstrap == tls_address and conn.ssl_cafile == str(cafile)
    assert isinstance(asyncio.run(_topics(conn)), list)
    # librdkafka verifies the host name by default (ssl.endpoint.identification.algorithm).
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient(conn.confluent_config()).list_topics(timeout=30)
    assert metadata.brokers

    # The certificate names 127.0.0.1 and localhost; any other name fails verification.
    _handshake(port, cafile, "127.0.0.1")
    _handshake(port, cafile, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)hostname|match"):
        _handshake(port, cafile, "kafka.example.go.id")
    # A client trusting another CA refuses the broker.
    other = ensure_local_tls(tmp_path / "other-ca").files.ca_cert
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(port, other, "127.0.0.1")

    # TLS does not replace SASL: a wrong password is refused on this listener too.
    wrong = KafkaConnection(
        bootstrap=tls_address,
        username="lintas",
        password="not-the-password",
        security_protocol="SASL_SSL",
        ssl_cafile=str(cafile),
    )
    assert login_error(wrong) == "_AUTHENTICATION"

    # A second start keeps the CA: clients keep trusting the same file.
    before = cafile.read_bytes()
    private_stack.down(only="kafka")
    private_stack.up_kafka()
    assert cafile.read_bytes() == before
    assert isinstance(asyncio.run(_topics(kafka_connection(settings))), list)
