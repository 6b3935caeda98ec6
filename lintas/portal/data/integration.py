"""Source: the directory. The integrated-applications indicator, total, per OPD and per day.

Only :meth:`Directory.integration_report` decides what "integrated" means; the history asks
it once per day with ``now`` set to the end of that day, which is cheap (one aggregate
query over small tables per day).
"""

from __future__ import annotations

import datetime as dt

from lintas.directory import Directory

from .sections import Integration, OpdIntegration, Panel

__all__ = ["HISTORY_DAYS", "SOURCE", "integration_panel"]

SOURCE = "directory"
HISTORY_DAYS = 14


async def integration_panel(
    directory: Directory, *, window_days: int, now: dt.datetime | None = None
) -> Panel[Integration]:
    """The indicator now, per OPD, and at the end of each of the last ``HISTORY_DAYS`` days."""
    now = now or dt.datetime.now(dt.UTC)
    report = await directory.integration_report(now=now)
    opds = {o.code: o.name for o in await directory.list_opds()}
    per_opd: dict[str, list[int]] = {code: [0, 0] for code in opds}
    for status in report:
        counts = per_opd.setdefault(status.opd, [0, 0])
        counts[0] += 1
        counts[1] += int(status.integrated)
    history = []
    today = now.date()
    for back in range(HISTORY_DAYS - 1, 0, -1):
        day = today - dt.timedelta(days=back)
        end = dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        past = await directory.integration_report(now=end)
        history.append((day, sum(s.integrated for s in past)))
    integrated = sum(s.integrated for s in report)
    history.append((today, integrated))
    data = Integration(
        total=len(report),
        integrated=integrated,
        window_days=window_days,
        per_opd=[
            OpdIntegration(opd=code, name=opds.get(code, code), applications=a, integrated=i)
            for code, (a, i) in sorted(per_opd.items())
        ],
        history=history,
    )
    return Panel.ok(data, SOURCE) if report or opds else Panel.empty(SOURCE, data)
