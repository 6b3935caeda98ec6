"""An OPD app for the fault test: sends numbered events, records each one ``send`` returned.

Usage: ``python producer_fault_app.py TOPIC TOTAL IDS_FILE``; settings come from LINTAS_*.

Event ``i`` has the id ``fault-<i>`` and belongs to citizen ``i % KEYS``. Each line of
IDS_FILE is ``<i> <event id> <status>``, written after ``send_many`` returned. Restarted
(after SIGKILL), the app resumes after the last recorded event, sending again, with the
same ids, whatever it had handed over without a confirmation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from pathlib import Path

from lintas.producers import Event, EventProducer
from lintas.schemas import build_nik, example_event, load_catalog, model_for
from lintas.settings import load_settings

KEYS = 100
BATCH = 20
PAUSE_S = 0.01


def event_id(i: int) -> str:
    return f"fault-{i:06d}"


def key_of(i: int) -> int:
    return i % KEYS


async def main(topic: str, total: int, ids_file: Path, done: int) -> None:
    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    model = model_for(kematian)
    base = example_event(kematian)
    niks = [
        build_nik(
            "32.73.01",
            dt.date(1940, 1, 1) + dt.timedelta(days=k),
            perempuan=False,
            nomor_urut=k + 1,
        )
        for k in range(KEYS)
    ]
    settings = load_settings()
    producer = EventProducer(
        app="faults", opd="dukcapil", settings=settings, topic_of=lambda _: topic
    )
    async with producer:
        print(
            f"started at {done}, spooling={producer.spooling}, spooled={producer.spooled}",
            flush=True,
        )
        with ids_file.open("a") as out:
            i = done
            while i < total:
                batch = [
                    Event(
                        data=model.model_validate(
                            {
                                **base,
                                "nik": niks[key_of(j)],
                                "nomor_akta_kematian": f"3273-KM-10062025-{j % 10000:04d}",
                            }
                        ),
                        id=event_id(j),
                    )
                    for j in range(i, min(i + BATCH, total))
                ]
                deliveries = await producer.send_many(batch)
                out.write(
                    "".join(
                        f"{j} {d.event_id} {d.status}\n" for j, d in enumerate(deliveries, start=i)
                    )
                )
                out.flush()  # in the page cache: survives SIGKILL of this process
                i += len(batch)
                await asyncio.sleep(PAUSE_S)
        await producer.flush(300)
        print("all sent and flushed", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    ids = Path(sys.argv[3])
    recorded = len(ids.read_text().splitlines()) if ids.exists() else 0
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), ids, recorded))
