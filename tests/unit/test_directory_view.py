"""The live directory's logic without a broker: decoding records, applying them, verifying
keys and routing from a snapshot."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from lintas.directory import (
    AppStatus,
    DirectoryChange,
    DirectorySnapshot,
    DirectoryView,
    EntityKind,
    InvalidApiKey,
    MalformedChange,
    Opd,
    Subscription,
    decode_change,
    entity_key,
    parse_entry,
)
from lintas.directory._applications import ApplicationsMixin
from lintas.directory._outbox import encode_snapshot
from lintas.directory._secrets import new_api_key
from lintas.directory._subscribers import SubscribersMixin
from lintas.kafka import KafkaConnection
from lintas.schemas import example_event

KEMATIAN = "dukcapil.kematian_dicatat.v1"
NOW = dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.UTC)

# The writer's own encoders, so the record format these tests read cannot drift from it.
_opd_snapshot = ApplicationsMixin._opd_snapshot
_app_snapshot = ApplicationsMixin._app_snapshot
_key_snapshot = ApplicationsMixin._key_snapshot
_sub_snapshot = SubscribersMixin._sub_snapshot


def _record(key: str, snapshot: Any) -> DirectoryChange:
    return decode_change(key.encode(), encode_snapshot(snapshot))


def _opd(code: str = "dukcapil", name: str = "Disdukcapil") -> DirectoryChange:
    opd = Opd(code=code, name=name, pemda_name="Kota Bandung", pemda_code="32.73")
    return _record(entity_key("opd", code), _opd_snapshot(opd))


def _app(status: str = "testing") -> DirectoryChange:
    data = {"id": "siak", "name": "SIAK", "opd": "dukcapil", "method": "sdk",
            "status": status, "produces": [KEMATIAN]}  # fmt: skip
    return _record("app:siak", {"kind": "app", "data": data})


def _key(
    *, expires_at: dt.datetime | None = None, revoked_at: dt.datetime | None = None
) -> tuple[str, DirectoryChange]:
    key_id, token, digest = new_api_key()
    row = {"id": key_id, "app_id": "siak", "secret_sha256": digest,
           "created_at": NOW - dt.timedelta(days=1), "expires_at": expires_at,
           "revoked_at": revoked_at}  # fmt: skip
    return token, _record(entity_key("key", key_id), _key_snapshot(row))


def _subscriber(name: str = "sikesra", status: str = "active") -> DirectoryChange:
    data = {"name": name, "opd": "dinsos", "mode": "webhook",
            "webhook_url": f"https://{name}.example/hook", "status": status}  # fmt: skip
    return _record(
        entity_key("subscriber", name),
        {"kind": "subscriber", "data": data, "secret_ids": ["a1", "b2"]},
    )


def _subscription(**over: Any) -> DirectoryChange:
    sub = parse_entry(
        Subscription,
        {
            "name": "kematian-dinsos",
            "subscriber": "sikesra",
            "event_types": ["dukcapil.kematian_*"],
            "fields": ["nik", "tanggal_kematian"],
            "filter": {"kode_wilayah_prefix": "32.73"},
            "purpose": "Penghentian bansos bagi penerima yang meninggal.",
            **over,
        },
    )
    return _record(entity_key("subscription", sub.name), _sub_snapshot(sub))


def test_records_as_the_directory_writes_them_build_a_typed_snapshot() -> None:
    token, key = _key()
    snap = DirectorySnapshot().applied(
        [_opd(), _opd("dinsos", "Dinas Sosial"), _app(), key, _subscriber(), _subscription()]
    )
    assert sorted(snap.opds) == ["dinsos", "dukcapil"]
    assert snap.applications["siak"].produces == (KEMATIAN,)
    assert snap.subscriptions["kematian-dinsos"].filter.kode_wilayah_prefix == "32.73"
    assert snap.webhook_secret_ids["sikesra"] == ("a1", "b2")
    entry = snap.api_keys[key.name]
    assert entry.app_id == "siak" and len(entry.secret_sha256) == 32
    assert entry.created_at is not None and entry.created_at.tzinfo is not None
    assert token.split("_")[-1] not in repr(entry)  # only the hash travels
    data = snap.to_data()
    assert [o.code for o in data.opds] == ["dinsos", "dukcapil"]
    assert [s.name for s in data.subscriptions] == ["kematian-dinsos"]


def test_later_records_replace_earlier_ones_and_a_tombstone_removes() -> None:
    first = DirectorySnapshot().applied([_subscriber(), _subscription()])
    changed = first.applied([_subscription(fields=["nik"])])
    assert changed.subscriptions["kematian-dinsos"].fields == ("nik",)
    assert first.subscriptions["kematian-dinsos"].fields == ("nik", "tanggal_kematian")

    tombstone = decode_change(b"subscription:kematian-dinsos", None)
    assert tombstone.kind is EntityKind.SUBSCRIPTION and tombstone.value is None
    removed = changed.applied([tombstone])
    assert "kematian-dinsos" not in removed.subscriptions
    assert "sikesra" in removed.subscribers
    # A tombstone of something never seen (compacted away) is harmless.
    assert removed.applied([decode_change("opd:dinkes", None)]).opds == removed.opds
    gone = removed.applied([decode_change("subscriber:sikesra", None)])
    assert "sikesra" not in gone.subscribers and "sikesra" not in gone.webhook_secret_ids


def test_fields_a_newer_publisher_adds_are_ignored() -> None:
    value = {"kind": "opd", "data": {"code": "dinkes", "name": "Dinas Kesehatan",
             "pemda_name": "Kota Bandung", "pemda_code": "32.73", "logo": "x.png"}}  # fmt: skip
    change = decode_change(b"opd:dinkes", orjson.dumps(value))
    assert isinstance(change.value, Opd) and change.value.name == "Dinas Kesehatan"


_GOOD_OPD = {"code": "dinkes", "name": "Dinkes", "pemda_name": "Kota Bandung",
             "pemda_code": "32.73"}  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, b"{}", "no key"),
        (b"\xff\xfe", b"{}", "not UTF-8"),
        (b"dinkes", b"{}", "<kind>:<name>"),
        (b"principal:dinkes", b"{}", "unknown kind 'principal'"),
        (b"opd:dinkes", b"{not json", "not JSON"),
        (b"opd:dinkes", b"[1, 2]", '"data"'),
        (b"opd:dinkes", orjson.dumps({"kind": "app", "data": _GOOD_OPD}), "does not match"),
        (b"opd:dinsos", orjson.dumps({"kind": "opd", "data": _GOOD_OPD}), "data.code"),
        (
            b"opd:dinkes",
            orjson.dumps({"kind": "opd", "data": {**_GOOD_OPD, "pemda_code": "99.99"}}),
            "data.pemda_code",
        ),
        (
            b"key:abc",
            orjson.dumps(
                {"kind": "key", "data": {"key_id": "abc", "app_id": "siak", "secret_sha256": "zz"}}
            ),
            "data.secret_sha256",
        ),
        (
            b"subscriber:sikesra",
            orjson.dumps({"kind": "subscriber", "data": {}}),
            "data.name: Field required",
        ),
        (
            b"subscriber:sikesra",
            orjson.dumps(
                {
                    "kind": "subscriber",
                    "secret_ids": "a1",
                    "data": {"name": "sikesra", "opd": "dinsos", "mode": "kafka"},
                }
            ),
            "secret_ids must be a list",
        ),
    ],
)
def test_malformed_records_are_refused_naming_what_is_wrong(
    key: bytes | None, value: bytes, reason: str
) -> None:
    with pytest.raises(MalformedChange) as exc:
        decode_change(key, value)
    assert reason in str(exc.value)


def _keyed(token_changes: list[tuple[str, DirectoryChange]], *rest: DirectoryChange) -> Any:
    return DirectorySnapshot().applied([_app(), *(c for _, c in token_changes), *rest])


def test_key_verification_from_a_snapshot_follows_the_directory_rule() -> None:
    good, expiring, revoked = (
        _key(),
        _key(expires_at=NOW + dt.timedelta(hours=1)),
        _key(revoked_at=NOW - dt.timedelta(minutes=1)),
    )
    snap = _keyed([good, expiring, revoked])
    assert snap.verify_api_key(good[0], now=NOW).id == "siak"
    assert snap.verify_api_key(expiring[0], now=NOW).id == "siak"  # still in the overlap
    with pytest.raises(InvalidApiKey, match="expired"):
        snap.verify_api_key(expiring[0], now=NOW + dt.timedelta(hours=2))
    with pytest.raises(InvalidApiKey, match="revoked"):
        snap.verify_api_key(revoked[0], now=NOW)
    with pytest.raises(InvalidApiKey, match="unknown key"):
        snap.verify_api_key(good[0][:-4] + "AAAA", now=NOW)  # wrong secret
    with pytest.raises(InvalidApiKey, match="unknown key"):
        snap.verify_api_key(new_api_key()[1], now=NOW)  # id never issued
    with pytest.raises(InvalidApiKey, match="malformed"):
        snap.verify_api_key("Bearer nonsense", now=NOW)

    retired = snap.applied([_app(status=AppStatus.RETIRED.value)])
    with pytest.raises(InvalidApiKey, match="retired"):
        retired.verify_api_key(good[0], now=NOW)
    # A key whose application is unknown here (removed, or not read yet) does not pass.
    orphan = snap.applied([decode_change("app:siak", None)])
    with pytest.raises(InvalidApiKey, match="unknown key"):
        orphan.verify_api_key(good[0], now=NOW)


def test_routing_uses_active_subscriptions_of_active_subscribers_only() -> None:
    record = example_event(KEMATIAN)
    assert record["kode_wilayah"].startswith("32.73.")
    everything = _subscription(
        name="semua-untuk-bapenda", subscriber="sipd", event_types=["*.kematian_dicatat.v1"],
        fields=["*"], filter={},
    )  # fmt: skip
    snap = DirectorySnapshot().applied(
        [_subscriber(), _subscriber("sipd"), _subscription(), everything]
    )
    names = [s.name for s in snap.subscriptions_for(KEMATIAN)]
    assert names == ["kematian-dinsos", "semua-untuk-bapenda"]
    assert snap.subscriptions_for("dinkes.kunjungan_pasien.v1") == ()
    routes = {r.subscription.name: r.payload for r in snap.route(KEMATIAN, record)}
    assert routes["kematian-dinsos"] == {
        "nik": record["nik"],
        "tanggal_kematian": record["tanggal_kematian"],
    }
    assert routes["semua-untuk-bapenda"] == record

    elsewhere = snap.applied([_subscription(filter={"kode_wilayah_prefix": "33.74"})])
    assert [r.subscription.name for r in elsewhere.route(KEMATIAN, record)] == [
        "semua-untuk-bapenda"
    ]
    paused_sub = snap.applied([_subscription(status="paused")])
    assert [s.name for s in paused_sub.subscriptions_for(KEMATIAN)] == ["semua-untuk-bapenda"]
    paused_subscriber = snap.applied([_subscriber("sipd", status="paused")])
    assert [s.name for s in paused_subscriber.subscriptions_for(KEMATIAN)] == ["kematian-dinsos"]
    no_subscriber = snap.applied([decode_change("subscriber:sikesra", None)])
    assert [s.name for s in no_subscriber.subscriptions_for(KEMATIAN)] == ["semua-untuk-bapenda"]
    # The cached answer of the old snapshot is not the new one's.
    assert [s.name for s in snap.subscriptions_for(KEMATIAN)] == [
        "kematian-dinsos",
        "semua-untuk-bapenda",
    ]


def test_a_view_that_is_not_running_serves_nothing() -> None:
    view = DirectoryView(KafkaConnection(bootstrap="127.0.0.1:1", username="u", password="p"))
    with pytest.raises(RuntimeError, match="start"):
        view.snapshot  # noqa: B018
    with pytest.raises(RuntimeError, match="start"):
        view.verify_api_key("lk_000000000000_" + "A" * 43)
    seen: list[str] = []
    remove = view.on_change(lambda key, value: seen.append(key))
    remove()
    remove()  # twice is harmless
