"""Read-only inspection of spools (``lintas spool status``), safe while a producer runs.

Only counts and reasons come out: keys and values hold personal data.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._spool import connect, holder

__all__ = ["SpoolInfo", "inspect_spools", "spool_slots"]


@dataclass(frozen=True, kw_only=True)
class SpoolInfo:
    """What one spool slot holds, without showing any of it (keys and values are personal
    data).

    Attributes:
        name, slot, path: which spool.
        records, bytes: waiting to be forwarded.
        oldest_s: age of the oldest waiting record in seconds (``None`` when empty).
        topics: waiting records per topic.
        rejected: records the broker refused for good, by reason.
        in_use_by: pid of the process holding it, ``None`` when free.
    """

    name: str
    slot: int
    path: str
    records: int
    bytes: int
    oldest_s: float | None
    topics: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    in_use_by: int | None = None

    @property
    def rejected_records(self) -> int:
        return sum(self.rejected.values())


def _in_use(lock_path: Path) -> int | None:
    if not lock_path.exists():
        return None
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return holder(lock_path) or -1
    finally:
        os.close(fd)  # also releases the shared lock we may have taken
    return None


def spool_slots(root: Path, name: str | None = None) -> list[tuple[str, int, Path, Path]]:
    """Every (name, slot, db path, lock path) under ``root``, optionally of one name."""
    if not root.is_dir():
        return []
    names = [name] if name is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    found: list[tuple[str, int, Path, Path]] = []
    for spool_name in names:
        folder = root / spool_name
        if not folder.is_dir():
            continue
        for db in sorted(folder.glob("slot-*.db")):
            number = db.stem.removeprefix("slot-")
            if number.isdigit():
                found.append((spool_name, int(number), db, folder / f"slot-{number}.lock"))
    return sorted(found, key=lambda item: (item[0], item[1]))


def inspect_spools(root: Path, name: str | None = None) -> list[SpoolInfo]:
    """Describe every spool slot under ``root`` (or those of ``name``)."""
    infos: list[SpoolInfo] = []
    now = time.time()
    for spool_name, slot, db, lock in spool_slots(root, name):
        conn = connect(db, read_only=True)
        try:
            count, used, oldest = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(spooled_at) FROM records"
            ).fetchone()
            topics = dict(
                conn.execute("SELECT topic, COUNT(*) FROM records GROUP BY topic ORDER BY topic")
            )
            rejected = dict(
                conn.execute(
                    "SELECT reason, COUNT(*) FROM rejected GROUP BY reason ORDER BY reason"
                )
            )
        finally:
            conn.close()
        infos.append(
            SpoolInfo(
                name=spool_name,
                slot=slot,
                path=str(db),
                records=int(count),
                bytes=int(used),
                oldest_s=round(now - oldest, 3) if oldest is not None else None,
                topics={str(k): int(v) for k, v in topics.items()},
                rejected={str(k): int(v) for k, v in rejected.items()},
                in_use_by=_in_use(lock),
            )
        )
    return infos
