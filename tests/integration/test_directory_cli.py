"""The directory's command line against the real database, broker and schema registry.

Each test gets a fresh database; the commands run in-process through ``CliRunner`` with
``LINTAS_*`` pointing at it (one test runs the real ``lintas`` process to see what a user
sees on an error).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from lintas.cli import app
from lintas.deploy.local._process import free_port
from lintas.directory import Directory
from lintas.endpoints import Endpoints
from lintas.exceptions import LintasError
from lintas.kafka import KafkaConnection, create_producer
from lintas.schemas import AvroSerializer, example_event, load_catalog
from lintas.schemas.publish import register_catalog
from lintas.schemas.registry import SchemaRegistryClient
from lintas.settings import KafkaSettings, Settings
from lintas.topics import DIRECTORY_TOPIC, desired_topics, sync_topics

KEMATIAN = "dukcapil.kematian_dicatat.v1"
PSE = "000123.01/DJAI.PSE/07/2022"
PURPOSE = "Penghentian bansos bagi penerima yang meninggal (UU 27/2022 Pasal 20)."

Cli = Callable[..., Result]


def _env(endpoints: Endpoints, registry_url: str, pg_dsn: str, data_dir: Path) -> dict[str, str]:
    return {
        "LINTAS_PG_DSN": pg_dsn,
        "LINTAS_DATA_DIR": str(data_dir),
        "LINTAS_REGISTRY_URL": registry_url,
        "LINTAS_KAFKA_BOOTSTRAP": endpoints.kafka.bootstrap,
        "LINTAS_KAFKA__USERNAME": endpoints.kafka.username,
        "LINTAS_KAFKA__PASSWORD": endpoints.kafka.password,
        "LINTAS_KAFKA__SASL_MECHANISM": endpoints.kafka.sasl_mechanism,
        # Principals this test's `apps add` provisions stay apart from everyone else's.
        "LINTAS_SECURITY__PRINCIPAL_PREFIX": f"t{uuid.uuid4().hex[:8]}.",
    }


@pytest.fixture
def cli(endpoints: Endpoints, registry_url: str, fresh_db: str, tmp_path: Path) -> Cli:
    """``cli("apps", "list", "--json")`` runs one command on this test's database."""
    base = _env(endpoints, registry_url, fresh_db, tmp_path / "data")
    # Nothing from the caller's environment (a password file, say) may leak in.
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LINTAS_")}

    def run(*args: str, **env: str) -> Result:
        return CliRunner().invoke(app, list(args), env={**cleared, **base, **env})

    return run


@pytest.fixture(scope="module")
def _topics(endpoints: Endpoints) -> None:
    """The directory topic and Dukcapil's death topic exist (the broker never auto-creates)."""
    wanted = {DIRECTORY_TOPIC, load_catalog().get(KEMATIAN).topic}
    specs = [
        s for s in desired_topics(KafkaSettings(), event_types=load_catalog()) if s.name in wanted
    ]
    asyncio.run(sync_topics(endpoints.kafka, specs))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"{result.output}\n{result.stderr}\n{result.exception!r}"
    return result


def data(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def refused(result: Result) -> str:
    """The error a user sees: exit code 1 and the message the CLI's main prints."""
    assert result.exit_code == 1, result.output
    exc = result.exception
    if isinstance(exc, LintasError):
        return f"{exc.message} {exc.hint or ''}"
    return result.stderr  # commands that print their own refusal (typer.Exit(1))


def _with_directory(fresh_db: str, tmp_path: Path, work: Callable[[Directory], Any]) -> Any:
    async def run() -> Any:
        settings = Settings(data_dir=tmp_path / "data", pg_dsn=fresh_db)
        async with await Directory.open(settings, pg_dsn=fresh_db, publish=False) as d:
            return await work(d)

    return asyncio.run(run())


def _seed(cli: Cli) -> None:
    ok(cli("opd", "add", "dukcapil", "--name", "Dinas Kependudukan dan Pencatatan Sipil"))
    ok(cli("opd", "add", "dinsos", "--name", "Dinas Sosial", "--contact", "ops@dinsos"))


def _add_siak(cli: Cli, *extra: str) -> dict[str, Any]:
    added: dict[str, Any] = data(
        cli(
            "apps", "add", "siak", "--name", "SIAK Terpusat", "--opd", "dukcapil",
            "--method", "sdk", "--pse-number", PSE, "--produces", KEMATIAN, "--json", *extra,
        )
    )  # fmt: skip
    return added


@pytest.mark.usefixtures("_topics")
def test_onboarding_an_application_from_opd_to_integrated(
    cli: Cli, fresh_db: str, tmp_path: Path
) -> None:
    _seed(cli)
    opds = data(cli("opd", "list", "--json"))
    assert [o["code"] for o in opds] == ["dinsos", "dukcapil"]
    assert opds[0]["pemda_code"] == "32.73" and opds[0]["contact"] == "ops@dinsos"
    assert "Dinas Sosial" in ok(cli("opd", "list")).stdout

    # The key is in the JSON of `apps add`, and in its human output with the warning.
    added = _add_siak(cli, "--platform", "Java 8 / Oracle", "--status", "testing")
    assert added["application"]["status"] == "testing"
    first = added["api_key"]
    assert first["token"].startswith(f"lk_{first['key_id']}_")
    human = ok(
        cli("apps", "add", "simpus", "--name", "SIMPUS", "--opd", "dukcapil", "--method", "gateway")
    )
    assert "not shown again" in human.stdout
    assert "lk_" in human.stdout

    # Never again: not in show (human or JSON), not in list.
    for args in (("apps", "show", "siak"), ("apps", "show", "siak", "--json"), ("apps", "list")):
        out = ok(cli(*args)).stdout
        assert first["token"] not in out and first["token"].split("_")[2] not in out
    shown = data(cli("apps", "show", "siak", "--json"))
    assert [k["key_id"] for k in shown["keys"]] == [first["key_id"]]
    assert shown["keys"][0]["state"] == "active" and "token" not in shown["keys"][0]
    assert shown["computed_status"] == "testing" and not shown["integrated"]

    # The key works (the gateway's path), and events flowing make the app integrated.
    async def use(d: Directory) -> None:
        assert (await d.verify_api_key(first["token"])).id == "siak"
        await d.record_activity("siak", produced=4)

    _with_directory(fresh_db, tmp_path, use)
    listed = {a["id"]: a for a in data(cli("apps", "list", "--opd", "dukcapil", "--json"))}
    assert listed["siak"]["computed_status"] == "integrated" and listed["siak"]["integrated"]
    assert listed["siak"]["status"] == "testing"  # the stage an operator set stays as set
    assert listed["simpus"]["computed_status"] == "planned"
    shown = data(cli("apps", "show", "siak", "--json"))
    assert shown["activity"]["produced_in_window"] == 4
    assert shown["activity"]["last_produced_at"] is not None
    assert shown["keys"][0]["last_used_at"] is not None
    assert "integrated" in ok(cli("apps", "list")).stdout

    # Rotation: a new key once, the old one expires after the overlap.
    rotated = data(cli("apps", "rotate-key", "siak", "--overlap", "24h", "--json"))
    second = rotated["api_key"]
    keys = {k["key_id"]: k for k in data(cli("apps", "show", "siak", "--json"))["keys"]}
    expires = dt.datetime.fromisoformat(keys[first["key_id"]]["expires_at"])
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    assert keys[second["key_id"]]["expires_at"] is None
    assert second["token"] not in ok(cli("apps", "show", "siak")).stdout

    # Revoking the last key of an app in use needs --force.
    async def use_second(d: Directory) -> None:
        await d.verify_api_key(second["token"])

    _with_directory(fresh_db, tmp_path, use_second)
    assert data(cli("apps", "revoke", "siak", "--key", first["key_id"], "--json"))["revoked"] == [
        first["key_id"]
    ]
    warning = refused(cli("apps", "revoke", "siak"))
    assert "last active key" in warning and "--force" in warning
    assert data(cli("apps", "show", "siak", "--json"))["keys"][1]["state"] == "active"
    forced = data(cli("apps", "revoke", "siak", "--force", "--json"))
    assert forced["revoked"] == [second["key_id"]]

    updated = data(cli("apps", "update", "simpus", "--platform", "PHP 7", "--json"))
    assert updated["platform"] == "PHP 7" and updated["method"] == "gateway"
    retired = data(cli("apps", "retire", "simpus", "--json"))
    assert retired["status"] == "retired"
    simpus = data(cli("apps", "show", "simpus", "--json"))
    assert simpus["computed_status"] == "retired"
    assert all(k["state"] == "revoked" for k in simpus["keys"])
    assert data(cli("directory", "status", "--json"))["pending_changes"] == 0


@pytest.mark.usefixtures("_topics")
def test_subscribers_and_subscriptions(cli: Cli, fresh_db: str, tmp_path: Path) -> None:
    _seed(cli)
    added = data(
        cli(
            "subscribers", "add", "sikesra", "--opd", "dinsos", "--mode", "webhook",
            "--url", "https://sikesra.bandungkota.go.id/hooks/lintas", "--json",
        )
    )  # fmt: skip
    secret = added["signing_secret"]
    assert secret.startswith("whsec_")
    assert added["subscriber"]["webhook_url"].endswith("/hooks/lintas")
    kafka_sub = ok(cli("subscribers", "add", "bapenda-pbb", "--opd", "dinsos", "--mode", "kafka"))
    assert "whsec_" not in kafka_sub.stdout

    shown = data(cli("subscribers", "show", "sikesra", "--json"))
    assert shown["delivery_topic"] == "lintas.deliver.sikesra"
    assert secret not in json.dumps(shown) and secret not in ok(cli("subscribers", "list")).stdout

    rotated = data(cli("subscribers", "rotate-secret", "sikesra", "--overlap", "1h", "--json"))
    newer = rotated["signing_secret"]
    assert newer != secret
    secrets = _with_directory(fresh_db, tmp_path, lambda d: d.webhook_secrets("sikesra"))
    assert secrets == [newer, secret]  # both sign during the overlap
    for verb, status in (("pause", "paused"), ("disable", "disabled"), ("resume", "active")):
        assert data(cli("subscribers", verb, "sikesra", "--json"))["status"] == status
    by_name = {s["name"]: s for s in data(cli("subscribers", "list", "--json"))}
    assert by_name["bapenda-pbb"]["mode"] == "kafka" and by_name["sikesra"]["status"] == "active"

    sub = data(
        cli(
            "subscriptions", "add", "kematian-untuk-dinsos", "--subscriber", "sikesra",
            "--event-type", KEMATIAN, "--field", "nik", "--field", "tanggal_kematian",
            "--purpose", PURPOSE, "--where", "jenis_kelamin=PEREMPUAN", "--wilayah", "32.73",
            "--json",
        )
    )  # fmt: skip
    assert sub["fields"] == ["nik", "tanggal_kematian"]
    assert sub["filter"] == {
        "equals": {"jenis_kelamin": "PEREMPUAN"},
        "kode_wilayah_prefix": "32.73",
    }
    assert sub["purpose"] == PURPOSE
    everything = data(
        cli(
            "subscriptions", "add", "semua-dukcapil", "--subscriber", "bapenda-pbb",
            "--event-type", "dukcapil.*", "--field", "*", "--purpose", PURPOSE, "--json",
        )
    )  # fmt: skip
    assert everything["fields"] == ["*"] and everything["filter"]["equals"] == {}

    listed = data(cli("subscriptions", "list", "--subscriber", "sikesra", "--json"))
    assert [s["name"] for s in listed] == ["kematian-untuk-dinsos"]
    assert data(cli("subscribers", "show", "sikesra", "--json"))["subscriptions"] == [
        "kematian-untuk-dinsos"
    ]
    assert PURPOSE[:20] in ok(cli("subscriptions", "show", "kematian-untuk-dinsos")).stdout

    changed = data(
        cli(
            "subscriptions", "update", "kematian-untuk-dinsos", "--field", "nik",
            "--wilayah", "32.73.01", "--json",
        )
    )  # fmt: skip
    assert changed["fields"] == ["nik"]
    assert changed["filter"] == {
        "equals": {"jenis_kelamin": "PEREMPUAN"},
        "kode_wilayah_prefix": "32.73.01",
    }
    cleared = data(
        cli("subscriptions", "update", "kematian-untuk-dinsos", "--clear-filter", "--json")
    )
    assert cleared["filter"] == {"equals": {}, "kode_wilayah_prefix": None}
    assert data(cli("subscriptions", "pause", "semua-dukcapil", "--json"))["status"] == "paused"
    assert data(cli("subscriptions", "resume", "semua-dukcapil", "--json"))["status"] == "active"
    assert data(cli("subscriptions", "remove", "semua-dukcapil", "--json"))["removed"]["name"] == (
        "semua-dukcapil"
    )
    assert [s["name"] for s in data(cli("subscriptions", "list", "--json"))] == [
        "kematian-untuk-dinsos"
    ]


@pytest.mark.usefixtures("_topics")
def test_bad_input_is_refused_naming_the_field_and_rule(cli: Cli) -> None:
    _seed(cli)
    _add_siak(cli)
    ok(cli("subscribers", "add", "sikesra", "--opd", "dinsos", "--mode", "kafka"))

    def app_add(*args: str) -> str:
        return refused(cli("apps", "add", *args))

    message = app_add("simpus", "--name", "SIMPUS", "--opd", "dinkes", "--method", "sdk")
    assert "opd: is not a registered OPD" in message and "'dinkes'" in message
    message = app_add(
        "simpus", "--name", "SIMPUS", "--opd", "dukcapil", "--method", "sdk",
        "--pse-number", "PSE-2022-1",
    )  # fmt: skip
    assert "pse_number: must be a Kominfo PSE registration number" in message
    assert "'PSE-2022-1'" in message
    message = app_add("siak", "--name", "Another", "--opd", "dukcapil", "--method", "sdk")
    assert "id 'siak' already exists" in message
    message = app_add("other", "--name", "siak terpusat", "--opd", "dukcapil", "--method", "sdk")
    assert "name 'siak terpusat' already exists" in message
    message = app_add(
        "simpus", "--name", "SIMPUS", "--opd", "dukcapil", "--method", "sdk",
        "--produces", "dukcapil.tidak_ada.v1",
    )  # fmt: skip
    assert "produces: names an event type that is not in the catalog" in message
    message = refused(cli("opd", "add", "dukcapil", "--name", "Disdukcapil Lagi"))
    assert "code 'dukcapil' already exists" in message
    message = refused(cli("opd", "add", "dinkes", "--name", "Dinkes", "--pemda-code", "99.99"))
    assert "pemda_code:" in message

    message = refused(
        cli(
            "subscribers", "add", "sipd", "--opd", "dinsos", "--mode", "webhook",
            "--url", "ftp://sipd.example/hook",
        )
    )  # fmt: skip
    assert "webhook_url: must be an http(s) URL" in message
    message = refused(cli("subscribers", "add", "sikesra", "--opd", "dinsos", "--mode", "kafka"))
    assert "name 'sikesra' already exists" in message

    def sub_add(*args: str) -> str:
        return refused(
            cli(
                "subscriptions", "add", "uji", "--subscriber", "sikesra", "--purpose", PURPOSE,
                *args,
            )
        )  # fmt: skip

    message = sub_add("--event-type", "dukcapil.tidak_ada.v1", "--field", "nik")
    assert "event_types: matches no event type of the catalog" in message
    message = sub_add("--event-type", KEMATIAN, "--field", "nik", "--field", "gaji")
    assert f"fields: is not a field of {KEMATIAN}" in message and "'gaji'" in message
    message = sub_add("--event-type", KEMATIAN, "--field", "nik", "--where", "agama=ISLAM")
    assert "filter.equals.agama: is not a field" in message
    message = sub_add("--event-type", KEMATIAN, "--field", "nik", "--where", "jenis_kelamin")
    assert "--where" in message and "FIELD=VALUE" in message
    message = sub_add("--event-type", KEMATIAN, "--field", "nik", "--wilayah", "99.99")
    assert "filter.kode_wilayah_prefix:" in message
    message = refused(cli("apps", "rotate-key", "siak", "--overlap", "a week"))
    assert "--overlap" in message and "30m, 24h or 7d" in message
    message = refused(cli("apps", "show", "tidak-ada"))
    assert "No application named 'tidak-ada'" in message and "lintas apps list" in message
    # Nothing half-written.
    assert [a["id"] for a in data(cli("apps", "list", "--json"))] == ["siak"]
    assert data(cli("subscriptions", "list", "--json")) == []


def test_an_error_is_one_paragraph_without_traceback(
    endpoints: Endpoints, registry_url: str, fresh_db: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINTAS_")}
    env.update(_env(endpoints, registry_url, fresh_db, tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, "-m", "lintas.cli", "subscriptions", "add", "x-1", "--subscriber",
         "nobody", "--event-type", KEMATIAN, "--field", "nik", "--purpose", PURPOSE],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "subscriber: is not a registered subscriber (got 'nobody')" in result.stderr
    # Rules quoting patterns survive printing (they are not read as rich markup).
    result = subprocess.run(
        [sys.executable, "-m", "lintas.cli", "opd", "add", "Bad Code", "--name", "X"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "[a-z]" in result.stderr


@pytest.mark.usefixtures("_topics")
def test_changes_are_kept_while_kafka_is_down_and_published_later(cli: Cli) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    saved = cli("opd", "add", "dukcapil", "--name", "Disdukcapil", LINTAS_KAFKA_BOOTSTRAP=down)
    assert saved.exit_code == 0, saved.output
    assert "saved but not yet published" in saved.stderr
    assert "lintas directory publish" in saved.stderr
    assert [o["code"] for o in data(cli("opd", "list", "--json"))] == ["dukcapil"]
    pending = data(cli("directory", "status", "--json"))["pending_changes"]
    assert pending >= 1

    message = refused(cli("directory", "publish", LINTAS_KAFKA_BOOTSTRAP=down))
    assert f"{pending} change(s) stay saved and pending" in message
    assert data(cli("directory", "publish", "--json")) == {"published": pending, "pending": 0}
    status = ok(cli("directory", "status"))
    assert "pending" in status.stdout and "not yet on" not in status.stdout


async def _produce(
    conn: KafkaConnection, registry_url: str, records: list[tuple[str, dict[str, Any] | bytes]]
) -> None:
    """Produce (event id, record or raw bytes) to the death topic with a ``ce_id`` header."""
    kematian = load_catalog().get(KEMATIAN)
    async with SchemaRegistryClient(registry_url) as registry:
        await register_catalog(registry, [kematian])
        serializer = AvroSerializer(registry)
        producer = create_producer(conn)
        await producer.start()
        try:
            for event_id, record in records:
                value = (
                    record
                    if isinstance(record, bytes)
                    else await serializer.serialize(kematian, record)
                )
                await producer.send_and_wait(
                    kematian.topic,
                    value=value,
                    key=b"uji",
                    headers=[("ce_id", event_id.encode()), ("ce_type", KEMATIAN.encode())],
                )
        finally:
            await producer.stop()


def _death(jenis_kelamin: str, kode_wilayah: str) -> dict[str, Any]:
    record = example_event(KEMATIAN)
    record.update(jenis_kelamin=jenis_kelamin, kode_wilayah=kode_wilayah)
    return record


@pytest.mark.usefixtures("_topics")
def test_subscription_test_shows_what_would_be_delivered(
    cli: Cli, endpoints: Endpoints, registry_url: str
) -> None:
    _seed(cli)
    ok(cli("subscribers", "add", "sikesra", "--opd", "dinsos", "--mode", "kafka"))
    ok(
        cli(
            "subscriptions", "add", "kematian-perempuan", "--subscriber", "sikesra",
            "--event-type", "dukcapil.kematian_*", "--field", "nik", "--field", "tanggal_kematian",
            "--purpose", PURPOSE, "--where", "jenis_kelamin=PEREMPUAN", "--wilayah", "32.73",
        )
    )  # fmt: skip
    run = uuid.uuid4().hex
    expected = {
        f"{run}-match-1": _death("PEREMPUAN", "32.73.01.1001"),
        f"{run}-match-2": _death("PEREMPUAN", "32.73.02.1002"),
        f"{run}-other-sex": _death("LAKI_LAKI", "32.73.01.1001"),
        f"{run}-other-region": _death("PEREMPUAN", "32.04.01.2001"),
    }
    garbage = {f"{run}-garbage": b"not avro at all", f"{run}-bad-id": b"\x00\x7f\xff\xff\xf0abc"}
    asyncio.run(_produce(endpoints.kafka, registry_url, [*expected.items(), *garbage.items()]))

    report = data(cli("subscriptions", "test", "kematian-perempuan", "--limit", "500", "--json"))
    topic = load_catalog().get(KEMATIAN).topic
    [read] = report["topics"]
    assert (read["event_type"], read["topic"], read["exists"], read["complete"]) == (
        KEMATIAN,
        topic,
        True,
        True,
    )
    mine = {r["event_id"]: r for r in report["records"] if (r["event_id"] or "").startswith(run)}
    assert set(mine) == {*expected, *garbage}
    for event_id in (f"{run}-match-1", f"{run}-match-2"):
        record = expected[event_id]
        assert mine[event_id]["outcome"] == "matched"
        assert mine[event_id]["delivered"] == {
            "nik": record["nik"],
            "tanggal_kematian": record["tanggal_kematian"].isoformat(),
        }
    for event_id in (f"{run}-other-sex", f"{run}-other-region"):
        assert mine[event_id]["outcome"] == "not_matched" and mine[event_id]["delivered"] is None
    for event_id in garbage:
        assert mine[event_id]["outcome"] == "undecodable" and mine[event_id]["reason"]
    assert "magic byte" in mine[f"{run}-garbage"]["reason"]
    assert "2147483632" in mine[f"{run}-bad-id"]["reason"]  # an id the registry never issued
    # Data minimisation holds for every record shown, not only ours.
    for r in report["records"]:
        if r["outcome"] == "matched":
            assert set(r["delivered"]) <= {"nik", "tanggal_kematian"}
    counts = report["counts"]
    assert counts["matched"] >= 2 and counts["not_matched"] >= 2 and counts["undecodable"] >= 2
    assert sum(counts.values()) == len(report["records"]) == read["read"]

    # A paused subscription is shown as if it were active; tables for humans.
    ok(cli("subscriptions", "pause", "kematian-perempuan"))
    human = ok(cli("subscriptions", "test", "kematian-perempuan", "--limit", "500")).stdout
    assert "shown as if it were active" in human and "matched" in human
    assert "undecodable" in human

    limited = data(cli("subscriptions", "test", "kematian-perempuan", "--limit", "3", "--json"))
    assert limited["topics"][0]["read"] == 3 == len(limited["records"])


@pytest.mark.usefixtures("_topics")
def test_subscription_test_with_kafka_down_fails_clearly(cli: Cli) -> None:
    _seed(cli)
    ok(cli("subscribers", "add", "sikesra", "--opd", "dinsos", "--mode", "kafka"))
    ok(
        cli(
            "subscriptions", "add", "kematian", "--subscriber", "sikesra",
            "--event-type", KEMATIAN, "--field", "nik", "--purpose", PURPOSE,
        )
    )  # fmt: skip
    down = f"127.0.0.1:{free_port()}"
    message = refused(
        cli("subscriptions", "test", "kematian", "--json", LINTAS_KAFKA_BOOTSTRAP=down)
    )
    assert f"Kafka at {down} did not answer" in message and "lintas status" in message


@pytest.mark.usefixtures("_topics")
def test_export_and_import_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    _seed(cli)
    first_key = _add_siak(cli)["api_key"]["token"]
    exported = tmp_path / "directory.yaml"
    ok(cli("directory", "export", str(exported)))
    text = exported.read_text()
    assert "id: siak" in text and "lk_" not in text and first_key not in text
    assert ok(cli("directory", "export")).stdout == text  # stdout when no file is given

    doc = yaml.safe_load(text)
    doc["opds"][0]["contact"] = "dinsos@bandung.go.id"
    doc["applications"].append({"id": "sipd", "name": "SIPD", "opd": "dinsos", "method": "gateway"})
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(doc, sort_keys=False))

    dry = data(cli("directory", "import", str(edited), "--dry-run", "--json"))
    assert dry["dry_run"] and dry["result"] is None and dry["plan"]["has_changes"]
    assert (dry["plan"]["counts"]["create"], dry["plan"]["counts"]["update"]) == (1, 1)
    assert [a["id"] for a in data(cli("apps", "list", "--json"))] == ["siak"]
    assert "+ application sipd" in ok(cli("directory", "import", str(edited), "--dry-run")).stdout

    applied = data(cli("directory", "import", str(edited), "--json"))
    [key] = applied["result"]["api_keys"]
    assert key["app_id"] == "sipd" and key["token"].startswith("lk_")
    assert [a["id"] for a in data(cli("apps", "list", "--json"))] == ["sipd", "siak"]
    assert data(cli("opd", "list", "--json"))[0]["contact"] == "dinsos@bandung.go.id"
    again = data(cli("directory", "import", str(edited), "--json"))
    assert not again["plan"]["has_changes"] and again["result"] is None

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nopds:\n  - code: Bad Code\n")
    message = refused(cli("directory", "import", str(bad), "--dry-run"))
    assert "opds[0].code:" in message and "opds[0].name: Field required" in message
    message = refused(cli("directory", "import", str(tmp_path / "missing.yaml")))
    assert "FILE" in message and "cannot be read" in message
