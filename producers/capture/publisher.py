"""Turn captured changes into events and hand them to Kafka: the one step every mechanism
shares.

For each change, every matching rule of its table's mapping builds an event, validated
against its contract before anything is sent; a change that fails goes to the dead-letter
topic with its key and the reason. :meth:`Publisher.publish` returns only once the producer
SDK reported every event ``sent`` (acknowledged by Kafka) or ``spooled`` (on disk, forwarded
later) and every dead letter is acknowledged: only then may a mechanism commit its position.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from lintas.producers import Event, EventProducer, ValidationFailed
from lintas.schemas import field_errors

from .deadletter import DeadLetterWriter, DeadRow
from .mapping import FieldFailed, TableMapping
from .types import Change, stable_event_id

__all__ = ["Outcome", "Publisher"]

log = logging.getLogger("lintas.capture")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one :meth:`Publisher.publish` call did.

    Attributes:
        sent: events acknowledged by Kafka.
        spooled: events on disk in the spool (forwarded once Kafka is back).
        dead: changes dead-lettered.
        ignored: changes no rule applies to (an update where only deletes are mapped...).
    """

    sent: int = 0
    spooled: int = 0
    dead: int = 0
    ignored: int = 0

    @property
    def events(self) -> int:
        return self.sent + self.spooled


class Publisher:
    """Maps, validates and sends the changes of one source.

    Args:
        source: the source's name (part of every event id).
        opd: the source's OPD (dead letters name it).
        producer: a started producer SDK instance.
        dead_letters: where changes that do not map go.
        mappings: table -> its mapping.
    """

    def __init__(
        self,
        *,
        source: str,
        opd: str,
        producer: EventProducer,
        dead_letters: DeadLetterWriter,
        mappings: Mapping[str, TableMapping],
    ) -> None:
        self.source = source
        self.opd = opd
        self.producer = producer
        self.dead_letters = dead_letters
        self.mappings = mappings

    def prepare(
        self, changes: Sequence[Change]
    ) -> tuple[list[tuple[Event, Change]], list[DeadRow], int]:
        """The valid events (with their change), the dead rows, and how many changes no
        rule applied to."""
        events: list[tuple[Event, Change]] = []
        dead: list[DeadRow] = []
        ignored = 0
        now = dt.datetime.now(dt.UTC)
        for change in changes:
            rules = self.mappings[change.table].rules_for(change)
            if not rules:
                ignored += 1
                continue
            for rule in rules:
                type_id = rule.event_type.id
                event_id = stable_event_id(self.source, change, type_id)
                try:
                    model = rule.model.model_validate(rule.build(change.row))
                except FieldFailed as exc:
                    dead.append(self._dead(change, type_id, event_id, str(exc), exc.field))
                    continue
                except ValidationError as exc:
                    errors = field_errors(exc)
                    message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
                    dead.append(self._dead(change, type_id, event_id, message, errors[0]["field"]))
                    continue
                event = Event(data=model, id=event_id, time=change.committed_at or now)
                events.append((event, change))
        return events, dead, ignored

    def _dead(
        self, change: Change, type_id: str, event_id: str, message: str, field: str | None
    ) -> DeadRow:
        # The key may be a NIK: it goes to the dead letter, not to the log.
        log.warning(
            "%s: %s of %s at %s does not map to %s: %s",
            self.source,
            change.op,
            change.table,
            change.position,
            type_id,
            message,
        )
        return DeadRow(
            change=change,
            source=self.source,
            opd=self.opd,
            event_type=type_id,
            event_id=event_id,
            message=message,
            field=field or None,
        )

    async def publish(self, changes: Sequence[Change]) -> Outcome:
        """Send the events of ``changes`` and dead-letter what does not map.

        Returns once everything is acknowledged or spooled.

        Raises:
            ProducerError: the SDK could not take the events (``SpoolFull``,
                ``NotAuthorized``, ``TopicNotFound``, ...); nothing is confirmed.
            DeadLetterFailed: dead letters were not acknowledged (retriable).
        """
        events, dead, ignored = self.prepare(changes)
        sent = spooled = 0
        while events:
            try:
                deliveries = await self.producer.send_many([e for e, _ in events])
            except ValidationFailed as exc:
                # The model accepted it but the encoder did not (a value Avro cannot hold):
                # dead-letter that one event and send the others.
                event, change = events.pop(exc.index)
                first = exc.errors[0] if exc.errors else None
                message = exc.message if first is None else f"{first['field']}: {first['message']}"
                dead.append(
                    self._dead(
                        change,
                        exc.event_type or "",
                        event.id or "",
                        message,
                        first["field"] if first else None,
                    )
                )
                continue
            sent = sum(1 for d in deliveries if d.sent)
            spooled = len(deliveries) - sent
            break
        await self.dead_letters.send(dead)
        return Outcome(sent=sent, spooled=spooled, dead=len(dead), ignored=ignored)
