"""Spool administration for operators (``lintas spool status|flush``).

A spool is normally drained by the producer that owns it. These functions are for the
cases it cannot: an app that is stopped or gone, a worker slot no process uses any more,
records the broker refused for good (rejected) that should be retried after the ACLs were
fixed, or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from lintas.kafka import KafkaConnection
from lintas.settings import Settings

from ._inspect import SpoolInfo, inspect_spools, spool_slots
from ._pipeline import Pipeline
from ._producer import kafka_options_for, spool_root
from ._spool import Spool
from .exceptions import FlushTimeout, SpoolLocked
from .metrics import ProducerMetrics

__all__ = ["FlushResult", "flush_spools", "spool_status"]


@dataclass(frozen=True, kw_only=True)
class FlushResult:
    """What ``flush_spools`` did with one slot.

    Attributes:
        name, slot, path: which spool.
        forwarded: records now in Kafka.
        remaining: records still waiting (the broker was away, or time ran out).
        rejected: records kept apart because the broker refused them for good.
        requeued, dropped: rejected records put back in the queue, or deleted.
        in_use_by: pid of the producer that holds the slot (it was left alone), if any.
        error: why the slot was not (fully) drained, if it was not.
    """

    name: str
    slot: int
    path: str
    forwarded: int = 0
    remaining: int = 0
    rejected: int = 0
    requeued: int = 0
    dropped: int = 0
    in_use_by: int | None = None
    error: str | None = None


def spool_status(settings: Settings, name: str | None = None) -> list[SpoolInfo]:
    """Every spool slot under the settings' spool directory (or those of ``name``)."""
    return inspect_spools(spool_root(settings), name)


async def flush_spools(
    settings: Settings,
    conn: KafkaConnection,
    *,
    name: str | None = None,
    timeout: float = 60.0,
    retry_rejected: bool = False,
    drop_rejected: bool = False,
    root: Path | None = None,
) -> list[FlushResult]:
    """Forward the records of every spool slot no process holds.

    Args:
        settings: timeouts and batch settings (and the spool directory unless ``root``).
        conn: the Kafka connection to forward with.
        name: only this spool's slots.
        timeout: seconds allowed per slot.
        retry_rejected: put rejected records back at the end of the queue first.
        drop_rejected: delete rejected records (they are lost: use after deciding so).
        root: the spool directory, when not the settings'.

    Raises:
        NotAuthorized: the broker refuses the principal outright.
    """
    base = root or spool_root(settings)
    results: list[FlushResult] = []
    options = kafka_options_for(settings)
    for spool_name, slot, db, _lock in spool_slots(base, name):
        try:
            spool = await Spool.open(
                base, spool_name, max_bytes=settings.producer.spool_max_bytes, slot=slot
            )
        except SpoolLocked as exc:
            results.append(FlushResult(name=spool_name, slot=slot, path=str(db), in_use_by=exc.pid))
            continue
        requeued = dropped = 0
        if retry_rejected:
            requeued = await spool.requeue_rejected()
        if drop_rejected:
            dropped = await spool.drop_rejected()
        before, rejected_before = spool.records, spool.rejected
        pipeline = Pipeline(
            spool=spool,
            conn=conn,
            settings=settings.producer,
            kafka_options=options,
            metrics=ProducerMetrics(spool_name, CollectorRegistry()),
        )
        error = None
        try:
            await pipeline.start()
            await pipeline.flush(timeout)
        except FlushTimeout as exc:
            error = exc.message
        finally:
            remaining, rejected = spool.records, spool.rejected
            await pipeline.stop(flush=False)
        results.append(
            FlushResult(
                name=spool_name,
                slot=slot,
                path=str(db),
                forwarded=before - remaining - (rejected - rejected_before),
                remaining=remaining,
                rejected=rejected,
                requeued=requeued,
                dropped=dropped,
                error=error,
            )
        )
    return results
