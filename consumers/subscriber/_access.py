"""Whether the broker lets a subscriber's principal read its topic and use its group.

aiokafka reports neither refusal to a consumer that subscribes: a topic its principal may
not describe is simply absent from the metadata, so the group assigns no partition and the
consumer waits for ever, with "not authorized" in the log only. So the subscriber asks
first, with one metadata request for its topic and a coordinator look-up for its group::

    topic error NONE                          readable
    topic error UNKNOWN_TOPIC_OR_PARTITION    DeliveryTopicMissing (the principal may know)
    topic error TOPIC_AUTHORIZATION_FAILED    NotAuthorized(topic=...); Kafka answers so for a
                                              missing topic too, to a principal not allowed
                                              to know
    GroupAuthorizationFailedError             NotAuthorized(group=...)

:func:`refusal` turns the same errors met later (ACLs removed while running, the
dead-letter topic refused) into :class:`NotAuthorized`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
    for_code,
)

from lintas.kafka import KafkaConnection, create_admin

from .exceptions import DeliveryTopicMissing, NotAuthorized

__all__ = ["check_access", "principal_of", "refusal"]

log = logging.getLogger(__name__)

# A new cluster answers COORDINATOR_NOT_AVAILABLE while it creates __consumer_offsets
# (seconds). Authorization is checked before that, so a refusal comes at the first try;
# after these tries the check gives up and the consumer's own join retries.
_GROUP_TRIES = 10
_GROUP_RETRY_S = 0.5


def principal_of(conn: KafkaConnection) -> str:
    """``User:<username>``, as the broker names the connection's principal."""
    return f"User:{conn.username}"


async def check_access(conn: KafkaConnection, *, name: str, topic: str, group: str) -> None:
    """Raise unless ``conn`` may read ``topic`` and join ``group``.

    Args:
        conn: the subscriber's connection.
        name: the subscriber (for the error).
        topic: its delivery topic.
        group: its consumer group.

    Raises:
        DeliveryTopicMissing: the topic does not exist.
        NotAuthorized: the principal may not describe the topic, or the group.
        aiokafka.errors.KafkaError: the broker cannot be reached.
    """
    principal = principal_of(conn)
    admin = create_admin(conn.with_client_id(f"lintas-sub-{name}-check"))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        error = for_code(described["error_code"])
        if error is TopicAuthorizationFailedError:
            raise NotAuthorized(name, principal, topic=topic)
        if error is UnknownTopicOrPartitionError:
            raise DeliveryTopicMissing(name, topic)
        try:
            await _find_coordinator(admin, group)
        except GroupAuthorizationFailedError as exc:
            raise NotAuthorized(name, principal, group=group) from exc
    finally:
        await admin.close()


async def _find_coordinator(admin: Any, group: str) -> None:
    # FindCoordinator needs Describe on the group, which Read implies: a group of another
    # subscriber's is refused here, before it could be joined.
    for _ in range(_GROUP_TRIES):
        try:
            await admin.find_coordinator(group)
            return
        except GroupAuthorizationFailedError:
            raise
        except KafkaError as exc:
            if not exc.retriable:
                raise
            await asyncio.sleep(_GROUP_RETRY_S)
    log.info("coordinator of group %s not available yet; the consumer will retry", group)


def refusal(
    exc: BaseException, conn: KafkaConnection, *, name: str, topic: str, group: str
) -> NotAuthorized | None:
    """The :class:`NotAuthorized` an aiokafka error stands for, or None for other errors.

    Args:
        exc: what aiokafka raised.
        conn: the subscriber's connection.
        name: the subscriber.
        topic: the topic of the call that failed (aiokafka's errors do not always name it).
        group: its consumer group.
    """
    if isinstance(exc, TopicAuthorizationFailedError):
        return NotAuthorized(name, principal_of(conn), topic=topic)
    if isinstance(exc, GroupAuthorizationFailedError):
        return NotAuthorized(name, principal_of(conn), group=group)
    return None
