"""The demo directory file and the simulated applications stay in step."""

from __future__ import annotations

from lintas.demo import DEMO_APPS, Channel
from lintas.demo.apps import demo_directory_text
from lintas.demo.bootstrap import _with_receiver, webhook_subscribers
from lintas.directory import DirectoryData, IntegrationMethod, diff_directory, load_yaml
from lintas.schemas import load_catalog

DATA = load_yaml(demo_directory_text())


def test_the_demo_pemda_is_big_enough() -> None:
    assert len(DATA.opds) >= 7
    assert len(DATA.applications) >= 10
    assert {o.pemda_code for o in DATA.opds} == {"32.73"}


def test_every_simulated_app_is_registered_as_it_publishes() -> None:
    registered = {a.id: a for a in DATA.applications}
    assert {a.app_id for a in DEMO_APPS} == set(registered)
    for app in DEMO_APPS:
        entry = registered[app.app_id]
        assert entry.opd == app.opd
        assert entry.method is IntegrationMethod(app.channel.value)
        # The gateway refuses types an application is not registered to produce.
        assert set(app.event_types) <= set(entry.produces)
    assert {a.channel for a in DEMO_APPS} == {Channel.SDK, Channel.GATEWAY}


def test_the_file_imports_into_an_empty_directory() -> None:
    data = _with_receiver(DATA, lambda name: f"http://127.0.0.1:8765/{name}")
    plan = diff_directory(DirectoryData(), data, catalog=load_catalog())
    assert plan.counts()["create"] == (
        len(DATA.opds) + len(DATA.applications) + len(DATA.subscribers) + len(DATA.subscriptions)
    )
    urls = {s.name: s.webhook_url for s in data.subscribers if s.webhook_url}
    assert urls == {name: f"http://127.0.0.1:8765/{name}" for name in webhook_subscribers()}


def test_the_story_has_its_subscriptions() -> None:
    subscribers = {s.name: s for s in DATA.subscribers}
    by_name = {s.name: s for s in DATA.subscriptions}
    dinsos = by_name["dinsos-kematian"]
    assert dinsos.event_types == ("dukcapil.kematian_dicatat.v1",)
    assert subscribers[dinsos.subscriber].mode.value == "webhook"
    bapenda = by_name["bapenda-kematian"]
    assert subscribers[bapenda.subscriber].name == "bapenda-epad"
    assert subscribers["bapenda-epad"].mode.value == "kafka"
    # Data minimisation: neither gets the cause of death or the reporter's NIK.
    for sub in (dinsos, bapenda):
        assert not {"sebab_kematian", "nik_pelapor"} & set(sub.fields)
