"""The portal's routes over plain HTTP, against a real portal process and database."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from portal_support import OPERATOR, VIEWER, Portal, client, lintas_cli, seed, signed_in

from lintas.directory import Directory, InvalidApiKey
from lintas.portal.testing import csrf_of, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGES = [
    "/",
    "/catalog",
    "/catalog/dukcapil.kematian_dicatat.v1",
    "/apps",
    "/apps/siak",
    "/subscriptions",
    "/subscriptions/kematian-ke-dinsos",
    "/dlq",
]
OPERATOR_PAGES = ["/apps/new", "/subscriptions/new", "/subscriptions/kematian-ke-dinsos/edit"]
# Every state-changing route; each must refuse a form without the session's CSRF token.
POSTS = [
    "/login",
    "/logout",
    "/lang",
    "/apps",
    "/apps/siak/keys",
    "/apps/siak/keys/nokey/revoke",
    "/apps/siak/stage",
    "/subscriptions",
    "/subscriptions/kematian-ke-dinsos",
    "/dlq/replay",
]


async def test_pages_need_sign_in_and_health_does_not(portal: Portal) -> None:
    c = client(portal)
    assert c.get("/healthz").text == "ok"
    for path in [*PAGES, *OPERATOR_PAGES]:
        answer = c.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")
    assert c.get("/api/dashboard").status_code == 401


async def test_wrong_password_is_refused_with_one_message(portal: Portal) -> None:
    c = client(portal)
    wrong = sign_in(c, OPERATOR[0], "not-the-password")
    unknown = sign_in(c, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Gagal masuk" in wrong.text and "Gagal masuk" in unknown.text
    assert c.get("/").status_code == 303  # still signed out


async def test_sign_in_sets_an_expiring_http_only_cookie(portal: Portal) -> None:
    c = client(portal)
    answer = sign_in(c, *OPERATOR)
    cookie = answer.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert f"Max-Age={8 * 3600}" in cookie
    # The cookie is signed: a forged one is ignored.
    forged = client(portal)
    forged.cookies.set("lintas_portal", "eyJ1c2VyIjogInNpdGkifQ==.forged.signature")
    assert forged.get("/").status_code == 303


async def test_every_page_renders_for_both_roles(portal: Portal, directory: Directory) -> None:
    await seed(directory)
    for who in (OPERATOR, VIEWER):
        c = signed_in(portal, who)
        for path in PAGES:
            answer = c.get(path)
            assert answer.status_code == 200, (who[0], path, answer.text[:500])
            assert answer.headers["content-security-policy"].startswith("default-src 'self'")
        assert c.get("/apps/no-such-app").status_code == 404
        assert c.get("/catalog/no.such_event.v1").status_code == 404


async def test_viewer_cannot_reach_operator_actions(portal: Portal, directory: Directory) -> None:
    await seed(directory)
    c = signed_in(portal, VIEWER)
    apps = c.get("/apps").text
    assert 'href="/apps/new"' not in apps
    assert 'data-testid="issue-form"' not in c.get("/apps/siak").text
    for path in OPERATOR_PAGES:
        assert c.get(path).status_code == 403, path
    token = csrf_of(c.get("/apps").text)
    refused = c.post("/apps/siak/keys", data={"csrf_token": token, "overlap": "7"})
    assert refused.status_code == 403
    assert "Akses ditolak" in refused.text
    assert len(await directory.list_keys("siak")) == 1  # nothing was issued
    assert c.post("/apps", data={"csrf_token": token, "id": "x1", "name": "X"}).status_code == 403


async def test_forms_without_the_csrf_token_are_refused(
    portal: Portal, directory: Directory
) -> None:
    await seed(directory)
    c = signed_in(portal, OPERATOR)
    for path in POSTS:
        missing = c.post(path, data={"overlap": "7", "lang": "en", "name": "siti"})
        assert missing.status_code == 403, path
        wrong = c.post(path, data={"csrf_token": "not-this-sessions-token"})
        assert wrong.status_code == 403, path
    # Nothing changed: same keys, still signed in, still Indonesian.
    assert len(await directory.list_keys("siak")) == 1
    assert "Dasbor Integrasi" in c.get("/").text


async def test_operator_onboards_an_application_and_the_key_is_shown_once(
    portal: Portal, directory: Directory
) -> None:
    await seed(directory)
    c = signed_in(portal, OPERATOR)
    token = csrf_of(c.get("/apps/new").text)
    form = {
        "csrf_token": token, "id": "sipkd", "name": "SIPKD Keuangan", "opd": "bapenda",
        "method": "gateway", "status": "testing", "pse_number": "000123.01/DJAI.PSE/07/2022",
        "produces": "bapenda.pajak_dibayar.v1",
    }  # fmt: skip
    created = c.post("/apps", data=form)
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    key = re.search(r'data-testid="api-key">([^<]+)<', created.text)
    assert key is not None
    app = await directory.verify_api_key(key.group(1).strip())
    assert (app.id, app.opd, app.status.value) == ("sipkd", "bapenda", "testing")
    # The detail page lists the key but never shows its secret again.
    detail = c.get("/apps/sipkd").text
    assert key.group(1).strip() not in detail
    [info] = await directory.list_keys("sipkd")
    assert info.key_id in detail

    # Rotation: a new key, the old one kept for the chosen overlap.
    rotated = c.post("/apps/sipkd/keys", data={"csrf_token": token, "overlap": "1"})
    new_key = re.search(r'data-testid="api-key">([^<]+)<', rotated.text)
    assert new_key is not None and new_key.group(1) != key.group(1)
    keys = await directory.list_keys("sipkd")
    assert len(keys) == 2
    old = next(k for k in keys if k.key_id == info.key_id)
    assert old.expires_at is not None
    assert dt.timedelta(hours=23) < old.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)

    # Revocation of the old key.
    revoked = c.post(f"/apps/sipkd/keys/{info.key_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    with pytest.raises(InvalidApiKey):
        await directory.verify_api_key(key.group(1).strip())
    await directory.verify_api_key(new_key.group(1).strip())


async def test_a_refused_application_names_the_field(portal: Portal, directory: Directory) -> None:
    await seed(directory)
    c = signed_in(portal, OPERATOR)
    token = csrf_of(c.get("/apps/new").text)
    refused = c.post(
        "/apps",
        data={"csrf_token": token, "id": "bad-app", "name": "Bad", "opd": "dinsos",
              "method": "sdk", "pse_number": "PSE-123", "produces": "dukcapil.kematian_dicatat.v1"},
    )  # fmt: skip
    assert refused.status_code == 422
    assert "<code>pse_number</code>" in refused.text
    # The form keeps what was typed, so the operator fixes one field.
    assert 'value="bad-app"' in refused.text
    other_opd = c.post(
        "/apps",
        data={"csrf_token": token, "id": "bad-app", "name": "Bad", "opd": "dinsos",
              "method": "sdk", "produces": "dukcapil.kematian_dicatat.v1"},
    )  # fmt: skip
    assert other_opd.status_code == 422
    assert "<code>produces</code>" in other_opd.text
    assert "bad-app" not in {a.id for a in await directory.list_applications()}


async def test_subscription_add_edit_and_preview(portal: Portal, directory: Directory) -> None:
    await seed(directory)
    c = signed_in(portal, OPERATOR)
    token = csrf_of(c.get("/subscriptions/new").text)
    created = c.post(
        "/subscriptions",
        data={"csrf_token": token, "name": "kematian-wilayah", "subscriber": "dinsos-bansos",
              "event_types": "dukcapil.kematian_dicatat.v1", "fields": "nik, kode_wilayah",
              "kode_wilayah_prefix": "32.73", "equals": "", "status": "active",
              "purpose": "Pemutakhiran DTKS untuk wilayah Kota Bandung (UU 27/2022 Pasal 20)."},
    )  # fmt: skip
    assert created.status_code == 303, created.text
    sub = await directory.get_subscription("kematian-wilayah")
    assert sub.fields == ("nik", "kode_wilayah")
    assert sub.filter.kode_wilayah_prefix == "32.73"
    detail = c.get("/subscriptions/kematian-wilayah").text
    delivered = re.search(r'data-testid="delivered-fields">(.*?)</ul>', detail, re.S)
    assert delivered is not None
    assert re.findall(r"<code>([a-z_]+)</code>", delivered.group(1)) == ["nik", "kode_wilayah"]
    assert "Pemutakhiran DTKS" in detail

    edited = c.post(
        "/subscriptions/kematian-wilayah",
        data={"csrf_token": token, "event_types": "dukcapil.kematian_dicatat.v1",
              "fields": "nik, tanggal_kematian", "kode_wilayah_prefix": "", "equals": "",
              "status": "paused", "purpose": "Pemutakhiran DTKS seluruh wilayah (UU 27/2022)."},
    )  # fmt: skip
    assert edited.status_code == 303, edited.text
    sub = await directory.get_subscription("kematian-wilayah")
    assert (sub.fields, sub.status.value) == (("nik", "tanggal_kematian"), "paused")
    bad = c.post(
        "/subscriptions/kematian-wilayah",
        data={"csrf_token": token, "event_types": "dukcapil.kematian_dicatat.v1",
              "fields": "nik, gaji", "purpose": "Pemutakhiran DTKS seluruh wilayah."},
    )  # fmt: skip
    assert bad.status_code == 422 and "<code>fields</code>" in bad.text


async def test_dashboard_integrated_count_matches_the_directory(
    portal: Portal, directory: Directory
) -> None:
    await seed(directory)
    c = signed_in(portal, VIEWER)
    before = c.get("/api/dashboard").json()["panels"]["integration"]
    assert (before["data"]["total"], before["data"]["integrated"]) == (4, 0)
    await directory.record_activity("siak", produced=12)
    await directory.record_activity("siks-ng", received=3)
    await directory.record_activity(
        "sipd-pajak", produced=1, at=dt.datetime.now(dt.UTC) - dt.timedelta(days=45)
    )
    report = await directory.integration_report()
    expected = sum(s.integrated for s in report)
    assert expected == 2
    after = _fresh_dashboard(c)["integration"]["data"]
    assert after["integrated"] == expected and after["total"] == len(report)
    per_opd = {r["opd"]: (r["applications"], r["integrated"]) for r in after["per_opd"]}
    assert per_opd == {"bapenda": (2, 0), "dinsos": (1, 1), "dukcapil": (1, 1)}
    assert after["history"][-1][1] == expected
    assert "Belum ada data" not in c.get("/apps").text
    summary = re.search(r'data-testid="apps-summary">([^<]+)<', c.get("/apps").text)
    assert summary is not None and summary.group(1).startswith("2 dari 4 aplikasi")


def _fresh_dashboard(c: httpx.Client) -> dict[str, dict[str, object]]:
    import time

    time.sleep(2.1)  # the snapshot is cached for 2 s
    panels: dict[str, dict[str, object]] = c.get("/api/dashboard").json()["panels"]
    return panels


async def test_dashboard_json_has_every_panel_and_no_personal_data(
    portal: Portal, directory: Directory
) -> None:
    await seed(directory)
    c = signed_in(portal, OPERATOR)
    doc = c.get("/api/dashboard").json()
    panels = doc["panels"]
    assert set(panels) == {
        "integration", "traffic", "dead_letters", "lag", "delivery", "freshness", "health",
    }  # fmt: skip
    for name, panel in panels.items():
        assert panel["state"] in {"ok", "no_data", "error"}, name
    probes = {p["name"]: p["up"] for p in panels["health"]["data"]["probes"]}
    assert probes == {"kafka": True, "postgresql": True, "registry": True}
    assert [d["subscriber"] for d in panels["delivery"]["data"]] == ["dinsos-bansos"]
    # No NIK-shaped number anywhere on the dashboard.
    assert not re.search(r"\b\d{16}\b", c.get("/api/dashboard").text)


async def test_language_switch_is_remembered(portal: Portal) -> None:
    c = signed_in(portal, VIEWER)
    page = c.get("/catalog").text
    assert "Katalog Event" in page and '<html lang="id">' in page
    switched = c.post("/lang", data={"csrf_token": csrf_of(page), "lang": "en", "next": "/catalog"})
    assert switched.status_code == 303 and switched.headers["location"] == "/catalog"
    english = c.get("/catalog").text
    assert "Event catalog" in english and '<html lang="en">' in english
    # An absolute URL in "next" does not leave the site.
    away = c.post(
        "/lang",
        data={"csrf_token": csrf_of(english), "lang": "id", "next": "https://evil.example/"},
    )
    assert away.headers["location"] == "/"


async def test_catalog_detail_shows_registry_and_directory_facts(
    portal: Portal, directory: Directory, registry_url: str
) -> None:
    from lintas.schemas import load_catalog
    from lintas.schemas.registry import SchemaRegistryClient, SubjectNotFound

    await seed(directory)
    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    async with SchemaRegistryClient(registry_url) as registry:
        await registry.register(kematian.subject, kematian.schema_str)
        versions = await registry.get_versions(kematian.subject)
        level = await registry.get_compatibility(kematian.subject, default_to_global=True)
        with pytest.raises(SubjectNotFound):
            await registry.get_versions("opd.nowhere.nothing.v1-value")
    page = signed_in(portal, VIEWER).get(f"/catalog/{kematian.id}").text
    shown = re.search(r'data-testid="registry-versions">([^<]+)<', page)
    assert shown is not None and shown.group(1) == ", ".join(str(v) for v in versions)
    assert f"<code>{level}</code>" in page
    assert 'href="/apps/siak"' in page  # the producing application
    assert 'href="/subscriptions/kematian-ke-dinsos"' in page  # the subscriber
    assert f"/v1/events/{kematian.id}" in page and "Authorization: Bearer" in page
    assert "EventProducer" in page
    assert "pii" in page and "NIK" in page


async def test_asyncapi_endpoint_serves_the_export(portal: Portal) -> None:
    c = signed_in(portal, VIEWER)
    doc = c.get("/catalog/asyncapi.json").json()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["lintas"]["host"] == portal.env["LINTAS_KAFKA_BOOTSTRAP"]


async def test_a_disabled_user_is_signed_out_at_once(portal: Portal) -> None:
    c = signed_in(portal, VIEWER)
    assert c.get("/").status_code == 200
    await lintas_cli(portal.env, "portal", "user", "disable", VIEWER[0])
    assert c.get("/").status_code == 303
    assert sign_in(client(portal), *VIEWER).status_code == 401


def _session_cookie(secret: str, session: dict[str, str], *, age_s: int) -> str:
    """A cookie as Starlette's SessionMiddleware signs it, made ``age_s`` seconds ago."""
    import base64
    import json
    import time

    import itsdangerous

    class Backdated(itsdangerous.TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_s

    data = base64.b64encode(json.dumps(session).encode())
    return Backdated(secret).sign(data).decode()


async def test_a_session_expires_on_the_server_after_the_idle_limit(portal: Portal) -> None:
    secret = (portal.data_dir / "secrets" / "portal-session.key").read_text().strip()
    session = {"user": OPERATOR[0], "csrf": "x"}
    fresh = client(portal)
    fresh.cookies.set("lintas_portal", _session_cookie(secret, session, age_s=60))
    assert fresh.get("/").status_code == 200  # the forgery is faithful: a recent one works
    stale = client(portal)
    stale.cookies.set("lintas_portal", _session_cookie(secret, session, age_s=8 * 3600 + 60))
    answer = stale.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
