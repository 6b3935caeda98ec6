"""Source files: every rule that needs no database, checked with the line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lintas.producers.capture import ConfigInvalid, Mechanism, load_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "capture"


def _write(tmp_path: Path, body: dict[str, object]) -> Path:
    for mapping in FIXTURES.glob("*.mapping.yaml"):
        (tmp_path / mapping.name).write_text(mapping.read_text())
    path = tmp_path / "source.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


BASE: dict[str, object] = {
    "source": "simda",
    "opd": "bapenda",
    "app": "simda",
    "database": {
        "kind": "mariadb",
        "dsn": "mysql://capture@10.20.1.5/simda",
        "password_env": "SIMDA_PW",
    },
    "mechanism": "binlog",
    "tables": [{"mapping": "ta_setoran.mapping.yaml"}],
}


def test_a_source_file_with_its_mapping(tmp_path: Path) -> None:
    config = load_source(_write(tmp_path, BASE), environ={"SIMDA_PW": "rahasia"})
    assert config.mechanism is Mechanism.BINLOG
    assert config.database.password == "rahasia" and config.database.port == 3306
    assert "rahasia" not in repr(config.database)
    assert list(config.tables) == ["ta_setoran"]
    assert 1_000_000 <= config.server_id < 1_001_000_000
    assert config.slot == "lintas_simda"


def test_an_inline_mapping_with_polling(tmp_path: Path) -> None:
    body = {
        **BASE,
        "mechanism": "polling",
        "tables": [
            {
                "table": "ta_skpd",
                "key": ["kd_skpd"],
                "events": [
                    {
                        "type": "dpmptsp.izin_terbit.v1",
                        "on": ["insert"],
                        "fields": {
                            "nomor_izin": "a",
                            "nib": "b",
                            "jenis_izin": {"value": "LAINNYA"},
                            "nama_usaha": "c",
                            "nama_penanggung_jawab": "d",
                            "alamat_usaha": "e",
                            "kode_wilayah": "f",
                            "tanggal_terbit": "g",
                            "diterbitkan_pada": "h",
                        },
                    }
                ],
                "poll": {"column": "tgl_update"},
            }
        ],
    }
    config = load_source(_write(tmp_path, body), environ={"SIMDA_PW": "x"})
    table = config.tables["ta_skpd"]
    assert table.poll is not None and table.poll.mode == "timestamp"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mechanism": "logical"}, "logical reads PostgreSQL"),
        ({"mechanism": "polling"}, "polling needs `poll:"),
        ({"mechanism": "outbox"}, "an outbox source has no tables"),
        ({"tables": []}, "list at least one table"),
        ({"source": "SIMDA Lama"}, "source: String should match"),
        ({"timezone": "Asia/Bandung"}, "unknown IANA time zone"),
        ({"snapshots": True}, "unknown key"),
        (
            {"database": {"kind": "mariadb", "dsn": "mysql://capture@10.20.1.5/"}},
            "needs a database",
        ),
        ({"database": {"kind": "oracle", "dsn": "mysql://a@b/c"}}, "database.kind"),
        (
            {
                "tables": [
                    {"mapping": "ta_setoran.mapping.yaml"},
                    {"mapping": "ta_setoran.mapping.yaml"},
                ]
            },
            "table ta_setoran twice",
        ),
    ],
)
def test_a_bad_source_file_is_refused(
    tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        load_source(_write(tmp_path, {**BASE, **change}), environ={"SIMDA_PW": "x"})
    assert reason in caught.value.message
    assert caught.value.line is not None


def test_a_missing_password_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="SIMDA_PW is not set") as caught:
        load_source(_write(tmp_path, BASE), environ={})
    assert caught.value.line == 7


def test_yaml_errors_and_duplicate_keys_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("source: a\nopd: b\nsource: c\n")
    with pytest.raises(ConfigInvalid, match="duplicate key 'source'") as caught:
        load_source(path)
    assert caught.value.line == 3
    path.write_text("source: a\n  opd: [\n")
    with pytest.raises(ConfigInvalid, match="not valid YAML"):
        load_source(path)
