"""The portal in a real browser: Playwright driving Debian's Chromium against a real portal
process, database and broker. Screenshots go to ``test-output/portal/``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect
from portal_support import OPERATOR, VIEWER, Portal, seed

from lintas.directory import Directory
from lintas.kafka import KafkaConnection, create_producer
from lintas.streams.metrics import MetricRecord, Outcome, encode_metric

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = "/usr/bin/chromium"  # Debian's package: scripts/install puts it there


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in_page(browser: Browser, portal: Portal, who: tuple[str, str]) -> Page:
    context = await browser.new_context(
        base_url=portal.url, viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login\?next=/"))
    await page.fill("input[name=name]", who[0])
    await page.fill("input[name=password]", who[1])
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page.get_by_test_id("whoami")).to_contain_text(who[0])
    return page


async def dashboard_rendered(page: Page) -> None:
    await page.wait_for_function("document.body.getAttribute('data-rendered') !== null")


async def test_operator_walks_every_page(
    browser: Browser, portal: Portal, directory: Directory, shots: Path
) -> None:
    await seed(directory)
    await directory.record_activity("siak", produced=120)
    await directory.record_activity("siks-ng", received=40)
    expected = sum(s.integrated for s in await directory.integration_report())
    assert expected == 2

    login = await (await browser.new_context(base_url=portal.url)).new_page()
    await login.goto("/login")
    await expect(login.locator("h1")).to_have_text("Masuk")
    await login.screenshot(path=shots / "01-masuk.png")

    page = await signed_in_page(browser, portal, OPERATOR)
    await dashboard_rendered(page)
    await expect(page.get_by_test_id("kpi-integrated")).to_have_text(str(expected))
    await expect(page.get_by_test_id("kpi-total")).to_have_text("4")
    per_opd = page.get_by_test_id("integration-per-opd")
    await expect(per_opd.locator("tbody tr")).to_have_count(3)
    await expect(page.get_by_test_id("panel-traffic-minute")).to_contain_text("Belum ada data")
    await expect(page.get_by_test_id("health-table")).to_contain_text("Sehat")
    await page.screenshot(path=shots / "02-dasbor.png", full_page=True)

    # Live refresh: a third application becomes integrated while the page is open.
    await directory.record_activity("sipd-pajak", produced=1)
    await expect(page.get_by_test_id("kpi-integrated")).to_have_text(
        str(expected + 1), timeout=15_000
    )

    await page.click("nav >> text=Katalog Event")
    await expect(page.get_by_test_id("catalog-table").locator("tbody tr")).to_have_count(12)
    await page.screenshot(path=shots / "03-katalog.png", full_page=True)
    await page.click("text=dukcapil.kematian_dicatat.v1")
    await expect(page.get_by_test_id("event-type")).to_have_text("dukcapil.kematian_dicatat.v1")
    await expect(page.get_by_test_id("producers")).to_contain_text("SIAK")
    await expect(page.get_by_test_id("subscribers")).to_contain_text("dinsos-bansos")
    await expect(page.get_by_test_id("curl-snippet")).to_contain_text(
        "/v1/events/dukcapil.kematian_dicatat.v1"
    )
    await page.screenshot(path=shots / "04-katalog-kematian.png", full_page=True)

    await page.click("nav >> text=Aplikasi")
    await expect(page.get_by_test_id("apps-summary")).to_contain_text(
        f"{expected + 1} dari 4 aplikasi"
    )
    await expect(page.get_by_test_id("status-siak")).to_have_text("Terintegrasi")
    await expect(page.get_by_test_id("status-simpeg")).to_have_text("Direncanakan")
    await page.screenshot(path=shots / "05-aplikasi.png", full_page=True)

    # Onboarding: a new application with its first key, shown once.
    await page.get_by_test_id("add-app").click()
    await page.fill("input[name=id]", "simpus")
    await page.fill("input[name=name]", "SIMPUS Puskesmas")
    await page.select_option("select[name=opd]", "dukcapil")
    await page.select_option("select[name=method]", "capture")
    await page.fill("input[name=platform]", "PHP 5.6 / MySQL 5")
    await page.check("input[value='dukcapil.pindah_datang.v1']")
    await page.screenshot(path=shots / "06-tambah-aplikasi.png", full_page=True)
    await page.click("form[data-testid=app-form] button[type=submit]")
    token = (await page.get_by_test_id("api-key").inner_text()).strip()
    await page.screenshot(path=shots / "07-kunci-api.png", full_page=True)
    app = await directory.verify_api_key(token)
    assert (app.id, app.method.value, app.produces) == (
        "simpus",
        "capture",
        ("dukcapil.pindah_datang.v1",),
    )

    await page.goto("/apps/simpus")
    await expect(page.get_by_test_id("keys-table").locator("tbody tr")).to_have_count(1)
    assert token not in await page.content()
    await page.get_by_test_id("issue-key").click()
    await expect(page.get_by_test_id("api-key")).to_be_visible()
    await page.goto("/apps/simpus")
    await expect(page.get_by_test_id("keys-table").locator("tbody tr")).to_have_count(2)
    await page.screenshot(path=shots / "08-aplikasi-detail.png", full_page=True)

    await page.click("nav >> text=Langganan")
    await expect(page.get_by_test_id("subs-table")).to_contain_text("kematian-ke-dinsos")
    await page.screenshot(path=shots / "09-langganan.png", full_page=True)
    await page.click("text=kematian-ke-dinsos")
    delivered = page.get_by_test_id("delivered-fields").locator("li")
    await expect(delivered).to_have_count(3)
    await expect(page.get_by_test_id("purpose")).to_contain_text("Permensos")
    await page.screenshot(path=shots / "10-langganan-detail.png", full_page=True)
    await page.get_by_test_id("edit-sub").click()
    await page.fill("input[name=fields]", "nik, tanggal_kematian")
    await page.click("form[data-testid=sub-form] button[type=submit]")
    await expect(page.get_by_test_id("delivered-fields").locator("li")).to_have_count(2)
    assert (await directory.get_subscription("kematian-ke-dinsos")).fields == (
        "nik",
        "tanggal_kematian",
    )

    # English on the switch, kept across pages.
    await page.get_by_test_id("lang-en").click()
    await expect(page.locator("nav")).to_contain_text("Dashboard")
    await page.click("nav >> text=Dashboard")
    await dashboard_rendered(page)
    await expect(page.locator("h1")).to_have_text("Integration dashboard")
    await expect(page.get_by_test_id("panel-traffic-minute")).to_contain_text("No data yet")
    await page.screenshot(path=shots / "11-dashboard-en.png", full_page=True)


async def test_viewer_reads_but_cannot_act(
    browser: Browser, portal: Portal, directory: Directory, shots: Path
) -> None:
    await seed(directory)
    page = await signed_in_page(browser, portal, VIEWER)
    await expect(page.get_by_test_id("whoami")).to_contain_text("Pemantau")
    await page.goto("/apps")
    await expect(page.get_by_test_id("apps-table")).to_be_visible()
    await expect(page.get_by_test_id("add-app")).to_have_count(0)
    await page.goto("/apps/siak")
    await expect(page.get_by_test_id("issue-form")).to_have_count(0)
    answer = await page.goto("/apps/new")
    assert answer is not None and answer.status == 403
    await expect(page.get_by_test_id("error")).to_contain_text("Akses ditolak")
    await page.screenshot(path=shots / "12-pemantau-403.png", full_page=True)
    # A crafted POST with the viewer's valid session is refused too.
    html = await (await page.goto("/apps")).text()  # type: ignore[union-attr]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None
    refused = await page.request.post(
        "/apps/siak/keys", form={"csrf_token": csrf.group(1), "overlap": "7"}
    )
    assert refused.status == 403
    assert len(await directory.list_keys("siak")) == 1


async def test_a_form_without_its_csrf_token_is_refused(
    browser: Browser, portal: Portal, directory: Directory, shots: Path
) -> None:
    await seed(directory)
    page = await signed_in_page(browser, portal, OPERATOR)
    await page.goto("/apps/siak")
    # Strip the token from the real form, then submit it as a user would.
    await page.evaluate(
        "document.querySelectorAll('[data-testid=issue-form] input[name=csrf_token]')"
        ".forEach(e => e.remove())"
    )
    async with page.expect_response(re.compile(r"/apps/siak/keys$")) as info:
        await page.get_by_test_id("issue-key").click()
    assert (await info.value).status == 403
    await expect(page.get_by_test_id("error")).to_contain_text("token keamanan")
    await page.screenshot(path=shots / "13-csrf-ditolak.png", full_page=True)
    assert len(await directory.list_keys("siak")) == 1


async def test_dashboard_traffic_matches_the_metrics_topic(
    browser: Browser,
    portal: Portal,
    directory: Directory,
    kafka_conn: KafkaConnection,
    shots: Path,
) -> None:
    await seed(directory)
    metrics_topic = portal.env["LINTAS_PORTAL__METRICS_TOPIC"]
    dlq_topic = portal.env["LINTAS_PORTAL__DLQ_TOPIC"]
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    sent = {"dukcapil.kematian_dicatat.v1": 0, "bapenda.pajak_dibayar.v1": 0}
    producer = create_producer(kafka_conn)
    await producer.start()
    try:
        for minutes_ago in range(1, 31):
            for event_type, base in (
                ("dukcapil.kematian_dicatat.v1", 3),
                ("bapenda.pajak_dibayar.v1", 5),
            ):
                count = base + minutes_ago % 4
                sent[event_type] += count
                start = now - dt.timedelta(minutes=minutes_ago)
                record = MetricRecord(
                    window_start=start, window_end=start + dt.timedelta(minutes=1),
                    opd=event_type.split(".")[0], event_type=event_type,
                    outcome=Outcome.ACCEPTED, count=count, worker="w1",
                )  # fmt: skip
                key, value = encode_metric(record)
                await producer.send_and_wait(metrics_topic, value, key=key)
        for reason in ("invalid_nik", "invalid_nik", "unknown_wilayah"):
            await producer.send_and_wait(
                dlq_topic, b"\x00", headers=[("lintas.dlq.reason", reason.encode()),
                                             ("lintas.dlq.opd", b"dukcapil")],
            )  # fmt: skip
    finally:
        await producer.stop()

    page = await signed_in_page(browser, portal, VIEWER)
    table = page.get_by_test_id("traffic-by-type")
    await expect(table).to_be_visible(timeout=20_000)
    for event_type, total in sent.items():
        row = table.locator(f"tr:has(td[data-key='{event_type}'])")
        await expect(row.locator("td").nth(2)).to_have_text(_id_number(total), timeout=20_000)
    await expect(page.get_by_test_id("kpi-day")).to_have_text(_id_number(sum(sent.values())))
    await expect(page.get_by_test_id("kpi-dead-letters")).to_have_text("3", timeout=20_000)
    reasons = page.get_by_test_id("dead-letters-by-reason")
    await expect(reasons.locator("tr:has(td[data-key='invalid_nik']) td").nth(1)).to_have_text("2")
    await expect(page.locator("[data-panel=traffic_minute] svg rect.bar")).not_to_have_count(0)
    await page.screenshot(path=shots / "14-dasbor-lalu-lintas.png", full_page=True)

    # The same dead letters in the DLQ browser; a viewer may not replay them.
    await page.click("nav >> text=Event gagal")
    reasons_table = page.get_by_test_id("dlq-reasons")
    await expect(
        reasons_table.locator("tr[data-key='invalid_nik|dukcapil'] td").nth(2)
    ).to_have_text("2")
    await expect(page.get_by_test_id("dlq-table").locator("tbody tr")).to_have_count(3)
    await expect(page.get_by_test_id("replay")).to_have_count(0)
    await page.screenshot(path=shots / "15-event-gagal.png", full_page=True)


def _id_number(n: int) -> str:
    return f"{n:,}".replace(",", ".")
