"""Dead letters of a sink: canonical records the store cannot take, kept with the reason.

They go to the platform's dead-letter topic in its format (:mod:`lintas.streams.dlq`:
original key, value and headers, plus ``lintas.dlq.*`` headers), so ``lintas dlq list``
shows them and ``lintas dlq replay`` sends them back to their canonical topic once fixed.
A dead letter is acknowledged by the broker before the sink stores the offset past it, so
a crash may write it twice but never loses it.

The format's module is imported on the first dead letter only: it belongs to the stream
workers' package, which the sink has no other use for (and which loads faust).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aiokafka import ConsumerRecord

from lintas.kafka import KafkaConnection, create_producer

__all__ = ["DeadLetterWriter"]

log = logging.getLogger("lintas.consumers.sinks")


class DeadLetterWriter:
    """Sends rejected records to a dead-letter topic (the producer starts on first use).

    Args:
        kafka: the platform's Kafka connection.
        topic: the dead-letter topic (``lintas.dlq`` under the platform's prefix).
    """

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self._producer: Any = None
        self.sent = 0

    async def send(
        self, record: ConsumerRecord, *, reason: str, message: str, event_type: str | None
    ) -> None:
        """Dead-letter ``record`` and wait for the broker's acknowledgement.

        Args:
            record: the record as consumed.
            reason: a :class:`lintas.streams.Reason` value (``undecodable``).
            message: the rule it breaks, in words.
            event_type: the event type its topic carries.
        """
        from lintas.streams.dlq import Reason, dead_letter_headers, fit_dead_letter

        if self._producer is None:
            self._producer = create_producer(self._kafka.with_client_id("lintas-store-dlq"))
            await self._producer.start()
        headers = dead_letter_headers(
            list(record.headers or ()),
            reason=Reason(reason),
            message=message,
            field=None,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            now=dt.datetime.now(dt.UTC),
            event_type=event_type,
            opd=event_type.split(".", 1)[0] if event_type else None,
        )
        value, headers = fit_dead_letter(record.key, record.value, headers)
        await self._producer.send_and_wait(self.topic, value=value, key=record.key, headers=headers)
        self.sent += 1
        log.warning(
            "dead-lettered %s[%d]@%d (%s): %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            message,
        )

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
