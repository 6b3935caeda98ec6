"""The one factory for Kafka clients: every Lintas client is built here.

A :class:`KafkaConnection` holds the bootstrap address and the one security setting
(SASL/SCRAM credentials, optional TLS CA); each client library gets its own spelling of
it from here, so no component configures security on its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

__all__ = [
    "KafkaConnection",
    "authentication_refused",
    "create_admin",
    "create_consumer",
    "create_producer",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class KafkaConnection:
    """Where the brokers are and how a client authenticates.

    Usage::

        conn = KafkaConnection(bootstrap="127.0.0.1:9092", username="lintas", password="...")
        producer = create_producer(conn, acks="all")
    """

    bootstrap: str
    username: str
    password: str = field(repr=False)
    security_protocol: str = "SASL_PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    ssl_cafile: str | None = None
    client_id: str = "lintas"

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "client_id": self.client_id,
        }
        if self.security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return kwargs

    def confluent_config(self) -> dict[str, str]:
        """The same setting for ``confluent-kafka`` (librdkafka) clients."""
        config = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
            "client.id": self.client_id,
        }
        if self.ssl_cafile:
            config["ssl.ca.location"] = self.ssl_cafile
        return config

    def faust_kwargs(self) -> dict[str, Any]:
        """``broker`` and ``broker_credentials`` for a ``faust.App``."""
        import faust
        from faust.types.auth import SASLMechanism

        mechanism = SASLMechanism(self.sasl_mechanism)
        ssl_context = None
        if self.security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            ssl_context = create_ssl_context(cafile=self.ssl_cafile)
        creds = faust.SASLCredentials(
            username=self.username,
            password=self.password,
            mechanism=mechanism,
            ssl_context=ssl_context,
        )
        brokers = ";".join(f"kafka://{hp.strip()}" for hp in self.bootstrap.split(","))
        return {"broker": brokers, "broker_credentials": creds}

    def with_client_id(self, client_id: str) -> KafkaConnection:
        return KafkaConnection(
            bootstrap=self.bootstrap,
            username=self.username,
            password=self.password,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            ssl_cafile=self.ssl_cafile,
            client_id=client_id,
        )


def create_producer(conn: KafkaConnection, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer: acks=all and idempotence on unless ``options`` say otherwise."""
    from aiokafka import AIOKafkaProducer

    options.setdefault("acks", "all")
    options.setdefault("enable_idempotence", True)
    return AIOKafkaProducer(**conn.aiokafka_kwargs(), **options)


def create_consumer(conn: KafkaConnection, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer; offsets are committed by the caller unless it says otherwise."""
    from aiokafka import AIOKafkaConsumer

    options.setdefault("enable_auto_commit", False)
    options.setdefault("auto_offset_reset", "earliest")
    return AIOKafkaConsumer(*topics, **conn.aiokafka_kwargs(), **options)


def create_admin(conn: KafkaConnection, **options: Any) -> AIOKafkaAdminClient:
    """An aiokafka admin client."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(**conn.aiokafka_kwargs(), **options)


async def authentication_refused(conn: KafkaConnection, timeout: float = 10.0) -> bool:
    """True when a broker answers and refuses ``conn``'s credentials.

    aiokafka's clients log a failed SASL handshake and then report only that they could
    not bootstrap, which reads like an unreachable broker; this probe tells the two apart
    so a wrong or revoked password is refused clearly instead of retried forever.
    """
    from aiokafka.conn import create_conn
    from aiokafka.errors import AuthenticationFailedError, SaslAuthenticationFailed

    options = conn.aiokafka_kwargs()
    servers = str(options.pop("bootstrap_servers"))
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            probe = await asyncio.wait_for(create_conn(host, int(port), **options), timeout)
        except (SaslAuthenticationFailed, AuthenticationFailedError):
            return True
        except Exception:  # this broker is away: ask the next one
            continue
        probe.close()
        return False
    return False
