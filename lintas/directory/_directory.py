"""The directory's API over PostgreSQL: every change one transaction, then published."""

from __future__ import annotations

import datetime as dt

from ._applications import ApplicationsMixin
from ._base import NOT_FOUND_HINTS, utcnow
from ._subscribers import SubscribersMixin
from .exceptions import NotFound
from .models import AppStatus, DirectoryData, IntegrationStatus

__all__ = ["Directory"]


class Directory(ApplicationsMixin, SubscribersMixin):
    """Who is on the platform: OPDs, applications, subscribers, subscriptions.

    Usage::

        async with await Directory.open(settings) as directory:
            app, key = await directory.add_application({...})

    Every change runs in one transaction that also writes the entity's snapshot to the
    outbox; after commit the outbox is published to ``lintas.directory`` (if Kafka is down
    the change is kept and published later, see :meth:`publish_pending`).
    """

    # -- activity and the integrated indicator ------------------------------------------

    async def record_activity(
        self,
        app_id: str,
        *,
        produced: int = 0,
        received: int = 0,
        at: dt.datetime | None = None,
    ) -> None:
        """Count events an application produced or received (called by the services).

        Raises:
            NotFound: no application ``app_id`` (events from an unregistered source).
        """
        if produced < 0 or received < 0:
            raise ValueError("produced and received must not be negative")
        at = at or utcnow()
        async with self._conn() as conn:
            if not await conn.fetchval(
                "SELECT 1 FROM lintas.dir_applications WHERE id = $1", app_id
            ):
                raise NotFound("application", app_id, hint=NOT_FOUND_HINTS["application"])
            await conn.execute(
                "INSERT INTO lintas.dir_activity AS a (app_id, day, produced, received, "
                "last_produced_at, last_received_at) VALUES ($1, ($2::timestamptz AT TIME ZONE "
                "'UTC')::date, $3::bigint, $4::bigint, "
                "CASE WHEN $3::bigint > 0 THEN $2::timestamptz END, "
                "CASE WHEN $4::bigint > 0 THEN $2::timestamptz END) "
                "ON CONFLICT (app_id, day) DO UPDATE SET "
                "produced = a.produced + EXCLUDED.produced, "
                "received = a.received + EXCLUDED.received, "
                "last_produced_at = greatest(a.last_produced_at, EXCLUDED.last_produced_at), "
                "last_received_at = greatest(a.last_received_at, EXCLUDED.last_received_at)",
                app_id,
                at,
                produced,
                received,
            )

    async def integration_report(
        self, *, now: dt.datetime | None = None
    ) -> list[IntegrationStatus]:
        """Every application with its computed status: integrated when it produced or
        received an event within the window (``directory.integrated_window_days``)."""
        now = now or utcnow()
        since = now - dt.timedelta(days=self._settings.integrated_window_days)
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT a.id, a.opd, a.status, max(x.last_produced_at) AS last_produced_at, "
                "max(x.last_received_at) AS last_received_at, "
                "coalesce(sum(x.produced) FILTER (WHERE x.day >= $1::date), 0) AS produced, "
                "coalesce(sum(x.received) FILTER (WHERE x.day >= $1::date), 0) AS received "
                "FROM lintas.dir_applications a LEFT JOIN lintas.dir_activity x "
                "ON x.app_id = a.id AND x.day <= $2::date GROUP BY a.id ORDER BY a.opd, a.id",
                since,
                now,
            )
        report = []
        for r in rows:
            last = max(
                (t for t in (r["last_produced_at"], r["last_received_at"]) if t), default=None
            )
            integrated = (
                r["status"] != AppStatus.RETIRED and last is not None and since <= last <= now
            )
            report.append(
                IntegrationStatus(
                    app_id=r["id"],
                    opd=r["opd"],
                    status=AppStatus.INTEGRATED if integrated else AppStatus(r["status"]),
                    integrated=integrated,
                    last_produced_at=r["last_produced_at"],
                    last_received_at=r["last_received_at"],
                    produced_in_window=int(r["produced"]),
                    received_in_window=int(r["received"]),
                )
            )
        return report

    # -- whole directory ------------------------------------------------------------------

    async def export_data(self) -> DirectoryData:
        """Everything but secrets and activity, for YAML export and diffs."""
        return DirectoryData(
            opds=tuple(await self.list_opds()),
            applications=tuple(await self.list_applications()),
            subscribers=tuple(await self.list_subscribers()),
            subscriptions=tuple(await self.list_subscriptions()),
        )
