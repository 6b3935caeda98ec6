"""Routing by subscription: the directory's subscriptions decide who receives which event and
which of its fields; a subscription changed in the directory applies without a restart."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from lintas.directory import Directory
from lintas.kafka import KafkaConnection
from lintas.schemas import AvroDeserializer, AvroSerializer, build_nik, load_catalog
from lintas.schemas.examples import village_in
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import Settings
from lintas.streams.testing import (
    StreamsNamespace,
    TopicCollector,
    WorkerProcess,
    create_topics,
    delete_namespace,
    opd_record,
    produce,
    varied_event,
)

CATALOG = load_catalog()
KEMATIAN = CATALOG.get("dukcapil.kematian_dicatat.v1")
IZIN = CATALOG.get("dpmptsp.izin_terbit.v1")
PINDAH = CATALOG.get("dukcapil.pindah_datang.v1")
PURPOSE = "Testing routing with the issue's example subscriptions (UU 27/2022 Pasal 20)."
DINSOS_FIELDS = ["nik", "nomor_kk", "tanggal_kematian", "nomor_akta_kematian", "kode_wilayah"]


async def _directory(dsn: str, kafka: KafkaConnection, topic: str, data_dir: Path) -> Directory:
    settings = Settings(data_dir=data_dir, pg_dsn=dsn)
    directory = await Directory.open(settings, pg_dsn=dsn, kafka=kafka, topic=topic)
    for code, name in [
        ("dukcapil", "Dinas Kependudukan dan Pencatatan Sipil"),
        ("dinsos", "Dinas Sosial"),
        ("bapenda", "Badan Pendapatan Daerah"),
        ("dpmptsp", "Dinas Penanaman Modal dan PTSP"),
        ("disdik", "Dinas Pendidikan"),
        ("dinkes", "Dinas Kesehatan"),
    ]:
        await directory.add_opd(
            {"code": code, "name": name, "pemda_name": "Kota Bandung", "pemda_code": "32.73"}
        )
    for name, opd, mode in [
        ("dinsos-sipbansos", "dinsos", "webhook"),
        ("bapenda-epad", "bapenda", "kafka"),
        ("disdik-dapodik", "disdik", "kafka"),
        ("dinkes-simpus", "dinkes", "webhook"),
    ]:
        url = {"webhook_url": f"https://{opd}.example/hook"} if mode == "webhook" else {}
        await directory.add_subscriber({"name": name, "opd": opd, "mode": mode, **url})
    subscriptions = [
        ("dinsos-kematian", "dinsos-sipbansos", KEMATIAN.id, DINSOS_FIELDS, {}),
        (
            "bapenda-kematian",
            "bapenda-epad",
            KEMATIAN.id,
            ["nik", "tanggal_kematian", "kode_wilayah"],
            {"kode_wilayah_prefix": "32.73"},
        ),
        (
            "bapenda-izin-terbit",
            "bapenda-epad",
            IZIN.id,
            ["nomor_izin", "nib", "npwp", "nama_usaha", "kode_wilayah", "tanggal_terbit"],
            {},
        ),
        (
            "disdik-pindah-datang",
            "disdik-dapodik",
            PINDAH.id,
            ["nik", "nama", "kode_wilayah", "tanggal_datang"],
            {},
        ),
        (
            "dinkes-pindah-datang",
            "dinkes-simpus",
            PINDAH.id,
            ["nik", "kode_wilayah"],
            {"kode_wilayah_prefix": "32.73"},
        ),
    ]
    for name, subscriber, event_type, fields, flt in subscriptions:
        await directory.add_subscription(
            {
                "name": name,
                "subscriber": subscriber,
                "event_types": [event_type],
                "fields": fields,
                "filter": flt,
                "purpose": PURPOSE,
            }
        )
    return directory


async def test_events_reach_their_subscribers_minimised_and_changes_apply_live(
    kafka_conn: KafkaConnection, registry_url: str, fresh_db: str, tmp_path: Path
) -> None:
    ns = StreamsNamespace.fresh(partitions=3, label="o")
    names = ns.names
    await create_topics(
        kafka_conn, [names.source(t.id) for t in (KEMATIAN, IZIN, PINDAH)], partitions=3
    )
    await create_topics(kafka_conn, [names.directory], partitions=1)
    directory = await _directory(fresh_db, kafka_conn, names.directory, tmp_path)
    try:
        async with SchemaRegistryClient(registry_url) as registry:
            serializer = AvroSerializer(registry, auto_register=True)
            bandung = await opd_record(serializer, KEMATIAN, varied_event(KEMATIAN, 1))
            semarang_event = varied_event(KEMATIAN, 2)
            semarang_event["kode_wilayah"] = village_in("33.74.01", 0)
            semarang_event["nik"] = build_nik(
                "33.74.01", dt.date(1948, 8, 21), perempuan=False, nomor_urut=7
            )
            semarang = await opd_record(serializer, KEMATIAN, semarang_event)
            izin = await opd_record(serializer, IZIN, varied_event(IZIN, 3))
            pindah = await opd_record(serializer, PINDAH, varied_event(PINDAH, 4))
            decode = AvroDeserializer(registry).deserialize

            with WorkerProcess(ns.env(), log_path=tmp_path / "worker.log") as worker:
                async with (
                    TopicCollector(kafka_conn, names.deliver("dinsos-sipbansos")) as dinsos,
                    TopicCollector(kafka_conn, names.deliver("bapenda-epad")) as bapenda,
                    TopicCollector(kafka_conn, names.deliver("disdik-dapodik")) as disdik,
                    TopicCollector(kafka_conn, names.deliver("dinkes-simpus")) as dinkes,
                    TopicCollector(kafka_conn, names.canonical(KEMATIAN.id)) as canonical,
                ):
                    await produce(kafka_conn, names.source(KEMATIAN.id), [bandung, semarang])
                    await produce(kafka_conn, names.source(IZIN.id), [izin])
                    await produce(kafka_conn, names.source(PINDAH.id), [pindah])
                    ok = await dinkes.wait_for(
                        lambda _: (
                            dinsos.count >= 2
                            and bapenda.count >= 2
                            and disdik.count >= 1
                            and dinkes.count >= 1
                        ),
                        timeout=180,
                    )
                    assert ok, worker.log_tail()

                    # kematian_dicatat: Dinsos everywhere, Bapenda only in Kota Bandung.
                    assert sorted(dinsos.ids()) == sorted([bandung.event_id, semarang.event_id])
                    assert sorted(bapenda.ids()) == sorted([bandung.event_id, izin.event_id])
                    assert disdik.ids() == [pindah.event_id] and dinkes.ids() == [pindah.event_id]
                    first = next(r for r in dinsos.records if r.header("ce_id") == bandung.event_id)
                    record = await decode(first.value or b"")
                    assert sorted(record) == sorted(DINSOS_FIELDS), "only the allowed fields"
                    assert first.key == bandung.key and first.header("ce_subject")
                    assert first.header("lintas.subscriptions") == "dinsos-kematian"
                    subject = f"{names.deliver('dinsos-sipbansos')}-{KEMATIAN.full_name}"
                    assert subject in await registry.get_subjects()

                    # izin_terbit to Bapenda: no personal data of the person in charge.
                    tax = next(r for r in bapenda.records if r.header("ce_id") == izin.event_id)
                    tax_record = await decode(tax.value or b"")
                    assert "nik_penanggung_jawab" not in tax_record
                    assert "nama_penanggung_jawab" not in tax_record
                    assert tax_record["nomor_izin"] == varied_event(IZIN, 3)["nomor_izin"]

                    # A subscriber that may not see the subject field gets no NIK anywhere.
                    move = await decode(dinkes.records[0].value or b"")
                    assert sorted(move) == ["kode_wilayah", "nik"]

                    # The canonical record is not minimised: every field stays for the store.
                    assert canonical.count == 2

                    # Narrow Dinsos's subscription in the directory; the worker follows live.
                    narrowed = [f for f in DINSOS_FIELDS if f != "nomor_kk"]
                    await directory.update_subscription("dinsos-kematian", fields=narrowed)
                    for attempt in range(120):
                        probe = await opd_record(
                            serializer, KEMATIAN, varied_event(KEMATIAN, 100 + attempt)
                        )
                        await produce(kafka_conn, names.source(KEMATIAN.id), [probe])
                        ok = await dinsos.wait_for(
                            lambda c, i=probe.event_id: i in c.ids(), timeout=60
                        )
                        assert ok, worker.log_tail()
                        got = next(r for r in dinsos.records if r.header("ce_id") == probe.event_id)
                        if "nomor_kk" not in await decode(got.value or b""):
                            break
                        await asyncio.sleep(0.5)
                    else:
                        raise AssertionError("the narrowed subscription never applied")
                    assert sorted(await decode(got.value or b"")) == sorted(narrowed)
                    assert worker.alive, worker.log_tail()
    finally:
        await directory.close()
        await delete_namespace(kafka_conn, ns, registry_url)
